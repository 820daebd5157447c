"""The HTTP surface: signed Slack requests only, /healthz, and commands declared ahead of time."""

from __future__ import annotations

import json
import time

import aiohttp
import pytest
from aiohttp import web

from bot.app import running_bot
from bot.config import Settings
from bot.errors import ConfigError
from bot.server import Health, web_app
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.slack import FakeSlack
from tests.rig import eventually, make_settings, settle, start_bot


async def test_bad_signature_is_refused_without_a_model_call(
    settings: Settings, fake_slack: FakeSlack, fake_anthropic: FakeAnthropic
) -> None:
    async with start_bot(settings) as bot:
        forged = await bot.mention("hello", secret="not-the-secret")
        stale = await bot.mention("hello", timestamp=int(time.time()) - 600)
        await settle()
        assert await bot.usage() == []

    assert forged.delivery.status == 401
    assert stale.delivery.status == 401
    assert fake_anthropic.requests == []
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_url_verification_answers_the_challenge(settings: Settings) -> None:
    async with start_bot(settings) as bot:
        body = json.dumps({"token": "t", "challenge": "abc123", "type": "url_verification"})
        delivery = await bot.post_signed(body)

    assert delivery.status == 200
    assert json.loads(delivery.body) == {"challenge": "abc123"}


async def test_healthz_is_ready_once_slack_answers(settings: Settings) -> None:
    async with start_bot(settings) as bot:
        await eventually(lambda: bot.running.health.ready, what="health ready")
        async with bot.http.get(f"{bot.url}/healthz") as resp:
            assert resp.status == 200
            assert (await resp.json())["status"] == "ok"


async def test_a_token_slack_refuses_stops_start_up_with_a_clear_message(
    settings: Settings, fake_slack: FakeSlack
) -> None:
    fake_slack.fail_next("auth.test", "invalid_auth", times=1000)
    with pytest.raises(ConfigError, match=r"^Slack refused SLACK_BOT_TOKEN \(invalid_auth\): "):
        async with running_bot(settings):
            pass
    assert len(fake_slack.calls_to("auth.test")) == 1  # no retry can help: none is made


async def test_a_refused_app_token_stops_start_up_with_a_clear_message(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str
) -> None:
    # The fake accepts only the bot token, as Slack refuses a revoked app-level token.
    settings = make_settings(fake_slack, fake_anthropic, database_url, slack_app_token="xapp-1-bad")
    with pytest.raises(ConfigError, match=r"SLACK_APP_TOKEN was refused by Slack \(invalid_auth\)"):
        async with running_bot(settings):
            pass


async def test_slack_events_wait_with_503_until_the_bot_is_wired(
    settings: Settings, fake_slack: FakeSlack
) -> None:
    health = Health()
    app = web_app(health, http_events=True)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{port}/slack/events", data="{}") as resp:
                assert resp.status == 503  # Slack delivers it again later
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 503
                assert (await resp.json())["database"] == "pending"
    finally:
        await runner.cleanup()
