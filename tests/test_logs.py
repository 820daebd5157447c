"""Structured logs: one JSON object per line, with the request's figures and no secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.logs import REDACTED, Redactor, setup_logging
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import SIGNING_SECRET, make_settings, start_bot

CHAT_TOKEN = "chat-secret-token-000111"
# Shaped like a real bot token, but assembled here so no token-shaped string is committed.
FAKE_BOT_TOKEN = "-".join(["xoxb", "123", "abc"])


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


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
        f"{FAKE_BOT_TOKEN} xoxp-9 xapp-1-A-b sk-ant-api03-xyz Bearer abc.def "
        "my-signing-secret harmless"
    )
    r = REDACTED
    assert redact(line) == f"{r} {r} {r} {r} Bearer {r} {r} harmless"
