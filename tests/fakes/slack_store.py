"""State of the fake Slack: recorded calls, stored messages, a ts clock and the limiters.

Nothing here speaks HTTP; `tests.fakes.slack` turns requests into calls on these objects.
Invariant: every ts comes from one `TsClock`, so bot and user messages sort together as strings.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

JSON_PARAMS = ("blocks", "attachments", "view", "chunks", "metadata")


@dataclass
class Call:
    """One request the fake received, recorded before any failure or delay is applied."""

    method: str
    params: dict[str, Any]  # merged query + body params, JSON-string fields parsed
    at: float  # time.monotonic() when received
    error: str | None = None  # the error code answered, None while pending or on success
    status: int = 200  # the HTTP status answered


@dataclass
class Message:
    """A message as a user would see it in the channel."""

    channel: str
    ts: str
    thread_ts: str | None
    text: str
    blocks: list[dict[str, Any]] | None
    user: str
    versions: list[str]  # text of every version, first = as posted
    deleted: bool = False
    bot_id: str | None = None

    def to_api(self) -> dict[str, Any]:
        """Render the message like Slack's `message` objects."""
        out: dict[str, Any] = {"type": "message", "text": self.text, "user": self.user}
        out["ts"] = self.ts
        if self.bot_id:
            out["bot_id"] = self.bot_id
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.blocks is not None:
            out["blocks"] = self.blocks
        return out


class TsClock:
    """Issues unique, increasing, string-sortable Slack ts values ("1700000001.000100")."""

    def __init__(self, start: int = 1_700_000_000) -> None:
        self._start = start
        self._n = 0

    def next(self) -> str:
        self._n += 1
        return f"{self._start + self._n}.{100 * (self._n % 10_000):06d}"


def parse_params(query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """Merge query and body params (body wins) and decode JSON-string fields like `blocks`."""
    params: dict[str, Any] = {**query, **body}
    for name in JSON_PARAMS:
        value = params.get(name)
        if isinstance(value, str) and value.strip().startswith(("[", "{")):
            with contextlib.suppress(json.JSONDecodeError):  # else keep it as sent, for the test
                params[name] = json.loads(value)
    return params


@dataclass
class FailRule:
    error: str
    status: int
    retry_after: int | None
    times: int


@dataclass
class Limiters:
    """Sliding-window limits per method plus a token bucket per channel for chat.postMessage."""

    _windows: dict[str, deque[float]] = field(default_factory=dict)
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # tokens, last

    def check(
        self,
        method: str,
        channel: str | None,
        rate_limits: dict[str, tuple[int, float]],
        post_rate: float | None,
        post_burst: float,
    ) -> int | None:
        """Return None and count the call if allowed, else the Retry-After seconds (>= 1)."""
        now = time.monotonic()
        window = self._windows.setdefault(method, deque())
        if method in rate_limits:
            max_calls, per = rate_limits[method]
            while window and window[0] <= now - per:
                window.popleft()
            if len(window) >= max_calls:
                return max(1, math.ceil(window[0] + per - now))
        if method == "chat.postMessage" and post_rate and channel:
            tokens, last = self._buckets.get(channel, (post_burst, now))
            tokens = min(post_burst, tokens + (now - last) * post_rate)
            if tokens < 1:
                self._buckets[channel] = (tokens, now)
                return max(1, math.ceil((1 - tokens) / post_rate))
            self._buckets[channel] = (tokens - 1, now)
        if method in rate_limits:
            window.append(now)
        return None
