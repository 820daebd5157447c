"""Answering in Slack: admit the question, post the working reply, stream, record the result.

History comes from the database, never from Slack, so memory survives restarts and costs no
Slack calls. The reply's turn and its ledger row are written in one transaction at the end.
Replies in flight are registered by the key their Stop button carries.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.admins import Admins
from bot.admission import Admission, Refused, ReplySettings
from bot.claude import Claude, Deadlines, Finished
from bot.context import Context, estimate_tokens
from bot.inflight import InFlight
from bot.metrics import Metrics
from bot.recording import Recorder
from bot.recovery import Progress
from bot.relay import Relay, RelayResult
from bot.scheduler import FINAL, SLACK_ERRORS, SlackWriter
from bot.slack_text import escape_mrkdwn
from bot.store import Outcome, Place, Store
from bot.tasks import classify
from bot.views import ContinueTarget, shorten, without_controls, working_view

log = logging.getLogger(__name__)

# The channel sees the question; very long ones are shortened there (Claude gets it whole).
ASKED_PREVIEW_LIMIT = 2900
CONTINUE_PROMPT = (
    "Please continue your previous answer exactly where it stopped, without repeating."
)


@dataclass(frozen=True)
class Question:
    place: Place
    user_id: str
    text: str
    ts: str
    # Where the reply goes: a thread's ts, or None for the channel itself (a DM's main view).
    reply_thread_ts: str | None
    kind: str | None = None  # a task kind decided already (a continuation keeps its own)
    claim: str | None = None  # the Slack event, command or click this answers


class StopResult(StrEnum):
    STOPPED = "stopped"
    REFUSED = "refused"
    GONE = "gone"


@dataclass
class _Active:
    relay: Relay
    asker: str


class Responder:
    def __init__(
        self,
        *,
        store: Store,
        claude: Claude,
        writer: SlackWriter,
        admins: Admins,
        admission: Admission,
        recorder: Recorder,
        metrics: Metrics,
        settings: ReplySettings,
        deadlines: Deadlines,
        in_flight: InFlight,
    ) -> None:
        self._store = store
        self._claude = claude
        self._writer = writer
        self._admins = admins
        self._admission = admission
        self._recorder = recorder
        self._metrics = metrics
        self._settings = settings
        self._deadlines = deadlines
        self._in_flight = in_flight
        self.active_turns: set[int] = set()  # replies this process is writing
        self._active: dict[str, _Active] = {}

    def track(self) -> None:
        """Count the calling listener in, for shutdown, from its first moment."""
        self._in_flight.track()

    async def may_act_for(self, asker: str, user_id: str) -> bool:
        return user_id == asker or await self._admins.is_admin(user_id)

    async def stop(self, stop_key: str, user_id: str) -> StopResult:
        active = self._active.get(stop_key)
        if active is None:
            return StopResult.GONE
        if not await self.may_act_for(active.asker, user_id):
            return StopResult.REFUSED
        active.relay.stop(user_id)
        return StopResult.STOPPED

    async def ask(
        self, *, team_id: str, channel_id: str, user_id: str, text: str, claim: str | None = None
    ) -> bool:
        """`/ask`: show the question to the channel, then answer in its thread.

        False when Slack refuses the post (the bot is not in that conversation); nothing is
        stored or billed then.
        """
        shown = f"<@{user_id}> asked: {escape_mrkdwn(shorten(text, ASKED_PREVIEW_LIMIT))}"
        try:
            posted = await self._writer.post(channel=channel_id, text=shown)
        except SlackApiError as error:
            if is_refusal(error):
                return False
            raise
        ts = str(posted["ts"])
        place = Place(team_id, channel_id, ts)
        await self.answer(Question(place, user_id, text, ts, reply_thread_ts=ts, claim=claim))
        return True

    async def carry_on(self, target: ContinueTarget, team_id: str, user_id: str) -> None:
        """The Continue button: a new reply in the same conversation, where the last stopped."""
        place = Place(team_id, target.channel, target.conversation)
        question = Question(
            place, user_id, CONTINUE_PROMPT, target.conversation, target.thread, kind=target.kind
        )
        await self.answer(question)

    async def answer(self, question: Question) -> RelayResult | None:
        self._in_flight.track()
        if question.kind is None:
            kind, text = classify(question.text)
            question = replace(question, text=text or question.text, kind=kind)
        kind = question.kind or "default"
        max_tokens = self._settings.max_tokens_for(kind)
        place = question.place
        admitted = await self._admission.admit(
            place, question.user_id, question.text, max_tokens=max_tokens
        )
        if isinstance(admitted, Refused):
            # A note to the asker alone can only appear in a thread that exists already.
            exists = question.reply_thread_ts not in (None, question.ts)
            await self.tell(
                place.channel_id,
                question.user_id,
                question.reply_thread_ts if exists else None,
                admitted.message,
            )
            await self._claimed(question, done=True)
            return None
        try:
            return await self._stream(question, admitted.context, kind, max_tokens)
        finally:
            admitted.slot.release()
            await self._claimed(question, done=True)

    async def _claimed(self, question: Question, *, done: bool) -> None:
        if question.claim is not None:
            if done:
                await self._store.event_done(question.claim)
            else:
                await self._store.event_replied(question.claim)

    async def _stream(
        self, question: Question, context: Context, kind: str, max_tokens: int
    ) -> RelayResult | None:
        place = question.place
        await self._store.add_turn(
            place,
            role="user",
            text=question.text,
            user_id=question.user_id,
            ts=question.ts,
            tokens=estimate_tokens(question.text),
        )
        stop_key = secrets.token_hex(8)
        working = working_view(stop_key)
        try:
            posted = await self._writer.post(
                channel=place.channel_id,
                thread_ts=question.reply_thread_ts,
                text=working.text,
                blocks=working.blocks,
            )
        except SLACK_ERRORS as error:
            # Nothing was asked of Claude, so nothing is billed; the question stays stored.
            self.slack_error("chat.postMessage", error)
            log.exception("could not post the working reply channel=%s", place.channel_id)
            return None
        reply_ts = str(posted["ts"])
        turn_id = await self._store.add_turn(
            place, role="assistant", text="", user_id=None, ts=reply_ts, outcome=Outcome.STREAMING
        )
        # From here on a redelivery must not answer again: a crash leaves a reply to close.
        await self._claimed(question, done=False)
        self.active_turns.add(turn_id)
        progress = Progress(
            surface="slack",
            user=question.user_id,
            thread=question.reply_thread_ts,
            event=question.claim,
            message_ts=[reply_ts],
        )

        async def save_progress(text: str, message_ts: list[str], finished: Finished) -> None:
            progress.update(message_ts, finished)
            await self._store.save_progress(turn_id, text=text, progress=progress.to_json())

        await self._store.save_progress(turn_id, text="", progress=progress.to_json())
        relay = Relay(
            self._writer,
            channel=place.channel_id,
            thread_ts=question.reply_thread_ts,
            first_ts=reply_ts,
            interval=self._settings.edit_interval,
            stop_key=stop_key,
            continue_target=ContinueTarget(
                place.channel_id, place.thread_ts, question.reply_thread_ts, question.user_id, kind
            ),
            on_slack_error=self.slack_error,
            on_progress=save_progress,
        )
        self._active[stop_key] = _Active(relay, question.user_id)
        self._metrics.in_flight.inc()
        try:
            result = await relay.run(
                self._claude.stream(
                    model=self._settings.model,
                    system=context.system,
                    prompts=context.prompts,
                    max_tokens=max_tokens,
                    deadlines=self._deadlines,
                )
            )
        finally:
            self._metrics.in_flight.dec()
            del self._active[stop_key]
            self.active_turns.discard(turn_id)
        usage = self._recorder.usage_row(
            result.finished,
            text=result.text,
            stopped=result.stopped_by is not None,
            interrupted=result.interrupted,
        )
        await self._recorder.record(
            place,
            surface="slack",
            turn_id=turn_id,
            text=result.text,
            user_id=question.user_id,
            usage=usage,
        )
        for note in await self._admission.warnings(place, question.user_id):
            await self.tell(place.channel_id, question.user_id, None, note)
        return result

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


def is_refusal(error: SlackApiError) -> bool:
    """Slack will not let the bot post here (not a member, or no such conversation for it)."""
    code = str(error.response.get("error", ""))
    return code in {
        "not_in_channel",
        "channel_not_found",
        "is_archived",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "ekm_access_denied",
        "team_access_not_granted",
        "cannot_reply_to_message",
    }
