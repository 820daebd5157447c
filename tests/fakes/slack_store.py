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
from decimal import Decimal, InvalidOperation
from typing import Any

JSON_PARAMS = ("blocks", "attachments", "view", "chunks", "metadata")


class SlackError(Exception):
    """Raised inside a method handler; becomes HTTP 200 `{"ok": false, "error": code}`."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def user_object(uid: str, fields: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """A users.info `user`: the defaults, then the test's fields, with `profile` merged key by key
    and `real_name` the same at the top and in the profile, as Slack shows it. Without one, the
    real name is the lower-case name capitalised ("U0ADA" -> "U0ada") and display_name is ""."""
    name = str(fields.get("name") or uid.lower())
    given = dict(fields.get("profile") or {})
    real = str(given.get("real_name") or fields.get("real_name") or name.capitalize())
    profile: dict[str, Any] = {"display_name": "", **given, "real_name": real}
    profile.setdefault("real_name_normalized", real)
    profile.setdefault("display_name_normalized", profile["display_name"])
    return {"id": uid, "name": name, **defaults, **fields, "real_name": real, "profile": profile}


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
    user: str | None  # None: a legacy bot message (bot_id only)
    versions: list[str]  # what users saw in every version (see `shown`), first = as posted
    deleted: bool = False
    bot_id: str | None = None
    bot_profile: dict[str, str] | None = None  # {"id", "name", "app_id"} on bots' messages
    subtype: str | None = None  # "bot_message", "file_share", "channel_join", …
    files: list[dict[str, Any]] | None = None  # Slack file objects (FakeSlack.add_file)
    edited: dict[str, str] | None = None  # {"user", "ts"} once a person edited it

    @property
    def shown(self) -> str:
        """What a person sees: the blocks' text when there are blocks, else `text`."""
        return shown_text(self.text, self.blocks)

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """The interactive elements the message carries now."""
        return [
            element
            for block in self.blocks or []
            if block.get("type") == "actions"
            for element in block.get("elements", [])
        ]

    def to_api(self) -> dict[str, Any]:
        """Render the message like Slack's `message` objects."""
        out: dict[str, Any] = {"type": "message", "text": self.text}
        if self.user is not None:
            out["user"] = self.user
        out["ts"] = self.ts
        optional = {
            "subtype": self.subtype,
            "bot_id": self.bot_id,
            "bot_profile": self.bot_profile,
            "app_id": (self.bot_profile or {}).get("app_id"),
            "thread_ts": self.thread_ts,
            "blocks": self.blocks,
            "files": self.files,
            "edited": self.edited,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out


def ts_key(ts: str) -> Decimal:
    """Slack ts values sort as numbers ("9.000100" < "10.000100"); junk sorts first."""
    try:
        key = Decimal(ts)
    except (InvalidOperation, TypeError):
        return Decimal(-1)
    return key if key.is_finite() else Decimal(-1)


# Block Kit limits Slack enforces with `invalid_blocks` (PLATFORM.md A2).
MAX_BLOCKS = 50
SECTION_TEXT_MAX = 3000
MARKDOWN_TOTAL_MAX = 12000


def shown_text(text: str, blocks: list[dict[str, Any]] | None) -> str:
    if not blocks:
        return text
    parts = []
    for block in blocks:
        if block.get("type") == "markdown":
            parts.append(str(block.get("text", "")))
        elif block.get("type") == "section":
            parts.append(str((block.get("text") or {}).get("text", "")))
    return "\n".join(parts)


def blocks_error(blocks: Any) -> str | None:
    """The error Slack gives for these blocks, or None when they are valid."""
    if blocks is None:
        return None
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return "invalid_blocks"
    markdown = 0
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "markdown":
            markdown += len(str(block.get("text", "")))
        elif kind == "section":
            if len(str((block.get("text") or {}).get("text", ""))) > SECTION_TEXT_MAX:
                return "invalid_blocks"
        elif kind not in ("actions", "context", "divider", "header", "rich_text"):
            return "invalid_blocks"
    return "invalid_blocks" if markdown > MARKDOWN_TOTAL_MAX else None


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
        buckets: dict[str, tuple[float, float]] | None = None,
    ) -> int | None:
        """Return None and count the call if allowed, else the Retry-After seconds (>= 1)."""
        now = time.monotonic()
        if buckets and method in buckets:
            burst, rate = buckets[method]
            tokens, last = self._buckets.get(f"method:{method}", (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens < 1:
                self._buckets[f"method:{method}"] = (tokens, now)
                return max(1, math.ceil((1 - tokens) / rate))
            self._buckets[f"method:{method}"] = (tokens - 1, now)
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
