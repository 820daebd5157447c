"""Answering a question: store it, post the working reply, stream, store the result.

History comes from the database, never from Slack, so memory survives restarts and costs no
Slack calls. The reply's turn and its ledger row are written in one transaction at the end.
Replies in flight are registered by a key that their Stop button carries.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.admins import Admins
from bot.budgets import Budgets
from bot.claude import Claude, Prompt
from bot.context import Context, QuestionTooLong, budget_for, estimate_tokens, fit
from bot.errors import ClaudeError
from bot.pricing import PriceTable, Tokens
from bot.relay import Relay, RelayResult
from bot.slack_text import escape_mrkdwn
from bot.store import Ledger, Outcome, Place, Store, TurnRecord, UsageRow
from bot.store.models import utcnow
from bot.views import shorten, working_view

log = logging.getLogger(__name__)

SLACK_ERRORS = (SlackClientError, aiohttp.ClientError, OSError, TimeoutError)
# The channel sees the question; very long ones are shortened there (Claude gets it whole).
ASKED_PREVIEW_LIMIT = 2900


@dataclass(frozen=True)
class Question:
    place: Place
    user_id: str
    text: str
    ts: str
    # Where the reply goes: a thread's ts, or None for the channel itself (a DM's main view).
    reply_thread_ts: str | None


@dataclass(frozen=True)
class ReplySettings:
    model: str
    max_tokens: int
    system_prompt: str
    edit_interval: float
    context_window: int
    channel_memory_turns: int


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
        ledger: Ledger,
        claude: Claude,
        slack: AsyncWebClient,
        admins: Admins,
        budgets: Budgets,
        prices: PriceTable,
        settings: ReplySettings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._budgets = budgets
        self._prices = prices
        self._clock = clock
        self._claude = claude
        self._slack = slack
        self._admins = admins
        self._settings = settings
        self._tasks: set[asyncio.Task[object]] = set()
        self._active: dict[str, _Active] = {}

    async def drain(self, grace: float) -> None:
        """Let answers in flight finish for up to `grace` seconds, then cancel the rest."""
        pending = {task for task in self._tasks if not task.done()}
        if not pending:
            return
        _done, late = await asyncio.wait(pending, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)

    async def stop(self, stop_key: str, user_id: str) -> StopResult:
        active = self._active.get(stop_key)
        if active is None:
            return StopResult.GONE
        if user_id != active.asker and not await self._admins.is_admin(user_id):
            return StopResult.REFUSED
        active.relay.stop(user_id)
        return StopResult.STOPPED

    async def ask(self, *, team_id: str, channel_id: str, user_id: str, text: str) -> bool:
        """`/ask`: show the question to the channel, then answer in its thread.

        False when Slack refuses the post (the bot is not in that conversation); nothing is
        stored or billed then. A question over budget is refused before anything is posted.
        """
        if await self._admit(Place(team_id, channel_id, ""), user_id, text, None) is None:
            return True
        shown = f"<@{user_id}> asked: {escape_mrkdwn(shorten(text, ASKED_PREVIEW_LIMIT))}"
        try:
            posted = await self._slack.chat_postMessage(channel=channel_id, text=shown)
        except SlackApiError as error:
            if is_refusal(error):
                return False
            raise
        ts = str(posted["ts"])
        place = Place(team_id, channel_id, ts)
        await self.answer(Question(place, user_id, text, ts, reply_thread_ts=ts))
        return True

    async def answer(self, question: Question) -> RelayResult | None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        place = question.place
        # Replies to a top-level message start a thread; a note to the asker alone can only
        # appear in a thread that exists already.
        existing_thread = question.reply_thread_ts not in (None, question.ts)
        context = await self._admit(
            place,
            question.user_id,
            question.text,
            question.reply_thread_ts if existing_thread else None,
            reply_to=question.reply_thread_ts,
        )
        if context is None:
            return None
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
            posted = await self._slack.chat_postMessage(
                channel=place.channel_id,
                thread_ts=question.reply_thread_ts,
                text=working.text,
                blocks=working.blocks,
            )
        except SLACK_ERRORS:
            # Nothing was asked of Claude, so nothing is billed; the question stays stored.
            log.exception("could not post the working reply channel=%s", place.channel_id)
            return None
        reply_ts = str(posted["ts"])
        turn_id = await self._store.add_turn(
            place, role="assistant", text="", user_id=None, ts=reply_ts, outcome=Outcome.STREAMING
        )
        settings = self._settings
        relay = Relay(
            self._slack,
            channel=place.channel_id,
            thread_ts=question.reply_thread_ts,
            first_ts=reply_ts,
            interval=settings.edit_interval,
            stop_key=stop_key,
        )
        self._active[stop_key] = _Active(relay, question.user_id)
        try:
            result = await relay.run(
                self._claude.stream(
                    model=settings.model,
                    system=context.system,
                    prompts=context.prompts,
                    max_tokens=settings.max_tokens,
                )
            )
        finally:
            del self._active[stop_key]
        await self._ledger.finish_reply(
            place,
            turn_id=turn_id,
            text=result.text,
            user_id=question.user_id,
            usage=self._usage_row(result),
        )
        await self._warn(place.channel_id, question.user_id, place.team_id)
        return result

    async def _admit(
        self,
        place: Place,
        user_id: str,
        text: str,
        note_thread: str | None,
        *,
        reply_to: str | None = None,
    ) -> Context | None:
        """The context to send, or None after telling the user why nothing will be sent:
        the question does not fit the context window, or would pass a budget."""
        settings = self._settings
        pending = TurnRecord(0, "user", user_id, text, Outcome.COMPLETE, estimate_tokens(text))
        try:
            context = await fit(
                [*await self._store.conversation(place, settings.channel_memory_turns), pending],
                system=settings.system_prompt,
                budget=budget_for(settings.context_window, settings.max_tokens),
                count=self._count,
            )
        except QuestionTooLong as error:
            await self._tell(place.channel_id, user_id, note_thread, error.user_message)
            return None
        now = self._clock()
        refusal = await self._budgets.check(
            team_id=place.team_id,
            channel_id=place.channel_id,
            user_id=user_id,
            model=settings.model,
            input_tokens=context.tokens,
            max_tokens=settings.max_tokens,
            now=now,
        )
        if refusal is not None:
            await self._tell(place.channel_id, user_id, note_thread, refusal.message(now))
            return None
        return context

    async def _warn(self, channel: str, user_id: str, team_id: str) -> None:
        for note in await self._budgets.warnings(
            team_id=team_id, channel_id=channel, user_id=user_id, now=self._clock()
        ):
            await self._tell(channel, user_id, None, note)

    async def _tell(self, channel: str, user_id: str, thread_ts: str | None, text: str) -> None:
        """A note only the user sees."""
        try:
            await self._slack.chat_postEphemeral(
                channel=channel, user=user_id, thread_ts=thread_ts, text=f"⚠️ {text}"
            )
        except SLACK_ERRORS:
            log.exception("could not tell %s in %s", user_id, channel)

    async def _count(self, system: str, prompts: Sequence[Prompt]) -> int:
        try:
            return await self._claude.count_tokens(
                model=self._settings.model, system=system, prompts=prompts
            )
        except ClaudeError:
            # Without an exact count, the conservative estimate decides.
            log.warning("count_tokens failed; using the estimate", exc_info=True)
            return estimate_tokens(system) + sum(estimate_tokens(p.text) for p in prompts)

    def _usage_row(self, result: RelayResult) -> UsageRow:
        finished = result.finished
        if finished.error is None and result.stopped_by is None:
            outcome = Outcome.COMPLETE
        elif result.text or result.stopped_by is not None:
            outcome = Outcome.PARTIAL
        else:
            outcome = Outcome.ERROR
        if result.stopped_by is not None:
            error_kind: str | None = "stopped"
        else:
            error_kind = finished.error.failure.value if finished.error else None
        usage = finished.usage
        model = finished.model or self._settings.model
        tokens = Tokens(
            input=usage.input_tokens,
            output=usage.output_tokens,
            cache_write_5m=usage.cache_write_5m,
            cache_write_1h=usage.cache_write_1h,
            cache_read=usage.cache_read,
        )
        return UsageRow(
            requested_model=self._settings.model,
            resolved_model=finished.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_write_5m_tokens=usage.cache_write_5m,
            cache_write_1h_tokens=usage.cache_write_1h,
            cache_read_tokens=usage.cache_read,
            stop_reason=finished.stop_reason,
            request_id=finished.request_id,
            ttft_ms=finished.ttft_ms,
            latency_ms=finished.latency_ms,
            outcome=outcome,
            error_kind=error_kind,
            cost_micros=self._prices.cost_micros(model, tokens),
            cache_savings_micros=self._prices.cache_savings_micros(model, tokens),
            price_version=self._prices.version,
        )


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
