"""A thread's messages read from Slack, once, and kept: Claude sees what people see.

When the bot is asked in a thread, the messages the store does not have yet are read with
`conversations.replies`, from just after the newest one it holds (`oldest`) up to the
question (`latest`), and stored as context turns with their authors' names. The bot's own
messages are its stored turns already and are skipped, never duplicated. Reads are bounded:
`THREAD_HISTORY_MESSAGES` kept (the newest, and the thread's first message), at most
`READ_CAP` read. An app distributed commercially outside the Marketplace may read only 15
messages a request and one request a minute (SLACK_COMMERCIAL_DISTRIBUTION). A read that
fails never fails the answer: the caller answers from what is stored and says so.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.engine.context import estimate_tokens
from bot.slack.scheduler import SLACK_ERRORS
from bot.store import Place, Store, ThreadMessage, ts_order

log = logging.getLogger(__name__)

PAGE = 200  # Slack's advice for conversations.replies pages
READ_CAP = 1_000  # messages read at most in one catch-up (five pages)
COMMERCIAL_PAGE = 15
COMMERCIAL_INTERVAL = 60.0
NAME_SECONDS = 3600.0  # display names change rarely
# Messages that are not something a person said.
SKIPPED_SUBTYPES = frozenset(
    {
        "channel_join",
        "channel_leave",
        "group_join",
        "group_leave",
        "message_deleted",
        "message_changed",
        "tombstone",
        "channel_topic",
        "channel_purpose",
        "channel_name",
        "pinned_item",
        "unpinned_item",
        "bot_add",
        "bot_remove",
    }
)


class Read(StrEnum):
    READ = "read"  # caught up (perhaps nothing new)
    LIMITED = "limited"  # Slack's limit for this app: read later
    FAILED = "failed"  # Slack refused or was unreachable


@dataclass(frozen=True)
class Me:
    """Who the bot is in Slack, to know its own messages."""

    user_id: str | None
    bot_id: str | None

    def wrote(self, message: dict[str, Any]) -> bool:
        """Whether a Slack message (or event) is the bot's own."""
        user, bot = message.get("user"), message.get("bot_id")
        return bool((user and user == self.user_id) or (bot and bot == self.bot_id))


class ThreadHistory:
    def __init__(
        self,
        slack: AsyncWebClient,
        store: Store,
        *,
        keep: int,
        commercial: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._slack = slack
        self._store = store
        self._keep = keep
        self._commercial = commercial
        self._clock = clock
        self._last_read = float("-inf")
        self._names: dict[str, tuple[float, str]] = {}

    async def catch_up(self, place: Place, *, before: str, me: Me) -> Read:
        """Store the thread's messages after its read mark and before `before` (the question
        being answered), and move the mark. A read that fails or is put off leaves the mark,
        so those messages are read the next time."""
        if self._keep <= 0 or place.thread_ts == before:
            return Read.READ  # not in a thread: nothing before the question
        oldest = await self._store.read_mark(place.team_id, place.channel_id, place.thread_ts)
        if oldest is not None and ts_order(oldest) >= ts_order(before):
            return Read.READ  # read up to the question already
        if self._commercial:
            if self._clock() - self._last_read < COMMERCIAL_INTERVAL:
                return Read.LIMITED
            self._last_read = self._clock()
        try:
            messages, read_to = await self._read(place, oldest=oldest, latest=before, me=me)
            kept = [await self._context(m) for m in messages]
        except SLACK_ERRORS:
            where = f"{place.channel_id}/{place.thread_ts}"
            log.warning("could not read thread %s", where, exc_info=True)
            return Read.FAILED
        added = await self._store.add_context(
            place.team_id, place.channel_id, place.thread_ts, kept, read_to=read_to
        )
        log.info("read %d messages of thread %s as context", added, place.thread_ts)
        return Read.READ

    async def _read(
        self, place: Place, *, oldest: str | None, latest: str, me: Me
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The messages worth keeping, and how far the read got (the new read mark)."""
        page = COMMERCIAL_PAGE if self._commercial else min(PAGE, max(self._keep, 1))
        first: dict[str, Any] | None = None
        newest: collections.deque[dict[str, Any]] = collections.deque(maxlen=self._keep)
        cursor: str | None = None
        read = 0
        read_to = oldest
        while True:
            params: dict[str, Any] = {
                "channel": place.channel_id,
                "ts": place.thread_ts,
                "limit": page,
                "latest": latest,
            }
            if oldest:
                params["oldest"] = oldest
            if cursor:
                params["cursor"] = cursor
            response = await self._slack.conversations_replies(**params)
            for message in response.get("messages") or []:
                read += 1
                read_to = str(message.get("ts") or read_to)
                if not _worth_keeping(message, latest, me):
                    continue
                if oldest is None and str(message.get("ts")) == place.thread_ts:
                    first = message  # the thread's opening message: always kept
                else:
                    newest.append(message)
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor or self._commercial or read >= READ_CAP:
                break
        if first is not None and len(newest) == newest.maxlen:
            newest.popleft()  # room for the opening message within the bound
        if not cursor:
            read_to = _before(latest)  # all read up to the question
        return ([first] if first is not None else []) + list(newest), read_to

    async def _context(self, message: dict[str, Any]) -> ThreadMessage:
        user = message.get("user")
        profile = message.get("bot_profile") or {}
        if message.get("bot_id") or profile:
            name = f"{profile.get('name') or 'a bot'} (an app)"
            user = None
        else:
            name = await self._name(str(user)) if user else "someone"
        text = str(message.get("text") or "")
        files = [str(f.get("name") or "a file") for f in message.get("files") or []]
        if files:
            text = f"{text}\n[shared: {', '.join(files)}]".strip()
        return ThreadMessage(
            ts=str(message["ts"]),
            user_id=str(user) if user else None,
            author_name=name,
            text=text,
            tokens=estimate_tokens(text),
        )

    async def _name(self, user_id: str) -> str:
        cached = self._names.get(user_id)
        if cached is not None and self._clock() - cached[0] < NAME_SECONDS:
            return cached[1]
        try:
            response = await self._slack.users_info(user=user_id)
        except SLACK_ERRORS:
            log.warning("users.info failed for %s; the message keeps only the id", user_id)
            return user_id
        user = response.get("user") or {}
        profile = user.get("profile") or {}
        name = str(
            profile.get("display_name")
            or profile.get("real_name")
            or user.get("real_name")
            or user.get("name")
            or user_id
        )
        self._names[user_id] = (self._clock(), name)
        return name


def _worth_keeping(message: dict[str, Any], latest: str, me: Me) -> bool:
    ts = str(message.get("ts") or "")
    if not ts or ts_order(ts) >= ts_order(latest):
        return False  # the question itself (stored as the question), or newer
    if message.get("subtype") in SKIPPED_SUBTYPES:
        return False
    if me.wrote(message):
        return False  # the bot's own replies are its stored turns
    return bool(str(message.get("text") or "").strip() or message.get("files"))


def _before(ts: str) -> str:
    """The Slack ts just before `ts` (a read mark that still has `ts` itself to come)."""
    seconds, _, micros = ts.partition(".")
    try:
        value = int(seconds) * 1_000_000 + int(micros or 0) - 1
    except ValueError:
        return ts
    return f"{value // 1_000_000}.{value % 1_000_000:06d}"
