"""Logs: one line per event, JSON for machines or text for people with the same fields, the
request's figures and no secrets; a traceback once per distinct failure, then a count."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from bot import watches
from bot.logs import REDACTED, Redactor, formatter, setup_logging
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import SIGNING_SECRET, captured_log, make_settings, start_bot

CHAT_TOKEN = "chat-secret-token-000111"
# Shaped like a real bot token, but assembled here so no token-shaped string is committed.
FAKE_BOT_TOKEN = "-".join(["xoxb", "123", "abc"])


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    with captured_log(fmt=None) as stream:
        yield stream


async def test_a_full_run_logs_json_lines_with_figures_and_never_a_secret(
    captured: io.StringIO, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(
        fake_slack, fake_anthropic, database_url, chat_api_token=CHAT_TOKEN, log_level="DEBUG"
    )
    setup_logging("DEBUG", "json", settings.secrets, stream=captured)
    fake_anthropic.enqueue(
        Reply(text="Hello.", input_tokens=12, output_tokens=3),
        Reply(status=401),  # an authentication failure is logged in full
    )
    async with start_bot(settings) as bot:
        await bot.mention("hi")
        await bot.wait_for_usage(1)
        await bot.mention("again")
        await bot.wait_for_usage(2)
        await bot.mention("forged", secret="wrong-secret")
        headers = {"Authorization": f"Bearer {CHAT_TOKEN}"}
        async with bot.http.post(f"{bot.url}/chat", json={"message": "hi"}, headers=headers):
            pass
        await bot.wait_for_usage(3)
        logging.getLogger("test").info("leak check %s %s", CHAT_TOKEN, FAKE_BOT_TOKEN)

    text = captured.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) > 5
    for secret in (*settings.secrets, SIGNING_SECRET, CHAT_TOKEN, "xoxb-test", "sk-test"):
        assert secret not in text
    assert REDACTED in text  # the deliberate leak above was caught
    finished = [line for line in lines if line["message"] == "claude request finished"]
    assert len(finished) == 3
    first = finished[0]
    assert first["level"] == "INFO"
    assert first["surface"] == "slack"
    assert (first["team"], first["channel"], first["user"]) == ("T0001", "C0CHAN", "U0USER")
    assert first["model"] == "claude-sonnet-5-5"
    assert first["request_id"].startswith("req_")
    assert first["output_tokens"] == 3
    assert first["cost_micros"] > 0
    assert first["latency_ms"] >= first["ttft_ms"] >= 0
    assert finished[1]["outcome"] == "error"
    assert finished[1]["error"] == "authentication"
    assert finished[2]["surface"] == "api"


def test_redaction_covers_token_shapes_and_configured_secrets() -> None:
    redact = Redactor(["my-signing-secret"])
    line = (
        f"{FAKE_BOT_TOKEN} xoxp-9 xapp-fake-a sk-ant-fake-xyz Bearer abc.def "
        "my-signing-secret harmless"
    )
    r = REDACTED
    assert redact(line) == f"{r} {r} {r} {r} Bearer {r} {r} harmless"


def record(message: str = "claude request finished", **extra: Any) -> logging.LogRecord:
    made = logging.LogRecord("bot.engine.recording", logging.INFO, __file__, 1, message, (), None)
    made.__dict__.update(extra)
    return made


def test_text_and_json_lines_carry_the_same_fields() -> None:
    fields = {
        "request_id": "req_0123",
        "model": "claude-sonnet-5-5",
        "output_tokens": 3,
        "cost_micros": 4120,
        "error": None,
        "outcome": "complete",
    }
    as_json = json.loads(formatter("json", []).format(record(**fields)))
    as_text = formatter("text", []).format(record(**fields))

    assert {k: as_json[k] for k in fields} == fields
    assert as_text.endswith(
        "claude request finished request_id=req_0123 model=claude-sonnet-5-5 output_tokens=3 "
        "cost_micros=4120 error=null outcome=complete"
    )
    assert set(as_json) - set(fields) == {"asctime", "level", "logger", "message"}


@pytest.mark.parametrize(("tty", "chosen"), [(True, "text"), (False, "json")])
def test_log_format_auto_is_text_on_a_terminal_and_json_otherwise(
    captured: io.StringIO, monkeypatch: pytest.MonkeyPatch, tty: bool, chosen: str
) -> None:
    monkeypatch.setattr(captured, "isatty", lambda: tty)
    assert setup_logging("INFO", "auto", stream=captured) == chosen
    logging.getLogger("test").info("hello", extra={"n": 1})
    line = captured.getvalue().strip()
    assert line.endswith("test: hello n=1") if tty else json.loads(line)["n"] == 1


def fail(kind: type[Exception] = ConnectionError) -> None:
    try:
        raise kind("refused")
    except Exception:
        logging.getLogger("bot.slack.responder").exception("could not post channel=%s", "C1")


def test_a_traceback_once_per_distinct_failure_then_one_line_with_a_count(
    captured: io.StringIO,
) -> None:
    setup_logging("INFO", "text", stream=captured)
    for _ in range(5):
        fail()
    fail(TimeoutError)  # another failure: its own traceback
    fail()

    lines = captured.getvalue().splitlines()
    said = [line for line in lines if "could not post" in line]
    assert len(said) == 7
    assert sum(line.startswith("Traceback") for line in lines) == 2
    assert [line.split("repeat=")[-1] for line in said if "repeat=" in line] == [
        "2",
        "3",
        "4",
        "5",
        "6",
    ]
    assert 'exception="ConnectionError: refused"' in said[0]


async def test_log_lines_stay_few_over_a_minute_of_failures(
    captured: io.StringIO, settings: Any, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A minute of an unreachable Slack, shortened: its checks backed off from 10 to 50 ms
    (60 s at most for real), probes every 20 ms, a mention every 300 ms. Lines do not grow
    with the tries or the probes: one warning, one access line per mention."""
    monkeypatch.setattr(watches, "RETRY_FIRST_SECONDS", 0.01)
    monkeypatch.setattr(watches, "RETRY_MAX_SECONDS", 0.05)
    setup_logging("INFO", "json", stream=captured)
    fake_slack.fail_next("auth.test", "drop", times=10_000)
    async with start_bot(settings) as bot:
        statuses = []
        for tick in range(75):
            for path in ("/livez", "/readyz", "/healthz"):
                async with bot.http.get(f"{bot.url}{path}") as response:
                    await response.read()
            if tick % 15 == 0:
                statuses.append((await bot.mention(f"still there? {tick}")).delivery.status)
            await asyncio.sleep(0.02)
        lines = [json.loads(line) for line in captured.getvalue().splitlines()]
        lines = [line for line in lines if line["logger"] != "alembic.runtime.migration"]
        lines = [line for line in lines if "/v1/models" not in line["message"]]  # the fake's

    tries = len(fake_slack.calls_to("auth.test"))
    assert tries > 30
    assert statuses == [503] * 5
    assert [line["level"] for line in lines if line["level"] != "INFO"] == ["WARNING"]
    assert not [line for line in lines if "exc_info" in line]
    # The mentions' access lines, the warning, "Anthropic accepted" and "serving".
    assert len(lines) == 5 + 3
