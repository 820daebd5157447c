"""Organisation rate limits of the fake Anthropic server (``POST /v1/messages`` only).

What the real API does (the Rate limits page, e.g. docs.anthropic.com/de/api/rate-limits and
/ja/, /es/, /fr/ of the same page, platform.claude.com/docs/api/rate-limits; the Claude Platform
on AWS copy docs.aws.amazon.com/claude-platform/latest/userguide/rate-limits.html; the support
article support.claude.com/en/articles/8243635):

* Limits are per organisation and per minute: requests (RPM), input tokens (ITPM) and output
  tokens (OTPM). Capacity is a token bucket, replenished continuously up to the limit rather
  than reset at fixed intervals; a ``-reset`` header is the time the bucket will be *fully*
  replenished, in RFC 3339.
* ``input_tokens`` and ``cache_creation_input_tokens`` count toward ITPM, ``cache_read_input_
  tokens`` does not (most models). OTPM is estimated from ``max_tokens`` when the request starts
  and the estimate is adjusted to the output actually produced when it ends ("if you hit OTPM
  earlier than expected, reduce max_tokens").
* Every response carries ``anthropic-ratelimit-requests-{limit,remaining,reset}``,
  ``anthropic-ratelimit-input-tokens-*``, ``anthropic-ratelimit-output-tokens-*`` and
  ``anthropic-ratelimit-tokens-*`` (input + output combined: the AWS page says so and a recorded
  real response shows 96,000 = 80,000 ITPM + 16,000 OTPM). Token ``-remaining`` values are
  "rounded to the nearest thousand".
* Past a limit: HTTP 429 ``{"type": "error", "error": {"type": "rate_limit_error", "message":
  <which limit>}, ...}`` with ``retry-after`` (seconds to wait; "earlier retries will fail").
* Token counting (``/v1/messages/count_tokens``) has its own separate RPM limits; the fake does
  not limit it and sends no rate-limit headers there.

How the fake does it (:class:`RateLimiter`, ``fake.limiter``; set ``fake.org_limits``):

* ``fake.org_limits = OrgLimits(requests_per_minute=..., input_tokens_per_minute=...,
  output_tokens_per_minute=..., concurrent=...)``; default ``None``: nothing is refused, and the
  headers report :data:`UNLIMITED_REQUESTS` / :data:`UNLIMITED_TOKENS` (a dimension left
  ``None`` is likewise unenforced and reported with those numbers). Setting it refills every
  bucket to its (new) limit.
* A request that passed auth and validation is admitted only if every enforced bucket holds
  what it needs: 1 request; its ITPM tokens (uncached input + cache writes, the numbers its
  usage will report); its OTPM estimate, ``max_tokens`` (with
  ``estimate_output_from_max_tokens=False``: nothing up front, only a non-empty bucket). A need
  above the whole limit is capped at the limit (it waits for a full bucket rather than for
  ever). Admitted, the needs are taken from the buckets (which may go below zero); when the
  answer ends (completed, failed, faulted or cut off by the client) the OTPM estimate is
  replaced by the output tokens produced (the real API counts them as they are produced; the
  fake settles once, at the end). RPM and ITPM stay spent even when the scripted reply is an
  error.
* Refused: 429 rate_limit_error naming the limit, ``retry-after`` = the seconds until every
  refused bucket holds enough (whole seconds, rounded up, at least 1), plus the headers. A
  refused request uses up no scripted reply and is not served (but is recorded in
  ``message_requests`` like any attempt).
* ``concurrent`` is a test knob, not a real API limit: at most that many /v1/messages requests
  served at once (admission to the last byte of the answer); one more gets the same 429 shape
  with the message the API once used for concurrent connections and ``retry-after: 1``.
* Headers: requests ``-remaining`` is the whole requests left; token ``-remaining`` are rounded
  to the nearest ``token_rounding`` (default 1,000 as documented; 1 = exact) and
  ``tokens-remaining`` is input + output; ``-reset`` is the instant the bucket is full again,
  rounded up to the second (the current second when already full), from ``wall()`` (the fake's
  ``now``). They are on every /v1/messages answer: success (JSON or stream, as the stream
  starts; a JSON answer after its output is settled), scripted errors, 400s after auth and the
  429s. A reply's own ``headers`` win over them.
* Counters: ``rate_limited`` (429s from these limits; ``fake.rate_limited_count``), ``serving``
  (requests being served now) and ``max_serving`` (the most at once, kept with or without limits;
  ``fake.max_in_flight``). A JSON answer stops being served when its body is ready to write.
* ``limiter.clock`` (default ``time.monotonic``) can be replaced by a hand-driven clock, so a test
  refills the buckets without sleeping; the buckets keep their levels across the switch.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "CONCURRENT_RETRY_AFTER",
    "TOKEN_ROUNDING",
    "UNLIMITED_REQUESTS",
    "UNLIMITED_TOKENS",
    "Admission",
    "Bucket",
    "OrgLimits",
    "RateLimiter",
    "Refusal",
]

UNLIMITED_REQUESTS = 1_000_000  # reported per minute when no request limit is set
UNLIMITED_TOKENS = 1_000_000_000  # reported per minute when no token limit is set
TOKEN_ROUNDING = 1000  # token -remaining headers: "rounded to the nearest thousand"
CONCURRENT_RETRY_AFTER = 1  # seconds; the concurrency knob cannot know when a slot frees
PREFIX = "anthropic-ratelimit-"
DOCS = "For details, refer to: https://docs.claude.com/en/api/rate-limits."
CONCURRENT_MESSAGE = (
    "Number of concurrent connections has exceeded your rate limit. Please try again later."
)


@dataclass(frozen=True)
class OrgLimits:
    """Per-minute organisation limits (``None``: not enforced) and a concurrency test knob."""

    requests_per_minute: int | None = None
    input_tokens_per_minute: int | None = None
    output_tokens_per_minute: int | None = None
    concurrent: int | None = None  # test knob: requests served at once (not a real API limit)
    estimate_output_from_max_tokens: bool = True  # as documented; False: settle at the end only
    token_rounding: int = TOKEN_ROUNDING  # token -remaining headers; 1 = exact

    def __post_init__(self) -> None:
        for name in ("requests_per_minute", "input_tokens_per_minute", "output_tokens_per_minute"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (None: no limit)")
        if self.concurrent is not None and self.concurrent < 1:
            raise ValueError("concurrent must be at least 1 (None: no limit)")


class Bucket:
    """A token bucket holding up to `capacity`, refilled at `capacity` per minute."""

    def __init__(self, capacity: int, now: float) -> None:
        self.capacity = capacity
        self.level = float(capacity)
        self._stamp = now

    @property
    def rate(self) -> float:
        return self.capacity / 60.0  # per second

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + max(0.0, now - self._stamp) * self.rate)
        self._stamp = now

    def restamp(self, now: float) -> None:
        """Move to another clock without refilling."""
        self._stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until the bucket holds `amount` (capped at the capacity, at least 1)."""
        needed = min(max(amount, 1.0), self.capacity)
        return max(0.0, (needed - self.level) / self.rate)

    def until_full(self) -> float:
        return max(0.0, (self.capacity - self.level) / self.rate)


@dataclass
class Admission:
    """One admitted /v1/messages request; the handler keeps `output_tokens` up to date."""

    output_estimate: int
    output_tokens: int = 0
    finished: bool = False


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: the 429's message and its retry-after in whole seconds."""

    message: str
    retry_after: int


class RateLimiter:
    """The buckets, the concurrency count and the rate-limit headers; see the module docstring."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._clock = clock  # seconds, for the buckets
        self.wall = wall  # aware datetimes, for the -reset headers
        self.rate_limited = 0  # 429s from these limits
        self.serving = 0  # /v1/messages requests being served now
        self.max_serving = 0  # the most served at once
        self._limits: OrgLimits | None = None
        self._buckets: dict[str, Bucket] = {}
        self.limits = None

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock

    @clock.setter
    def clock(self, clock: Callable[[], float]) -> None:
        """Use another clock (tests drive one by hand); the buckets keep their levels."""
        self._clock = clock
        for bucket in self._buckets.values():
            bucket.restamp(clock())

    @property
    def limits(self) -> OrgLimits | None:
        return self._limits

    @limits.setter
    def limits(self, limits: OrgLimits | None) -> None:
        """Set (or clear) the limits; every bucket starts full."""
        self._limits = limits
        lim = limits or OrgLimits()
        now = self.clock()
        self._buckets = {
            "requests": Bucket(lim.requests_per_minute or UNLIMITED_REQUESTS, now),
            "input": Bucket(lim.input_tokens_per_minute or UNLIMITED_TOKENS, now),
            "output": Bucket(lim.output_tokens_per_minute or UNLIMITED_TOKENS, now),
        }

    def _enforced(self) -> dict[str, int | None]:
        lim = self._limits or OrgLimits()
        return {
            "requests": lim.requests_per_minute,
            "input": lim.input_tokens_per_minute,
            "output": lim.output_tokens_per_minute,
        }

    def _refill(self) -> None:
        now = self.clock()
        for bucket in self._buckets.values():
            bucket.refill(now)

    def admit(self, input_tokens: int, max_tokens: int) -> Admission | Refusal:
        """Admit a request needing `input_tokens` of ITPM with this `max_tokens`, or refuse it."""
        lim = self._limits or OrgLimits()
        self._refill()
        estimate = max_tokens if lim.estimate_output_from_max_tokens else 0
        needs = {"requests": 1, "input": input_tokens, "output": estimate}
        waits: dict[str, float] = {}
        for name, limit in self._enforced().items():
            wait = self._buckets[name].wait_for(needs[name]) if limit is not None else 0.0
            if wait > 0:
                waits[name] = wait
        concurrent_full = lim.concurrent is not None and self.serving >= lim.concurrent
        if waits or concurrent_full:
            self.rate_limited += 1
            if not waits:
                return Refusal(CONCURRENT_MESSAGE, CONCURRENT_RETRY_AFTER)
            name = max(waits, key=waits.__getitem__)
            seconds = max(waits.values())
            retry_after = max(1, math.ceil(seconds))
            if concurrent_full:
                retry_after = max(retry_after, CONCURRENT_RETRY_AFTER)
            return Refusal(self._message(name), retry_after)
        for name, amount in needs.items():
            self._buckets[name].level -= amount
        self.serving += 1
        self.max_serving = max(self.max_serving, self.serving)
        return Admission(output_estimate=estimate)

    def finish(self, admission: Admission) -> None:
        """The answer has ended: replace the OTPM estimate by the output produced (once)."""
        if admission.finished:
            return
        admission.finished = True
        self._refill()
        output = self._buckets["output"]
        output.level = min(
            output.capacity, output.level + admission.output_estimate - admission.output_tokens
        )
        self.serving -= 1

    def headers(self) -> dict[str, str]:
        """The ``anthropic-ratelimit-*`` headers for the buckets as they are now."""
        self._refill()
        lim = self._limits or OrgLimits()
        now = self.wall()
        requests, inp, out = (self._buckets[n] for n in ("requests", "input", "output"))

        def tokens(level: float) -> str:
            step = max(1, lim.token_rounding)
            left = max(0.0, level)
            return str(math.floor(left / step + 0.5) * step if step > 1 else int(left))

        def reset(seconds: float) -> str:
            at = now + dt.timedelta(seconds=seconds)
            whole = at.replace(microsecond=0)
            if seconds > 0 and whole < at:
                whole += dt.timedelta(seconds=1)
            return whole.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

        both = max(inp.until_full(), out.until_full())
        return {
            f"{PREFIX}requests-limit": str(requests.capacity),
            f"{PREFIX}requests-remaining": str(max(0, math.floor(requests.level))),
            f"{PREFIX}requests-reset": reset(requests.until_full()),
            f"{PREFIX}input-tokens-limit": str(inp.capacity),
            f"{PREFIX}input-tokens-remaining": tokens(inp.level),
            f"{PREFIX}input-tokens-reset": reset(inp.until_full()),
            f"{PREFIX}output-tokens-limit": str(out.capacity),
            f"{PREFIX}output-tokens-remaining": tokens(out.level),
            f"{PREFIX}output-tokens-reset": reset(out.until_full()),
            f"{PREFIX}tokens-limit": str(inp.capacity + out.capacity),
            f"{PREFIX}tokens-remaining": tokens(max(0.0, inp.level) + max(0.0, out.level)),
            f"{PREFIX}tokens-reset": reset(both),
        }

    def _message(self, name: str) -> str:
        what = {"requests": "requests", "input": "input tokens", "output": "output tokens"}[name]
        limit = self._buckets[name].capacity
        advice = (
            "Please reduce the prompt length or the maximum tokens requested, or try again later."
        )
        return (
            f"This request would exceed your organization's rate limit of {limit:,} {what} per "
            f"minute. {DOCS} You can see the response headers for current usage. {advice}"
        )
