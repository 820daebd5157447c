"""The fake Slack's messages, held as Slack holds them, and `conversations.replies` over them.

`FakeSlack` inherits `SlackMessages`. Every message, whoever wrote it (a test through
`add_message`, the rig's event helpers, or the bot through chat.postMessage), lives in
`messages[channel][ts]`: the one source of truth for conversations.replies, the events the rig
delivers and the tests' assertions. New ts values come from one `TsClock`, so they increase.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections import deque
from decimal import Decimal
from typing import Any

from .slack_store import Message, SlackError, TsClock, shown_text, ts_key

REPLIES_LIMIT = 1000  # conversations.replies: the default and the cap of `limit`
BOT_NAME = "claude"
BOT_APP_ID = "A0001"
PERSON = "U0USER"


class SlackMessages:
    messages: dict[str, dict[str, Message]]
    bot_user_id: str
    bot_id: str
    team_id: str
    _clock: TsClock
    # (per_minute, max_messages): Slack's limit on commercially distributed non-Marketplace
    # apps (PLATFORM.md 0a Slack 3); None is Tier 3, nothing enforced.
    replies_limits: tuple[int, int] | None
    _replies_window: deque[float]

    # ----- reading

    def message(self, channel: str, ts: str) -> Message:
        """The stored message (deleted ones too); KeyError when there is none."""
        return self.messages[channel][ts]

    def thread(self, channel: str, thread_ts: str, *, everyone: bool = False) -> list[Message]:
        """The bot's replies (not the parent) in ts order, without deleted ones; with
        `everyone=True` also people's and other bots' replies."""
        found = self.messages.get(channel, {}).values()
        replies = [m for m in found if m.thread_ts == thread_ts and m.ts != thread_ts]
        shown = [m for m in replies if not m.deleted and (everyone or m.user == self.bot_user_id)]
        return sorted(shown, key=lambda m: ts_key(m.ts))

    def thread_text(self, channel: str, thread_ts: str, *, everyone: bool = False) -> list[str]:
        return [m.shown for m in self.thread(channel, thread_ts, everyone=everyone)]

    # ----- writing, as people and other apps do

    def add_user_message(
        self, channel: str, text: str, user: str = PERSON, thread_ts: str | None = None
    ) -> str:
        return self.add_message(channel, text, user=user, thread_ts=thread_ts)

    def add_message(
        self,
        channel: str,
        text: str,
        *,
        user: str | None = None,
        thread_ts: str | None = None,
        files: list[dict[str, Any]] | None = None,
        bot_id: str | None = None,
        bot_name: str | None = None,
        app_id: str | None = None,
        subtype: str | None = None,
        ts: str | None = None,
    ) -> str:
        """Store a message as if posted in Slack; returns its ts (a new, larger one unless `ts`
        is given; a message already stored at `ts` is kept as it is). Without `user` and
        `bot_id` the author is U0USER; a bot's message has `bot_profile` and no `user` unless
        given. A person's message with files gets subtype "file_share"."""
        held = self.messages[channel]
        if ts is not None and ts in held:
            return ts
        if bot_id is None and user is None:
            user = PERSON
        if files and subtype is None and bot_id is None:
            subtype = "file_share"
        profile = None
        if bot_id is not None:
            profile = {
                "id": bot_id,
                "name": bot_name or bot_id.lower(),
                "app_id": app_id or f"A{bot_id[1:]}",
            }
        msg = Message(
            channel,
            ts or self._clock.next(),
            thread_ts,
            text,
            None,
            user,
            [text],
            bot_id=bot_id,
            bot_profile=profile,
            subtype=subtype,
            files=list(files) if files else None,
        )
        held[msg.ts] = msg
        return msg.ts

    def add_thread(
        self, channel: str, n: int, users: list[str] | None = None, *, text: str = "message {i}"
    ) -> tuple[str, list[str]]:
        """A parent and `n` replies, authors taken in turn from `users` (parent: users[0]);
        texts are `text.format(i=…)` with i = 0 for the parent. Returns (parent ts, reply ts)."""
        authors = users or [PERSON]
        parent = self.add_message(channel, text.format(i=0), user=authors[0])
        replies = [
            self.add_message(
                channel, text.format(i=i), user=authors[i % len(authors)], thread_ts=parent
            )
            for i in range(1, n + 1)
        ]
        return parent, replies

    def new_ts(self) -> str:
        """A fresh ts from the clock, later than every message so far (e.g. an event's ts)."""
        return self._clock.next()

    def edit_message(
        self, channel: str, ts: str, text: str, *, user: str | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A person edits a message; returns (previous, now) as Slack renders them."""
        msg = self.messages[channel][ts]
        previous = msg.to_api()
        msg.text = text
        msg.versions.append(msg.shown)
        msg.edited = {"user": user or msg.user or "", "ts": self._clock.next()}
        return previous, msg.to_api()

    def delete_message(self, channel: str, ts: str) -> dict[str, Any]:
        """Delete a message as its author would; returns it as it was."""
        msg = self.messages[channel][ts]
        msg.deleted = True
        return msg.to_api()

    def as_event(self, channel: str, ts: str, *, channel_type: str = "channel") -> dict[str, Any]:
        """The stored message as a `message` event's `event` (message.channels / message.im)."""
        msg = self.messages[channel][ts]
        event: dict[str, Any] = {
            **msg.to_api(),
            "channel": channel,
            "channel_type": channel_type,
            "event_ts": msg.ts,
            "team": self.team_id,
        }
        parent = self.messages[channel].get(msg.thread_ts or "")
        if parent is not None and parent.ts != msg.ts and parent.user:
            event["parent_user_id"] = parent.user
        if msg.user and not msg.bot_id and msg.subtype in (None, "file_share"):
            event["client_msg_id"] = client_msg_id(channel, msg.ts)
        return event

    # ----- the bot's own messages

    def _store(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None,
        user: str,
        thread_ts: str | None,
        bot_id: str | None,
    ) -> Message:
        msg = Message(
            channel,
            self._clock.next(),
            thread_ts,
            text,
            blocks,
            user,
            [shown_text(text, blocks)],
            bot_id=bot_id,
        )
        if bot_id == self.bot_id:
            msg.bot_profile = {"id": bot_id, "name": BOT_NAME, "app_id": BOT_APP_ID}
        self.messages[channel][msg.ts] = msg
        return msg

    # ----- conversations.replies

    def replies_refusal(self) -> int | None:
        """In distribution mode, the Retry-After for a call over `per_minute`; counts the call."""
        if self.replies_limits is None:
            return None
        per_minute, now = self.replies_limits[0], time.monotonic()
        while self._replies_window and self._replies_window[0] <= now - 60:
            self._replies_window.popleft()
        if len(self._replies_window) >= per_minute:
            return 60
        self._replies_window.append(now)
        return None

    def _replies(self, p: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(p.get("channel", "")), str(p.get("ts", ""))
        held = self.messages.get(channel, {})
        asked = held.get(ts)
        parent_ts = asked.thread_ts if asked is not None and asked.thread_ts else ts
        parent = held.get(parent_ts)
        replies = sorted(
            (m for m in held.values() if m.thread_ts == parent_ts and m.ts != parent_ts),
            key=lambda m: ts_key(m.ts),
        )
        replies = [m for m in replies if not m.deleted]
        thread = [parent] if parent is not None and not parent.deleted else []
        if not thread and not replies:
            raise SlackError("thread_not_found")
        rendered = [_as_parent(m, replies) for m in thread]
        for reply in replies:
            rendered.append(reply.to_api())
            if parent is not None and parent.user:
                rendered[-1]["parent_user_id"] = parent.user
        page, following = self._page([*thread, *replies], rendered, p)
        return {
            "ok": True,
            "messages": page,
            "has_more": bool(following),
            "response_metadata": {"next_cursor": following},
        }

    def _page(
        self, thread: list[Message], rendered: list[dict[str, Any]], p: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], str]:
        inclusive = str(p.get("inclusive", "")).lower() in ("1", "true")
        oldest = _ts_param(p.get("oldest"), "invalid_ts_oldest") or Decimal(0)
        latest = _ts_param(p.get("latest"), "invalid_ts_latest")
        start = _decode_cursor(p.get("cursor"))
        try:
            limit = int(p.get("limit") or REPLIES_LIMIT)
        except ValueError:
            raise SlackError("invalid_arguments") from None
        limit = min(limit if limit > 0 else REPLIES_LIMIT, REPLIES_LIMIT)
        if self.replies_limits is not None:
            limit = min(limit, self.replies_limits[1])
        chosen = []
        for msg, api in zip(thread, rendered, strict=True):
            key = ts_key(msg.ts)
            above = key >= oldest if inclusive else key > oldest
            below = latest is None or (key <= latest if inclusive else key < latest)
            if above and below and (start is None or key >= start):
                chosen.append((msg, api))
        following = _encode_cursor(chosen[limit][0].ts) if len(chosen) > limit else ""
        return [api for _, api in chosen[:limit]], following


def client_msg_id(channel: str, ts: str) -> str:
    """The id Slack's client gives a person's message; the same on every event for it."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"slack://{channel}/{ts}"))


def _as_parent(parent: Message, replies: list[Message]) -> dict[str, Any]:
    out = parent.to_api()
    if replies:
        users = list(dict.fromkeys(m.user or m.bot_id or "" for m in replies))
        out.update(
            thread_ts=parent.ts,
            reply_count=len(replies),
            reply_users=users,
            reply_users_count=len(users),
            latest_reply=replies[-1].ts,
        )
    return out


def _ts_param(value: Any, error: str) -> Decimal | None:
    if value in (None, ""):
        return None
    key = ts_key(str(value))
    if key < 0:
        raise SlackError(error)
    return key


def _encode_cursor(ts: str) -> str:
    return base64.b64encode(f"next_ts:{ts}".encode()).decode()


def _decode_cursor(cursor: Any) -> Decimal | None:
    if not cursor:
        return None
    try:
        text = base64.b64decode(str(cursor), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise SlackError("invalid_cursor") from None
    if not text.startswith("next_ts:") or ts_key(text[8:]) < 0:
        raise SlackError("invalid_cursor")
    return ts_key(text[8:])
