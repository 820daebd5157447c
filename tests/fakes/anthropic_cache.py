"""Prompt-cache bookkeeping for the fake Anthropic server (PLATFORM.md B10).

The prompt is flattened into *blocks*, in prompt order: the ``system`` blocks (a string system is
one text block), then each message's content blocks (a string content is one text block). Tools
are ignored (not counted, not hashed, marks on them not seen). A prefix of ``k`` blocks costs
``ceil(chars / 4) + fixed`` tokens, both summed over its blocks as :func:`estimate_tokens` counts
them (so an image or a PDF adds its fixed size to every prefix that contains it), and is
identified by a SHA-256 of its canonical JSON (every block without its ``cache_control``, with its
message index and role) plus the model. A block referencing an uploaded file is hashed by its
``file_id``.

Token sizes (:func:`size_of`), deterministic: text (text blocks, string contents, nested
``tool_result`` content) counts its characters; each ``image`` block (any source) is a fixed
:data:`IMAGE_TOKENS` (1,000); each ``document`` is a fixed :data:`PDF_TOKENS` (2,000) for a PDF
(``base64``, ``url``, or a ``file`` whose mime type is not ``text/*``), its ``data`` characters
for a ``text`` source, the characters of the stored file for a ``file`` source of a ``text/*``
file, and its nested blocks for a ``content`` source. A prompt (or prefix) costs
``ceil(chars / 4) + fixed``; a whole prompt at least 1.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

MAX_BREAKPOINTS = 4
TTLS = ("5m", "1h")
IMAGE_TOKENS = 1_000  # each image block, whatever its size or source
PDF_TOKENS = 2_000  # each PDF document block, whatever its size or source


class FileLike(Protocol):
    """What token counting needs of an uploaded file (``anthropic_files.StoredFile``)."""

    @property
    def mime_type(self) -> str: ...

    @property
    def data(self) -> bytes: ...


Files = Mapping[str, FileLike]
_NO_FILES: Files = {}


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


@dataclass(frozen=True)
class Size:
    """The token size of some prompt content: characters of text plus fixed-size blocks."""

    chars: int = 0
    fixed: int = 0  # tokens of images and PDF documents

    def __add__(self, other: Size) -> Size:
        return Size(self.chars + other.chars, self.fixed + other.fixed)

    @property
    def tokens(self) -> int:
        return math.ceil(self.chars / 4) + self.fixed


def _document_size(source: Any, files: Files) -> Size:
    if not isinstance(source, dict):
        return Size(fixed=PDF_TOKENS)
    kind = source.get("type")
    if kind == "text":
        data = source.get("data")
        return Size(len(data) if isinstance(data, str) else 0)
    if kind == "content":
        return size_of(source.get("content"), files)
    if kind == "file":
        stored = files.get(str(source.get("file_id")))
        if stored is not None and stored.mime_type.startswith("text/"):
            return Size(len(stored.data.decode("utf-8", "replace")))
    return Size(fixed=PDF_TOKENS)


def size_of(value: Any, files: Files = _NO_FILES) -> Size:
    """The size of a `system`/`messages` value or one block (module docstring)."""
    if isinstance(value, str):
        return Size(len(value))
    if isinstance(value, list):
        total = Size()
        for item in value:
            total += size_of(item, files)
        return total
    if isinstance(value, dict):
        kind = value.get("type")
        if kind == "image":
            return Size(fixed=IMAGE_TOKENS)
        if kind == "document":
            return _document_size(value.get("source"), files)
        if isinstance(value.get("text"), str):
            return Size(len(value["text"]))
        return size_of(value.get("content"), files)
    return Size()


def estimate_tokens(body: dict[str, Any], files: Files = _NO_FILES) -> int:
    """Deterministic token estimate of a whole prompt: ceil(text chars / 4) + 1,000 per image +
    2,000 per PDF (`files`: the uploaded files, for text files referenced by id), at least 1."""
    size = size_of(body.get("system"), files) + size_of(body.get("messages"), files)
    return max(1, size.tokens)


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


def _flatten(body: dict[str, Any], files: Files) -> list[tuple[dict[str, Any], str | None, Size]]:
    """(canonical entry, ttl if marked, size) for every block of the prompt, in order."""
    flat = []
    for role, message_index, block, where in _located_blocks(body):
        ttl = None
        if isinstance(block, dict):
            mark = block.get("cache_control")
            ttl = None if mark is None else _ttl_of(mark, f"{where}.cache_control")
            block = {key: value for key, value in block.items() if key != "cache_control"}
        entry = {"role": role, "message": message_index, "block": block}
        flat.append((entry, ttl, size_of(block, files)))
    return flat


class PromptCache:
    """The fake's cache of prompt prefixes; see the module docstring for the rules."""

    def __init__(self, min_tokens: int = 0, lookback_blocks: int = 20) -> None:
        self.min_tokens = min_tokens
        self.lookback_blocks = max(1, lookback_blocks)
        self.entries: dict[tuple[str, str], CacheEntry] = {}

    def clear(self) -> None:
        self.entries.clear()

    def plan(self, body: dict[str, Any], files: Files = _NO_FILES) -> CachePlan:
        """Read/write accounting for a validated request; raises CacheControlError."""
        blocks = _flatten(body, files)
        breakpoints = {k + 1: ttl for k, (_e, ttl, _c) in enumerate(blocks) if ttl is not None}
        if body.get("cache_control") is not None and blocks:
            ttl = _ttl_of(body["cache_control"], "cache_control")
            breakpoints.setdefault(len(blocks), ttl)
        if len(breakpoints) > MAX_BREAKPOINTS:
            raise CacheControlError(
                f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
                f"Found {len(breakpoints)}."
            )
        total = estimate_tokens(body, files)
        if not breakpoints:
            return CachePlan(CacheUsage(input_tokens=total))

        # Prefix k = the first k blocks: its token count and cache key.
        tokens, keys, size, digest = [0], [("", "")], Size(), hashlib.sha256()
        for entry, _ttl, block_size in blocks:
            size += block_size
            digest.update(json.dumps(entry, sort_keys=True, separators=(",", ":")).encode())
            digest.update(b"\n")
            tokens.append(size.tokens)
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
