"""The probes: /livez is 200 whenever the process serves HTTP, /readyz says whether the bot
should get traffic (and why not), /healthz keeps its contract, and probe hits leave no
access-log line."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.logs import setup_logging
from bot.server import Health, web_app
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, eventually, make_settings, start_bot


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, Any]]:
    async with http.get(url) as response:
        return response.status, await response.json()


async def probes(http: aiohttp.ClientSession, base: str) -> dict[str, tuple[int, Any]]:
    return {path: await get(http, f"{base}{path}") for path in ("/livez", "/readyz", "/healthz")}


@pytest.mark.both_databases
async def test_ready_once_migrated_and_slack_accepted_the_token(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url)
    async with start_bot(settings) as bot:
        await eventually(lambda: bot.running.health.ready, what="ready")
        seen = await probes(bot.http, bot.url)

    assert seen["/livez"] == (200, {"status": "alive"})
    assert seen["/readyz"] == (200, {"status": "ready", "database": "ok", "slack": "ok"})
    assert seen["/healthz"] == (200, {"status": "ok", "database": "ok", "slack": "ok"})


async def test_ready_without_slack_for_an_http_only_bot(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(
        fake_slack,
        fake_anthropic,
        database_url,
        slack_bot_token=None,
        slack_signing_secret=None,
        chat_api_token="chat-token-0123456789",
    )
    async with start_bot(settings) as bot:
        await eventually(lambda: bot.running.health.ready, what="ready")
        status, body = await get(bot.http, f"{bot.url}/readyz")

    assert (status, body) == (200, {"status": "ready", "database": "ok", "slack": "off"})


async def test_starting_before_the_database_is_migrated() -> None:
    # The server as running_bot starts it, before migrations: alive, not ready.
    runner = web.AppRunner(web_app(Health(), http_events=True))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession() as http:
            seen = await probes(http, base)
    finally:
        await runner.cleanup()

    assert seen["/livez"] == (200, {"status": "alive"})
    assert seen["/readyz"] == (
        503,
        {"status": "not_ready", "reason": "starting", "database": "pending", "slack": "pending"},
    )
    assert seen["/healthz"][0] == 503


async def test_starting_while_slack_has_not_answered_yet(
    settings: Any, fake_slack: FakeSlack
) -> None:
    fake_slack.hang_next("auth.test", 30)
    async with start_bot(settings) as bot:
        await fake_slack.wait_for(lambda: bool(fake_slack.calls_to("auth.test")))
        await eventually(lambda: bot.running.health.accepting, what="accepting")
        seen = await probes(bot.http, bot.url)

    assert seen["/livez"] == (200, {"status": "alive"})
    assert seen["/readyz"] == (
        503,
        {"status": "not_ready", "reason": "starting", "database": "ok", "slack": "pending"},
    )


@pytest.mark.parametrize(
    ("error", "reason"),
    [("invalid_auth", "slack: invalid_auth"), ("drop", "slack: unreachable")],
    ids=["refused", "unreachable"],
)
async def test_alive_but_not_ready_while_slack_refuses_or_is_unreachable(
    settings: Any, fake_slack: FakeSlack, error: str, reason: str
) -> None:
    # "drop": every auth.test connection dies unanswered, as when Slack cannot be reached.
    fake_slack.fail_next("auth.test", error, times=1000)
    async with start_bot(settings) as bot:
        expected = reason.removeprefix("slack: ")
        await eventually(
            lambda: bot.running.health.slack == expected, timeout=20, what=f"slack {expected}"
        )
        seen = await probes(bot.http, bot.url)

    # The liveness probe stays green, so an orchestrator never restart-loops the bot.
    assert seen["/livez"] == (200, {"status": "alive"})
    assert seen["/readyz"] == (
        503,
        {"status": "not_ready", "reason": reason, "database": "ok", "slack": expected},
    )
    assert seen["/healthz"] == (503, {"status": "starting", "database": "ok", "slack": expected})


async def test_stopping_is_not_ready_but_alive_until_the_last_reply_is_done(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, shutdown_grace_seconds=10)
    fake_anthropic.enqueue(Reply(chunks=[f"w{i} " for i in range(20)], delay=0.1))
    stack = contextlib.AsyncExitStack()
    bot = await stack.enter_async_context(start_bot(settings))
    async with aiohttp.ClientSession() as http:
        try:
            await eventually(lambda: bot.running.health.ready, what="ready")
            mention = await bot.mention("go")
            await fake_anthropic.wait_for_requests(1)
        except BaseException:
            await stack.aclose()
            raise
        # Leaving the block is the shutdown path SIGTERM takes; the reply keeps it draining.
        stopping = asyncio.create_task(stack.aclose())
        await eventually(lambda: bot.running.health.stopping, what="stopping")
        seen = await probes(http, bot.url)
        still_writing = not stopping.done()
        await stopping

    assert still_writing
    assert seen["/livez"] == (200, {"status": "alive"})
    assert seen["/readyz"] == (
        503,
        {"status": "not_ready", "reason": "stopping", "database": "ok", "slack": "stopping"},
    )
    assert seen["/healthz"] == (503, {"status": "stopping", "database": "ok", "slack": "stopping"})
    [reply] = fake_slack.thread(CHANNEL, mention.ts)
    assert reply.shown.endswith("w19")  # the reply finished while the probes said "stopping"


@pytest.fixture
def access_log() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    setup_logging("INFO", "text", stream=stream)
    yield stream
    root.handlers[:], level = saved
    root.setLevel(level)


async def test_probe_hits_leave_no_access_log_line(access_log: io.StringIO, settings: Any) -> None:
    async with start_bot(settings) as bot:
        await eventually(lambda: bot.running.health.ready, what="ready")
        for _ in range(3):
            await probes(bot.http, bot.url)
        async with bot.http.get(f"{bot.url}/metrics") as response:
            assert response.status == 200
        await eventually(lambda: "GET /metrics" in access_log.getvalue(), what="access line")

    lines = [line for line in access_log.getvalue().splitlines() if "aiohttp.access" in line]
    assert any("GET /metrics" in line for line in lines)
    assert sum("GET /healthz" in line for line in lines) == 3  # /healthz is logged as before
    assert not [line for line in lines if "/livez" in line or "/readyz" in line]
