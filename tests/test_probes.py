"""The probes: /livez is 200 whenever the process serves HTTP, /readyz says whether the bot
should get traffic (and why not, in words), /healthz keeps its contract and says what is wrong,
probe hits leave no access-log line (unless at DEBUG), and /metrics needs METRICS_TOKEN on the
main port or is served on a local-only port."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.config import DEFAULT_METRICS_PORT
from bot.server import Health, web_app
from tests.fakes.anthropic import FakeAnthropic, Reply
from tests.fakes.slack import FakeSlack
from tests.rig import CHANNEL, captured_log, eventually, free_port, make_settings, start_bot


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

    states = {"database": "ok", "slack": "ok", "anthropic": "ok"}
    assert seen["/livez"] == (200, {"status": "alive"})
    assert seen["/readyz"] == (200, {"status": "ready", **states})
    assert seen["/healthz"] == (200, {"status": "ok", **states})
    assert fake_anthropic.model_lists == 1  # the key was checked once, at start-up


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

    assert (status, body) == (
        200,
        {"status": "ready", "database": "ok", "slack": "off", "anthropic": "ok"},
    )


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

    pending = {"database": "pending", "slack": "pending", "anthropic": "pending"}
    assert seen["/livez"] == (200, {"status": "alive"})
    reason = "starting: applying the database migrations"
    assert seen["/readyz"] == (503, {"status": "not_ready", "reason": reason, **pending})
    assert seen["/healthz"][0] == 503
    assert seen["/healthz"][1]["reason"].startswith(reason)


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
        {
            "status": "not_ready",
            "reason": "starting: waiting for Slack to answer auth.test",
            "database": "ok",
            "slack": "pending",
            "anthropic": "ok",
        },
    )


async def test_alive_but_not_ready_while_slack_is_unreachable(
    settings: Any, fake_slack: FakeSlack
) -> None:
    # Every auth.test connection dies unanswered, as when Slack cannot be reached.
    fake_slack.fail_next("auth.test", "drop", times=1000)
    async with start_bot(settings) as bot:
        await eventually(lambda: bot.running.health.slack == "unreachable", what="unreachable")
        seen = await probes(bot.http, bot.url)

    # The liveness probe stays green, so an orchestrator never restart-loops the bot.
    assert seen["/livez"] == (200, {"status": "alive"})
    status, ready = seen["/readyz"]
    assert (status, ready["status"], ready["slack"]) == (503, "not_ready", "unreachable")
    assert ready["reason"].startswith(f"Slack's API cannot be reached at {settings.slack_api_url}")
    status, health = seen["/healthz"]
    assert (status, health["status"], health["reason"]) == (503, "starting", ready["reason"])


async def test_healthz_says_in_words_that_anthropic_cannot_be_reached(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    settings = make_settings(fake_slack, fake_anthropic, database_url, anthropic_base_url=dead)
    async with start_bot(settings) as bot:
        await eventually(lambda: bot.running.health.ready, what="ready")
        seen = await probes(bot.http, bot.url)

    # Slack's events are still taken (and people told Claude is unavailable): ready.
    assert seen["/readyz"][0] == 200
    status, health = seen["/healthz"]
    assert (status, health["status"], health["anthropic"]) == (200, "degraded", "unreachable")
    assert health["reason"].startswith(f"Anthropic's API did not answer at {dead}")


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

    states = {"database": "ok", "slack": "stopping", "anthropic": "ok"}
    reason = "stopping: finishing the answers in flight"
    assert still_writing
    assert seen["/livez"] == (200, {"status": "alive"})
    assert seen["/readyz"] == (503, {"status": "not_ready", "reason": reason, **states})
    assert seen["/healthz"] == (503, {"status": "stopping", "reason": reason, **states})
    [reply] = fake_slack.thread(CHANNEL, mention.ts)
    assert reply.shown.endswith("w19")  # the reply finished while the probes said "stopping"


@pytest.fixture
def access_log() -> Iterator[io.StringIO]:
    with captured_log("INFO", "text") as stream:
        yield stream


async def test_probe_hits_leave_no_access_log_line(access_log: io.StringIO, settings: Any) -> None:
    token = "metrics-token-0123456789"
    async with start_bot(settings.model_copy(update={"metrics_token": token})) as bot:
        await eventually(lambda: bot.running.health.ready, what="ready")
        for _ in range(3):
            await probes(bot.http, bot.url)
        headers = {"Authorization": f"Bearer {token}"}
        async with bot.http.get(f"{bot.url}/metrics", headers=headers) as response:
            assert response.status == 200
        await eventually(lambda: "GET /metrics" in access_log.getvalue(), what="access line")

    lines = [line for line in access_log.getvalue().splitlines() if "aiohttp.access" in line]
    assert any("GET /metrics" in line for line in lines)
    assert not [line for line in lines if any(p in line for p in ("/livez", "/readyz", "/healthz"))]


async def test_probe_hits_are_logged_at_debug(settings: Any) -> None:
    with captured_log("DEBUG", "text") as stream:
        async with start_bot(settings) as bot:
            await probes(bot.http, bot.url)
            await eventually(lambda: "GET /healthz" in stream.getvalue(), what="a probe's line")


async def test_metrics_need_the_token_on_the_main_port(settings: Any) -> None:
    token = "metrics-token-0123456789"
    async with start_bot(settings.model_copy(update={"metrics_token": token})) as bot:
        statuses = []
        for headers in ({}, {"Authorization": "Bearer wrong-token"}):
            async with bot.http.get(f"{bot.url}/metrics", headers=headers) as response:
                statuses.append((response.status, response.headers.get("WWW-Authenticate")))
        async with bot.http.get(
            f"{bot.url}/metrics", headers={"Authorization": f"Bearer {token}"}
        ) as response:
            good = response.status, await response.text()

    assert statuses == [(401, "Bearer"), (401, "Bearer")]
    assert good[0] == 200
    assert "claude_requests_total" in good[1]
    assert bot.running.metrics_port is None  # no local port unless METRICS_PORT asks for one


async def test_without_a_token_metrics_are_served_on_a_local_port_only(settings: Any) -> None:
    local_only = settings.model_copy(update={"metrics_port": 0, "metrics_token": None})
    async with start_bot(local_only) as bot:
        async with bot.http.get(f"{bot.url}/metrics") as response:
            main = response.status, await response.text()
        local = bot.running.metrics_port
        assert local is not None
        async with bot.http.get(f"http://127.0.0.1:{local}/metrics") as response:
            served = response.status, await response.text()
        async with bot.http.get(f"http://127.0.0.1:{local}/healthz") as response:
            only_metrics = response.status

    assert main[0] == 404
    assert "METRICS_TOKEN" in main[1]
    assert served[0] == 200
    assert "claude_requests_total" in served[1]
    assert only_metrics == 404


async def test_a_taken_default_metrics_port_is_a_warning_not_a_failure(
    access_log: io.StringIO, settings: Any
) -> None:
    with socket.socket() as taken:
        with contextlib.suppress(OSError):  # in use already: taken all the same
            taken.bind(("127.0.0.1", DEFAULT_METRICS_PORT))
            taken.listen()
        async with start_bot(settings.model_copy(update={"metrics_token": None})) as bot:
            assert bot.running.metrics_port is None

    assert f"/metrics is not served: 127.0.0.1:{DEFAULT_METRICS_PORT} is taken" in (
        access_log.getvalue()
    )
