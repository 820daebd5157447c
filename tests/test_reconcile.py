"""`python -m bot usage reconcile`: the ledger beside Anthropic's cost report, end to end.

The ledger is a real migrated database; the cost report comes from the fake Anthropic over a
real socket, through the SDK. `main` runs in a worker thread (it calls `asyncio.run`) while
the fake keeps serving in the test's loop.
"""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import date, timedelta
from typing import Any

import pytest

from bot.__main__ import main
from bot.config import load_settings
from bot.cost.reconcile import LedgerCost, Line
from bot.store import Ledger, Outcome, Place, UsageRow, make_engine, make_sessionmaker
from bot.store.migrate import upgrade
from bot.store.models import utcnow
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.anthropic_admin import COST_REPORT_PATH, CostItem
from tests.rig import CHANNEL, TEAM_ID, USER

ADMIN_KEY = "sk-ant-admin-test"
SONNET, OPUS, HAIKU = "claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-5-5"


def today() -> date:
    return utcnow().date()


def ago(days: int) -> date:
    return today() - timedelta(days=days)


async def seed(database_url: str, *rows: tuple[int, str, int | None]) -> None:
    """Ledger rows (days ago, resolved model, cost in µ$ or None for unpriced)."""
    await asyncio.to_thread(upgrade, database_url)
    engine = make_engine(database_url)
    try:
        ledger = Ledger(make_sessionmaker(engine))
        for days_ago, model, micros in rows:
            usage = UsageRow(
                requested_model=SONNET,
                resolved_model=model,
                input_tokens=10,
                output_tokens=10,
                cache_write_5m_tokens=0,
                cache_write_1h_tokens=0,
                cache_read_tokens=0,
                stop_reason="end_turn",
                request_id=None,
                ttft_ms=1,
                latency_ms=1,
                outcome=Outcome.COMPLETE,
                error_kind=None,
                cost_micros=micros,
            )
            await ledger.finish_reply(
                Place(TEAM_ID, CHANNEL, "1.0"),
                turn_id=None,
                text="",
                user_id=USER,
                usage=usage,
                now=utcnow() - timedelta(days=days_ago),
            )
    finally:
        await engine.dispose()


@pytest.fixture
def cli_env(
    monkeypatch: pytest.MonkeyPatch, fake_anthropic: FakeAnthropic, database_url: str
) -> FakeAnthropic:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ANTHROPIC_ADMIN_API_KEY", ADMIN_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic.base_url)
    return fake_anthropic


async def reconcile(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, ["usage", "reconcile", *args])
    out, err = capsys.readouterr()
    return code, out, err


def row_of(table: str, day: date, model: str) -> list[str]:
    """The cells of one table row: day, model, then the money columns."""
    for line in table.splitlines():
        if line.startswith(f"{day.isoformat()}  {model} "):
            return line.split()
    raise AssertionError(f"no row for {day} {model} in:\n{table}")


def report_requests(fake: FakeAnthropic) -> list[Any]:
    return [r for r in fake.requests if r.path == COST_REPORT_PATH]


async def test_agreement_per_day_and_model_with_ids_canonicalised(
    cli_env: FakeAnthropic, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(
        database_url,
        (1, SONNET, 10_000),
        (1, "claude-sonnet-5-5-20260928", 2_345),  # a dated id meets its alias
        (1, HAIKU, 500),
        (0, OPUS, 250_000),
    )
    cli_env.costs = [
        # Anthropic splits a model's cost by token type; the report sums it back per model.
        CostItem(ago(1), SONNET, "0.2345", token_type="input_tokens"),
        CostItem(ago(1), SONNET, "1.0000", token_type="output_tokens"),
        CostItem(ago(1), HAIKU, "0.05"),
        CostItem(ago(0), OPUS, "25.0"),
    ]

    code, out, err = await reconcile(capsys, "--since", "7d")

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("Ledger vs Anthropic's cost report, the last 7 days")
    assert lines[2].split() == ["DAY", "MODEL", "LEDGER", "ANTHROPIC", "DIFFERENCE", "DIFF", "%"]
    days = [line.split()[0] for line in lines[3:6]]
    assert days == [ago(1).isoformat(), ago(1).isoformat(), ago(0).isoformat()]
    assert row_of(out, ago(1), SONNET)[2:] == ["$0.0123", "$0.0123", "$0.00", "+0.0", "%"]
    assert row_of(out, ago(1), HAIKU)[2:4] == ["$0.0005", "$0.0005"]
    assert row_of(out, ago(0), OPUS)[2:4] == ["$0.2500", "$0.2500"]
    total = next(line for line in lines if line.startswith("TOTAL"))
    assert total.split()[1:4] == ["$0.2628", "$0.2628", "$0.00"]
    assert "They agree: every day and model is within ±1 % or ±$0.01." in out
    assert "lag by hours" in out
    assert "excludes Priority Tier costs" in out

    [request] = report_requests(cli_env)
    assert request.method == "GET"
    assert request.headers["x-api-key"] == ADMIN_KEY
    assert request.query == {
        "starting_at": [f"{ago(6).isoformat()}T00:00:00Z"],
        "ending_at": [f"{(today() + timedelta(days=1)).isoformat()}T00:00:00Z"],
        "bucket_width": ["1d"],
        "group_by[]": ["description"],
        "limit": ["31"],
    }


async def test_a_difference_beyond_the_tolerance_is_named(
    cli_env: FakeAnthropic, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(database_url, (2, SONNET, 1_000_000), (1, SONNET, 1_000_000))
    cli_env.costs = [
        CostItem(ago(2), SONNET, "100.5"),  # $1.005: 0.5 %, within ±1 %
        CostItem(ago(1), SONNET, "105"),  # $1.05: 5 % more than the ledger
    ]

    code, out, _ = await reconcile(capsys)

    assert code == 0
    assert row_of(out, ago(2), SONNET)[2:] == ["$1.00", "$1.01", "+$0.0050", "+0.5", "%"]
    assert row_of(out, ago(1), SONNET)[2:] == ["$1.00", "$1.05", "+$0.0500", "+4.8", "%"]
    assert f"They differ: 1 of 2 rows are beyond ±1 % or ±$0.01 ({ago(1)} {SONNET})." in out


async def test_a_model_on_one_side_only_shows_a_dash_on_the_other(
    cli_env: FakeAnthropic, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(database_url, (1, SONNET, 40_000), (1, HAIKU, 30_000), (1, "claude-new-1", None))
    cli_env.costs = [
        CostItem(ago(1), SONNET, "4"),
        CostItem(ago(1), OPUS, "7.5"),  # another app of the organization, say
    ]

    code, out, _ = await reconcile(capsys)

    assert code == 0
    assert row_of(out, ago(1), HAIKU)[2:] == ["$0.0300", "—", "-$0.0300", "—"]
    assert row_of(out, ago(1), OPUS)[2:] == ["—", "$0.0750", "+$0.0750", "+100.0", "%"]
    unpriced = ["$0.00", "+", "1", "unpriced", "—", "$0.00", "—"]
    assert row_of(out, ago(1), "claude-new-1")[2:] == unpriced
    assert "They differ: 2 of 4 rows" in out
    assert "1 of the ledger's requests had no price" in out

    code, out, _ = await reconcile(capsys, "--format", "json")
    rows = {row["model"]: row for row in json.loads(out)["rows"]}
    assert rows[HAIKU]["anthropic_micros"] is None
    assert rows[HAIKU]["difference_micros"] == -30_000
    assert rows[OPUS]["ledger_micros"] is None
    assert rows[OPUS]["anthropic_micros"] == 75_000
    assert rows["claude-new-1"]["ledger_unpriced_requests"] == 1


async def test_more_than_31_days_follows_the_next_page(
    cli_env: FakeAnthropic, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(database_url, (39, SONNET, 12_000), (5, SONNET, 34_000), (0, HAIKU, 56_000))
    cli_env.costs = [
        CostItem(ago(39), SONNET, "1.2"),
        CostItem(ago(5), SONNET, "3.4"),
        CostItem(ago(0), HAIKU, "5.6"),
    ]

    code, out, _ = await reconcile(capsys, "--since", "40d", "--format", "json")

    assert code == 0
    report = json.loads(out)
    assert report["period"] == {"first_day": ago(39).isoformat(), "last_day": today().isoformat()}
    assert [(r["day"], r["model"]) for r in report["rows"]] == [
        (ago(39).isoformat(), SONNET),
        (ago(5).isoformat(), SONNET),
        (today().isoformat(), HAIKU),
    ]
    assert [r["anthropic_micros"] for r in report["rows"]] == [12_000, 34_000, 56_000]
    assert report["agree"] is True
    first, second = report_requests(cli_env)
    assert "page" not in first.query
    assert second.query["page"] and second.query["starting_at"] == first.query["starting_at"]


async def test_json_carries_exact_micro_dollars(
    cli_env: FakeAnthropic, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(database_url, (3, SONNET, 30_002), (3, OPUS, 7))
    cli_env.costs = [
        # Each line is rounded once, half up: 10,000.5 → 10,001 and 20,000.5 → 20,001 µ$.
        CostItem(ago(3), SONNET, "1.00005", token_type="output_tokens"),
        CostItem(ago(3), SONNET, "2.00005", token_type="input_tokens"),
        CostItem(ago(3), OPUS, "0.00004"),  # 0.4 µ$ → 0
    ]

    code, out, err = await reconcile(capsys, "--format", "json")

    assert (code, err) == (0, "")
    report = json.loads(out)
    assert report["rows"] == [
        {
            "day": ago(3).isoformat(),
            "model": OPUS,
            "ledger_micros": 7,
            "ledger_unpriced_requests": 0,
            "anthropic_micros": 0,
            "difference_micros": -7,
            "agrees": True,
        },
        {
            "day": ago(3).isoformat(),
            "model": SONNET,
            "ledger_micros": 30_002,
            "ledger_unpriced_requests": 0,
            "anthropic_micros": 30_002,
            "difference_micros": 0,
            "agrees": True,
        },
    ]
    assert report["total"]["ledger_micros"] == 30_009
    assert report["total"]["anthropic_micros"] == 30_002
    assert report["tolerance"] == {"micros": 10_000, "percent": 1}


async def test_no_costs_on_either_side(
    cli_env: FakeAnthropic, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    await seed(database_url)
    code, out, _ = await reconcile(capsys, "--since", "today")
    assert code == 0
    assert "No costs on either side in this period." in out


async def test_a_wrong_admin_key_is_one_line_and_exit_1(
    cli_env: FakeAnthropic,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await seed(database_url, (0, SONNET, 1))
    monkeypatch.setenv("ANTHROPIC_ADMIN_API_KEY", "sk-ant-admin-wrong")

    code, out, err = await reconcile(capsys)

    assert (code, out) == (1, "")
    assert err == "Anthropic refused the admin key (401): check ANTHROPIC_ADMIN_API_KEY\n"


async def test_an_unreachable_anthropic_is_one_line_and_exit_1(
    cli_env: FakeAnthropic,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await seed(database_url)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{port}")

    code, out, err = await reconcile(capsys)

    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith(f"Could not reach Anthropic at http://127.0.0.1:{port}")


async def test_without_an_admin_key_it_says_which_setting_and_exits_2(
    cli_env: FakeAnthropic,
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_ADMIN_API_KEY")

    code, out, err = await reconcile(capsys)

    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert err.startswith("ANTHROPIC_ADMIN_API_KEY is not set: ")
    assert "Admin Keys" in err
    assert report_requests(cli_env) == []


@pytest.mark.parametrize("option", [["--by", "day"], ["--team", "T1"], ["--format", "csv"]])
def test_reconcile_refuses_options_of_the_plain_report(
    option: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["usage", "reconcile", *option])
    assert exited.value.code == 2
    assert f"reconcile does not take {option[0]}" in capsys.readouterr().err


def test_the_tolerance_is_one_percent_or_one_cent() -> None:
    def agrees(ledger: int, anthropic: int) -> bool:
        return Line("2026-11-24", SONNET, LedgerCost(ledger), anthropic).agrees

    assert agrees(0, 10_000)  # a cent off is within ±$0.01
    assert not agrees(0, 10_001)
    assert agrees(9_900_000, 10_000_000)  # $0.10 off $10: 1 %
    assert not agrees(9_899_999, 10_000_000)


def test_the_admin_key_is_a_secret() -> None:
    settings = load_settings(
        _env_file=None,
        chat_api_token="c" * 16,
        anthropic_api_key="sk-ant-fake-key",
        anthropic_admin_api_key="sk-ant-admin-fake-secret",
    )
    assert "sk-ant-admin-fake-secret" in settings.secrets
