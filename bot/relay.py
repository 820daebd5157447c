"""The streaming relay: shows Claude's answer in Slack by editing the reply as text arrives.

One sequential write loop per reply: the first text is written as soon as it arrives, then at
most one edit per interval; only one Slack write is ever in flight for a reply, the latest
text wins (intermediate snapshots are skipped, never queued), and a final write always
happens and holds the whole answer. A reply that outgrows one message continues in further
messages of the thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.claude import Finished, StreamEvent, TextDelta
from bot.slack_text import EMPTY_ANSWER_TEXT, WRITING_SUFFIX, escape_mrkdwn, split_message

log = logging.getLogger(__name__)

FINAL_WRITE_ATTEMPTS = 3


@dataclass
class RelayResult:
    text: str
    finished: Finished
    message_ts: list[str] = field(default_factory=list)
    slack_writes: int = 0


class Relay:
    """Relays one stream into one reply (which may grow into several messages)."""

    def __init__(
        self,
        slack: AsyncWebClient,
        *,
        channel: str,
        thread_ts: str,
        first_ts: str,
        interval: float,
    ) -> None:
        self._slack = slack
        self._channel = channel
        self._thread_ts = thread_ts
        self._interval = interval
        self._ts = [first_ts]
        self._shown: list[str | None] = [None]
        self._text = ""
        self._changed = asyncio.Event()
        self._finished: Finished | None = None
        self._writes = 0

    async def run(self, events: AsyncIterator[StreamEvent]) -> RelayResult:
        reader = asyncio.create_task(self._read(events))
        try:
            await self._write_loop(reader)
            finished = await reader
        finally:
            if not reader.done():
                reader.cancel()
        await self._write_final(finished)
        return RelayResult(self._text, finished, list(self._ts), self._writes)

    async def _read(self, events: AsyncIterator[StreamEvent]) -> Finished:
        try:
            async for event in events:
                if isinstance(event, TextDelta):
                    self._text += event.text
                    self._changed.set()
                elif isinstance(event, Finished):
                    self._finished = event
        finally:
            self._changed.set()
        if self._finished is None:  # the wrapper always ends with Finished; be defensive
            self._finished = Finished()
        return self._finished

    async def _write_loop(self, reader: asyncio.Task[Finished]) -> None:
        last_write = float("-inf")
        while True:
            await self._changed.wait()
            if reader.done():
                return
            wait = last_write + self._interval - time.monotonic()
            if wait > 0:
                # Sleep until the next slot, but wake at once when the stream ends.
                await asyncio.wait({reader}, timeout=wait)
                if reader.done():
                    return
            self._changed.clear()
            last_write = time.monotonic()
            await self._show(escape_mrkdwn(self._text), suffix=WRITING_SUFFIX, final=False)

    async def _write_final(self, finished: Finished) -> None:
        body = escape_mrkdwn(self._text).rstrip()
        if finished.error is not None:
            note = f":warning: {finished.error.user_message}"
            body = f"{body}\n\n{note}" if body else note
        elif not body:
            body = EMPTY_ANSWER_TEXT
        await self._show(body, suffix="", final=True)

    async def _show(self, body: str, *, suffix: str, final: bool) -> None:
        """Make the thread show `body`, editing changed messages and posting new ones."""
        pieces = split_message(body)
        pieces[-1] += suffix
        for index, piece in enumerate(pieces):
            if index < len(self._ts) and self._shown[index] == piece:
                continue
            attempts = FINAL_WRITE_ATTEMPTS if final else 1
            for attempt in range(1, attempts + 1):
                if await self._write_piece(index, piece):
                    break
                if attempt < attempts:
                    await asyncio.sleep(attempt)
            else:
                if index >= len(self._ts):
                    return  # cannot continue the reply; later pieces would land out of order

    async def _write_piece(self, index: int, piece: str) -> bool:
        self._writes += 1
        try:
            if index < len(self._ts):
                await self._slack.chat_update(channel=self._channel, ts=self._ts[index], text=piece)
                self._shown[index] = piece
            else:
                posted = await self._slack.chat_postMessage(
                    channel=self._channel, thread_ts=self._thread_ts, text=piece
                )
                self._ts.append(str(posted["ts"]))
                self._shown.append(piece)
        except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError):
            log.warning("slack write failed channel=%s", self._channel, exc_info=True)
            return False
        return True
