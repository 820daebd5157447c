"""Thin Slack listeners: parse, filter, hand off. No Claude and no SQL here.

Bolt acknowledges events before the listener runs, so Slack gets its 200 at once and the
answer streams in a background task; commands and buttons are acknowledged first thing.
A redelivery (same event_id, whatever the retry header says) is claimed once in the
database and ignored after that.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot.cost.usage_command import UsageCommand
from bot.slack.buttons import Buttons
from bot.slack.channel_commands import FORGET, ChannelCommands
from bot.slack.claims import claim_once, event_key, message_key, retry_num
from bot.slack.connect import SharedChannels
from bot.slack.history import Me
from bot.slack.questions import Question, ask_payload, question_payload
from bot.slack.responder import Responder
from bot.slack.text import (
    ASK_HELP,
    CANNOT_POST,
    EMPTY_MENTION_TEXT,
    NEW_MESSAGE_SUBTYPES,
    strip_bot_mention,
)
from bot.slack.views import CONTINUE_ACTION_ID, STOP_ACTION_ID
from bot.store import Store

log = logging.getLogger(__name__)

ANSWER_IN_ACK_SECONDS = 2.0  # Slack wants the acknowledgement within 3 s

# Events and commands the app handles, with their listeners; manifest.yml must declare each
# (a test checks), and `register` subscribes exactly these.
EVENT_HANDLERS = {
    "app_mention": "on_mention",
    "message.im": "on_message",
    # Follow-ups without a mention in threads the bot answered in.
    "message.channels": "on_message",
    "message.groups": "on_message",
}
COMMAND_HANDLERS = {"/ask": "on_ask", "/usage": "on_usage"}
EVENTS = tuple(EVENT_HANDLERS)
COMMANDS = tuple(COMMAND_HANDLERS)


class Listeners:
    def __init__(
        self,
        *,
        store: Store,
        responder: Responder,
        usage: UsageCommand,
        commands: ChannelCommands,
        shared: SharedChannels,
        bots: frozenset[str] = frozenset(),
    ) -> None:
        self._store = store
        self._responder = responder
        self._usage = usage
        self._commands = commands
        self._shared = shared
        self._bots = bots  # other bots (bot, app or user ids) the bot may answer

    def register(self, app: AsyncApp) -> None:
        # The manifest's event subscriptions ("message.im") name what Bolt calls "message",
        # and Bolt runs one listener per event: one handler for every kind of message.
        for name in dict.fromkeys(n.split(".")[0] for n in EVENT_HANDLERS):
            handler = next(h for n, h in EVENT_HANDLERS.items() if n.split(".")[0] == name)
            app.event(name)(getattr(self, handler))
        for name, handler in COMMAND_HANDLERS.items():
            app.command(name)(getattr(self, handler))
        buttons = Buttons(self._store, self._responder)
        app.action(STOP_ACTION_ID)(buttons.on_stop)
        app.action(CONTINUE_ACTION_ID)(buttons.on_continue)
        app.error(self.on_error)

    async def on_mention(
        self,
        body: dict[str, Any],
        event: dict[str, Any],
        context: AsyncBoltContext,
        request: AsyncBoltRequest,
        client: AsyncWebClient,
    ) -> None:
        if self._ignored(event, context):
            return
        self._responder.track()
        if not await self._claim(body, event, request):
            return
        ts = str(event["ts"])
        thread_ts = str(event.get("thread_ts") or ts)
        text = strip_bot_mention(str(event.get("text") or ""), context.bot_user_id)
        if text.strip().lower() == FORGET:
            # Slash commands cannot run in threads: a thread is forgotten by a mention.
            channel, user = str(event["channel"]), str(event.get("user") or "")
            thread = str(event["thread_ts"]) if event.get("thread_ts") else None
            note = await self._commands.forget(_team_of(body, event), channel, user, thread)
            await self._responder.tell(channel, user, thread, note)
            await self._store.event_done(message_key(body, event))
            return
        await self._hand_off(
            body, event, context, text=text, thread_ts=thread_ts, reply_to=thread_ts
        )

    async def on_message(
        self,
        body: dict[str, Any],
        event: dict[str, Any],
        context: AsyncBoltContext,
        request: AsyncBoltRequest,
        client: AsyncWebClient,
    ) -> None:
        # New messages (and files) only: never edits, deletions or joins; never a bot that
        # is not allowed (no reply loops).
        if self._ignored(event, context):
            return
        if event.get("subtype") not in (*NEW_MESSAGE_SUBTYPES, "bot_message"):
            return
        ts = str(event["ts"])
        thread_ts = event.get("thread_ts")
        if event.get("channel_type") in ("channel", "group"):
            # A follow-up: a person's reply in a thread the bot has answered in. Bots, even
            # allowed ones, are answered only when they mention the bot: two bots that allow
            # each other still need a mention each time. Anything else in a channel reaches
            # the bot only as an app_mention.
            team_id, channel = _team_of(body, event), str(event["channel"])
            if not thread_ts or thread_ts == ts or _is_bot(event):
                return
            if not await self._store.has_answered(team_id, channel, thread_ts):
                return
            external = bool(body.get("is_ext_shared_channel"))
            config = await self._commands.config(team_id, channel, external=external)
            if not (config.follow_ups and config.enabled):
                return
        elif event.get("channel_type") != "im":
            return
        self._responder.track()
        if not await self._claim(body, event, request):
            return
        text = strip_bot_mention(str(event.get("text") or ""), context.bot_user_id)
        # In the DM's main view the reply stays in the main view; in a thread, in the thread.
        await self._hand_off(
            body,
            event,
            context,
            text=text,
            thread_ts=str(thread_ts or ts),
            reply_to=str(thread_ts) if thread_ts else None,
        )

    def _ignored(self, event: dict[str, Any], context: AsyncBoltContext) -> bool:
        """The bot's own messages, and other bots' unless allowed: no reply loops."""
        if Me(context.bot_user_id, context.bot_id).wrote(event):
            return True
        user, bot = event.get("user"), event.get("bot_id")
        profile = event.get("bot_profile") or {}
        if not _is_bot(event):
            return not user  # a person's message has a user
        ids = {bot, profile.get("id"), profile.get("app_id"), event.get("app_id"), user}
        return not (ids - {None}) & self._bots

    async def on_ask(self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        self._responder.track()
        text = str(command.get("text") or "").strip()
        team_id = str(command.get("team_id") or "")
        key = f"command:{command.get('trigger_id') or command.get('response_url')}"
        if not await claim_once(self._store, key, team_id, "command"):
            await ack()
            return
        channel_id = str(command.get("channel_id") or "")
        user_id = str(command.get("user_id") or "")
        if text.lower() in ("", "help"):
            await ack(text=ASK_HELP)
            return
        word, _, rest = text.partition(" ")
        if word.lower() in ("settings", FORGET, "reset"):
            # Answered in the acknowledgement when it is quick (it usually is: the database
            # alone); an admin check that waits on Slack answers through response_url.
            answer = asyncio.ensure_future(
                self._commands.handle(
                    word.lower(), rest, team_id, channel_id, user_id, self._shared
                )
            )
            done, _ = await asyncio.wait({answer}, timeout=ANSWER_IN_ACK_SECONDS)
            if done:
                await ack(text=answer.result())
            else:
                await ack()
                await respond(text=await answer, response_type="ephemeral")
            return
        await ack()
        # Acknowledged, so never lost: a live process answers it if this one dies first.
        kept = ask_payload(key, team_id, channel_id, user_id, text)
        await self._store.keep_question(key, self._responder.owner, kept)
        posted = await self._responder.ask(
            team_id=team_id,
            channel_id=channel_id,
            user_id=user_id,
            text=text,
            claim=key,
            external=await self._shared.external(channel_id),
        )
        if not posted:
            await respond(text=CANNOT_POST, response_type="ephemeral")

    async def on_usage(self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        answer = await self._usage.handle(
            team_id=str(command.get("team_id") or ""),
            user_id=str(command.get("user_id") or ""),
            text=str(command.get("text") or ""),
        )
        await respond(text=answer.text, blocks=answer.blocks or None, response_type="ephemeral")

    async def on_error(self, error: Exception, body: dict[str, Any]) -> None:
        log.error(
            "unhandled error in a listener (%s)",
            body.get("event_id") or body.get("type"),
            exc_info=error,
        )

    async def _claim(
        self, body: dict[str, Any], event: dict[str, Any], request: AsyncBoltRequest
    ) -> bool:
        team_id = str(body.get("team_id") or event.get("team") or "")
        event_id = event_key(body, event)
        retry = retry_num(request)
        if not await self._store.claim_event(event_id, team_id, str(event.get("type"))):
            log.info("ignoring redelivered event %s (retry %s)", event_id, retry)
            return False
        # A mention in a channel the app reads arrives twice (app_mention and message, with
        # different event ids): one message, one answer. The turn marks the message's claim
        # replied and done, so a twin that comes late (or a retry of it) finds it taken.
        message = message_key(body, event)
        if not await self._store.claim_event(message, team_id, "message"):
            log.info("event %s is a message answered already", event_id)
            await self._store.event_done(event_id)
            return False
        if retry:
            # First time we see this id despite a retry header: the first delivery never reached us.
            log.info("taking event %s on retry %s", event_id, retry)
        return True

    async def _hand_off(
        self,
        body: dict[str, Any],
        event: dict[str, Any],
        context: AsyncBoltContext,
        *,
        text: str,
        thread_ts: str,
        reply_to: str | None,
    ) -> None:
        team_id = str(body.get("team_id") or event.get("team") or "")
        channel = str(event["channel"])
        files = tuple(event.get("files") or ())
        if not text and not files:
            await self._responder.say(channel, reply_to, EMPTY_MENTION_TEXT)
            await self._store.event_done(message_key(body, event))
            return
        question = Question(
            team_id=team_id,
            channel_id=channel,
            thread_ts=thread_ts,
            user_id=str(event.get("user") or ""),
            text=text,
            ts=str(event["ts"]),
            reply_thread_ts=reply_to,
            claim=message_key(body, event),
            files=files,
            me=Me(context.bot_user_id, context.bot_id),
            external=bool(body.get("is_ext_shared_channel")),
        )
        # Acknowledged to Slack, so never lost: should this process die before answering,
        # a live one finds the question with its claim and answers it.
        await self._store.keep_question(
            question.claim or "", self._responder.owner, question_payload(question)
        )
        await self._responder.answer(question)


def _team_of(body: dict[str, Any], event: dict[str, Any]) -> str:
    return str(body.get("team_id") or event.get("team") or "")


def _is_bot(event: dict[str, Any]) -> bool:
    return bool(
        event.get("bot_id") or event.get("bot_profile") or event.get("subtype") == "bot_message"
    )
