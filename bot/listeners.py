"""Thin Slack listeners: parse, filter, hand off. No Claude and no SQL here.

Bolt acknowledges events before the listener runs, so Slack gets its 200 at once and the
answer streams in a background task. A redelivery (same event_id, whatever the retry
header says) is claimed once in the database and ignored after that.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.answer import Question, Responder
from bot.slack_text import EMPTY_MENTION_TEXT, strip_bot_mention
from bot.store import Place, Store

log = logging.getLogger(__name__)

# Events and commands the app handles; manifest.yml must declare each (a test checks).
EVENTS = ("app_mention",)
COMMANDS = ("/ask", "/usage")

NOT_READY_TEXT = (
    "`{command}` is not available yet. Mention me in a channel instead, for example "
    "`@Claude what does this error mean?`, and I'll answer in the thread."
)


class Listeners:
    def __init__(self, *, store: Store, responder: Responder) -> None:
        self._store = store
        self._responder = responder

    def register(self, app: AsyncApp) -> None:
        app.event("app_mention")(self.on_mention)
        for command in COMMANDS:
            app.command(command)(self.on_command_not_ready)
        app.error(self.on_error)

    async def on_mention(
        self,
        body: dict[str, Any],
        event: dict[str, Any],
        context: AsyncBoltContext,
        request: AsyncBoltRequest,
        client: AsyncWebClient,
    ) -> None:
        team_id = str(body.get("team_id") or event.get("team") or context.team_id or "")
        event_id = str(body.get("event_id") or f"{event.get('channel')}:{event.get('ts')}")
        retry = _retry_num(request)
        if not await self._store.claim_event(event_id, team_id, "app_mention"):
            log.info("ignoring redelivered event %s (retry %s)", event_id, retry)
            return
        if retry:
            # First time we see this id despite a retry header: the first delivery never reached us.
            log.info("taking event %s on retry %s", event_id, retry)
        channel = str(event["channel"])
        ts = str(event["ts"])
        place = Place(team_id, channel, str(event.get("thread_ts") or ts))
        text = strip_bot_mention(str(event.get("text") or ""), context.bot_user_id)
        if not text:
            await client.chat_postMessage(
                channel=channel, thread_ts=place.thread_ts, text=EMPTY_MENTION_TEXT
            )
            return
        user_id = str(event.get("user") or "")
        await self._responder.answer(Question(place=place, user_id=user_id, text=text, ts=ts))

    async def on_command_not_ready(self, ack: AsyncAck, command: dict[str, Any]) -> None:
        # Declared in the manifest ahead of their implementation: answer politely, privately.
        await ack(text=NOT_READY_TEXT.format(command=command.get("command", "This command")))

    async def on_error(self, error: Exception, body: dict[str, Any]) -> None:
        log.error(
            "unhandled error in a listener (event %s)",
            body.get("event_id") or body.get("type"),
            exc_info=error,
        )


def _retry_num(request: AsyncBoltRequest) -> int:
    # Header values are lists; Socket Mode synthesises the header even for attempt 0.
    values = request.headers.get("x-slack-retry-num") or ["0"]
    try:
        return int(values[0])
    except ValueError:
        return 0
