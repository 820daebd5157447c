"""Token buckets for Slack's rate limits: the budgets the write scheduler spends, kept by
one process (`LocalBudget`) or shared by every replica (bot.slack.shared_budget)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass
class Bucket:
    """A token bucket: `capacity` writes at once, refilled at `rate` per second."""

    capacity: float
    rate: float
    tokens: float = -1.0
    updated: float = 0.0
    paused_until: float = 0.0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    def wait(self, now: float, reserve: float = 0.0) -> float:
        """Seconds until a write may go (0: now), keeping `reserve` tokens untouched."""
        self._refill(now)
        if now < self.paused_until:
            return self.paused_until - now
        need = 1 + reserve
        return 0.0 if self.tokens >= need else (need - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self.tokens -= 1

    def pause(self, now: float, seconds: float) -> None:
        self.paused_until = max(self.paused_until, now + seconds)
        self.tokens = 0

    def _refill(self, now: float) -> None:
        if self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now


@dataclass(frozen=True)
class WriteRates:
    update_per_minute: float = 50
    update_burst: float = 10
    post_per_second: float = 1  # per channel
    post_burst: float = 1
    ephemeral_per_minute: float = 100


@dataclass(frozen=True)
class BucketSpec:
    """One of Slack's limits: `key` names it ("chat.update", "chat.postMessage:C123")."""

    key: str
    capacity: float
    rate: float  # writes per second


class WriteBudget(Protocol):
    async def take(self, spec: BucketSpec, reserve: float) -> float:
        """Take one write (0.0), or the seconds until one may go; keep `reserve` untouched."""
        ...

    async def pause(self, spec: BucketSpec, seconds: float) -> None:
        """Slack answered 429: nothing more from this bucket for `seconds`."""
        ...


class LocalBudget:
    """The budgets of one process alone."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, Bucket] = {}

    async def take(self, spec: BucketSpec, reserve: float) -> float:
        return self.take_now(spec, reserve)

    def take_now(self, spec: BucketSpec, reserve: float) -> float:
        bucket, now = self._bucket(spec), self._clock()
        wait = bucket.wait(now, reserve)
        if wait == 0:
            bucket.take(now)
        return wait

    async def pause(self, spec: BucketSpec, seconds: float) -> None:
        self._bucket(spec).pause(self._clock(), seconds)

    def _bucket(self, spec: BucketSpec) -> Bucket:
        if spec.key not in self._buckets:
            self._buckets[spec.key] = Bucket(spec.capacity, spec.rate)
        return self._buckets[spec.key]
