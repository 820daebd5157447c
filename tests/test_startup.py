"""Start-up that tells the truth: a token or key Slack or Anthropic refuses stops the bot with
one line and exit code 2, in HTTP and in Socket Mode; an unreachable Slack or Anthropic is
retried with backoff and reported once per change of state, never once per try."""

from __future__ import annotations

import asyncio
import io
import itertools
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot import watches
from bot.__main__ import serve
from bot.errors import ConfigError, StartupError
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.slack import FakeSlack
from tests.rig import SIGNING_SECRET, captured_log, eventually, free_port, make_settings, start_bot

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    with captured_log("INFO", "text") as stream:
        yield stream


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Backoff from 10 ms to 40 ms, so a test sees many tries."""
    monkeypatch.setattr(watches, "RETRY_FIRST_SECONDS", 0.01)
    monkeypatch.setattr(watches, "RETRY_MAX_SECONDS", 0.04)


async def run_bot(env: dict[str, str], cwd: Path, timeout: float = 30) -> tuple[int, list[str]]:
    """`python -m bot` until it exits by itself; its exit code and stderr lines."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "ANTHROPIC_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "bot"),
        env={**clean, "PYTHONPATH": str(ROOT), "HOST": "127.0.0.1", **env},
        cwd=cwd,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), timeout)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, err.decode().splitlines()


@pytest.mark.parametrize("mode", ["http", "socket-bot-token", "socket-app-token"])
async def test_a_token_slack_refuses_stops_the_bot_with_one_line(
    fake_slack: FakeSlack,
    fake_anthropic: FakeAnthropic,
    database_url: str,
    tmp_path: Path,
    mode: str,
) -> None:
    env = {
        "SLACK_BOT_TOKEN": "xoxb-revoked" if mode != "socket-app-token" else fake_slack.token,
        "SLACK_API_URL": fake_slack.api_url,
        "ANTHROPIC_API_KEY": fake_anthropic.api_key,
        "ANTHROPIC_BASE_URL": fake_anthropic.base_url,
        "DATABASE_URL": database_url,
        "PORT": str(free_port()),
        "METRICS_PORT": "0",
        "LOG_FORMAT": "text",
    }
    if mode == "http":
        env["SLACK_SIGNING_SECRET"] = SIGNING_SECRET
    else:
        env["SLACK_APP_TOKEN"] = fake_slack.app_token if mode == "socket-bot-token" else "xapp-1-x"
    started = time.monotonic()
    code, lines = await run_bot(env, tmp_path)

    variable = "SLACK_APP_TOKEN" if mode == "socket-app-token" else "SLACK_BOT_TOKEN"
    assert code == 2
    assert time.monotonic() - started < 20
    [said] = [line for line in lines if "invalid_auth" in line]
    assert " CRITICAL bot: " in said
    assert f"{variable} was refused by Slack" in said or f"refused {variable}" in said
    assert "api.slack.com/apps" in said
    assert not [line for line in lines if "Traceback" in line or " ERROR " in line]
    assert len(fake_slack.calls_to("auth.test")) == 1  # no retry can help: none was made


@pytest.mark.parametrize("code", ["invalid_auth", "account_inactive", "token_revoked"])
async def test_every_refusal_of_the_token_stops_start_up(
    settings: Any, fake_slack: FakeSlack, code: str
) -> None:
    fake_slack.fail_next("auth.test", code, times=10)
    with pytest.raises(ConfigError, match=rf"^Slack refused SLACK_BOT_TOKEN \({code}\): "):
        async with start_bot(settings):
            pass


async def test_a_key_anthropic_refuses_stops_start_up(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    settings = make_settings(fake_slack, fake_anthropic, database_url, anthropic_api_key="sk-bad")
    with pytest.raises(ConfigError) as caught:
        async with start_bot(settings):
            pass

    message = str(caught.value)
    assert message.startswith("Anthropic refused ANTHROPIC_API_KEY (")
    assert "console.anthropic.com" in message
    assert "sk-bad" not in message
    assert fake_anthropic.model_lists == 1
    assert fake_anthropic.message_requests == []


@pytest.mark.usefixtures("quick_retries")
async def test_an_unreachable_slack_is_retried_with_backoff_and_reported_once(
    log: io.StringIO, settings: Any, fake_slack: FakeSlack
) -> None:
    fake_slack.fail_next("auth.test", "drop", times=12)
    async with start_bot(settings) as bot:
        await eventually(lambda: bot.running.health.ready, timeout=10, what="ready")

    calls = fake_slack.calls_to("auth.test")
    gaps = [b.at - a.at for a, b in itertools.pairwise(calls)]
    text = log.getvalue()
    assert len(calls) == 13
    assert gaps[-1] >= 0.03  # backed off to the longest wait
    assert gaps[0] < gaps[-1]
    assert text.count("Slack's API cannot be reached") == 1
    assert text.count(" WARNING ") == 1
    assert text.count("connected to Slack team=Acme bot=claude") == 1
    assert "Traceback" not in text


@pytest.mark.usefixtures("quick_retries")
async def test_a_refusal_after_start_up_stops_the_bot_with_one_line(
    log: io.StringIO, settings: Any, fake_slack: FakeSlack
) -> None:
    fake_slack.fail_next("auth.test", "drop", times=200)  # past start-up's short wait
    fake_slack.fail_next("auth.test", "token_revoked", times=10)
    code = await asyncio.wait_for(serve(settings), 20)

    lines = log.getvalue().splitlines()
    [critical] = [line for line in lines if " CRITICAL " in line]
    assert code == 2
    assert "Slack refused SLACK_BOT_TOKEN (token_revoked)" in critical
    assert sum("token_revoked" in line for line in lines) == 1
    assert sum("cannot be reached" in line for line in lines) == 1


@pytest.mark.usefixtures("quick_retries")
async def test_an_unreachable_anthropic_is_retried_and_reported_once(
    log: io.StringIO, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    port = free_port()
    settings = make_settings(
        fake_slack, fake_anthropic, database_url, anthropic_base_url=f"http://127.0.0.1:{port}"
    )
    tries = 0

    async def models(_request: web.Request) -> web.Response:
        nonlocal tries
        tries += 1
        return web.json_response({"data": [], "has_more": False})

    async with start_bot(settings) as bot:
        await eventually(lambda: bot.running.health.anthropic == "unreachable", what="unreachable")
        await asyncio.sleep(0.3)  # several tries, all refused
        app = web.Application()
        app.router.add_get("/v1/models", models)
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", port).start()
            await eventually(lambda: bot.running.health.anthropic == "ok", what="Anthropic back")
        finally:
            await runner.cleanup()
        problems = dict(bot.running.health.problems)

    text = log.getvalue()
    assert tries == 1
    assert text.count("Anthropic's API did not answer") == 1
    assert text.count(" WARNING ") == 1
    assert text.count("Anthropic accepted ANTHROPIC_API_KEY") == 1
    assert problems == {}


async def test_a_database_that_cannot_be_reached_is_named_in_one_line(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    url = f"postgresql+asyncpg://bot:secret@127.0.0.1:{free_port()}/bot"
    settings = make_settings(fake_slack, fake_anthropic, f"sqlite+aiosqlite:///{tmp_path}/x.db")
    with pytest.raises(StartupError) as caught:
        async with start_bot(settings.model_copy(update={"database_url": url})):
            pass

    message = str(caught.value)
    assert message.startswith("Cannot use the database at DATABASE_URL=postgresql+asyncpg://bot:")
    assert "secret" not in message
    assert "\n" not in message


async def test_a_port_in_use_is_named_in_one_line(settings: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StartupError, match=rf"^Cannot listen on 127.0.0.1:{port} \(.*PORT"):
            async with start_bot(settings.model_copy(update={"port": port})):
                pass
