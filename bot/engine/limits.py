"""Rate limits: requests per user per minute, and Claude requests in flight (overall and per user).

The per-user cap on requests in flight keeps the overall cap fair: one busy user can hold
only a few of the slots, so others still get through. Refusals say when to try again.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class Limited:
    reason: str  # "per_minute" | "user_busy" | "busy"
    message: str
    retry_after: float


class Slot:
    """A Claude request in flight; give it back with `release` (idempotent)."""

    def __init__(self, limiter: RateLimiter, user: str) -> None:
        self._limiter = limiter
        self._user = user
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._limiter._release(self._user)


class RateLimiter:
    def __init__(
        self,
        *,
        per_minute: int,
        concurrent: int,
        per_user_concurrent: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_minute = per_minute
        self._concurrent = concurrent
        self._per_user_concurrent = per_user_concurrent
        self._clock = clock
        self._recent: dict[str, deque[float]] = defaultdict(deque)
        self._in_flight: dict[str, int] = defaultdict(int)

    @property
    def in_flight(self) -> int:
        return sum(self._in_flight.values())

    def acquire(self, user: str) -> Slot | Limited:
        now = self._clock()
        recent = self._recent[user]
        while recent and recent[0] <= now - WINDOW_SECONDS:
            recent.popleft()
        if len(recent) >= self._per_minute:
            wait = math.ceil(recent[0] + WINDOW_SECONDS - now)
            return Limited(
                "per_minute",
                f"You've asked {len(recent)} questions in the last minute, the most I take. "
                f"Please try again in {wait} s.",
                wait,
            )
        if self._in_flight[user] >= self._per_user_concurrent:
            return Limited(
                "user_busy",
                f"I'm still writing {self._in_flight[user]} answers for you. "
                "Please ask again when one of them is done.",
                5.0,
            )
        if self.in_flight >= self._concurrent:
            return Limited(
                "busy",
                f"I'm writing {self.in_flight} answers right now, as many as I can at once. "
                "Please try again in a few seconds.",
                5.0,
            )
        recent.append(now)
        self._in_flight[user] += 1
        return Slot(self, user)

    def _release(self, user: str) -> None:
        self._in_flight[user] -= 1
        if not self._in_flight[user]:
            del self._in_flight[user]
