"""Whether a question may go to Claude, and with what: the same rules for Slack and /chat.

In order, cheapest first: the rate limits (no I/O), the context that fits the window (the
database, perhaps a token count), then the budgets (worst case against what is left).
A refusal costs nothing and says why; an admission holds a rate-limit slot until released.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.claude import Attachment, Claude, Prompt
from bot.claude.tools import MAX_USES
from bot.cost.budgets import Budgets, Hold, Refusal
from bot.engine.context import Context, QuestionTooLong, budget_for, estimate_tokens, fit
from bot.engine.limits import Limited, RateLimiter, Slot
from bot.errors import ClaudeError
from bot.metrics import Metrics
from bot.store import Outcome, Place, Store, TurnRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplySettings:
    model: str
    max_tokens: int
    system_prompt: str
    edit_interval: float
    context_window: int
    channel_memory_turns: int
    # max_tokens per kind of task (bot.engine.kinds); any other kind gets `max_tokens`.
    max_tokens_by_kind: dict[str, int] = field(default_factory=dict)

    def max_tokens_for(self, kind: str) -> int:
        return self.max_tokens_by_kind.get(kind, self.max_tokens)


@dataclass(frozen=True)
class Refused:
    reason: str  # too_long | budget | per_minute | user_busy | busy
    message: str
    retry_after: float | None = None


@dataclass
class Admitted:
    context: Context
    slot: Slot
    hold: Hold | None = None

    async def release(self, *, budget: bool = True) -> None:
        """Give back the rate-limit slot and (unless told not to) the budget hold."""
        await self.slot.release()
        if budget and self.hold is not None:
            try:
                await self.hold.release()
            except Exception:
                # The hold expires by itself; until then it only makes budgets stricter.
                log.warning("could not release a budget hold", exc_info=True)


class Admission:
    def __init__(
        self,
        *,
        store: Store,
        claude: Claude,
        budgets: Budgets,
        limiter: RateLimiter,
        metrics: Metrics,
        settings: ReplySettings,
        clock: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._claude = claude
        self._budgets = budgets
        self._limiter = limiter
        self._metrics = metrics
        self._settings = settings
        self._clock = clock

    async def admit(
        self,
        place: Place,
        user_id: str,
        text: str,
        *,
        max_tokens: int,
        model: str,
        system: str,
        channel_memory: bool = True,
        attachments: tuple[Attachment, ...] = (),
        tools: tuple[str, ...] = (),
    ) -> Admitted | Refused:
        slot = await self._limiter.acquire(user_id)
        if isinstance(slot, Limited):
            self._metrics.rate_limited.labels(slot.reason).inc()
            return Refused(slot.reason, slot.message, slot.retry_after)
        try:
            context = await self._context(
                place, user_id, text, max_tokens, channel_memory, attachments, model, system
            )
            if isinstance(context, Refused):
                await slot.release()
                return context
            uses = {tool: MAX_USES[tool] for tool in tools}
            hold = await self._over_budget(place, user_id, context, max_tokens, model, uses)
        except BaseException:
            await asyncio.shield(slot.release())
            raise
        if isinstance(hold, Refused):
            await slot.release()
            return hold
        return Admitted(context, slot, hold)

    async def _context(
        self,
        place: Place,
        user_id: str,
        text: str,
        max_tokens: int,
        channel_memory: bool,
        attachments: tuple[Attachment, ...],
        model: str,
        system: str,
    ) -> Context | Refused:
        settings = self._settings
        pending = TurnRecord(
            0,
            "user",
            user_id,
            text,
            Outcome.COMPLETE,
            estimate_tokens(text),
            attachments=attachments,
        )
        memory = settings.channel_memory_turns if channel_memory else 0
        turns = await self._store.conversation(place, memory)
        try:
            return await fit(
                [*turns, pending],
                system=system,
                budget=budget_for(settings.context_window, max_tokens),
                count=lambda system, prompts: self._count(model, system, prompts),
            )
        except QuestionTooLong as error:
            return Refused("too_long", error.user_message)

    async def _over_budget(
        self,
        place: Place,
        user_id: str,
        context: Context,
        max_tokens: int,
        model: str,
        tool_uses: dict[str, int],
    ) -> Refused | Hold:
        now = self._clock()
        refusal = await self._budgets.check(
            team_id=place.team_id,
            channel_id=place.channel_id,
            user_id=user_id,
            model=model,
            input_tokens=context.tokens,
            max_tokens=max_tokens,
            now=now,
            tool_uses=tool_uses,
        )
        if not isinstance(refusal, Refusal):
            return refusal  # the worst case is held until the request is recorded
        self._metrics.budget_refusals.labels(refusal.limit.scope).inc()
        return Refused("budget", refusal.message(now))

    async def warnings(self, place: Place, user_id: str) -> list[str]:
        return await self._budgets.warnings(
            team_id=place.team_id, channel_id=place.channel_id, user_id=user_id, now=self._clock()
        )

    async def _count(self, model: str, system: str, prompts: Sequence[Prompt]) -> int:
        try:
            return await self._claude.count_tokens(model=model, system=system, prompts=prompts)
        except ClaudeError:
            # Without an exact count, the conservative estimate decides.
            log.warning("count_tokens failed; using the estimate", exc_info=True)
            return estimate_tokens(system) + sum(estimate_tokens(p.text) for p in prompts)
