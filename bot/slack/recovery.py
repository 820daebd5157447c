"""Closing the Slack messages of a reply whose process died: the text so far, and a note.

The engine adopts the orphaned turn and records it; this only fixes what people see, so
nobody is left looking at "writing…" and a Stop button that no process will ever answer.
"""

from __future__ import annotations

import logging

from bot.engine.progress import Progress
from bot.slack.relay import INTERRUPTED_NOTE
from bot.slack.scheduler import FINAL, SlackWriter
from bot.slack.text import split_markdown
from bot.slack.views import final_view
from bot.store import Orphan

log = logging.getLogger(__name__)


class SlackCloser:
    def __init__(self, writer: SlackWriter) -> None:
        self._writer = writer

    async def __call__(self, orphan: Orphan, progress: Progress) -> None:
        message_ts = [str(ts) for ts in progress.shown.get("message_ts") or []]
        if not message_ts:
            return
        thread = progress.shown.get("thread_ts")
        channel = orphan.place.channel_id
        text = orphan.text
        body = f"{text.rstrip()}\n\n{INTERRUPTED_NOTE}" if text.strip() else INTERRUPTED_NOTE
        for index, piece in enumerate(split_markdown(body)):
            view = final_view(piece)
            if index < len(message_ts):
                await self._writer.update(
                    channel=channel,
                    ts=message_ts[index],
                    text=view.text,
                    blocks=view.blocks,
                    priority=FINAL,
                )
            else:
                await self._writer.post(
                    channel=channel, thread_ts=thread, text=view.text, blocks=view.blocks
                )
