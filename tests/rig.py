"""The end-to-end rig: the real app on a free port, driven by correctly signed Slack requests.

`BotUnderTest` wraps `bot.app.running_bot` (the production wiring) with settings pointing at
the fake Slack and fake Anthropic servers, and sends Events API deliveries the way Slack does.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from bot.app import RunningBot, running_bot
from bot.config import Settings, load_settings
from bot.store.models import UsageRecord
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.slack import FakeSlack

SIGNING_SECRET = "test-signing-secret"
TEAM_ID = "T0001"
CHANNEL = "C0CHAN"
USER = "U0USER"
DM = "D0DM"

_ids = itertools.count(1)
_ts = itertools.count(1)


def next_ts() -> str:
    """A Slack-like message ts for a user's message, unique within a test run."""
    return f"1690000000.{next(_ts):06d}"


@dataclass
class Delivery:
    status: int
    body: str
    elapsed_ms: float


@dataclass
class Mention:
    event_id: str
    ts: str
    thread_ts: str
    channel: str
    delivery: Delivery


class BotUnderTest:
    def __init__(self, running: RunningBot, http: aiohttp.ClientSession, bot_user: str) -> None:
        self.running = running
        self.http = http
        self.bot_user = bot_user
        self.url = f"http://127.0.0.1:{running.port}"

    async def post_signed(
        self,
        raw: str,
        *,
        content_type: str = "application/json",
        retry_num: int | None = None,
        secret: str = SIGNING_SECRET,
        timestamp: int | None = None,
    ) -> Delivery:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": SignatureVerifier(secret).generate_signature(
                timestamp=stamp, body=raw
            ),
        }
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        started = time.perf_counter()
        async with self.http.post(f"{self.url}/slack/events", data=raw, headers=headers) as resp:
            body = await resp.text()
        return Delivery(resp.status, body, (time.perf_counter() - started) * 1000)

    async def mention(
        self,
        text: str,
        *,
        channel: str = CHANNEL,
        user: str = USER,
        thread_ts: str | None = None,
        event_id: str | None = None,
        ts: str | None = None,
        retry_num: int | None = None,
        **signing: Any,
    ) -> Mention:
        """Deliver an app_mention; `text` gets the bot's mention in front, as Slack sends it."""
        ts = ts or next_ts()
        event_id = event_id or f"Ev{next(_ids):08d}"
        event: dict[str, Any] = {
            "type": "app_mention",
            "user": user,
            "text": f"<@{self.bot_user}> {text}",
            "ts": ts,
            "team": TEAM_ID,
            "channel": channel,
            "event_ts": ts,
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        envelope = {
            "token": "unused",
            "team_id": TEAM_ID,
            "api_app_id": "A0001",
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [
                {"team_id": TEAM_ID, "user_id": self.bot_user, "is_bot": True},
            ],
        }
        delivery = await self.post_signed(json.dumps(envelope), retry_num=retry_num, **signing)
        return Mention(event_id, ts, thread_ts or ts, channel, delivery)

    async def message_event(self, event: dict[str, Any], *, event_id: str | None = None) -> str:
        """Deliver a `message` event (DMs: channel_type "im"); returns its event id."""
        event_id = event_id or f"Ev{next(_ids):08d}"
        envelope = {
            "token": "unused",
            "team_id": TEAM_ID,
            "api_app_id": "A0001",
            "event": {"type": "message", "team": TEAM_ID, **event},
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
        }
        delivery = await self.post_signed(json.dumps(envelope))
        assert delivery.status == 200
        return event_id

    async def dm(
        self, text: str, *, user: str = USER, channel: str = DM, thread_ts: str | None = None
    ) -> str:
        """A person's new message in the bot's DM; returns its ts."""
        ts = next_ts()
        event = {"user": user, "text": text, "ts": ts, "channel": channel, "channel_type": "im"}
        if thread_ts:
            event["thread_ts"] = thread_ts
        await self.message_event(event)
        return ts

    async def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str = USER,
        channel: str = CHANNEL,
        message_ts: str = "",
        thread_ts: str | None = None,
        message: dict[str, Any] | None = None,
    ) -> Delivery:
        """Press a button, as Slack's interactivity delivers it (a form field `payload`)."""
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM_ID},
            "user": {"id": user},
            "api_app_id": "A0001",
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "thread_ts": thread_ts,
            },
            "channel": {"id": channel},
            "trigger_id": f"{next(_ids)}.trigger",
            "response_url": "http://127.0.0.1:9/unused",
            "actions": [
                {"type": "button", "action_id": action_id, "block_id": "b", "value": value}
            ],
        }
        if message is not None:
            payload["message"] = message  # Slack sends the message the button is on
        return await self.post_signed(
            urlencode({"payload": json.dumps(payload)}),
            content_type="application/x-www-form-urlencoded",
        )

    async def command(self, command: str, text: str = "", **fields: str) -> Delivery:
        form = {
            "token": "unused",
            "team_id": TEAM_ID,
            "channel_id": CHANNEL,
            "user_id": USER,
            "command": command,
            "text": text,
            "response_url": "http://127.0.0.1:9/unused",
            "trigger_id": f"{next(_ids)}.trigger",
            **fields,
        }
        return await self.post_signed(
            urlencode(form), content_type="application/x-www-form-urlencoded"
        )

    async def usage(self) -> list[UsageRecord]:
        return await self.running.ledger.usage_rows()

    async def wait_for_usage(self, count: int, timeout: float = 10.0) -> list[UsageRecord]:
        """Wait until `count` Claude requests are in the ledger (a reply is finished then)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = await self.usage()
            if len(rows) >= count:
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} ledger rows, have {len(rows)}")
            await asyncio.sleep(0.02)


async def eventually(check: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.01)


async def settle(seconds: float = 0.3) -> None:
    """Give a wrongly started background reply time to show itself (negative checks)."""
    await asyncio.sleep(seconds)


@contextlib.asynccontextmanager
async def start_bot(settings: Settings, bot_user: str = "U0BOT") -> AsyncIterator[BotUnderTest]:
    async with running_bot(settings) as running, aiohttp.ClientSession() as http:
        yield BotUnderTest(running, http, bot_user)


def make_settings(
    fake_slack: FakeSlack, fake_anthropic: FakeAnthropic, database_url: str, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": "xoxb-test",
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": fake_slack.api_url,
        "anthropic_api_key": "sk-test",
        "anthropic_base_url": fake_anthropic.base_url,
        "anthropic_max_retries": 2,
        "database_url": database_url,
        "host": "127.0.0.1",
        "port": 0,
        "stream_edit_interval": 0.2,
        # Tests ask many questions quickly as one user; the limits have tests of their own.
        "user_requests_per_minute": 1000,
        "user_max_concurrent_requests": 100,
        "max_concurrent_requests": 100,
        "_env_file": None,
    }
    values.update(overrides)
    return load_settings(**values)


def text_of(content: Any) -> str:
    """A message's text, whether sent as a string or as content blocks (cache marks)."""
    if isinstance(content, str):
        return content
    return "".join(str(block.get("text", "")) for block in content)


def conversation(body: dict[str, Any]) -> list[dict[str, str]]:
    """The messages of a request as role and plain text, cache marks set aside."""
    return [{"role": m["role"], "content": text_of(m["content"])} for m in body["messages"]]
