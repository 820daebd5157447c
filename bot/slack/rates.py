"""Token buckets for Slack's rate limits: the budgets the write scheduler spends. Pure."""

from __future__ import annotations

from dataclasses import dataclass


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
