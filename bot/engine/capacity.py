"""How many Claude requests to let fly at once, learnt from Anthropic's own answers rather
than guessed: additive increase, multiplicative decrease, as TCP finds a network's room.

- An answer whose `anthropic-ratelimit-*` headers show at least half of every limit left
  adds one (applied only while questions are waiting: only a queue shows more is needed).
- Less than a tenth of any limit left: a fifth fewer (at least one stays in flight).
- A 429 for the rate limits: half as many, and nothing new starts until its retry-after.

Signals pile up here between ticks of the fair queue, which applies them to the one
capacity every replica shares (bot.store.queue), never above MAX_CONCURRENT_REQUESTS.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from bot.claude.limits import LimitSignal
from bot.store.queue import Adjustment

ROOM = 0.5  # at least this share of every limit left: room for one more
LOW = 0.1  # less than this share of any limit left: slow down
EASE = 0.8
HALVE = 0.5
RETRY_AFTER_UNKNOWN = 1.0


class CapacityLearner:
    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._factor = 1.0
        self._raises = 0
        self._paused_until: datetime | None = None

    def observe(self, signal: LimitSignal) -> None:
        if signal.rate_limited:
            self._factor = min(self._factor, HALVE)
            wait = signal.retry_after if signal.retry_after is not None else RETRY_AFTER_UNKNOWN
            until = self._clock() + timedelta(seconds=wait)
            if self._paused_until is None or until > self._paused_until:
                self._paused_until = until
        elif signal.headroom is not None and signal.headroom < LOW:
            self._factor = min(self._factor, EASE)
        elif signal.headroom is not None and signal.headroom >= ROOM:
            self._raises += 1

    def urgent(self) -> bool:
        """Whether a slow-down is waiting to be shared (worth a tick of its own)."""
        return self._factor < 1.0 or self._paused_until is not None

    def take(self, *, queue: bool) -> Adjustment:
        """What was learnt since the last call; raises only count while questions wait."""
        raises = self._raises if queue and self._factor == 1.0 else 0
        change = Adjustment(self._factor, raises, self._paused_until)
        self._factor, self._raises, self._paused_until = 1.0, 0, None
        return change
