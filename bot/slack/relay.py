"""The streaming relay: shows Claude's answer in Slack by editing the reply as text arrives.

One sequential write loop per reply: the first text is written as soon as it arrives, then at
most one round of writes per interval; only one Slack write is ever in flight for a reply, the
latest text wins (intermediate snapshots are skipped, never queued), and a final write always
happens and holds the whole answer.

A reply is a run of messages, one per Markdown piece of at most 12,000 characters (Slack's
markdown block limit), cut at a paragraph or sentence and never inside a code fence. A piece
is final once the text has moved past it, so it gets its final Markdown at once; only the
last message is interim (mrkdwn with the Stop button). Pieces never change once cut, so no
message is ever deleted or rewritten in a different layout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.engine import Ended, Text, Turn
from bot.engine.kinds import more_room
from bot.slack.scheduler import FINAL, FIRST, INTERIM, SLACK_ERRORS, SlackWriter
from bot.slack.text import EMPTY_ANSWER_TEXT, split_markdown
from bot.slack.views import (
    ContinueTarget,
    View,
    continue_button,
    final_view,
    interim_view,
    with_activity,
    with_sources,
)

log = logging.getLogger(__name__)


FINAL_WRITE_ATTEMPTS = 3
# Answers that ended on purpose but not by finishing get the engine's plain note, marked.
STOP_MARKS = {"max_tokens": "✂️ ", "model_context_window_exceeded": "✂️ ", "refusal": "🚫 "}


@dataclass
class RelayResult:
    ended: Ended
    message_ts: list[str] = field(default_factory=list)


INTERRUPTED_NOTE = (
    "⚠️ This answer was cut short because the bot restarted. Please ask again for the rest."
)


class Relay:
    """Relays one answer stream into one reply (which may grow into several messages)."""

    def __init__(
        self,
        writer: SlackWriter,
        *,
        channel: str,
        thread_ts: str | None,
        first_ts: str,
        interval: float,
        stop_key: str | None = None,
        continue_target: ContinueTarget | None = None,
        on_slack_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self._writer = writer
        self._channel = channel
        self._thread_ts = thread_ts  # None: continuation messages go to the channel itself
        self._interval = interval
        self._stop_key = stop_key
        self._continue = continue_target
        self._on_slack_error = on_slack_error
        self._turn: Turn | None = None
        self._ended: Ended | None = None
        self._controls: list[dict[str, Any]] = []
        self._ts = [first_ts]
        self._shown: list[View | None] = [None]
        self._final: list[bool] = [False]
        self._text = ""
        self._changed = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._show_task: asyncio.Task[None] | None = None
        self._posting = False

    async def run(self, turn: Turn) -> RelayResult:
        """Relay the turn's answer; always ends with a final write, even when cancelled
        (shutdown): then the turn is interrupted, and the text so far stays, with a note."""
        self._turn = turn
        self._reader = asyncio.create_task(self._read(turn))
        self._writer.stream_started()
        try:
            await self._write_loop(self._reader)
            await self._reader
        except asyncio.CancelledError:
            self._reader.cancel()
            await self._drop_interim()
            self._ended = await asyncio.shield(turn.interrupt("interrupted"))
        except Exception:
            # Whatever broke the loop, the answer goes on; the final write shows all of it.
            log.exception("the relay loop failed channel=%s", self._channel)
            await self._drop_interim()
            with contextlib.suppress(Exception):
                await self._reader
        finally:
            self._reader.cancel()
            self._writer.stream_ended()
        ended = self._ended or await asyncio.shield(turn.interrupt("interrupted"))
        assert ended is not None
        if ended.stop_reason == "max_tokens" and self._continue is not None:
            target = self._continue
            if ended.thought_out:  # the same again would run out the same way
                target = replace(target, kind=more_room(target.kind))
            self._controls = [continue_button(target)]
        await self._show(self._final_body(ended), final=True)
        return RelayResult(ended, list(self._ts))

    async def _read(self, turn: Turn) -> None:
        try:
            async for event in turn.events():
                if isinstance(event, Text):
                    self._text = with_activity(event.text, event.activity)
                else:
                    self._ended = event
                    self._text = event.text
                self._changed.set()
        finally:
            self._changed.set()

    async def _write_loop(self, reader: asyncio.Task[None]) -> None:
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
            show = self._show_task = asyncio.create_task(self._show(self._text, final=False))
            await asyncio.wait({show, reader}, return_when=asyncio.FIRST_COMPLETED)
            if not show.done():
                # The answer ended while an interim edit waited for Slack's budget: drop it,
                # the final write takes its place (and its turn).
                await self._drop_interim()
                return
            if self._turn is not None:
                # What people now see is saved, for the restart after a crash.
                await self._turn.show(message_ts=list(self._ts))

    async def _drop_interim(self) -> None:
        """Stop waiting for an interim write; but a new message being posted is let finish,
        so that its ts is known and no orphan message (or a second copy) is left behind."""
        show = self._show_task
        if show is None or show.done():
            return
        if not self._posting:
            show.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.shield(show) if self._posting else await show

    def _final_body(self, ended: Ended) -> str:
        body = with_sources(ended.text.rstrip(), ended.sources)
        if ended.interrupted or ended.cancelled:
            note = INTERRUPTED_NOTE
        elif ended.stopped_by is not None:
            note = f"⏹️ Stopped by <@{ended.stopped_by}>."
        elif ended.error is not None:
            note = f"⚠️ {ended.error.user_message}"
        elif ended.stop_note is not None:
            note = STOP_MARKS.get(ended.stop_reason or "", "") + ended.stop_note
            if self._continue is not None and ended.stop_reason == "max_tokens":
                note += " Press Continue for more."
        elif not body:
            return EMPTY_ANSWER_TEXT
        else:
            return body
        return f"{body}\n\n{note}" if body else note

    async def _show(self, body: str, *, final: bool) -> None:
        """Make the reply show `body`: final pieces get Markdown, the last one may be interim."""
        pieces = split_markdown(body)
        for index, piece in enumerate(pieces):
            done = final or index < len(pieces) - 1
            if index < len(self._final) and self._final[index]:
                continue
            last = index == len(pieces) - 1
            if done:
                view = final_view(piece, controls=self._controls if last else None)
            else:
                view = interim_view(piece, self._stop_key)
            if index < len(self._shown) and self._shown[index] == view:
                continue
            attempts = FINAL_WRITE_ATTEMPTS if done else 1
            for attempt in range(1, attempts + 1):
                written = await self._write(index, view, final=done)
                if written is not False:
                    break
                if attempt < attempts:
                    await asyncio.sleep(attempt)
            if written is not True and index >= len(self._ts):
                return  # cannot continue the reply; later pieces would land out of order
        if final:
            await self._remove_surplus(len(pieces))

    def _failed(self, index: int, error: BaseException) -> None:
        method = "chat.update" if index < len(self._ts) else "chat.postMessage"
        log.warning("slack %s failed channel=%s", method, self._channel, exc_info=error)
        if self._on_slack_error is not None:
            self._on_slack_error(method, error)

    async def _remove_surplus(self, needed: int) -> None:
        # The final text can need fewer messages than an interim one did (trailing space
        # that was cut into a piece of its own): leave no stray "writing" message behind.
        while len(self._ts) > needed:
            ts = self._ts.pop()
            self._shown.pop()
            self._final.pop()
            try:
                await self._writer.delete(channel=self._channel, ts=ts)
            except SLACK_ERRORS:
                log.warning("could not delete a surplus message ts=%s", ts, exc_info=True)

    async def _write(self, index: int, view: View, *, final: bool) -> bool | None:
        """True when written; False when worth retrying; None when it never will be."""
        # Final writes go first, then a message's first text, then interim edits.
        if final:
            priority = FINAL
        elif index >= len(self._ts) or self._shown[index] is None:
            priority = FIRST
        else:
            priority = INTERIM
        try:
            if index < len(self._ts):
                sent = [view]

                def render() -> dict[str, Any]:
                    # An interim edit shows the text as it is when Slack's budget lets it go.
                    if not final:
                        pieces = split_markdown(self._text)
                        if index == len(pieces) - 1:
                            sent[0] = interim_view(pieces[index], self._stop_key)
                    return {"text": sent[0].text, "blocks": sent[0].blocks}

                await self._writer.update(
                    channel=self._channel, ts=self._ts[index], priority=priority, render=render
                )
                view = sent[0]
            else:
                self._posting = True
                try:
                    posted = await self._writer.post(
                        channel=self._channel,
                        thread_ts=self._thread_ts,
                        text=view.text,
                        blocks=view.blocks,
                        priority=priority,
                    )
                finally:
                    self._posting = False
                self._ts.append(str(posted["ts"]))
                self._shown.append(None)
                self._final.append(False)
                if self._turn is not None:
                    await self._turn.show(message_ts=list(self._ts))
        except SlackApiError as error:
            self._failed(index, error)
            status = error.response.status_code
            return False if status == 429 or status >= 500 else None
        except SLACK_ERRORS as error:
            self._failed(index, error)
            return False
        self._shown[index] = view
        self._final[index] = final
        return True
