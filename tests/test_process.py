"""The real process: SIGTERM mid-answer exits 0 with every reply closed; SIGKILL, then a
restart, closes what the dead process left behind without calling the model again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from slack_sdk.signature import SignatureVerifier

from bot.slack.relay import INTERRUPTED_NOTE
from bot.store import Ledger, make_engine, make_sessionmaker
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, SIGNING_SECRET, TEAM_ID, free_port, make_settings, start_bot

ROOT = Path(__file__).resolve().parents[1]
SLOW = Reply(chunks=[f"w{i} " for i in range(200)], delay=0.05, input_tokens=21)


@pytest.fixture
async def bot_process(
    fake_slack: FakeSlack,
    fake_anthropic: FakeAnthropic,
    database_url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """`python -m bot` on the fakes; more settings by indirect parametrization."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_"))},
        "PYTHONPATH": str(ROOT),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake_slack.api_url,
        "ANTHROPIC_API_KEY": "sk-test",
        "ANTHROPIC_BASE_URL": fake_anthropic.base_url,
        "DATABASE_URL": database_url,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_FORMAT": "text",
        "SHUTDOWN_GRACE_SECONDS": "0.5",
        "STREAM_EDIT_INTERVAL": "0.2",
        **getattr(request, "param", {}),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        deadline = time.monotonic() + 30
        while True:
            try:
                async with http.get(f"{url}/healthz") as response:
                    if response.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, "the bot did not become healthy"
            await asyncio.sleep(0.1)
    yield process, url
    if process.returncode is None:
        process.kill()
        await process.wait()


async def mention(url: str, text: str, ts: str | None = None) -> str:
    ts = ts or f"{int(time.time())}.000100"
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": TEAM_ID,
            "event_id": f"EvProc{ts}",
            "event": {
                "type": "app_mention",
                "user": "U0USER",
                "text": f"<@U0BOT> {text}",
                "ts": ts,
                "channel": CHANNEL,
            },
        }
    )
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": SignatureVerifier(SIGNING_SECRET).generate_signature(
            timestamp=stamp, body=body
        ),
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/slack/events", data=body, headers=headers) as response,
    ):
        assert response.status == 200
    return ts


async def rows(database_url: str) -> list:  # type: ignore[type-arg]
    engine = make_engine(database_url)
    try:
        return await Ledger(make_sessionmaker(engine)).usage_rows()
    finally:
        await engine.dispose()


async def test_sigterm_mid_answer_exits_0_and_closes_the_reply(
    bot_process: tuple[asyncio.subprocess.Process, str],
    fake_slack: FakeSlack,
    fake_anthropic: FakeAnthropic,
    database_url: str,
) -> None:
    process, url = bot_process
    fake_anthropic.enqueue(SLOW)
    ts = await mention(url, "tell me a long story")
    await fake_slack.wait_for(lambda: any("w5" in t for t in fake_slack.thread_text(CHANNEL, ts)))
    process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(process.wait(), timeout=30)

    assert process.returncode == 0
    [reply] = fake_slack.thread(CHANNEL, ts)
    assert reply.shown.startswith("w0 w1 w2 w3 w4 w5")
    assert reply.shown.endswith(INTERRUPTED_NOTE)
    assert reply.buttons == []
    [row] = await rows(database_url)
    assert (row.outcome, row.error_kind, row.input_tokens) == ("partial", "interrupted", 21)


async def test_sigkill_mid_answer_then_restart_closes_the_reply(
    bot_process: tuple[asyncio.subprocess.Process, str],
    fake_slack: FakeSlack,
    fake_anthropic: FakeAnthropic,
    database_url: str,
) -> None:
    process, url = bot_process
    fake_anthropic.enqueue(SLOW)
    ts = await mention(url, "tell me a long story")
    await fake_slack.wait_for(lambda: any("w8" in t for t in fake_slack.thread_text(CHANNEL, ts)))
    await asyncio.sleep(0.3)  # a progress save after the edit that showed w8
    process.kill()
    await process.wait()
    assert await rows(database_url) == []

    # The restart knows the old process is gone (its pid is): the reply is closed at once,
    # without waiting for the heartbeat to go stale.
    settings = make_settings(fake_slack, fake_anthropic, database_url)
    started = time.monotonic()
    async with start_bot(settings) as bot:
        [row] = await bot.usage()
        assert time.monotonic() - started < 10

    [reply] = fake_slack.thread(CHANNEL, ts)
    assert reply.shown.startswith("w0 w1 w2 w3 w4 w5 w6 w7 w8")
    assert reply.shown.endswith(INTERRUPTED_NOTE)
    assert reply.buttons == []
    assert (row.outcome, row.error_kind, row.input_tokens) == ("partial", "interrupted", 21)
    assert len(fake_anthropic.message_requests) == 1  # the model was not asked again


@pytest.mark.parametrize("bot_process", [{"MAX_CONCURRENT_REQUESTS": "1"}], indirect=True)
async def test_a_question_waiting_in_line_when_its_process_dies_is_answered_in_its_place(
    bot_process: tuple[asyncio.subprocess.Process, str],
    fake_slack: FakeSlack,
    fake_anthropic: FakeAnthropic,
    database_url: str,
) -> None:
    process, url = bot_process
    fake_anthropic.enqueue(SLOW, Reply(text="Your turn came."))
    first = await mention(url, "tell me a long story")
    await fake_slack.wait_for(
        lambda: any("w2" in t for t in fake_slack.thread_text(CHANNEL, first))
    )
    second = await mention(url, "and me?", ts=f"{int(time.time())}.000200")
    await fake_slack.wait_for(lambda: "next" in " ".join(fake_slack.thread_text(CHANNEL, second)))
    await asyncio.sleep(0.3)
    process.kill()
    await process.wait()

    settings = make_settings(fake_slack, fake_anthropic, database_url)
    async with start_bot(settings) as bot:
        await bot.wait_for_usage(2, timeout=30)
        await asyncio.sleep(0.5)

    # One reply where the question waited: its answer, not a "waiting" note left behind.
    assert fake_slack.thread_text(CHANNEL, second) == ["Your turn came."]
    [reply] = fake_slack.thread(CHANNEL, second)
    assert reply.buttons == []
