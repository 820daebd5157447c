"""Rate limits: requests per user per minute and in flight per user (refused, with when to
try again), and Claude requests in flight overall, where a question beyond the capacity
waits its turn in the fair queue. All kept in the database, so every replica counts the
same requests.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.engine.queue import FairQueue
from bot.store.rate_limits import Limits, Over, RateStore, Waiting

log = logging.getLogger(__name__)


def queue_timed_out(seconds: float) -> str:
    waited = f"{round(seconds / 60)} min" if seconds >= 90 else f"{seconds:g} s"
    return (
        f"Too many questions at once: yours waited {waited} without its turn coming, so I "
        "did not start on it. Please ask again in a little while."
    )


@dataclass(frozen=True)
class Limited:
    reason: str  # "per_minute" | "user_busy"
    message: str
    retry_after: float


class Slot:
    """A Claude request: in flight, or waiting (`ahead` questions before it) until `wait`
    says it may fly. Give it back with `release` (idempotent)."""

    def __init__(
        self, limiter: RateLimiter, slot_id: int, ahead: int | None, asked: Waiting
    ) -> None:
        self._limiter = limiter
        self.id = slot_id
        self.ahead = ahead
        self.asked = asked
        self._held = True

    @property
    def within(self) -> float:
        return self._limiter.queue_wait

    async def wait(self, on_place: Callable[[int], None] = lambda ahead: None) -> bool:
        """Until the request may fly (True at once when it already may); False when it
        waited QUEUE_WAIT_SECONDS in vain."""
        if self.ahead is None:
            return True
        limiter = self._limiter
        flying = await limiter.queue.wait(
            self.id, self.asked, self.ahead, limiter.queue_wait, on_place
        )
        if flying:
            self.ahead = None
        return flying

    async def release(self) -> None:
        if not self._held:
            return
        self._held = False
        try:
            await self._limiter.store.give_back(self.id)
        except Exception:
            # The slot expires by itself; until then it only makes the limits stricter.
            log.warning("could not give back a request slot", exc_info=True)
        self._limiter.queue.wake()


class RateLimiter:
    def __init__(
        self,
        store: RateStore,
        queue: FairQueue,
        *,
        owner: str,
        per_minute: int,
        concurrent: int,
        per_user_concurrent: int,
        queue_wait: float,
        clock: Callable[[], datetime],
        slot_seconds: float = 900.0,
    ) -> None:
        self.store = store
        self.queue = queue
        self.queue_wait = queue_wait
        self._owner = owner
        self._limits = Limits(per_minute, concurrent, per_user_concurrent)
        self._clock = clock
        self._slot_seconds = slot_seconds

    async def acquire(self, user: str) -> Slot | Limited:
        now = self._clock()
        taken = await self.store.take(
            user, self._limits, now=now, seconds=self._slot_seconds, owner=self._owner
        )
        if not isinstance(taken, Over):
            return Slot(self, taken.id, taken.ahead, Waiting(user, now))
        if taken.reason == "per_minute":
            frees = taken.frees_at or now
            wait = max(1, math.ceil((frees - now).total_seconds()))
            return Limited(
                "per_minute",
                f"You've asked {taken.count} questions in the last minute, the most I take. "
                f"Please try again in {wait} s.",
                wait,
            )
        return Limited(
            "user_busy",
            f"I'm still working on {taken.count} questions of yours. "
            "Please ask again when one of them is answered.",
            5.0,
        )
