"""Crash safety: what a streaming reply has shown and used is saved as it goes, and a start-up
after a crash closes every reply left mid-stream: its messages keep their text plus a note,
its ledger row is written (partial, "interrupted"), and no model call is repeated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.claude import Finished, Usage
from bot.recording import Recorder
from bot.relay import INTERRUPTED_NOTE
from bot.scheduler import FINAL, SlackWriter
from bot.slack_text import split_markdown
from bot.store import Store
from bot.views import final_view

log = logging.getLogger(__name__)


@dataclass
class Progress:
    surface: str
    user: str | None
    thread: str | None
    event: str | None
    message_ts: list[str] = field(default_factory=list)
    model: str | None = None
    request_id: str | None = None
    # input, output (a lower bound until the stream ends), cache write 5m / 1h, cache read
    usage: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])
    saved_at: float = 0.0  # time.time() of the last save

    def update(self, message_ts: list[str], finished: Finished) -> None:
        u = finished.usage
        self.message_ts = message_ts
        self.model = finished.model
        self.request_id = finished.request_id
        self.usage = [
            u.input_tokens,
            u.output_tokens,
            u.cache_write_5m,
            u.cache_write_1h,
            u.cache_read,
        ]

    def to_json(self) -> dict[str, Any]:
        self.saved_at = time.time()
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Progress:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{"surface": "slack", "user": None, "thread": None, "event": None, **known})

    def finished(self) -> Finished:
        i, o, w5, w1, r = (list(self.usage) + [0] * 5)[:5]
        usage = Usage(
            input_tokens=i, output_tokens=o, cache_write_5m=w5, cache_write_1h=w1, cache_read=r
        )
        return Finished(usage=usage, model=self.model, request_id=self.request_id, cancelled=True)


async def recover(
    store: Store,
    recorder: Recorder,
    writer: SlackWriter | None,
    *,
    quiet_for: float,
    ours: Collection[int] = (),
) -> int:
    """Close the replies a dead process left streaming; returns how many.

    A reply counts as abandoned when it is not one of ours and its progress has not been
    saved for `quiet_for` seconds (another process may still be writing it: a rolling deploy).
    """
    closed = 0
    for turn_id, place, text, data in await store.unfinished_replies():
        progress = Progress.from_json(data)
        if turn_id in ours or time.time() - progress.saved_at < quiet_for:
            continue
        if place.channel_id == "api":
            progress.surface = "api"
        if writer is not None and progress.message_ts:
            await _close_messages(writer, place.channel_id, progress, text)
        usage = recorder.usage_row(progress.finished(), text=text, stopped=False, interrupted=True)
        await recorder.record(
            place,
            surface=progress.surface,
            turn_id=turn_id,
            text=text,
            user_id=progress.user,
            usage=usage,
        )
        if progress.event:
            await store.event_done(progress.event)
        closed += 1
    if closed:
        log.warning("closed %d replies left unfinished by the last run", closed)
    return closed


async def _close_messages(writer: SlackWriter, channel: str, progress: Progress, text: str) -> None:
    body = f"{text.rstrip()}\n\n{INTERRUPTED_NOTE}" if text.strip() else INTERRUPTED_NOTE
    pieces = split_markdown(body)
    for index, piece in enumerate(pieces):
        view = final_view(piece)
        try:
            if index < len(progress.message_ts):
                await writer.update(
                    channel=channel,
                    ts=progress.message_ts[index],
                    text=view.text,
                    blocks=view.blocks,
                    priority=FINAL,
                )
            else:
                await writer.post(
                    channel=channel, thread_ts=progress.thread, text=view.text, blocks=view.blocks
                )
        except Exception:
            log.exception("could not close an interrupted reply in %s", channel)
            return


async def keep_recovering(
    store: Store,
    recorder: Recorder,
    writer: SlackWriter | None,
    *,
    quiet_for: float,
    ours: Collection[int],
    every: float = 30.0,
) -> None:
    """After start-up, look again now and then: a crash of another process is noticed too."""
    while True:
        await asyncio.sleep(every)
        try:
            await recover(store, recorder, writer, quiet_for=quiet_for, ours=ours)
        except Exception:
            log.exception("recovering unfinished replies failed")
