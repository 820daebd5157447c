"""Closing the Slack messages of a reply whose process died: the text so far, and a note;
and answering the questions it took but never answered.

The engine adopts the orphaned turn and records it; this only fixes what people see, so
nobody is left looking at "writing…" and a Stop button that no process will ever answer.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.engine.progress import Progress
from bot.slack.questions import question_from
from bot.slack.relay import INTERRUPTED_NOTE
from bot.slack.responder import Responder
from bot.slack.scheduler import FINAL, SLACK_ERRORS, SlackWriter
from bot.slack.text import split_markdown
from bot.slack.views import ContinueTarget, final_view
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


async def answer_kept(responder: Responder, writer: SlackWriter, payload: dict[str, Any]) -> None:
    """A question a process that died took and never answered (recovery's asker): a
    mention or message, an `/ask` or a Continue click (bot.slack.questions)."""
    responder.track()
    p, command = payload, payload.get("command")
    left = p.get("placeholder")
    if isinstance(left, dict):
        # It died while the question waited in line: its "waiting" message goes, and the
        # answer comes in a message of its own, as for any question.
        try:
            await writer.delete(channel=str(left["channel"]), ts=str(left["ts"]))
        except SLACK_ERRORS:
            log.warning("could not remove a waiting question's placeholder", exc_info=True)
    if command == "ask":
        await responder.ask(
            team_id=p["team_id"],
            channel_id=p["channel_id"],
            user_id=p["user_id"],
            text=p["text"],
            claim=p["claim"],
        )
    elif command == "continue":
        target = ContinueTarget.decode(str(p["target"]))
        if target is not None:
            await responder.carry_on(target, p["team_id"], p["user_id"], p["after"], p["claim"])
    else:
        await responder.answer(question_from(payload))
