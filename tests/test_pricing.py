"""Cost maths, pinned on hand-worked cases with every token kind."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path

import pytest

from bot.cost.prices import Cost, Tokens, canonical_model, load_price_table, model_family
from bot.errors import ConfigError

TABLE = load_price_table()
# 100 of each kind: a price list's sum, in micro-dollars, times 100.
HUNDRED = Tokens(input=100, output=100, cache_write_5m=100, cache_write_1h=100, cache_read=100)


def override(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.toml"
    path.write_text(text)
    return path


# --- exact cost -------------------------------------------------------------------------


def test_every_token_kind_is_priced_at_its_own_rate() -> None:
    # claude-sonnet-4-6: $3 in, $15 out, $3.75 5-min write, $6 1-hour write, $0.30 read.
    tokens = Tokens(
        input=1000, output=500, cache_write_5m=2000, cache_write_1h=1000, cache_read=10000
    )
    # 1000·3 + 500·15 + 2000·3.75 + 1000·6 + 10000·0.30 = 3000 + 7500 + 7500 + 6000 + 3000
    assert TABLE.cost_micros("claude-sonnet-4-6", tokens) == 27_000
    assert TABLE.cost("claude-sonnet-4-6", tokens) == Cost(27_000, 27_000)


def test_cache_tokens_are_not_counted_twice_or_at_the_input_price() -> None:
    only_reads = Tokens(cache_read=1_000_000)
    only_input = Tokens(input=1_000_000)
    assert TABLE.cost_micros("claude-sonnet-5-5", only_reads) == 200_000  # $0.20, not $2
    assert TABLE.cost_micros("claude-sonnet-5-5", only_input) == 2_000_000


def test_rounding_is_half_up_to_the_micro_dollar_once() -> None:
    # 3·$2 + 7·$0.20 = 7.4 micro-dollars → 7 (summed exactly, rounded at the end)
    assert TABLE.cost_micros("claude-sonnet-5-5", Tokens(input=3, cache_read=7)) == 7
    # Haiku 5.5 reads at $0.01: 250 reads = 2.5 µ$ → 3 (half-even would say 2).
    assert TABLE.cost_micros("claude-haiku-5-5", Tokens(cache_read=250)) == 3


def test_long_context_tier_prices_the_whole_request() -> None:
    # Haiku 5.5 above 100,000 prompt tokens: $0.50 in, $2.50 out, $0.05 read.
    tokens = Tokens(input=90_000, cache_read=20_000, output=1_000)
    assert TABLE.cost_micros("claude-haiku-5-5", tokens) == 45_000 + 1_000 + 2_500
    small = Tokens(input=90_000, output=1_000)
    assert TABLE.cost_micros("claude-haiku-5-5", small) == 9_000 + 500


def test_opus_5_5_cache_writes_are_now_priced() -> None:
    # $4 in, $5 5-min write, $8 1-hour write.
    tokens = Tokens(input=10, cache_write_5m=10, cache_write_1h=10)
    assert TABLE.cost("claude-opus-5-5", tokens) == Cost(40 + 50 + 80, 40 + 50 + 80)


def test_inference_geo_us_is_1_1_times_every_token_kind() -> None:
    million = Tokens(input=1_000_000)
    assert TABLE.cost("claude-sonnet-4-6", million, inference_geo="us").micros == 3_300_000
    # 5 input tokens = 15 µ$ × 1.1 = 16.5 → 17, rounded once after the multiplier.
    five = TABLE.cost("claude-sonnet-4-6", Tokens(input=5), inference_geo="us")
    assert five == Cost(17, 17)
    # Every kind: Sonnet 4.6 prices 100 of each at 300 + 1,500 + 375 + 600 + 30 = 2,805 µ$.
    assert TABLE.cost("claude-sonnet-4-6", HUNDRED, inference_geo="us").micros == 3_086


@pytest.mark.parametrize("geo", [None, "global"])
def test_global_or_absent_geo_costs_nothing_extra(geo: str | None) -> None:
    cost = TABLE.cost("claude-sonnet-4-6", Tokens(input=1_000), inference_geo=geo)
    assert cost == Cost(3_000, 3_000)


def test_an_unknown_multiplier_is_unknown_and_estimated_at_the_highest() -> None:
    eu = TABLE.cost("claude-sonnet-4-6", Tokens(input=1_000), inference_geo="eu")
    assert eu == Cost(None, 3_300)  # the highest geo factor, us = 1.1
    assert eu.estimated
    # Fast mode has no documented figure: unknown, and the estimate cannot go below 1×.
    fast = TABLE.cost("claude-sonnet-4-6", Tokens(input=1_000), speed="fast")
    assert fast == Cost(None, 3_000)
    assert TABLE.cost("claude-sonnet-4-6", Tokens(input=1_000), speed="standard").micros == 3_000


def test_web_searches_cost_ten_dollars_a_thousand_and_fetches_nothing() -> None:
    tokens = Tokens(input=1_000)
    cost = TABLE.cost("claude-sonnet-4-6", tokens, web_searches=3, web_fetches=5)
    assert cost == Cost(3_000 + 30_000, 3_000 + 30_000)
    # Fees are not multiplied by the region factor, only tokens are.
    us = TABLE.cost("claude-sonnet-4-6", tokens, inference_geo="us", web_searches=3)
    assert us.micros == 3_300 + 30_000


def test_an_unknown_tool_fee_is_estimated_at_the_highest_fee() -> None:
    table = dataclasses.replace(TABLE, tools={"web_search": Decimal(10)})
    assert table.cost("claude-sonnet-4-6", Tokens(), web_fetches=2) == Cost(None, 20_000)


# --- estimates of unknown prices ----------------------------------------------------------


def test_unknown_cache_prices_are_estimated_at_the_family_maximum() -> None:
    # Fable 5.2 has only $8 in / $40 out. The Fable family's highest: 12.50 / 20 / read 1.
    tokens = Tokens(input=1_000, cache_write_5m=1_000, cache_write_1h=1_000, cache_read=1_000)
    cost = TABLE.cost("claude-fable-5-2", tokens)
    assert cost == Cost(None, 8_000 + 12_500 + 20_000 + 1_000)
    assert TABLE.cost_micros("claude-fable-5-2", tokens) is None
    # What it does have a price for stays exact.
    assert TABLE.cost("claude-fable-5-2", Tokens(input=10, output=10)) == Cost(480, 480)


def test_an_unknown_model_of_a_known_family_is_estimated_at_its_family_maximum() -> None:
    # Sonnet's highest: 4.6 / 4.5 at $3 / $15 / $3.75 / $6 / $0.30.
    assert TABLE.lookup("claude-sonnet-9") is None
    assert TABLE.cost("claude-sonnet-9", HUNDRED) == Cost(None, 2_805)


@pytest.mark.parametrize("model", ["gpt-x", None, "claude-instant-1"])
def test_a_model_of_no_family_is_estimated_at_the_whole_table_maximum(model: str | None) -> None:
    # Fable / Mythos 5: $10 / $50 / $12.50 / $20 / $1.
    assert TABLE.cost(model, HUNDRED) == Cost(None, 9_350)


def test_a_fallback_row_prices_models_of_no_family(tmp_path: Path) -> None:
    table = load_price_table(
        override(
            tmp_path,
            'version = "acme-2"\n'
            '[fallback]\ninput = "1"\noutput = "2"\nlong_context_above = 100000\n'
            '[fallback.long_context]\ninput = "3"\noutput = "6"\n',
        )
    )
    assert table.cost("gpt-x", Tokens(input=100, output=100)) == Cost(None, 300)
    # Its long-context tier applies to estimates as it does to exact costs.
    assert table.cost("gpt-x", Tokens(input=150_000)) == Cost(None, 450_000)
    # A kind the fallback row lacks comes from the whole table ($1 read).
    assert table.cost("gpt-x", Tokens(cache_read=100)) == Cost(None, 100)
    # A family still beats the fallback.
    assert table.cost("claude-sonnet-9", Tokens(input=100)) == Cost(None, 300)
    assert TABLE.fallback is None  # not shipped


def test_the_estimate_compares_prices_at_the_requests_tier(tmp_path: Path) -> None:
    # Haiku 5.5 made dear above 100,000 prompt tokens only: an unknown Haiku's estimate
    # follows it there, and Haiku 4.5's $1 below.
    table = load_price_table(
        override(
            tmp_path,
            '[models."claude-haiku-5-5"]\ninput = "0.10"\noutput = "0.50"\n'
            "long_context_above = 100000\n"
            '[models."claude-haiku-5-5".long_context]\ninput = "5"\noutput = "25"\n',
        )
    )
    assert table.cost("claude-haiku-9", Tokens(input=150_000)) == Cost(None, 750_000)
    assert table.cost("claude-haiku-9", Tokens(input=50_000)) == Cost(None, 50_000)


# --- worst case for budgets -----------------------------------------------------------------


def test_worst_case_uses_the_tier_the_cache_write_premium_and_the_dearest_region() -> None:
    # Haiku 5.5 above 100,000: in $0.50, 5-min write $0.625, 1-hour write $1, out $2.50.
    # 5-minute breakpoints only: (0.625·150,000 + 2.50·4,000) × 1.1 = 103,750 × 1.1.
    assert TABLE.worst_case("claude-haiku-5-5", 150_000, 4_000, cache_write_1h=False) == 114_125
    # By default a 1-hour write is possible too: (1·150,000 + 10,000) × 1.1.
    assert TABLE.worst_case("claude-haiku-5-5", 150_000, 4_000) == 176_000
    assert (
        TABLE.worst_case(
            "claude-haiku-5-5", 150_000, 4_000, inference_geo="global", cache_write_1h=False
        )
        == 103_750
    )
    # Below the threshold: 0.125·50,000 + 0.50·4,000.
    below = TABLE.worst_case(
        "claude-haiku-5-5", 50_000, 4_000, inference_geo="global", cache_write_1h=False
    )
    assert below == 8_250


def test_worst_case_fills_unknown_prices_like_the_estimate() -> None:
    # Fable 5.2: no write price, so the family's $20 1-hour write; $40 out.
    worst = TABLE.worst_case("claude-fable-5-2", 1_000, 1_000, inference_geo="global")
    assert worst == 20_000 + 40_000
    # A model of no family: the table's $20 write and $50 out; an unknown region at 1.1.
    assert TABLE.worst_case("gpt-x", 1_000, 1_000, inference_geo="mars") == 77_000


# --- model ids -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "canonical", "family"),
    [
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5", "haiku"),
        ("claude-sonnet-5-5-latest", "claude-sonnet-5-5", "sonnet"),
        ("anthropic.claude-sonnet-5-5-v1:0", "claude-sonnet-5-5", "sonnet"),
        ("us.anthropic.claude-opus-5-5-v1:0", "claude-opus-5-5", "opus"),
        ("global.anthropic.claude-haiku-5-5-v1:0", "claude-haiku-5-5", "haiku"),
        ("eu.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5", "haiku"),
        ("apac.anthropic.claude-sonnet-4-6-v1:0", "claude-sonnet-4-6", "sonnet"),
        ("claude-sonnet-5-5@20260928", "claude-sonnet-5-5", "sonnet"),
        ("claude-opus-5-5@latest", "claude-opus-5-5", "opus"),
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet", "sonnet"),
        ("claude-fable-5-2", "claude-fable-5-2", "fable"),
        ("claude-mythos-preview", "claude-mythos-preview", "mythos"),
        ("claude-opus-5", "claude-opus-5", "opus"),
        # Not Claude, or no family: unchanged, and no family.
        ("gpt-4o-latest", "gpt-4o-latest", None),
        ("mistral.mistral-large-v1:0", "mistral.mistral-large-v1:0", None),
        ("claude-instant-1", "claude-instant-1", None),
        ("", "", None),
    ],
)
def test_model_ids(model_id: str, canonical: str, family: str | None) -> None:
    assert canonical_model(model_id) == canonical
    assert model_family(model_id) == family


@pytest.mark.parametrize(
    "model_id",
    [
        "claude-opus-5-5-latest",
        "us.anthropic.claude-opus-5-5-v1:0",
        "global.anthropic.claude-opus-5-5-20261101-v1:0",
        "claude-opus-5-5@20260928",
        "claude-opus-5-5@latest",
    ],
)
def test_provider_ids_use_the_alias_row(model_id: str) -> None:
    assert TABLE.lookup(model_id) is TABLE.lookup("claude-opus-5-5")
    assert TABLE.cost(model_id, Tokens(input=10, output=10)) == Cost(240, 240)


def test_dated_model_ids_use_their_alias_row() -> None:
    assert TABLE.cost_micros("claude-haiku-4-5-20251001", Tokens(output=1000)) == 5000
    # A longer alias is not mistaken for a shorter one.
    assert TABLE.lookup("claude-opus-5-5") is not TABLE.lookup("claude-opus-5")


def test_a_row_under_the_exact_id_beats_the_alias(tmp_path: Path) -> None:
    table = load_price_table(
        override(tmp_path, '[models."claude-haiku-4-5-20251001"]\ninput = "7"\noutput = "7"\n')
    )
    assert table.cost_micros("claude-haiku-4-5-20251001", Tokens(input=1)) == 7
    assert table.cost_micros("claude-haiku-4-5", Tokens(input=1)) == 1


def test_an_unknown_model_is_unknown_by_name_not_zero() -> None:
    assert TABLE.lookup("claude-imaginary-9") is None
    assert TABLE.cost_micros("claude-imaginary-9", Tokens(input=10)) is None
    assert TABLE.cache_savings_micros("claude-imaginary-9", Tokens(cache_read=10)) is None


# --- cache savings ---------------------------------------------------------------------------


def test_cache_savings() -> None:
    # Sonnet 4.6: 10,000 reads would cost $0.03 as input, cost $0.003: saved 27,000 µ$,
    # minus the 5-minute write premium on 1,000 tokens (3.75 − 3 = 0.75 each): 750 µ$.
    tokens = Tokens(cache_read=10_000, cache_write_5m=1_000)
    assert TABLE.cache_savings_micros("claude-sonnet-4-6", tokens) == 27_000 - 750
    assert TABLE.cache_savings_micros("apac.anthropic.claude-sonnet-4-6-v1:0", tokens) == 26_250


def test_cache_savings_use_the_whole_requests_tier() -> None:
    # 110,000 prompt tokens: Haiku 5.5's long tier, $0.50 in and $0.05 read, for the reads too.
    tokens = Tokens(input=90_000, cache_read=20_000)
    # 20,000 · (0.50 − 0.05); the base tier ($0.10 − $0.01) would have said 1,800.
    assert TABLE.cache_savings_micros("claude-haiku-5-5", tokens) == 9_000


def test_cache_savings_are_unknown_when_a_price_is() -> None:
    assert TABLE.cache_savings_micros("claude-fable-5-2", Tokens(cache_read=10)) is None


# --- the price files -------------------------------------------------------------------------


def test_price_file_overrides_and_adds_rows(tmp_path: Path) -> None:
    table = load_price_table(
        override(
            tmp_path,
            'version = "acme-1"\n'
            '[models."claude-sonnet-5-5"]\ninput = "1"\noutput = "5"\n'
            '[models."claude-custom-1"]\ninput = "0.5"\noutput = "1.5"\n',
        )
    )
    assert table.cost_micros("claude-sonnet-5-5", Tokens(input=10, output=10)) == 60
    assert table.cost_micros("claude-custom-1", Tokens(input=10, output=10)) == 20
    assert table.cost_micros("claude-sonnet-4-6", Tokens(input=1)) == 3  # untouched rows stay
    assert table.version.startswith(f"{TABLE.version}+acme-1.")


def test_price_file_merges_multipliers_and_tool_fees(tmp_path: Path) -> None:
    table = load_price_table(
        override(
            tmp_path,
            'version = "acme-3"\n'
            '[multipliers.inference_geo]\neu = "1.05"\n'
            '[multipliers.speed]\nfast = "6"\n'
            '[tools]\nweb_search = "12"\n',
        )
    )
    tokens = Tokens(input=1_000)
    assert table.cost("claude-sonnet-4-6", tokens, inference_geo="eu").micros == 3_150
    assert table.cost("claude-sonnet-4-6", tokens, inference_geo="us").micros == 3_300
    assert table.cost("claude-sonnet-4-6", tokens, speed="fast").micros == 18_000
    assert table.cost("claude-sonnet-4-6", tokens, speed="turbo") == Cost(None, 18_000)
    assert table.cost("claude-sonnet-4-6", Tokens(), web_searches=1).micros == 12_000
    assert table.cost("claude-sonnet-4-6", Tokens(), web_fetches=1).micros == 0
    assert table.version.startswith("2026-12-01+acme-3.")


@pytest.mark.parametrize(
    "content",
    [
        '[models."x"]\ninput = "free"\n',
        '[models."x"]\ninput = "-1"\n',
        "not toml [",
        '[multipliers.inference_geo]\nus = "0"\n',
        "[multipliers]\ninference_geo = 2\n",
        '[tools]\nweb_search = "-10"\n',
        'fallback = "cheap"\n',
    ],
)
def test_a_bad_price_file_is_a_readable_error(tmp_path: Path, content: str) -> None:
    with pytest.raises(ConfigError, match="is not valid"):
        load_price_table(override(tmp_path, content))


@pytest.mark.parametrize(
    ("model", "prices"),
    [
        # in, out, 5-min write, 1-hour write, read, as 100 tokens of each cost in µ$
        ("claude-opus-5-5", (400, 2_000, 500, 800, 20)),
        ("claude-sonnet-5", (200, 1_000, 250, 400, 20)),
        ("claude-sonnet-5-5", (200, 1_000, 250, 400, 20)),
        ("claude-fable-5-2", (800, 4_000, None, None, None)),
    ],
)
def test_the_prices_filled_on_2026_12_01(model: str, prices: tuple[int | None, ...]) -> None:
    kinds = ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
    for kind, expected in zip(kinds, prices, strict=True):
        assert TABLE.cost_micros(model, Tokens(**{kind: 100})) == expected, kind


def test_the_shipped_multipliers_and_tools() -> None:
    assert TABLE.version == "2026-12-01"
    assert TABLE.multipliers == {"inference_geo": {"us": Decimal("1.1")}, "speed": {}}
    assert TABLE.tools == {"web_search": Decimal(10), "web_fetch": Decimal(0)}


def test_every_shipped_row_names_its_source_and_date() -> None:
    for row in TABLE.models.values():
        assert row.source
        assert row.checked in {"2026-11-24", "2026-12-01"}
        assert row.base.input is not None
        assert row.base.output is not None
