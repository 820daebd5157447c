"""Cost maths, pinned on hand-worked cases with every token kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cost.prices import Tokens, load_price_table
from bot.errors import ConfigError

TABLE = load_price_table()


def test_every_token_kind_is_priced_at_its_own_rate() -> None:
    # claude-sonnet-4-6: $3 in, $15 out, $3.75 5-min write, $6 1-hour write, $0.30 read.
    tokens = Tokens(
        input=1000, output=500, cache_write_5m=2000, cache_write_1h=1000, cache_read=10000
    )
    # 1000·3 + 500·15 + 2000·3.75 + 1000·6 + 10000·0.30 = 3000 + 7500 + 7500 + 6000 + 3000
    assert TABLE.cost_micros("claude-sonnet-4-6", tokens) == 27_000


def test_cache_tokens_are_not_counted_twice_or_at_the_input_price() -> None:
    only_reads = Tokens(cache_read=1_000_000)
    only_input = Tokens(input=1_000_000)
    assert TABLE.cost_micros("claude-sonnet-5-5", only_reads) == 100_000  # $0.10, not $2
    assert TABLE.cost_micros("claude-sonnet-5-5", only_input) == 2_000_000


def test_rounding_is_to_the_nearest_micro_dollar_once() -> None:
    # 3·$2 + 7·$0.10 = 6.7 micro-dollars → 7 (summed exactly, rounded at the end)
    assert TABLE.cost_micros("claude-sonnet-5-5", Tokens(input=3, cache_read=7)) == 7


def test_long_context_tier_prices_the_whole_request() -> None:
    # Haiku 5.5 above 100,000 prompt tokens: $0.50 in, $2.50 out, $0.05 read.
    tokens = Tokens(input=90_000, cache_read=20_000, output=1_000)
    assert TABLE.cost_micros("claude-haiku-5-5", tokens) == 45_000 + 1_000 + 2_500
    small = Tokens(input=90_000, output=1_000)
    assert TABLE.cost_micros("claude-haiku-5-5", small) == 9_000 + 500


def test_unknown_model_and_unknown_price_are_unknown_not_zero() -> None:
    assert TABLE.cost_micros("claude-imaginary-9", Tokens(input=10)) is None
    # Opus 5.5 has no published cache-write price: a request writing the cache is unknown...
    assert TABLE.cost_micros("claude-opus-5-5", Tokens(input=10, cache_write_5m=10)) is None
    # ...while one that does not is priced.
    assert TABLE.cost_micros("claude-opus-5-5", Tokens(input=10, output=10)) == 240


def test_dated_model_ids_use_their_alias_row() -> None:
    assert TABLE.cost_micros("claude-haiku-4-5-20251001", Tokens(output=1000)) == 5000
    # A longer alias is not mistaken for a shorter one.
    assert TABLE.lookup("claude-opus-5-5") is not TABLE.lookup("claude-opus-5")


def test_cache_savings() -> None:
    # Sonnet 4.6: 10,000 reads would cost $0.03 as input, cost $0.003: saved 27,000 µ$,
    # minus the 5-minute write premium on 1,000 tokens (3.75 − 3 = 0.75 each): 750 µ$.
    tokens = Tokens(cache_read=10_000, cache_write_5m=1_000)
    assert TABLE.cache_savings_micros("claude-sonnet-4-6", tokens) == 27_000 - 750


def test_price_file_overrides_and_adds_rows(tmp_path: Path) -> None:
    override = tmp_path / "prices.toml"
    override.write_text(
        'version = "acme-1"\n'
        '[models."claude-sonnet-5-5"]\ninput = "1"\noutput = "5"\n'
        '[models."claude-custom-1"]\ninput = "0.5"\noutput = "1.5"\n'
    )
    table = load_price_table(override)
    assert table.cost_micros("claude-sonnet-5-5", Tokens(input=10, output=10)) == 60
    assert table.cost_micros("claude-custom-1", Tokens(input=10, output=10)) == 20
    assert table.cost_micros("claude-sonnet-4-6", Tokens(input=1)) == 3  # untouched rows stay
    assert table.version.startswith(f"{TABLE.version}+acme-1.")


@pytest.mark.parametrize(
    "content",
    ['[models."x"]\ninput = "free"\n', '[models."x"]\ninput = "-1"\n', "not toml ["],
)
def test_a_bad_price_file_is_a_readable_error(tmp_path: Path, content: str) -> None:
    override = tmp_path / "prices.toml"
    override.write_text(content)
    with pytest.raises(ConfigError, match="is not valid"):
        load_price_table(override)


def test_every_shipped_row_names_its_source_and_date() -> None:
    for row in TABLE.models.values():
        assert row.source
        assert row.checked == "2026-11-24"
        assert row.base.input is not None
        assert row.base.output is not None
