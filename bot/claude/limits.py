"""What Anthropic says of the organisation's rate limits, on every answer: the
`anthropic-ratelimit-*` headers (how much of each limit is left) and a 429's retry-after.
The engine turns these signals into how many requests it lets fly at once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anthropic

from bot.claude.failures import NO_RETRY_CODES, _retry_after, anthropic_error_code

log = logging.getLogger(__name__)

LIMITS = ("requests", "tokens", "input-tokens", "output-tokens")


@dataclass(frozen=True)
class LimitSignal:
    # The smallest share left of any limit the headers report (0..1), None when none does.
    headroom: float | None = None
    rate_limited: bool = False  # a 429 for the rate limits (not a spend limit)
    retry_after: float | None = None


def signal_of(status: int, headers: Any, body: object = None) -> LimitSignal:
    shares = []
    for name in LIMITS:
        limit = _number(headers.get(f"anthropic-ratelimit-{name}-limit"))
        left = _number(headers.get(f"anthropic-ratelimit-{name}-remaining"))
        if limit and left is not None:
            shares.append(max(0.0, min(1.0, left / limit)))
    headroom = min(shares) if shares else None
    if status == 429 and anthropic_error_code(body) not in NO_RETRY_CODES:
        return LimitSignal(headroom, rate_limited=True, retry_after=_retry_after(headers))
    if status == 529:  # Anthropic is overloaded: fewer at once helps it and us
        return LimitSignal(0.0)
    return LimitSignal(headroom)


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class WatchRateLimits(anthropic.Middleware):
    """Hands every answer's rate-limit signal to `on_signal` (retries included: each 429
    the SDK retries is a signal too)."""

    def __init__(self, on_signal: Callable[[LimitSignal], None]) -> None:
        self._on_signal = on_signal

    async def handle_async(
        self, request: anthropic.APIRequest, call_next: anthropic.AsyncCallNext
    ) -> anthropic.AsyncAPIResponse[Any]:
        response = await call_next(request)
        raw = response.http_response
        body: object = None
        if raw.status_code == 429:
            await raw.aread()
            try:
                body = raw.json()
            except ValueError:
                body = None
        try:
            self._on_signal(signal_of(raw.status_code, raw.headers, body))
        except Exception:
            log.warning("could not read Anthropic's rate-limit headers", exc_info=True)
        return response
