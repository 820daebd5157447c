"""The Slack responder: renders a turn of the engine as a reply that streams into Slack.

It asks the engine first (a refusal goes to the asker alone and nothing is posted), posts
the working reply, starts the turn and relays its events into edits. It never writes turns
or ledger rows: the engine does. Replies in flight are registered by their Stop button's key.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.engine import Ask, Attachment, Engine, Refused, Turn
from bot.engine.engine import CHANNEL_OFF
from bot.metrics import Metrics
from bot.slack.admins import Admins
from bot.slack.files import FileReader
from bot.slack.history import Read, ThreadHistory
from bot.slack.questions import SURFACE, Question
from bot.slack.queued import Placeholder
from bot.slack.refusals import is_refusal
from bot.slack.relay import Relay, RelayResult
from bot.slack.scheduler import FINAL, SLACK_ERRORS, SlackWriter
from bot.slack.stops import ActiveReplies, StopResult
from bot.slack.text import HISTORY_FAILED, HISTORY_LIMITED, escape_mrkdwn
from bot.slack.unreachable import SlackUnreachable, kept_if_unreachable, passing
from bot.slack.views import (
    ContinueTarget,
    queued_view,
    shorten,
    without_controls,
    working_view,
)
from bot.store import Place

log = logging.getLogger(__name__)

# The channel sees the question; very long ones are shortened there (Claude gets it whole).
ASKED_PREVIEW_LIMIT = 2900
CONTINUE_PROMPT = (
    "Please continue your previous answer exactly where it stopped, without repeating."
)


class Responder:
    def __init__(
        self,
        *,
        engine: Engine,
        writer: SlackWriter,
        admins: Admins,
        metrics: Metrics,
        interval: float,
        history: ThreadHistory | None = None,
        files: FileReader | None = None,
    ) -> None:
        self._engine = engine
        self._writer = writer
        self._admins = admins
        self._metrics = metrics
        self._interval = interval
        self._history = history
        self._files = files
        self.replies = ActiveReplies(engine.parts.store, self.may_act_for)

    @property
    def owner(self) -> str:
        """This process's id: the owner of the questions it takes."""
        return self._engine.parts.owner

    def track(self) -> None:
        """Count the calling listener in, for shutdown, from its first moment."""
        self._engine.track()

    async def may_act_for(self, asker: str, user_id: str) -> bool:
        return user_id == asker or await self._admins.is_admin(user_id)

    async def stop(self, stop_key: str, user_id: str) -> StopResult:
        return await self.replies.stop(stop_key, user_id)

    async def ask(
        self,
        *,
        team_id: str,
        channel_id: str,
        user_id: str,
        text: str,
        claim: str | None = None,
        external: bool = False,
    ) -> bool:
        """`/ask`: show the question to the channel, then answer in its thread. A question the
        engine refuses is told to the asker alone. False when Slack refuses the post (the bot
        is not in that conversation): nothing is stored or billed then."""
        config = await self._engine.channel(team_id, channel_id, external=external)
        ask = Ask(SURFACE, team_id, channel_id, None, user_id, text, claim=claim, config=config)
        turn = await self._engine.admit(ask)
        if isinstance(turn, Refused):
            await self.tell(channel_id, user_id, None, turn.message)
            return True

        async def show_and_answer() -> bool:
            shown = f"<@{user_id}> asked: {escape_mrkdwn(shorten(text, ASKED_PREVIEW_LIMIT))}"
            try:
                posted = await self._writer.post(channel=channel_id, text=shown)
            except SLACK_ERRORS as error:
                if isinstance(error, SlackApiError) and is_refusal(error):
                    await self._engine.claim_done(claim)
                    return False
                if passing(error):
                    raise SlackUnreachable from error
                raise
            ts = str(posted["ts"])
            await self._stream(turn, thread=ts, question_ts=ts, reply_thread_ts=ts)
            return True

        return (
            await kept_if_unreachable(turn, self._engine.parts.store, show_and_answer) is not False
        )

    async def carry_on(
        self,
        target: ContinueTarget,
        team_id: str,
        user_id: str,
        after: str | None = None,
        claim: str | None = None,
    ) -> None:
        """The Continue button: a new reply in the same conversation, where the last stopped.
        `after` is the message the button was on: the question sorts right after it."""
        question = Question(
            team_id,
            target.channel,
            target.conversation,
            user_id,
            CONTINUE_PROMPT,
            after or target.conversation,
            target.thread,
            kind=target.kind,
            claim=claim,
        )
        await self.answer(question)

    async def answer(self, q: Question) -> RelayResult | None:
        # An off channel reads no file and no history, and calls no model.
        config = await self._engine.channel(q.team_id, q.channel_id, external=q.external)
        if not config.enabled:
            await self.tell(q.channel_id, q.user_id, self._note_thread(q), CHANNEL_OFF)
            await self._engine.claim_done(q.claim)
            return None
        text = q.text
        attachments: tuple[Attachment, ...] = ()
        if q.files and self._files is not None:
            found = await self._files.read(list(q.files))
            for note in found.notes:
                await self.tell(q.channel_id, q.user_id, self._note_thread(q), note)
            if found.refusal is not None:
                await self.tell(q.channel_id, q.user_id, self._note_thread(q), found.refusal)
                await self._engine.claim_done(q.claim)
                return None
            text = "\n\n".join(part for part in (q.text, *found.texts) if part)
            attachments = found.attachments
            if not text.strip():
                text = "(The message is only the attached file.)"
        if self._history is not None and q.me is not None:
            place = Place(q.team_id, q.channel_id, q.thread_ts)
            read = await self._history.catch_up(place, before=q.ts, me=q.me)
            if read is not Read.READ:
                note = HISTORY_FAILED if read is Read.FAILED else HISTORY_LIMITED
                await self.tell(q.channel_id, q.user_id, self._note_thread(q), note)
        ask = Ask(
            SURFACE,
            q.team_id,
            q.channel_id,
            q.thread_ts,
            q.user_id,
            text,
            q.ts,
            q.kind,
            claim=q.claim,
            attachments=attachments,
            config=config,
        )
        turn = await self._engine.admit(ask)
        if isinstance(turn, Refused):
            await self.tell(q.channel_id, q.user_id, self._note_thread(q), turn.message)
            return None
        stream = lambda: self._stream(turn, reply_thread_ts=q.reply_thread_ts)  # noqa: E731
        return await kept_if_unreachable(turn, self._engine.parts.store, stream)

    @staticmethod
    def _note_thread(q: Question) -> str | None:
        # A note to the asker alone can only appear in a thread that exists already.
        return q.reply_thread_ts if q.reply_thread_ts not in (None, q.ts) else None

    async def _stream(
        self,
        turn: Turn,
        *,
        reply_thread_ts: str | None,
        thread: str | None = None,
        question_ts: str | None = None,
    ) -> RelayResult | None:
        ask = turn.ask
        stop_key = f"{secrets.token_hex(8)}:{ask.user_id}"
        waits = turn.ahead is not None
        working = queued_view(stop_key, turn.ahead or 0) if waits else working_view(stop_key)
        try:
            posted = await self._writer.post(
                channel=ask.channel_id,
                thread_ts=reply_thread_ts,
                text=working.text,
                blocks=working.blocks,
            )
        except SLACK_ERRORS as error:
            # Nothing was asked of Claude, so nothing is stored or billed.
            self.slack_error("chat.postMessage", error)
            log.exception("could not post the working reply channel=%s", ask.channel_id)
            if passing(error):
                raise SlackUnreachable from error
            return None
        reply_ts = str(posted["ts"])
        if waits:
            placeholder = Placeholder(self._writer, ask.channel_id, reply_ts, stop_key)
            if not await placeholder.wait_in_line(turn, self.replies, self._engine.parts.store):
                return None
        await turn.start(
            thread=thread,
            question_ts=question_ts,
            reply_ts=reply_ts,
            thread_ts=reply_thread_ts,
            message_ts=[reply_ts],
        )
        assert turn.place is not None
        relay = Relay(
            self._writer,
            channel=ask.channel_id,
            thread_ts=reply_thread_ts,
            first_ts=reply_ts,
            interval=self._interval,
            stop_key=stop_key,
            continue_target=ContinueTarget(
                ask.channel_id, turn.place.thread_ts, reply_thread_ts, ask.user_id, turn.kind
            ),
            on_slack_error=self.slack_error,
        )
        self.replies.add(stop_key, turn, ask.user_id)
        try:
            result = await relay.run(turn)
        finally:
            self.replies.remove(stop_key)
        for note in await turn.recorded():
            await self.tell(ask.channel_id, ask.user_id, None, note)
        return result

    async def tell_admins(self, note: str) -> None:
        """A DM to each admin (ADMIN_USER_IDS, or else the workspace's admins and owners)."""
        for admin in await self._admins.listed():
            await self.say(admin, None, note)

    async def tell(self, channel: str, user_id: str, thread_ts: str | None, text: str) -> None:
        """A note only the user sees."""
        try:
            await self._writer.ephemeral(
                channel=channel, user=user_id, thread_ts=thread_ts, text=f"⚠️ {text}"
            )
        except SLACK_ERRORS as error:
            self.slack_error("chat.postEphemeral", error)
            log.exception("could not tell %s in %s", user_id, channel)

    async def say(self, channel: str, thread_ts: str | None, text: str) -> None:
        try:
            await self._writer.post(channel=channel, thread_ts=thread_ts, text=text)
        except SLACK_ERRORS as error:
            self.slack_error("chat.postMessage", error)
            log.exception("could not post in %s", channel)

    async def remove_controls(self, channel: str, ts: str, message: dict[str, Any]) -> None:
        """Take the buttons off a message (a Continue that was used)."""
        try:
            await self._writer.update(
                channel=channel,
                ts=ts,
                text=str(message.get("text") or "Claude's answer"),
                blocks=without_controls(list(message.get("blocks") or [])),
                priority=FINAL,
            )
        except SLACK_ERRORS as error:
            self.slack_error("chat.update", error)
            log.warning("could not remove the buttons of %s", ts, exc_info=True)

    def slack_error(self, method: str, error: BaseException) -> None:
        code = "connection"
        if isinstance(error, SlackApiError):
            code = str(error.response.get("error") or error.response.status_code)
        self._metrics.slack_errors.labels(method, code).inc()
