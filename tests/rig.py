"""The end-to-end rig: the real app on a free port, driven by correctly signed Slack requests.

`BotUnderTest` wraps `bot.app.running_bot` (the production wiring) with settings pointing at
the fake Slack and fake Anthropic servers, and sends Events API deliveries the way Slack does.
The messages it delivers are first stored in the fake Slack (the running one, or `use_slack`),
so `conversations.replies` returns them like Slack would; the event is built from that store.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from bot.app import RunningBot, running_bot
from bot.config import Settings, load_settings
from bot.logs import setup_logging
from bot.store.models import UsageRecord
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.slack import FakeSlack, running_fake
from tests.fakes.slack_views import find_element, view_state

SIGNING_SECRET = "test-signing-secret"
# /metrics is served on the bot's port only to requests bearing this (BotUnderTest.metrics).
METRICS_TOKEN = "test-metrics-token-0123"
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
        self._slack: FakeSlack | None = None

    def use_slack(self, fake: FakeSlack) -> None:
        """Store delivered messages in this fake (by default: the only FakeSlack running)."""
        self._slack = fake

    @property
    def slack(self) -> FakeSlack | None:
        return self._slack or running_fake()

    def _require_slack(self) -> FakeSlack:
        fake = self.slack
        if fake is None:
            raise AssertionError("no single FakeSlack is running: call bot.use_slack(fake)")
        return fake

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
        files: list[dict[str, Any]] | None = None,
        twice: bool = False,
        external: bool = False,
        **signing: Any,
    ) -> Mention:
        """Deliver an app_mention; `text` gets the bot's mention in front, as Slack sends it.

        The message is stored in the fake Slack first (a new ts from its clock unless `ts`).
        `files`: Slack file objects (FakeSlack.add_file) on the event. `twice`: also deliver,
        at the same time, the `message` event (message.channels) Slack sends for the same
        message with another event id (PLATFORM.md 0a Slack 4)."""
        full = f"<@{self.bot_user}> {text}"
        twin: dict[str, Any] | None = None
        if (fake := self.slack) is not None:
            ts = fake.add_message(channel, full, user=user, thread_ts=thread_ts, files=files, ts=ts)
            twin = fake.as_event(channel, ts)
        ts = ts or next_ts()
        event_id = event_id or f"Ev{next(_ids):08d}"
        event: dict[str, Any] = {
            "type": "app_mention",
            "user": user,
            "text": full,
            "ts": ts,
            "team": TEAM_ID,
            "channel": channel,
            "event_ts": ts,
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        if files:
            event["files"] = files
        if twin is not None and "client_msg_id" in twin:
            event["client_msg_id"] = twin["client_msg_id"]
        if twice and twin is None:
            twin = {"user": user, "text": full, "ts": ts, "channel": channel, "event_ts": ts}
            twin.update({"thread_ts": thread_ts} if thread_ts else {})
            twin.update({"subtype": "file_share", "files": files} if files else {})
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
        if external:  # a Slack Connect channel, shared with another organisation
            envelope["is_ext_shared_channel"] = True
        sending = self.post_signed(json.dumps(envelope), retry_num=retry_num, **signing)
        if twice and twin is not None:
            delivery, _ = await asyncio.gather(
                sending, self.message_event({**twin, "channel_type": "channel"})
            )
        else:
            delivery = await sending
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
        self,
        text: str,
        *,
        user: str = USER,
        channel: str = DM,
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
    ) -> str:
        """A person's new message in the bot's DM, stored in the fake Slack; returns its ts.
        With `files` the event has subtype "file_share" and `files` (text may be "")."""
        if (fake := self.slack) is not None:
            ts = fake.add_message(channel, text, user=user, thread_ts=thread_ts, files=files)
            await self.message_event(fake.as_event(channel, ts, channel_type="im"))
            return ts
        ts = next_ts()
        event: dict[str, Any] = {
            "user": user,
            "text": text,
            "ts": ts,
            "channel": channel,
            "channel_type": "im",
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        if files:
            event.update(subtype="file_share", files=files)
        await self.message_event(event)
        return ts

    async def say_in_thread(
        self,
        text: str,
        *,
        thread_ts: str,
        channel: str = CHANNEL,
        user: str = USER,
        files: list[dict[str, Any]] | None = None,
    ) -> str:
        """A person's reply in a channel thread without a mention: stored in the fake Slack and
        delivered as a message.channels `message` event (channel_type "channel"); returns ts."""
        fake = self._require_slack()
        ts = fake.add_message(channel, text, user=user, thread_ts=thread_ts, files=files)
        await self.message_event(fake.as_event(channel, ts))
        return ts

    async def bot_message(
        self,
        text: str,
        *,
        channel: str = CHANNEL,
        thread_ts: str | None = None,
        bot_id: str = "B0OTHER",
        app_id: str = "A0OTHER",
        mention: bool = False,
        user: str | None = "U0OTHERBOT",
        bot_name: str = "otherbot",
    ) -> str:
        """Another app's bot posts (subtype "bot_message", bot_id, bot_profile; `user=None`
        for a legacy bot without a user). With `mention` the text starts with the bot's mention
        and it arrives as an `app_mention` carrying bot_id/bot_profile; else as a `message`
        event (message.channels). Stored in the fake Slack; returns its ts."""
        fake = self._require_slack()
        body = f"<@{self.bot_user}> {text}" if mention else text
        ts = fake.add_message(
            channel,
            body,
            user=user,
            thread_ts=thread_ts,
            bot_id=bot_id,
            bot_name=bot_name,
            app_id=app_id,
            subtype="bot_message",
        )
        event = fake.as_event(channel, ts)
        if not mention:
            await self.message_event(event)
            return ts
        event = {k: v for k, v in event.items() if k not in ("subtype", "channel_type")}
        await self.event({**event, "type": "app_mention"})
        return ts

    async def event_in_channel(self, subtype: str, *, channel: str = CHANNEL, **fields: Any) -> str:
        """Deliver a `message` event of this subtype (message.channels); returns its event id.

        The fake Slack changes as the event says: "message_changed" needs `ts` (the message)
        and `text` (its new text; optional `user`) and carries `message`/`previous_message`;
        "message_deleted" needs `ts` and carries `deleted_ts`/`previous_message`;
        "channel_join" stores "<@user> has joined the channel" (`user`, default USER). Any
        other subtype is sent as given. Remaining `fields` are set on the event as they are."""
        fake = self._require_slack()
        event: dict[str, Any]
        if subtype == "message_changed":
            ts, text = fields.pop("ts"), fields.pop("text")
            previous, now = fake.edit_message(channel, ts, text, user=fields.pop("user", None))
            event = {"hidden": True, "message": now, "previous_message": previous}
            event["ts"] = now["edited"]["ts"]
        elif subtype == "message_deleted":
            ts = fields.pop("ts")
            event = {
                "hidden": True,
                "deleted_ts": ts,
                "previous_message": fake.delete_message(channel, ts),
            }
            event["ts"] = fake.new_ts()
        elif subtype == "channel_join":
            user = fields.pop("user", USER)
            text = f"<@{user}> has joined the channel"
            joined = fake.add_message(channel, text, user=user, subtype=subtype)
            event = fake.as_event(channel, joined)
        else:
            event = {"ts": fake.new_ts()}
        event = {"subtype": subtype, "channel": channel, "channel_type": "channel", **event}
        event.setdefault("event_ts", event["ts"])
        return await self.message_event({**event, **fields})

    async def event(self, event: dict[str, Any], *, event_id: str | None = None) -> str:
        """Deliver any Events API `event` (its own `type`) as Slack does; returns the event id."""
        event_id = event_id or f"Ev{next(_ids):08d}"
        envelope = {
            "token": "unused",
            "team_id": TEAM_ID,
            "api_app_id": "A0001",
            "event": {"team": TEAM_ID, **event},
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [
                {"team_id": TEAM_ID, "user_id": self.bot_user, "is_bot": True},
            ],
        }
        delivery = await self.post_signed(json.dumps(envelope))
        assert delivery.status == 200
        return event_id

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

    async def app_home_opened(
        self,
        user: str = USER,
        tab: str = "home",
        *,
        channel: str | None = None,
        event_id: str | None = None,
    ) -> str:
        """`user` opens the app's Home tab (or, with tab="messages", its Messages tab): an
        `app_home_opened` event. As Slack does, a Home tab already published for the user
        comes along as `view`. `channel`: the user's DM with the app (DM for USER). Returns
        the event id."""
        fake = self.slack
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user,
            "channel": channel or (DM if user == USER else f"D0{user.removeprefix('U')}"),
            "tab": tab,
            "event_ts": fake.new_ts() if fake is not None else next_ts(),
        }
        if tab == "home" and fake is not None and user in fake.home_views:
            event["view"] = fake.home_views[user]
        return await self.event(event, event_id=event_id)

    async def click_in_view(
        self,
        action_id: str,
        value: str | None = None,
        *,
        user: str = USER,
        view_id: str | None = None,
    ) -> Delivery:
        """Press a button (or another element) in a view: the user's Home tab, or the view
        `view_id` (a modal), as the fake Slack holds it now. Slack's block_actions then has
        `container: {"type": "view", "view_id"}` and the whole `view`, and no channel,
        message or response_url. The element must be in the view; `value` defaults to its
        own. The trigger id is fresh from the fake (views.open takes it for 3 s)."""
        fake = self._require_slack()
        view = fake.views.get(view_id) if view_id else fake.home_views.get(user)
        if view is None:
            raise AssertionError(f"no view {view_id or f'Home tab of {user}'} in the fake Slack")
        element, block_id = find_element(view, action_id)
        action: dict[str, Any] = {
            "type": element["type"],
            "action_id": action_id,
            "block_id": block_id,
            "action_ts": f"{time.time():.6f}",
        }
        if element.get("text") is not None:
            action["text"] = element["text"]
        if (value := value if value is not None else element.get("value")) is not None:
            action["value"] = value
        payload = {
            **self._interaction(fake, "block_actions", user),
            "container": {"type": "view", "view_id": view["id"]},
            "view": view,
            "actions": [action],
        }
        return await self._post_interaction(payload)

    async def view_submission(
        self,
        inputs: dict[str, Any] | None = None,
        *,
        user: str = USER,
        view_id: str | None = None,
        values: dict[str, Any] | None = None,
    ) -> Delivery:
        """`user` submits a modal: the last one views.open opened, or `view_id`, as the fake
        Slack holds it now, with `state.values` built from `inputs` (action_id -> text
        entered, an option's value chosen, a list of them, a user or channel id, a date: see
        `view_state`) or given whole as `values`. The Delivery's body is Bolt's answer: empty
        closes the modal; JSON carries a response_action ("errors", "update", "push",
        "clear")."""
        fake = self._require_slack()
        if view_id is None and not fake.opened_views:
            raise AssertionError("no modal was opened in the fake Slack")
        view = fake.views[view_id or fake.opened_views[-1]["id"]]
        state = values if values is not None else view_state(view, inputs or {})
        payload = {
            **self._interaction(fake, "view_submission", user),
            "view": {**view, "state": {"values": state}},
            "response_urls": [],
        }
        return await self._post_interaction(payload)

    def _interaction(self, fake: FakeSlack, kind: str, user: str) -> dict[str, Any]:
        name = user.lower()
        return {
            "type": kind,
            "team": {"id": TEAM_ID, "domain": "acme"},
            "user": {"id": user, "username": name, "name": name, "team_id": TEAM_ID},
            "api_app_id": "A0001",
            "token": "unused",
            "trigger_id": fake.new_trigger_id(),
            "enterprise": None,
            "is_enterprise_install": False,
        }

    async def _post_interaction(self, payload: dict[str, Any]) -> Delivery:
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

    async def metrics(self) -> str:
        """GET /metrics as Prometheus would, with the rig's METRICS_TOKEN."""
        headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        async with self.http.get(f"{self.url}/metrics", headers=headers) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            return await response.text()

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
        "metrics_token": METRICS_TOKEN,
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


def free_port() -> int:
    """A port nothing listens on now (for a process the test starts, or a dead address)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def captured_log(level: str = "INFO", fmt: str | None = "text") -> Iterator[io.StringIO]:
    """The bot's log lines, written to a string (`fmt` None: the root logger's handlers are
    only saved and restored, for a test that sets logging up itself)."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    if fmt is not None:
        setup_logging(level, fmt, stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:], level_before = saved
        root.setLevel(level_before)
