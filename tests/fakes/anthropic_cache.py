"""Prompt-cache bookkeeping for the fake Anthropic server (PLATFORM.md B10).

The prompt is flattened into *blocks*, in prompt order: the ``system`` blocks (a string system is
one text block), then each message's content blocks (a string content is one text block). Tools
are ignored (not counted, not hashed, marks on them not seen). A prefix of ``k`` blocks costs
``ceil(chars / 4)`` tokens, chars counted like :func:`estimate_tokens`, and is identified by a
SHA-256 of its canonical JSON (every block without its ``cache_control``, with its message index
and role) plus the model.

Breakpoints are the blocks carrying ``cache_control: {"type": "ephemeral", "ttl"?: "5m"|"1h"}``
plus, for a top-level ``cache_control`` (automatic caching), the last block of the request (no
extra breakpoint if that block is already marked; its own ttl wins). More than 4, a ``type``
other than ``ephemeral`` or a ``ttl`` other than ``5m``/``1h`` is a 400 invalid_request_error.

For each request (:meth:`PromptCache.plan`):

* **read**: the longest prefix that is already cached, looked for at each breakpoint and at the
  ``lookback_blocks - 1`` block boundaries before it (the API's ~20-block lookback, which is what
  makes a moving automatic breakpoint hit the previous turn's prefix). ``lookback_blocks=1``
  considers only the breakpoints themselves.
* **write**: every breakpoint prefix longer than the read one. Each written segment (from the
  read prefix or the previous written breakpoint up to this breakpoint) is billed as a cache
  write with the ttl of the breakpoint that ends it.
* **input**: the rest, i.e. the total (:func:`estimate_tokens`) minus the read and written tokens.
* A prefix shorter than ``max(1, min_tokens)`` tokens is neither read nor written (no error).

:meth:`PromptCache.commit` stores the written prefixes; entries never expire (``clear()`` them to
simulate expiry). The key's ttl is recorded but does not affect lookups.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

MAX_BREAKPOINTS = 4
TTLS = ("5m", "1h")


class CacheControlError(ValueError):
    """A request whose cache marks the API would reject with a 400."""


def text_of(value: Any) -> str:
    """All prompt text in a `system`/`messages` value (strings, text blocks, nested content)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(text_of(item) for item in value)
    if isinstance(value, dict):
        if isinstance(value.get("text"), str):
            return str(value["text"])
        return text_of(value.get("content"))
    return ""


def estimate_tokens(body: dict[str, Any]) -> int:
    """Deterministic token estimate of a whole prompt: ceil(prompt chars / 4), at least 1."""
    chars = len(text_of(body.get("system"))) + len(text_of(body.get("messages")))
    return max(1, math.ceil(chars / 4))


@dataclass(frozen=True)
class CacheEntry:
    tokens: int
    ttl: str


@dataclass(frozen=True)
class CacheUsage:
    """The input side of a message's `usage`."""

    input_tokens: int
    creation_5m: int = 0
    creation_1h: int = 0
    read: int = 0

    def fields(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.creation_5m + self.creation_1h,
            "cache_read_input_tokens": self.read,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.creation_5m,
                "ephemeral_1h_input_tokens": self.creation_1h,
            },
        }


@dataclass
class CachePlan:
    """What one request reads and writes; `PromptCache.commit` applies the writes."""

    usage: CacheUsage
    writes: dict[tuple[str, str], CacheEntry] = field(default_factory=dict)


def _ttl_of(mark: Any, where: str) -> str:
    if not isinstance(mark, dict) or mark.get("type") != "ephemeral":
        raise CacheControlError(f"{where}.type: Input should be 'ephemeral'")
    ttl = mark.get("ttl", "5m")
    if ttl not in TTLS:
        raise CacheControlError(f"{where}.ttl: Input should be '5m' or '1h'")
    return str(ttl)


def _as_blocks(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [{"type": "text", "text": value}]
    return list(value) if isinstance(value, list) else []


def _located_blocks(body: dict[str, Any]) -> list[tuple[str, int | None, Any, str]]:
    """(role, message index, block, error path) for every block of the prompt, in order."""
    system = [
        ("system", None, b, f"system.{i}") for i, b in enumerate(_as_blocks(body.get("system")))
    ]
    located: list[tuple[str, int | None, Any, str]] = list(system)
    for m, message in enumerate(body.get("messages") or []):
        if isinstance(message, dict):
            for i, block in enumerate(_as_blocks(message.get("content"))):
                located.append((str(message.get("role")), m, block, f"messages.{m}.content.{i}"))
    return located


def _flatten(body: dict[str, Any]) -> list[tuple[dict[str, Any], str | None, int]]:
    """(canonical entry, ttl if marked, chars) for every block of the prompt, in order."""
    flat = []
    for role, message_index, block, where in _located_blocks(body):
        ttl = None
        if isinstance(block, dict):
            mark = block.get("cache_control")
            ttl = None if mark is None else _ttl_of(mark, f"{where}.cache_control")
            block = {key: value for key, value in block.items() if key != "cache_control"}
        entry = {"role": role, "message": message_index, "block": block}
        flat.append((entry, ttl, len(text_of(block))))
    return flat


class PromptCache:
    """The fake's cache of prompt prefixes; see the module docstring for the rules."""

    def __init__(self, min_tokens: int = 0, lookback_blocks: int = 20) -> None:
        self.min_tokens = min_tokens
        self.lookback_blocks = max(1, lookback_blocks)
        self.entries: dict[tuple[str, str], CacheEntry] = {}

    def clear(self) -> None:
        self.entries.clear()

    def plan(self, body: dict[str, Any]) -> CachePlan:
        """Read/write accounting for a validated request; raises CacheControlError."""
        blocks = _flatten(body)
        breakpoints = {k + 1: ttl for k, (_e, ttl, _c) in enumerate(blocks) if ttl is not None}
        if body.get("cache_control") is not None and blocks:
            ttl = _ttl_of(body["cache_control"], "cache_control")
            breakpoints.setdefault(len(blocks), ttl)
        if len(breakpoints) > MAX_BREAKPOINTS:
            raise CacheControlError(
                f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
                f"Found {len(breakpoints)}."
            )
        total = estimate_tokens(body)
        if not breakpoints:
            return CachePlan(CacheUsage(input_tokens=total))

        # Prefix k = the first k blocks: its token count and cache key.
        tokens, keys, chars, digest = [0], [("", "")], 0, hashlib.sha256()
        for entry, _ttl, block_chars in blocks:
            chars += block_chars
            digest.update(json.dumps(entry, sort_keys=True, separators=(",", ":")).encode())
            digest.update(b"\n")
            tokens.append(math.ceil(chars / 4))
            keys.append((str(body["model"]), digest.hexdigest()))

        def eligible(k: int) -> bool:
            return tokens[k] >= max(1, self.min_tokens)

        candidates = {
            k
            for end in breakpoints
            for k in range(max(1, end - self.lookback_blocks + 1), end + 1)
            if eligible(k) and keys[k] in self.entries
        }
        read = max(candidates, default=0)
        written = {"5m": 0, "1h": 0}
        writes: dict[tuple[str, str], CacheEntry] = {}
        done = read  # end of the prefix covered so far by the read and the writes
        for end in sorted(k for k in breakpoints if k > read and eligible(k)):
            written[breakpoints[end]] += tokens[end] - tokens[done]
            writes[keys[end]] = CacheEntry(tokens[end], breakpoints[end])
            done = end
        usage = CacheUsage(
            input_tokens=total - tokens[done],
            creation_5m=written["5m"],
            creation_1h=written["1h"],
            read=tokens[read],
        )
        return CachePlan(usage, writes)

    def commit(self, plan: CachePlan) -> None:
        self.entries.update(plan.writes)
