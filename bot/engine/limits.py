"""Rate limits: requests per user per minute, and Claude requests in flight (overall and per
user), kept in the database so that every replica counts the same requests.

The per-user cap on requests in flight keeps the overall cap fair: one busy user can hold
only a few of the slots, so others still get through. Refusals say when to try again.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.store.rate_limits import Limits, Over, RateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limited:
    reason: str  # "per_minute" | "user_busy" | "busy"
    message: str
    retry_after: float


class Slot:
    """A Claude request in flight; give it back with `release` (idempotent)."""

    def __init__(self, store: RateStore, slot_id: int) -> None:
        self._store = store
        self._id = slot_id
        self._held = True

    async def release(self) -> None:
        if not self._held:
            return
        self._held = False
        try:
            await self._store.give_back(self._id)
        except Exception:
            # The slot expires by itself; until then it only makes the limits stricter.
            log.warning("could not give back a request slot", exc_info=True)


class RateLimiter:
    def __init__(
        self,
        store: RateStore,
        *,
        per_minute: int,
        concurrent: int,
        per_user_concurrent: int,
        clock: Callable[[], datetime],
        slot_seconds: float = 900.0,
    ) -> None:
        self._store = store
        self._limits = Limits(per_minute, concurrent, per_user_concurrent)
        self._clock = clock
        self._slot_seconds = slot_seconds

    async def acquire(self, user: str) -> Slot | Limited:
        now = self._clock()
        taken = await self._store.take(user, self._limits, now=now, seconds=self._slot_seconds)
        if not isinstance(taken, Over):
            return Slot(self._store, taken)
        if taken.reason == "per_minute":
            frees = taken.frees_at or now
            wait = max(1, math.ceil((frees - now).total_seconds()))
            return Limited(
                "per_minute",
                f"You've asked {taken.count} questions in the last minute, the most I take. "
                f"Please try again in {wait} s.",
                wait,
            )
        if taken.reason == "user_busy":
            return Limited(
                "user_busy",
                f"I'm still writing {taken.count} answers for you. "
                "Please ask again when one of them is done.",
                5.0,
            )
        return Limited(
            "busy",
            f"I'm writing {taken.count} answers right now, as many as I can at once. "
            "Please try again in a few seconds.",
            5.0,
        )
