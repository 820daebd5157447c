"""A fake Slack Web API, served over real HTTP so the real `slack_sdk` clients can talk to it.

An aiohttp server on 127.0.0.1 and a random port runs in the test's own event loop. Every
request under `/api/{method}` is recorded as a `Call` *before* anything else happens, then
passes, in order: auth check, queued `hang_next` delay, queued `fail_next` failure, rate limits
(and `replies_limits`), channel checks, and the method itself, which updates the message store.
Tests then read the store (`thread_text`, `messages`, `ephemerals`, `responses`) to assert what
a user would see. Wire details (content types, 429 shape, size limits) follow PLATFORM.md A1,
A2, A4 and A7.

It holds a real Slack's content, not only the bot's (`slack_messages`): `add_message`,
`add_thread` and the rig's event helpers store people's and other bots' messages, so
`conversations.replies` pages through the whole thread like Slack (oldest first, `oldest`/
`latest`/`inclusive`, `limit` ≤ 1000, opaque cursors, `thread_not_found`). `replies_limits =
(per_minute, max_messages)` imposes the limit on commercially distributed non-Marketplace apps
(429 with Retry-After 60, `limit` capped). `thread()` is the bot's replies unless
`everyone=True`. `users.info` has a `profile` (display_name, real_name). Files (`slack_files`):
`add_file` returns a Slack file object whose private URLs need the bot token (else a 302 to a
sign-in page) and count downloads and the bytes actually written (`file_bytes_sent`).

The App Home (`slack_views`, `slack_uploads`): `views.publish` keeps each user's Home tab in
`home_views[user]`, `views.open` appends modals to `opened_views`, `views.update` changes a
view by `view_id` / `external_id` (`hash_conflict` on a stale hash); `views[id]` is every view
as it is now. Uploads go the `files_upload_v2` way (getUploadURLExternal, a POST of the bytes
to the fake, completeUploadExternal) into `uploaded_files`; `upload_error` makes them fail
("missing_scope", "not_allowed_token_type"). Image blocks in views must point at such a file
(`slack_file: {"id"}`) or at a URL, with `alt_text`. `new_trigger_id()` issues trigger ids
that expire after `trigger_ttl` seconds, as Slack's do after 3.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter, defaultdict, deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from .slack_files import FileHost
from .slack_messages import BOT_APP_ID, SlackMessages
from .slack_store import (
    Call,
    FailRule,
    Limiters,
    Message,
    SlackError,
    TsClock,
    blocks_error,
    parse_params,
    user_object,
)
from .slack_uploads import DetailedError, Uploaded, UploadHost
from .slack_views import ViewHost

__all__ = ["DEFAULT_TOKEN", "FakeSlack", "Message", "SlackError", "running_fake"]

POST_TEXT_LIMIT = 40_000  # chat.postMessage truncates beyond this (warning message_truncated)
UPDATE_TEXT_LIMIT = 4_000  # chat.update refuses beyond this (msg_too_long)
SCOPES = (
    "app_mentions:read,chat:write,im:history,channels:history,users:read,reactions:write,files:read,"
    "files:write,channels:read,groups:read"
)
DEFAULT_TOKEN = "xoxb-test"
USER_DEFAULTS: dict[str, Any] = {
    "is_admin": False,
    "is_owner": False,
    "is_primary_owner": False,
    "is_bot": False,
    "deleted": False,
    "tz": "UTC",
}
Handler = Callable[[dict[str, Any]], dict[str, Any]]
_RUNNING: list[FakeSlack] = []


def running_fake() -> FakeSlack | None:
    """The one FakeSlack serving now (the rig stores the messages it delivers there), or None
    when there is none or more than one."""
    return _RUNNING[0] if len(_RUNNING) == 1 else None


class FakeSlack(SlackMessages):
    """The fake server plus everything it saw. Use as `async with FakeSlack() as slack:`."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        team_id: str = "T0001",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
    ) -> None:
        self.token, self.team_id = token, team_id
        self.bot_user_id, self.bot_id = bot_user_id, bot_id
        self.calls: list[Call] = []  # every request, in order; see calls_to and call_counts
        self.messages: dict[str, dict[str, Message]] = defaultdict(dict)
        self.ephemerals: list[Call] = []
        self.responses: list[tuple[str, dict[str, Any]]] = []
        self.users: dict[str, dict[str, Any]] = {}
        # Slack Connect channels (shared with another organisation): conversations.info says
        # is_ext_shared; events from them carry is_ext_shared_channel (rig.mention(external=)).
        self.shared_channels: set[str] = set()
        self.missing_users: set[str] = set()
        self.channels_not_in: set[str] = set()
        self.unknown_channels: set[str] = set()
        self.ratelimited_count = 0
        self.rate_limits: dict[str, tuple[int, float]] = {}  # method -> (max calls, per seconds)
        self.post_per_channel_per_second: float | None = None  # token bucket per channel
        self.post_burst = 3.0
        # method -> (burst, per second): a workspace-wide token bucket, e.g. chat.update
        # at 50 a minute with a burst of 10 is {"chat.update": (10, 50 / 60)}.
        self.buckets: dict[str, tuple[float, float]] = {}
        self.replies_limits: tuple[int, int] | None = None  # (per_minute, max_messages)
        self._replies_window: deque[float] = deque()
        self._files = FileHost(team_id)
        self._uploads = UploadHost(self._files, bot_user_id)
        self._uploads.scopes = SCOPES.replace(",files:write", "")  # said by missing_scope
        self._views = ViewHost(team_id, BOT_APP_ID, bot_id, self._visible_files)
        self._limiters = Limiters()
        self._fails: dict[str, deque[FailRule]] = defaultdict(deque)
        self._hangs: dict[str, deque[float]] = defaultdict(deque)
        self._clock = TsClock()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._port = 0
        # Socket Mode: the app-level token, the open sockets and the acks they sent back.
        self.app_token = "xapp-1-test"
        self.sockets: list[web.WebSocketResponse] = []
        self.acks: list[str] = []
        self._methods: dict[str, Handler] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.delete": self._delete,
            "chat.postEphemeral": self._post_ephemeral,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "conversations.replies": self._replies,
            "conversations.info": self._conversation_info,
            "files.info": self._files_info,
            "assistant.threads.setStatus": _ok,
            "reactions.add": _ok,
            "reactions.remove": _ok,
            "views.publish": self._views.publish,
            "views.open": self._views.open,
            "views.update": self._views.update,
            "files.getUploadURLExternal": lambda p: self._uploads.get_upload_url(p, self._base),
            "files.completeUploadExternal": self._complete_upload,
            "apps.connections.open": lambda _p: {
                "ok": True,
                "url": f"ws://127.0.0.1:{self._port}/link",
            },
        }

    # ----- lifecycle

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{key}", self._response_url)
        app.router.add_get("/link", self._socket)
        self._files.routes(app, lambda: self.token)
        self._uploads.routes(app)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = self._runner.addresses[0][1]
        _RUNNING.append(self)

    async def close(self) -> None:
        if self in _RUNNING:
            _RUNNING.remove(self)
        self._closing.set()  # wakes hung handlers so cleanup is quick
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/api/"

    @property
    def _base(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def response_url(self, key: str) -> str:
        return f"http://127.0.0.1:{self._port}/response/{key}"

    # ----- files

    def add_file(
        self,
        name: str,
        data: bytes,
        *,
        mimetype: str,
        filetype: str | None = None,
        size: int | None = None,
    ) -> dict[str, Any]:
        """A hosted file; returns its Slack file object (`size` may lie: len(data) unless given)."""
        base = f"http://127.0.0.1:{self._port}"
        return self._files.add(base, name, data, mimetype=mimetype, filetype=filetype, size=size)

    def fail_file(self, file_id: str, status: int = 500) -> None:
        """Downloads of this file answer `status` from now on."""
        self._files.fail(file_id, status)

    @property
    def file_bytes_sent(self) -> Counter[str]:
        """file id -> body bytes written to clients before they stopped reading (all downloads)."""
        return self._files.bytes_sent

    @property
    def file_downloads(self) -> Counter[str]:
        """file id -> downloads carrying the bot token (failed ones too)."""
        return self._files.downloads

    @property
    def file_signin_redirects(self) -> Counter[str]:
        """file id -> downloads without the bot token, sent to the sign-in page."""
        return self._files.signin_redirects

    @property
    def file_send_length(self) -> bool:
        """True (default): downloads carry Content-Length; False: chunked, length unknown."""
        return self._files.send_length

    @file_send_length.setter
    def file_send_length(self, value: bool) -> None:
        self._files.send_length = value

    # ----- App Home: views and uploads

    @property
    def home_views(self) -> dict[str, dict[str, Any]]:
        """user id -> their Home tab as the last views.publish / views.update left it."""
        return self._views.home_views

    @property
    def opened_views(self) -> list[dict[str, Any]]:
        """Every modal views.open opened, as it answered (later updates: `views`)."""
        return self._views.opened_views

    @property
    def views(self) -> dict[str, dict[str, Any]]:
        """view id -> every view (Home tabs and modals) as it is now."""
        return self._views.views

    @property
    def home_tab_enabled(self) -> bool:
        """False: views.publish answers not_enabled, as for an app without a Home tab."""
        return self._views.home_tab_enabled

    @home_tab_enabled.setter
    def home_tab_enabled(self, value: bool) -> None:
        self._views.home_tab_enabled = value

    @property
    def trigger_ttl(self) -> float:
        return self._views.trigger_ttl

    @trigger_ttl.setter
    def trigger_ttl(self, value: float) -> None:
        self._views.trigger_ttl = value

    def new_trigger_id(self) -> str:
        """A trigger id for an interaction; views.open refuses it once used or too old."""
        return self._views.new_trigger_id()

    @property
    def uploaded_files(self) -> dict[str, Uploaded]:
        """file id -> each completed upload (`.data`, `.title`, `.channels`, `.obj`)."""
        return self._uploads.completed

    @property
    def upload_error(self) -> str | None:
        """When set, files.getUploadURLExternal and files.completeUploadExternal answer this
        error ("missing_scope" also names files:write as needed and drops it from the token's
        scopes; "not_allowed_token_type", …). None: uploads work."""
        return self._uploads.error

    @upload_error.setter
    def upload_error(self, value: str | None) -> None:
        self._uploads.error = value

    @property
    def scopes(self) -> str:
        """The token's scopes, as the x-oauth-scopes header says."""
        if self._uploads.error == "missing_scope":
            return SCOPES.replace(",files:write", "")
        return SCOPES

    # ----- knobs

    def fail_next(
        self,
        method: str,
        error: str = "ratelimited",
        *,
        status: int | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Fail the next `times` calls; "ratelimited" means HTTP 429 + Retry-After (default 1)."""
        if error == "ratelimited":
            status, retry_after = status or 429, 1 if retry_after is None else retry_after
        self._fails[method].append(FailRule(error, status or 200, retry_after, times))

    def hang_next(self, method: str, seconds: float, times: int = 1) -> None:
        self._hangs[method].extend([seconds] * times)

    # ----- observation

    def calls_to(self, method: str) -> list[Call]:
        """The calls of one method, in order; `.params` holds what was sent."""
        return [c for c in self.calls if c.method == method]

    @property
    def call_counts(self) -> Counter[str]:
        """method -> number of calls received (refused and failed ones too)."""
        return Counter(c.method for c in self.calls)

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,
    ) -> None:
        """Poll `predicate` every 10 ms; on timeout fail with the last calls seen."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                seen = ", ".join(f"{c.method}({c.error or 'ok'})" for c in self.calls[-15:])
                raise AssertionError(f"condition not met within {timeout}s; last calls: {seen}")
            await asyncio.sleep(0.01)

    # ----- HTTP

    async def _api(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = {}
        if request.content_type == "application/json" and request.can_read_body:
            body = await request.json()
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            body = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        params = parse_params(dict(request.query), body if isinstance(body, dict) else {})
        call = Call(request.match_info["method"], params, time.monotonic())
        self.calls.append(call)
        status, payload, headers = await self._answer(call, request.headers.get("Authorization"))
        call.status, call.error = status, None if payload.get("ok") else payload.get("error")
        if call.error == "drop" and request.transport is not None:
            # fail_next(method, "drop"): the connection dies without an answer.
            request.transport.abort()
            return web.Response(status=500)
        if status == 429:
            self.ratelimited_count += 1
        headers["x-oauth-scopes"] = self.scopes
        return web.json_response(payload, status=status, headers=headers)

    async def _answer(
        self, call: Call, auth: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        token = auth.removeprefix("Bearer ").strip() if auth else call.params.pop("token", None)
        if token != self.token and not (
            call.method == "apps.connections.open" and token == self.app_token
        ):
            return 200, {"ok": False, "error": "invalid_auth" if token else "not_authed"}, {}
        if self._hangs[call.method]:
            await _sleep_unless(self._closing.wait(), self._hangs[call.method].popleft())
        if rules := self._fails[call.method]:
            rule = rules[0]
            rule.times -= 1
            if rule.times <= 0:
                rules.popleft()
            headers = {} if rule.retry_after is None else {"Retry-After": str(rule.retry_after)}
            return rule.status, {"ok": False, "error": rule.error}, headers
        channel = call.params.get("channel") or call.params.get("channel_id")
        retry_after = self._limiters.check(
            call.method,
            channel,
            self.rate_limits,
            self.post_per_channel_per_second,
            self.post_burst,
            self.buckets,
        )
        if retry_after is None and call.method == "conversations.replies":
            retry_after = self.replies_refusal()
        if retry_after is not None:
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}
        handler = self._methods.get(call.method)
        try:
            if handler is None:
                raise SlackError("unknown_method")
            if channel in self.unknown_channels:
                raise SlackError("channel_not_found")
            if channel in self.channels_not_in:
                raise SlackError("not_in_channel")
            payload = handler(call.params)
        except DetailedError as e:
            return 200, {"ok": False, "error": e.code, **e.extra}, {}
        except SlackError as e:
            return 200, {"ok": False, "error": e.code}, {}
        except KeyError:  # a required argument is missing
            return 200, {"ok": False, "error": "invalid_arguments"}, {}
        if call.method == "chat.postEphemeral":
            self.ephemerals.append(call)
        return 200, payload, {}

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        """Socket Mode: say hello, then record the envelope ids the app acknowledges."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": 1})
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                self.acks.append(str(json.loads(message.data).get("envelope_id")))
        self.sockets.remove(ws)
        return ws

    async def push_event(self, body: dict[str, Any], *, retry_attempt: int = 0) -> str:
        """Deliver an Events API body over Socket Mode; returns its envelope id."""
        envelope_id = f"env-{len(self.acks)}-{time.monotonic_ns()}"
        envelope = {
            "envelope_id": envelope_id,
            "type": "events_api",
            "accepts_response_payload": False,
            "retry_attempt": retry_attempt,
            "retry_reason": "" if not retry_attempt else "timeout",
            "payload": body,
        }
        await self.sockets[-1].send_json(envelope)
        return envelope_id

    async def _response_url(self, request: web.Request) -> web.Response:
        self.responses.append((request.match_info["key"], await request.json()))
        return web.Response(text="ok", content_type="text/plain")

    # ----- methods

    def _auth_test(self, _: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://acme.slack.com/",
            "team": "Acme",
            "user": "claude",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _post_message(self, p: dict[str, Any]) -> dict[str, Any]:
        text = _content(p)
        if not p.get("channel"):
            raise SlackError("channel_not_found")
        if not (text or p.get("blocks") or p.get("attachments")):
            raise SlackError("no_text")
        if error := blocks_error(p.get("blocks")):
            raise SlackError(error)
        out: dict[str, Any] = {"ok": True}
        if len(text) > POST_TEXT_LIMIT:
            text = text[:POST_TEXT_LIMIT]
            out["response_metadata"] = {"warnings": ["message_truncated"]}
        thread_ts = p.get("thread_ts")
        msg = self._store(
            p["channel"], text, p.get("blocks"), self.bot_user_id, thread_ts, self.bot_id
        )
        return {**out, "channel": msg.channel, "ts": msg.ts, "message": msg.to_api()}

    def _update(self, p: dict[str, Any]) -> dict[str, Any]:
        msg = self._find(p)
        text = _content(p) if ("text" in p or "markdown_text" in p) else msg.text
        if len(text) > UPDATE_TEXT_LIMIT:
            raise SlackError("msg_too_long")
        if msg.user != self.bot_user_id:
            raise SlackError("cant_update_message")
        if error := blocks_error(p.get("blocks")):
            raise SlackError(error)
        msg.text, msg.blocks = text, p.get("blocks", msg.blocks)
        msg.versions.append(msg.shown)
        return {
            "ok": True,
            "channel": msg.channel,
            "ts": msg.ts,
            "text": text,
            "message": msg.to_api(),
        }

    def _delete(self, p: dict[str, Any]) -> dict[str, Any]:
        msg = self._find(p)
        msg.deleted = True
        return {"ok": True, "channel": msg.channel, "ts": msg.ts}

    def _post_ephemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("user"):
            raise SlackError("user_not_in_channel")
        return {"ok": True, "message_ts": self._clock.next()}

    def _conversation_info(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = str(p.get("channel") or "")
        if not channel:
            raise SlackError("channel_not_found")
        scope = "groups:read" if channel.startswith("G") else "channels:read"
        if channel[:1] in ("C", "G") and scope not in self.scopes:
            raise SlackError("missing_scope")
        shared = channel in self.shared_channels
        return {
            "ok": True,
            "channel": {
                "id": channel,
                "is_channel": channel.startswith("C"),
                "is_group": channel.startswith("G"),
                "is_im": channel.startswith("D"),
                "is_shared": shared,
                "is_ext_shared": shared,
                "is_org_shared": False,
            },
        }

    def _users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        uid = p.get("user", "")
        if not uid or uid in self.missing_users:
            raise SlackError("user_not_found")
        return {"ok": True, "user": self._user(uid)}

    def _user(self, uid: str) -> dict[str, Any]:
        fields = dict(self.users.get(uid, {}))
        if uid == self.bot_user_id:  # the bot's own user, as Slack describes a bot user
            profile = {"bot_id": self.bot_id, **fields.get("profile", {})}
            fields = {"name": "claude", "is_bot": True, **fields, "profile": profile}
        return user_object(uid, fields, USER_DEFAULTS)

    def _users_list(self, p: dict[str, Any]) -> dict[str, Any]:
        # The members set up in `users`, paginated by cursor (an index) as Slack does.
        members = [self._user(uid) for uid in sorted(self.users)]
        start = int(p.get("cursor") or 0)
        limit = int(p.get("limit") or 200)
        page = members[start : start + limit]
        following = str(start + limit) if start + limit < len(members) else ""
        return {"ok": True, "members": page, "response_metadata": {"next_cursor": following}}

    def _complete_upload(self, p: dict[str, Any]) -> dict[str, Any]:
        """files.completeUploadExternal; a file shared to channels is posted there by the bot
        (a message with `files`, the initial comment as its text)."""
        done, channels = self._uploads.complete(p, self._base)
        for channel in channels:
            text = str(p.get("initial_comment") or "")
            msg = self._store(
                channel, text, None, self.bot_user_id, p.get("thread_ts"), self.bot_id
            )
            msg.files = [u.obj for u in done]
        return {"ok": True, "files": [u.obj for u in done]}

    def _visible_files(self) -> dict[str, dict[str, Any]]:
        """The files the app may show in an image block: its uploads and hosted files."""
        return {file_id: hosted.obj for file_id, hosted in self._files.files.items()}

    def _files_info(self, p: dict[str, Any]) -> dict[str, Any]:
        hosted = self._files.files.get(str(p.get("file", "")))
        if hosted is None:
            raise SlackError("file_not_found")
        return {"ok": True, "file": hosted.obj}

    # ----- store

    def _find(self, p: dict[str, Any]) -> Message:
        msg = self.messages.get(p.get("channel", ""), {}).get(p.get("ts", ""))
        if msg is None or msg.deleted:
            raise SlackError("message_not_found")
        return msg


def _ok(_: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True}


def _content(p: dict[str, Any]) -> str:
    """The message text, refusing `markdown_text` combined with `text`/`blocks` like Slack."""
    if p.get("markdown_text") and (p.get("text") or p.get("blocks")):
        raise SlackError("markdown_text_conflict")
    return str(p.get("markdown_text") or p.get("text") or "")


async def _sleep_unless(event: Awaitable[Any], seconds: float) -> None:
    """Sleep `seconds`, returning early when `event` completes (server closing)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event, seconds)
