"""A question that waits its turn in the fair queue, as Slack shows it: the placeholder says
how many questions are ahead and is edited as the line moves (the cheapest edits: the
write scheduler sends them only when no reply's text waits for the budget, and only the
latest place of each). When its turn comes it reads "Thinking…" until the first words."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bot.engine import Turn, Waited
from bot.engine.limits import queue_timed_out
from bot.slack.scheduler import FINAL, INTERIM, QUEUED, SLACK_ERRORS, SlackWriter
from bot.slack.stops import ActiveReplies
from bot.slack.views import View, queued_view, working_view
from bot.store import Store

log = logging.getLogger(__name__)


class Placeholder:
    def __init__(self, writer: SlackWriter, channel: str, ts: str, stop_key: str) -> None:
        self._writer = writer
        self._channel = channel
        self._ts = ts
        self._stop_key = stop_key
        self._edits: set[asyncio.Task[None]] = set()

    async def wait_in_line(self, turn: Turn, replies: ActiveReplies, store: Store) -> bool:
        """True when the question may start; otherwise the placeholder says why not."""
        replies.add(self._stop_key, turn, turn.ask.user_id)  # a Stop may end the wait
        try:
            await self._note(turn.ask.claim, store)
            waited = await turn.wait_for_slot(self._moved)
        finally:
            replies.remove(self._stop_key)
        if waited is Waited.READY:
            self._edit(working_view(self._stop_key), INTERIM)
            return True
        if waited is Waited.STOPPED:
            note = f"⏹️ Stopped by <@{turn.stopped_by}> before it started."
        else:
            note = f"⚠️ {queue_timed_out(turn.queue_wait)}"
        await self._write(View(text=note, blocks=[_section(note)]), FINAL)
        return False

    async def _note(self, claim: str | None, store: Store) -> None:
        # Should this process die while the question waits, whoever answers it instead
        # removes this message (bot.slack.recovery).
        if claim is None:
            return
        try:
            await store.note_placeholder(claim, self._channel, self._ts)
        except Exception:
            log.warning("could not note a waiting question's placeholder", exc_info=True)

    def _moved(self, ahead: int) -> None:
        self._edit(queued_view(self._stop_key, ahead), QUEUED)

    def _edit(self, view: View, priority: int) -> None:
        # Not awaited: the line moves on while the edit waits for Slack's budget.
        task = asyncio.create_task(self._write(view, priority))
        self._edits.add(task)
        task.add_done_callback(self._edits.discard)

    async def _write(self, view: View, priority: int) -> None:
        try:
            await self._writer.update(
                channel=self._channel,
                ts=self._ts,
                priority=priority,
                text=view.text,
                blocks=view.blocks,
            )
        except SLACK_ERRORS:
            log.warning("could not edit a waiting question's placeholder", exc_info=True)


def _section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}
