"""Token buckets for Slack's rate limits: the budgets the write scheduler spends, kept by
one process (`LocalBudget`) or shared by every replica (bot.slack.shared_budget)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

SAFETY = 0.98
# How late (or early) a write may reach Slack compared with when it was sent.
JITTER_SECONDS = 0.25
# A write that hangs must not hold a message, a bucket (or shutdown) forever.
WRITE_TIMEOUT_SECONDS = 15.0


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

    def take(self, now: float, hold: float = 0.0) -> None:
        self._refill(now)
        self.tokens -= 1
        self.updated = max(self.updated, now + hold)  # no refill until then (or `restart`)

    def restart(self, now: float) -> None:
        """The write taken last was answered: the next is due a whole interval from now."""
        self._refill(now)
        self.tokens = min(self.tokens, 0.0)
        self.updated = now

    def pause(self, now: float, seconds: float) -> None:
        self.paused_until = max(self.paused_until, now + seconds)
        self.tokens = 0

    def _refill(self, now: float) -> None:
        if self.updated:
            elapsed = max(0.0, now - self.updated)  # `updated` is ahead while a take holds
            self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = max(self.updated, now)


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
    # Seconds a take keeps the bucket from refilling, unless the write is answered sooner
    # (`restart`): for a bucket of one, the next write is due an interval after Slack's
    # answer to the last, however late that came, and is never sent beside it.
    hold: float = 0.0


class WriteBudget(Protocol):
    async def take(self, spec: BucketSpec, reserve: float) -> float:
        """Take one write (0.0), or the seconds until one may go; keep `reserve` untouched."""
        ...

    async def pause(self, spec: BucketSpec, seconds: float) -> None:
        """Slack answered 429: nothing more from this bucket for `seconds`."""
        ...

    async def restart(self, spec: BucketSpec) -> None:
        """A write taken from a bucket with a `hold` was answered (or failed)."""
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
            bucket.take(now, spec.hold)
        return wait

    async def pause(self, spec: BucketSpec, seconds: float) -> None:
        self._bucket(spec).pause(self._clock(), seconds)

    async def restart(self, spec: BucketSpec) -> None:
        self._bucket(spec).restart(self._clock())

    def _bucket(self, spec: BucketSpec) -> Bucket:
        if spec.key not in self._buckets:
            self._buckets[spec.key] = Bucket(spec.capacity, spec.rate)
        return self._buckets[spec.key]


def bucket_for(rates: WriteRates, method: str, channel: str) -> BucketSpec:
    """The bucket a write spends from. Our count runs a little slower than Slack's, so that
    the moment a token exists here it surely exists there too (Slack counts when a request
    arrives, a little later)."""
    if method == "chat.postMessage":  # Slack's special limit: per channel
        return _cushioned(f"{method}:{channel}", rates.post_burst, rates.post_per_second)
    if method == "chat.postEphemeral":
        per_second = rates.ephemeral_per_minute * SAFETY / 60
        return _cushioned(method, rates.ephemeral_per_minute / 6, per_second)
    # chat.update, chat.delete: Tier 3, per workspace
    return _cushioned(method, rates.update_burst, rates.update_per_minute * SAFETY / 60)


def _cushioned(key: str, burst: float, rate: float) -> BucketSpec:
    """A bucket a little smaller than Slack's: Slack then always holds JITTER_SECONDS' worth
    of writes more than we count, so a write that reaches Slack late (or the next one early)
    never finds its bucket empty. The rate is not reduced. A bucket too small to give that up
    (posts to a channel, when Slack allows no burst) spaces its writes from Slack's answers
    instead: one at a time, the next an interval after the last was answered."""
    if burst - JITTER_SECONDS * rate >= 1:
        return BucketSpec(key, burst - JITTER_SECONDS * rate, rate)
    return BucketSpec(key, 1.0, rate, hold=WRITE_TIMEOUT_SECONDS)
