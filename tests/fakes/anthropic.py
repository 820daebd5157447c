"""A scriptable, in-process fake of the Anthropic Messages API (and the admin cost report).

Design:

* A real HTTP server (``aiohttp.web``) bound to ``127.0.0.1`` on a random free port, running in the
  test's own event loop (no threads), so the real ``anthropic.AsyncAnthropic`` client can be pointed
  at it with ``base_url=fake.base_url`` and every byte crosses a real socket.
* It speaks the wire format of API version 2026-10-21 as read from SDK 2.15 (see PLATFORM.md
  0a, B7-B10, B13): ``POST /v1/messages`` (JSON or SSE stream), ``POST
  /v1/messages/count_tokens``, the Files API (``/v1/files``) and ``GET
  /v1/organizations/cost_report``; ``Authorization: Bearer`` or ``x-api-key`` auth; a
  ``request-id`` header on every response and ``{"type": "error", "error": {...}, "request_id":
  ...}`` error bodies.
* Tests script answers with :class:`Reply` objects in a FIFO queue (``enqueue``); when the queue is
  empty a default ``Reply()`` answers. A reply can be slow, an HTTP error, or a stream fault
  (``event: error`` mid-stream, clean EOF without ``message_stop``, or an abrupt TCP abort).
  Requests rejected with a 400/401 do not use up a scripted reply.
* Everything received is recorded (``requests``, with the parsed JSON ``body``, the ``query``
  parameters and the body ``size`` in bytes), so tests can assert on what the bot sent.
  Recorded header names are lower-cased. A multipart upload records its plain fields as strings
  and its file part as ``{"filename", "content_type", "size_bytes"}``, never the bytes.
* Prompt caching (B10) is simulated by :class:`~tests.fakes.anthropic_cache.PromptCache`
  (``fake.cache``): ``cache_control`` marks on system blocks, message content blocks and at the
  top level (automatic caching) make successful requests write prefixes, and later requests
  sharing a cached prefix are billed with cache reads; the rules are in that module's docstring.
  ``FakeAnthropic(min_cache_tokens=...)`` sets the minimum cacheable prefix (default 0), and
  ``cache_lookback_blocks`` the lookback window (default 20). A ``Reply`` that sets
  ``input_tokens`` or any non-zero ``cache_*`` number reports exactly its own numbers instead
  (unset cache numbers 0, unset ``input_tokens`` the whole prompt); the cache is still updated.

Content blocks (0a.5; the rules are in :mod:`tests.fakes.anthropic_files`): user message
content may be a string or blocks: ``text``, ``image`` (``source`` ``base64`` with
``image/png|jpeg|gif|webp``, ``url`` or ``file``) and ``document`` (``base64``
``application/pdf``, ``text`` ``text/plain``, ``url``, ``content`` or ``file``; optional
``title`` / ``context`` / ``cache_control``), among the SDK's other block types. On both
endpoints a 400 invalid_request_error whose message starts with the path (e.g.
``messages.0.content.1.source.media_type: ...``) answers: an unknown block type, a wrong media
type, base64 that does not decode, an inline image over 5 MB decoded ("image exceeds 5 MB
maximum"), a ``file_id`` not in ``fake.files`` ("File not found: <id>"), a file whose mime type
does not fit the block (an image block needs an image type; a document block
``application/pdf`` or ``text/plain``), an image or document in an assistant message. A body over
``fake.max_request_bytes`` (default 32 MB, :data:`MAX_REQUEST_BYTES`) is answered, before auth,
with 413 ``{"type": "error", "error": {"type": "request_too_large", ...}}`` (no request id, as
the edge sends it); it is recorded with ``body={}`` and its ``size``.

Token figures (``estimate_tokens``, count_tokens, usage ``input_tokens`` and the prompt-cache
prefix arithmetic alike; :mod:`tests.fakes.anthropic_cache`): ``ceil(text chars / 4)`` plus a
fixed :data:`IMAGE_TOKENS` = 1,000 per image (any source) and :data:`PDF_TOKENS` = 2,000 per PDF
document (base64, url, or a PDF file); a text document counts its characters (its ``data``, or
the stored file's text for a ``text/plain`` file).

Files API (GA, no beta header; same auth and ``anthropic-version`` rule as /v1/messages):
``POST /v1/files`` (multipart, part ``file`` and optional ``expires_in_seconds`` 3600..7776000,
else 400) answers FileMetadata ``{"id": "file_...", "type": "file", "filename", "mime_type",
"size_bytes", "created_at", "downloadable": false, "expires_at"}`` (``expires_at`` null without
``expires_in_seconds``; times from ``fake.now``); ``GET /v1/files/{id}`` the same metadata;
``DELETE /v1/files/{id}`` ``{"id", "type": "file_deleted"}``; an unknown id is a 404
not_found_error ("File not found: <id>"). ``fake.files`` (id -> :class:`StoredFile`: ``filename``,
``mime_type``, ``data``, ``created_at``, ``expires_at``) is what messages can reference;
``fake.add_file(data, filename, mime_type)`` stores one without an upload; ``fake.uploads``
lists every successful upload in order (deleted ones included). ``fake.files_api = False``
(default True) answers every ``/v1/files`` call with 404 not_found_error, as a platform without
the Files API would. An upload body over ``fake.max_upload_bytes`` (default 500 MB) is a 413.
Expiry is recorded but not enforced. Listing and downloading are not served (404).

Models (the bot's start-up key check): ``GET /v1/models`` answers one page listing
``claude-sonnet-5-5`` (``{"data": [...], "has_more": false, "first_id", "last_id"}``) to the
API key, else 401 authentication_error. These requests are counted in ``fake.model_lists``,
not recorded in ``requests``.

Thinking (0a.1; the per-model table is in :mod:`tests.fakes.anthropic_models`): the request's
``thinking`` and ``output_config.effort`` are validated per model (400 invalid_request_error
naming the field), on count_tokens too. When the request thinks (no ``thinking`` on a model that
thinks by default, ``adaptive``, or an accepted ``enabled``) and ``Reply.thinking_tokens > 0``,
the answer starts with a thinking block: streamed as ``content_block_start`` index 0
``{"type": "thinking", "thinking": "", "signature": ""}``, word-sized ``thinking_delta`` pieces of
``Reply.thinking_text`` (none with ``thinking.display: "omitted"``), one ``signature_delta``
(opaque) and ``content_block_stop``; the text block is then index 1. Non-streaming, ``content``
is ``[{"type": "thinking", "thinking", "signature"}, {"type": "text", "text"}]``.
``Reply.delay`` is slept between all deltas, thinking and text; stream faults apply after
``fault_after`` *text* deltas (a thinking block is sent whole first). ``disabled`` and
``between_tools`` never think; the effort changes nothing but is recorded in the body.

max_tokens is enforced: thinking tokens are spent first, then each text delta is one output
token. If ``thinking_tokens >= max_tokens`` the thinking block (its text still whole) ends the
answer: no text block, ``stop_reason: "max_tokens"``, output_tokens = max_tokens. Otherwise the
text is cut after ``max_tokens - thinking`` deltas, with ``stop_reason: "max_tokens"`` when cut
(``max_tokens: 0`` without thinking: no content at all). ``Reply.output_tokens``, when set, is
reported as is (truncation still counts deltas); else output = thinking + text deltas sent.

Usage (``message_start``, every cumulative ``message_delta`` and the non-streamed message)
carries the input/cache numbers (``message_delta`` without the ``cache_creation`` TTL
breakdown, which ``MessageDeltaUsage`` lacks), ``output_tokens``, ``output_tokens_details:
{"thinking_tokens": n}`` (0 without a thinking block; 0 and output 1 in ``message_start``),
``server_tool_use: {"web_search_requests", "web_fetch_requests"}`` (``Reply.web_*_requests``),
``inference_geo`` (``Reply.inference_geo``, else the request's ``inference_geo``, else
``"global"``), ``speed`` (``Reply.speed``, else the request's ``speed``, else ``"standard"``)
and ``service_tier: "standard"``.

Server tools (web search and web fetch; the facts and their sources are in
:mod:`tests.fakes.anthropic_tools`): the request's ``tools`` are validated on both endpoints
(400 invalid_request_error: an unknown ``type`` "Input tag ... does not match any of the
expected tags", a server tool's wrong ``name``, ``max_uses`` < 1, a custom tool without
``input_schema``, duplicate names), and so are assistant messages sent back (a
``server_tool_use`` without its result block is a 400). ``Reply(tool_steps=[WebSearch(query,
results=[(title, url), ...]), WebFetch(url, title=..., text=...)], text=..., cited=[url, ...])``
answers with, after any thinking block, each step as a ``server_tool_use`` block (streamed:
``input: {}``, two ``input_json_delta`` pieces, stop; ``step.delay`` slept) and its result block
(whole in its ``content_block_start``), then the text block; ``cited`` URLs (results of the
reply's searches, else ValueError) become ``web_search_result_location`` citations of the text
block (streamed: a ``{"citations": [], ...}`` start, one ``citations_delta`` each, then the text
deltas; non-streamed: its ``citations`` list). ``WebSearch(..., error="unavailable")`` /
``WebFetch(..., error=...)`` answer with an error result instead; so does a use beyond the
offered tool's ``max_uses`` (``max_uses_exceeded``) and a fetch of a URL that is neither in the
request's messages nor an earlier result of the reply (``url_not_in_prior_context``). A step
whose tool the request does not offer is a 400 whose message starts "fake script:" (the reply
is kept). Successful uses are counted in ``usage.server_tool_use`` (final usage only; a reply's
non-zero ``web_*_requests`` are reported as set, as before). Tool calls cost no output tokens;
they are sent whole before any text (faults apply to text deltas only), and not at all when
thinking used up ``max_tokens``. A reply with tool steps and no text has no text block, e.g.
``Reply(tool_steps=[...], text="", stop_reason="pause_turn")`` for a paused turn.

Refusals (0a.2): ``Reply(stop_reason="refusal", refusal_category="cyber")`` sends its text deltas
(possibly none, ``chunks=[]``) and ends normally; the ``message_delta`` ``delta`` (and the
non-streamed message) carries ``stop_details: {"type": "refusal", "category": <or null>,
"explanation": "..."}``; other answers have no ``stop_details`` in the delta and null in a
non-streamed message.

Error codes (0a.3): ``Reply(status=429, error_code="enforced_spend_limit_reached")`` (or
``contract_spend_limit_reached``, ``ramp_limit_exceeded``) answers ``{"type": "error", "error":
{"type": "rate_limit_error", "message": ..., "details": {"error_code": ...}}, "request_id": ...}``
without any retry-after header, so the SDK raises its ``RateLimitError`` subclass (e.g.
``EnforcedSpendLimitReachedError``) after retrying with its own backoff. ``error_code`` goes into
``error.details`` for any status.

Rate limits (B8; the rules are in :mod:`tests.fakes.anthropic_limits`): every /v1/messages
answer (JSON or stream, scripted errors, 400s after auth, 429s) carries the real API's
``anthropic-ratelimit-{requests,input-tokens,output-tokens,tokens}-{limit,remaining,reset}``
headers (token buckets refilled continuously; resets in RFC 3339; token remainders rounded to
the nearest thousand); count_tokens is neither limited nor given them. ``fake.org_limits =
OrgLimits(requests_per_minute=..., input_tokens_per_minute=..., output_tokens_per_minute=...,
concurrent=...)`` (default ``None``: nothing refused, the headers report huge limits) makes a
request beyond a limit a 429 ``rate_limit_error`` naming it, with ``retry-after`` (whole seconds,
rounded up) and the headers; such a 429 uses up no scripted reply. ITPM counts uncached input
plus cache writes; OTPM takes ``max_tokens`` up front and is settled to the output produced when
the answer ends. ``concurrent`` (a test knob, not an API limit) caps the requests served at once.
``fake.rate_limited_count`` counts those 429s; ``fake.max_in_flight`` is the most /v1/messages
requests served at once (admission to the answer's last byte, streamed or not; kept with or
without limits), unlike ``fake.in_flight``, the streams being written right now.

Admin cost report (0a.8): ``FakeAnthropic(admin_key=...)`` (default ``"sk-ant-admin-test"``)
serves ``GET /v1/organizations/cost_report`` from ``fake.costs`` (a list of
:class:`~tests.fakes.anthropic_admin.CostItem`); only the admin key is accepted there and it is
refused (401) on the Messages endpoints. ``fake.now`` (a callable returning an aware datetime)
is the default ``ending_at``. Query rules and the response shape are in
:mod:`tests.fakes.anthropic_admin`.

Usage::

    async with FakeAnthropic() as fake:
        fake.enqueue(Reply(text="Hi there"))
        client = anthropic.AsyncAnthropic(api_key="sk-test", base_url=fake.base_url)
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

from aiohttp import web

from tests.fakes.anthropic_admin import COST_REPORT_PATH, CostItem, CostReportError, cost_report
from tests.fakes.anthropic_cache import (
    IMAGE_TOKENS,
    PDF_TOKENS,
    CacheControlError,
    CachePlan,
    CacheUsage,
    PromptCache,
    estimate_tokens,
)
from tests.fakes.anthropic_files import (
    MAX_IMAGE_BYTES,
    StoredFile,
    check_messages,
    form_record,
    new_file,
    new_file_id,
    parse_form,
)
from tests.fakes.anthropic_limits import Admission, OrgLimits, RateLimiter, Refusal
from tests.fakes.anthropic_models import ThinkingPlan, plan_thinking
from tests.fakes.anthropic_tools import (
    NO_TOOLS,
    ToolPlan,
    ToolStep,
    WebFetch,
    WebSearch,
    check_script,
    check_tool_pairs,
    check_tools,
    plan_tools,
    send_call,
    text_block_start,
)

__all__ = [
    "COST_REPORT_PATH",
    "COUNT_TOKENS_PATH",
    "FILES_PATH",
    "IMAGE_TOKENS",
    "MAX_IMAGE_BYTES",
    "MAX_REQUEST_BYTES",
    "MAX_UPLOAD_BYTES",
    "MESSAGES_PATH",
    "PDF_TOKENS",
    "TOO_LARGE_MESSAGE",
    "CostItem",
    "FakeAnthropic",
    "OrgLimits",
    "RateLimiter",
    "RecordedRequest",
    "Reply",
    "StoredFile",
    "WebFetch",
    "WebSearch",
    "estimate_tokens",
]

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
ERROR_CODE_MESSAGES: dict[str, str] = {
    "enforced_spend_limit_reached": "You have reached your specified API usage limits. "
    "You will regain access on the 1st of next month at 00:00 UTC.",
    "contract_spend_limit_reached": "Your organization has reached its contract spend limit.",
    "ramp_limit_exceeded": "Your organization's usage is ramping up faster than allowed.",
}
REMOVED_PARAMS = ("temperature", "top_p", "top_k")  # rejected by API version 2026-10-21
MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
FILES_PATH = "/v1/files"
MODELS_PATH = "/v1/models"
MAX_REQUEST_BYTES = 32 * 1024 * 1024  # Messages and count_tokens bodies (B8: 413 above it)
MAX_UPLOAD_BYTES = 500 * 1024 * 1024  # one Files API upload body
TOO_LARGE_MESSAGE = "Request exceeds the maximum allowed number of bytes."
DEFAULT_ADMIN_KEY = "sk-ant-admin-test"
_PIECES = re.compile(r"\s*\S+|\s+\Z")


@dataclass
class Reply:
    """One scripted answer of the fake."""

    text: str = "Hello from the fake Claude."
    chunks: list[str] | None = None  # exact text deltas; default: word-sized pieces of `text`
    delay: float = 0.0  # seconds to sleep between deltas (thinking and text)
    first_byte_delay: float = 0.0  # seconds to sleep before sending anything
    status: int = 200  # != 200: an error response (no stream), error type from ERROR_TYPES
    error_message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers
    # Stream faults, applied after `fault_after` text deltas (streaming requests only):
    # midstream_error: `event: error` then end; eof: end the body without the closing events;
    # drop: abort the TCP connection (the client sees an incomplete chunked read).
    # garbage: an event whose data is not JSON (what a broken proxy might send).
    fault: Literal["midstream_error", "eof", "drop", "garbage"] | None = None
    fault_after: int = 0
    fault_error_type: str = "overloaded_error"
    stop_reason: str = "end_turn"  # replaced by "max_tokens" when max_tokens cuts the answer
    model: str | None = None  # default: the requested model
    # Input usage. If input_tokens is set or any cache number is non-zero, exactly these numbers
    # are reported (input_tokens default: the whole prompt); else the cache simulation's numbers.
    input_tokens: int | None = None  # uncached input tokens
    output_tokens: int | None = None  # default: thinking tokens + text deltas sent
    cache_creation_5m: int = 0
    cache_creation_1h: int = 0
    cache_read: int = 0
    # Thinking tokens spent when the request thinks (0: no thinking block even then).
    thinking_tokens: int = 0
    thinking_text: str = "Let me think this through."  # summarized thinking, word-sized deltas
    refusal_category: str | None = None  # stop_details.category with stop_reason="refusal"
    error_code: str | None = None  # error.details.error_code of an error reply
    # usage.server_tool_use; 0: counted from `tool_steps` (each successful use)
    web_search_requests: int = 0
    web_fetch_requests: int = 0
    inference_geo: str | None = None  # None: the request's inference_geo, else "global"
    speed: str | None = None  # None: the request's speed, else "standard"
    # Server tool uses before the text (module docstring, "Server tools"), and the URLs of
    # search results the text cites.
    tool_steps: list[ToolStep] = field(default_factory=list)
    cited: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        problem = check_script(self.tool_steps, self.cited)
        if problem is not None:
            raise ValueError(problem)

    def deltas(self) -> list[str]:
        """The text deltas to send; they always join back to the full answer."""
        if self.chunks is not None:
            return list(self.chunks)
        return _PIECES.findall(self.text)

    def total_output_tokens(self) -> int:
        """Output tokens of the whole scripted answer, ignoring max_tokens and thinking."""
        return len(self.deltas()) if self.output_tokens is None else self.output_tokens

    def input_usage(
        self,
        simulated: CacheUsage,
        body: dict[str, Any],
        files: dict[str, StoredFile] | None = None,
    ) -> CacheUsage:
        """The input side of the usage to report: the cache simulation's, unless this reply
        scripts any input number; then exactly the scripted ones (the rest 0, and the uncached
        input the whole prompt)."""
        cache = (self.cache_creation_5m, self.cache_creation_1h, self.cache_read)
        if self.input_tokens is None and not any(cache):
            return simulated
        if self.input_tokens is None:
            return CacheUsage(estimate_tokens(body, files or {}), *cache)
        return CacheUsage(self.input_tokens, *cache)


@dataclass
class RecordedRequest:
    """One request as received by the fake (header names lower-cased)."""

    path: str
    headers: dict[str, str]
    # Parsed JSON ({} when the body was empty, not a JSON object, or over the size limit). A
    # multipart upload: its plain fields as strings plus "file": {filename, content_type,
    # size_bytes} (never the bytes).
    body: dict[str, Any]
    # For benchmarks: (time.monotonic(), characters of text sent so far) per text delta.
    sent: list[tuple[float, int]] = field(default_factory=list)
    query: dict[str, list[str]] = field(default_factory=dict)  # query parameters, all values
    method: str = "POST"
    size: int = 0  # bytes of the request body received


@dataclass(frozen=True)
class Output:
    """What one successful answer contains once thinking and max_tokens are applied."""

    thinking_tokens: int  # spent; 0 = no thinking block
    thinking_pieces: list[str]
    signature: str
    deltas: list[str]  # the text deltas sent
    text_block: bool
    stop_reason: str
    output_tokens: int
    tools: ToolPlan = NO_TOOLS  # the server tool calls before the text


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def plan_output(
    reply: Reply, body: dict[str, Any], thinking: ThinkingPlan, tools: ToolPlan = NO_TOOLS
) -> Output:
    """Apply the request's thinking and max_tokens to a scripted reply (module docstring)."""
    max_tokens = int(body["max_tokens"])
    deltas = reply.deltas()
    thinks = thinking.thinks and reply.thinking_tokens > 0 and max_tokens > 0
    spent = min(reply.thinking_tokens, max_tokens) if thinks else 0
    pieces: list[str] = []
    if thinks and thinking.display != "omitted":
        pieces = _PIECES.findall(reply.thinking_text) or [reply.thinking_text]
    signature = base64.b64encode(
        hashlib.sha256(f"{reply.thinking_text}\n{secrets.token_hex(8)}".encode()).digest() * 2
    ).decode()
    if thinks and reply.thinking_tokens >= max_tokens:
        kept, text_block, cut = [], False, True
    else:
        room = max_tokens - spent
        kept, cut = deltas[:room], len(deltas) > room
        text_block = not (cut and not kept and not thinks)
        if tools.calls and not deltas:
            text_block = False  # the answer ends with its tool calls (e.g. a paused turn)
    if max_tokens - spent <= 0:
        tools = NO_TOOLS  # no room left to call a tool
    count = spent + len(kept) if reply.output_tokens is None else reply.output_tokens
    stop = "max_tokens" if cut else reply.stop_reason
    return Output(spent, pieces, signature, kept, text_block, stop, count, tools)


def error_response(
    status: int,
    message: str,
    request_id: str,
    headers: dict[str, str] | None = None,
    *,
    error_code: str | None = None,
) -> web.Response:
    """A JSON error in the API's shape, with the matching `request-id` header."""
    error: dict[str, Any] = {"type": ERROR_TYPES.get(status, "api_error"), "message": message}
    if error_code is not None:
        error["details"] = {"error_code": error_code}
    return web.json_response(
        {"type": "error", "error": error, "request_id": request_id},
        status=status,
        headers={"request-id": request_id, **(headers or {})},
    )


def too_large_response() -> web.Response:
    """A 413 as the edge sends it: a plain JSON error, no request id."""
    error = {"type": "request_too_large", "message": TOO_LARGE_MESSAGE}
    return web.json_response({"type": "error", "error": error}, status=413)


async def _read_capped(request: web.Request, limit: int) -> tuple[bytes | None, int]:
    """The whole body (None when it is over `limit` bytes, drained but not kept) and its size."""
    kept, size = bytearray(), 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size <= limit:
            kept.extend(chunk)
        else:
            kept.clear()
    return (bytes(kept) if size <= limit else None), size


def _usage(
    reply: Reply,
    body: dict[str, Any],
    usage: CacheUsage,
    output: int,
    thinking: int,
    tools: ToolPlan | None,
) -> dict[str, Any]:
    """The usage object; `tools`: the answer's tool calls (None: message_start, before any)."""
    geo, speed = body.get("inference_geo"), body.get("speed")
    return {
        **usage.fields(),
        "output_tokens": output,
        "output_tokens_details": {"thinking_tokens": thinking},
        "server_tool_use": {
            "web_search_requests": reply.web_search_requests or (tools or NO_TOOLS).searches,
            "web_fetch_requests": reply.web_fetch_requests or (tools or NO_TOOLS).fetches,
        },
        "inference_geo": reply.inference_geo or (geo if isinstance(geo, str) else "global"),
        "speed": reply.speed or (speed if isinstance(speed, str) else "standard"),
        "service_tier": "standard",
    }


def _stop_details(reply: Reply, stop_reason: str) -> dict[str, Any] | None:
    if stop_reason != "refusal":
        return None
    return {
        "type": "refusal",
        "category": reply.refusal_category,
        "explanation": "The fake declined this request (scripted refusal).",
    }


class FakeAnthropic:
    """In-process Anthropic Messages API server; see the module docstring."""

    def __init__(
        self,
        api_key: str = "sk-test",
        min_cache_tokens: int = 0,
        cache_lookback_blocks: int = 20,
        admin_key: str = DEFAULT_ADMIN_KEY,
    ) -> None:
        self.api_key = api_key
        self.admin_key = admin_key
        self.cache = PromptCache(min_cache_tokens, cache_lookback_blocks)
        self.costs: list[CostItem] = []  # what the admin cost report answers from
        self.now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
        self.requests: list[RecordedRequest] = []
        # Files API: what it holds (id -> file), every successful upload in order (deleted ones
        # included), and whether it exists at all (False: every /v1/files call is a 404).
        self.files: dict[str, StoredFile] = {}
        self.uploads: list[StoredFile] = []
        self.files_api = True
        self.max_request_bytes = MAX_REQUEST_BYTES  # Messages / count_tokens body limit (413)
        self.max_upload_bytes = MAX_UPLOAD_BYTES  # Files API upload body limit (413)
        self.disconnects = 0  # streams the client closed before the fake finished writing
        self.model_lists = 0  # GET /v1/models requests (the bot's key check), any key
        self.in_flight = 0  # streams currently being written
        # Organisation rate limits and their headers (module docstring, anthropic_limits).
        self.limiter = RateLimiter(wall=lambda: self.now())
        self._message_requests: list[RecordedRequest] = []
        self._script: list[Reply] = []
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = int(self._runner.addresses[0][1])

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeAnthropic is not started")
        return f"http://127.0.0.1:{self._port}"

    # -- scripting and inspection ----------------------------------------------------------------

    def enqueue(self, *replies: Reply) -> None:
        self._script.extend(replies)

    def add_file(
        self,
        data: bytes,
        filename: str = "file.bin",
        mime_type: str = "application/octet-stream",
        *,
        expires_in_seconds: int | None = None,
    ) -> StoredFile:
        """Store a file as if it had been uploaded earlier (not counted in `uploads`)."""
        now = self.now()
        expires = (
            None if expires_in_seconds is None else now + dt.timedelta(seconds=expires_in_seconds)
        )
        stored = StoredFile(new_file_id(), filename, mime_type, data, now, expires)
        self.files[stored.id] = stored
        return stored

    @property
    def org_limits(self) -> OrgLimits | None:
        """The organisation's rate limits (None: none); setting them refills every bucket."""
        return self.limiter.limits

    @org_limits.setter
    def org_limits(self, limits: OrgLimits | None) -> None:
        self.limiter.limits = limits

    @property
    def rate_limited_count(self) -> int:
        """429s answered because a request was beyond `org_limits` (not scripted 429s)."""
        return self.limiter.rate_limited

    @property
    def max_in_flight(self) -> int:
        """The most /v1/messages requests the fake was serving at one time."""
        return self.limiter.max_serving

    @max_in_flight.setter
    def max_in_flight(self, value: int) -> None:
        self.limiter.max_serving = value

    @property
    def message_requests(self) -> list[RecordedRequest]:
        return list(self._message_requests)

    async def wait_for_requests(self, n: int, timeout: float = 5.0) -> None:
        try:
            async with asyncio.timeout(timeout):
                while len(self._message_requests) < n:
                    await asyncio.sleep(0.005)
        except TimeoutError:
            got = len(self._message_requests)
            raise AssertionError(f"expected {n} message requests, got {got}") from None

    # -- HTTP handling ---------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        request_id = _new_id("req")
        headers = {name.lower(): value for name, value in request.headers.items()}
        query = {key: request.query.getall(key) for key in request.query}
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        keys = (headers.get("x-api-key"), bearer)
        if request.method == "GET" and request.path == MODELS_PATH:
            return self._models(keys, request_id)
        is_files = request.path == FILES_PATH or request.path.startswith(FILES_PATH + "/")
        limit = self.max_upload_bytes if is_files else self.max_request_bytes
        raw, size = await _read_capped(request, limit)
        recorded = RecordedRequest(
            request.path, headers, {}, query=query, method=request.method, size=size
        )
        self.requests.append(recorded)
        if raw is None:
            return too_large_response()
        if is_files:
            return self._files(request, request_id, headers, keys, raw, recorded)
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = None
        body: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
        recorded.body = body

        if request.method == "GET" and request.path == COST_REPORT_PATH:
            if self.admin_key not in keys:
                return error_response(401, "invalid admin API key", request_id)
            try:
                report = cost_report(self.costs, request.query, self.now)
            except CostReportError as error:
                return error_response(400, str(error), request_id)
            return web.json_response(report, headers={"request-id": request_id})
        if request.method != "POST" or request.path not in (MESSAGES_PATH, COUNT_TOKENS_PATH):
            return error_response(404, f"Not found: {request.method} {request.path}", request_id)
        if self.api_key not in keys:
            return error_response(401, "invalid x-api-key", request_id)
        is_count = request.path == COUNT_TOKENS_PATH
        limit_headers = {} if is_count else self.limiter.headers()
        problem = (
            self._validate(headers, body, require_max_tokens=not is_count)
            or check_messages(body["messages"], self.files)
            or check_tools(body.get("tools"))
            or check_tool_pairs(body["messages"])
            if isinstance(parsed, dict)
            else "The request body is not a JSON object."
        )
        if problem is not None:
            return error_response(400, problem, request_id, limit_headers)
        thinking = plan_thinking(body, max_tokens=None if is_count else body["max_tokens"])
        if isinstance(thinking, str):
            return error_response(400, thinking, request_id, limit_headers)
        try:
            plan = self.cache.plan(body, self.files)
        except CacheControlError as error:
            return error_response(400, str(error), request_id, limit_headers)
        if is_count:  # the total prompt, input + cache tokens; the cache is not touched
            return web.json_response(
                {"input_tokens": estimate_tokens(body, self.files)},
                headers={"request-id": request_id},
            )

        reply = self._script[0] if self._script else Reply()
        now = self.now().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        tools = plan_tools(reply.tool_steps, reply.cited, body, now)
        if isinstance(tools, str):  # the script uses a tool the request does not offer
            return error_response(400, tools, request_id, limit_headers)
        self._message_requests.append(recorded)
        usage = reply.input_usage(plan.usage, body, self.files)
        itpm = usage.input_tokens + usage.creation_5m + usage.creation_1h  # reads do not count
        admission = self.limiter.admit(itpm, int(body["max_tokens"]))
        if isinstance(admission, Refusal):
            retry = {**self.limiter.headers(), "retry-after": str(admission.retry_after)}
            return error_response(429, admission.message, request_id, retry)
        if self._script:
            self._script.pop(0)
        try:
            return await self._answer(
                request,
                request_id,
                reply,
                body,
                usage,
                plan,
                (thinking, tools),
                recorded,
                admission,
            )
        finally:
            self.limiter.finish(admission)

    async def _answer(
        self,
        request: web.Request,
        request_id: str,
        reply: Reply,
        body: dict[str, Any],
        usage: CacheUsage,
        plan: CachePlan,
        how: tuple[ThinkingPlan, ToolPlan],
        recorded: RecordedRequest,
        admission: Admission,
    ) -> web.StreamResponse:
        """Answer an admitted /v1/messages request with its scripted reply, thinking and
        calling tools as `how` says."""
        if reply.first_byte_delay:
            await asyncio.sleep(reply.first_byte_delay)
        if reply.status != 200:
            self.limiter.finish(admission)  # no output
            text = reply.error_message or ERROR_CODE_MESSAGES.get(reply.error_code or "")
            text = text or f"Scripted {ERROR_TYPES.get(reply.status, 'api_error')}"
            extra = {**self.limiter.headers(), **reply.headers}
            return error_response(
                reply.status, text, request_id, extra, error_code=reply.error_code
            )
        self.cache.commit(plan)
        output = plan_output(reply, body, *how)
        if body.get("stream"):
            return await self._stream(
                request, request_id, reply, body, usage, output, recorded, admission
            )
        admission.output_tokens = output.output_tokens
        self.limiter.finish(admission)
        message = self._message(reply, body, usage, output, final=True)
        headers = {"request-id": request_id, **self.limiter.headers(), **reply.headers}
        return web.json_response(message, headers=headers)

    def _files(
        self,
        request: web.Request,
        request_id: str,
        headers: dict[str, str],
        keys: tuple[str | None, str],
        raw: bytes,
        recorded: RecordedRequest,
    ) -> web.Response:
        """The Files API: upload, metadata, delete (module docstring)."""
        method, path = request.method, request.path
        fields = parse_form(raw, headers.get("content-type", "")) if method == "POST" else None
        if isinstance(fields, dict):
            recorded.body = form_record(fields)
        if not self.files_api:
            return error_response(404, f"Not found: {method} {path}", request_id)
        if self.api_key not in keys:
            return error_response(401, "invalid x-api-key", request_id)
        if "anthropic-version" not in headers:
            return error_response(400, "anthropic-version: header is required", request_id)
        ok = {"request-id": request_id}
        if path == FILES_PATH and method == "POST":
            if not isinstance(fields, dict):
                return error_response(400, str(fields), request_id)
            made = new_file(fields, self.now())
            if isinstance(made, str):
                return error_response(400, made, request_id)
            self.files[made.id] = made
            self.uploads.append(made)
            return web.json_response(made.metadata(), headers=ok)
        file_id = path.removeprefix(FILES_PATH + "/")
        if path == FILES_PATH or "/" in file_id or method not in ("GET", "DELETE"):
            return error_response(404, f"Not found: {method} {path}", request_id)
        stored = self.files.get(file_id)
        if stored is None:
            return error_response(404, f"File not found: {file_id}", request_id)
        if method == "DELETE":
            del self.files[file_id]
            return web.json_response({"id": file_id, "type": "file_deleted"}, headers=ok)
        return web.json_response(stored.metadata(), headers=ok)

    def _models(self, keys: tuple[str | None, str], request_id: str) -> web.Response:
        """GET /v1/models (module docstring): the key check, not recorded in `requests`."""
        self.model_lists += 1
        if self.api_key not in keys:
            return error_response(401, "invalid x-api-key", request_id)
        model = {
            "type": "model",
            "id": "claude-sonnet-5-5",
            "display_name": "Claude Sonnet 5.5",
            "created_at": "2026-01-01T00:00:00Z",
            "lifecycle": "active",
        }
        page = {"data": [model], "has_more": False, "first_id": model["id"], "last_id": model["id"]}
        return web.json_response(page, headers={"request-id": request_id})

    @staticmethod
    def _validate(
        headers: dict[str, str], body: dict[str, Any], *, require_max_tokens: bool
    ) -> str | None:
        if "anthropic-version" not in headers:
            return "anthropic-version: header is required"
        for name in REMOVED_PARAMS:
            if name in body:
                return f"{name}: this parameter is not supported by this API version"
        if not isinstance(body.get("model"), str) or not body["model"]:
            return "model: Field required"
        if require_max_tokens and not isinstance(body.get("max_tokens"), int):
            return "max_tokens: Field required"
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages: at least one message is required"
        if not isinstance(messages[0], dict) or messages[0].get("role") != "user":
            return "messages: first message must use the `user` role"
        return None

    @staticmethod
    def _message(
        reply: Reply, body: dict[str, Any], usage: CacheUsage, output: Output, *, final: bool
    ) -> dict[str, Any]:
        """The whole message (`final`) or the one in `message_start` (empty, output 1)."""
        content: list[dict[str, Any]] = []
        if final and output.thinking_tokens:
            thinking = "".join(output.thinking_pieces)
            content.append(
                {"type": "thinking", "thinking": thinking, "signature": output.signature}
            )
        if final:
            for call in output.tools.calls:
                content.extend((call.use, call.result))
        if final and output.text_block:
            text: dict[str, Any] = {"type": "text", "text": "".join(output.deltas)}
            if output.tools.citations:
                text["citations"] = list(output.tools.citations)
            content.append(text)
        message = {
            "id": _new_id("msg"),
            "type": "message",
            "role": "assistant",
            "content": content,
            "model": reply.model or body["model"],
            "stop_reason": output.stop_reason if final else None,
            "stop_sequence": None,
            "usage": _usage(
                reply,
                body,
                usage,
                output.output_tokens if final else 1,
                output.thinking_tokens if final else 0,
                output.tools if final else None,
            ),
        }
        if final:
            message["stop_details"] = _stop_details(reply, output.stop_reason)
        return message

    async def _stream(
        self,
        request: web.Request,
        request_id: str,
        reply: Reply,
        body: dict[str, Any],
        usage: CacheUsage,
        output: Output,
        recorded: RecordedRequest,
        admission: Admission,
    ) -> web.StreamResponse:
        """Write the SSE events of B7, one write (and flush) per event, honouring faults."""
        sse_headers = {"content-type": "text/event-stream; charset=utf-8", "request-id": request_id}
        limit_headers = self.limiter.headers()
        response = web.StreamResponse(headers={**sse_headers, **limit_headers, **reply.headers})
        response.enable_chunked_encoding()
        sent_deltas = 0

        async def send(event: dict[str, Any]) -> None:
            data = json.dumps(event, separators=(",", ":"))
            await response.write(f"event: {event['type']}\ndata: {data}\n\n".encode())

        async def send_delta(index: int, delta: dict[str, Any]) -> None:
            nonlocal sent_deltas
            if sent_deltas and reply.delay:
                await asyncio.sleep(reply.delay)
            sent_deltas += 1
            await send({"type": "content_block_delta", "index": index, "delta": delta})

        deltas = output.deltas[: reply.fault_after] if reply.fault else output.deltas
        first_tool = 1 if output.thinking_tokens else 0  # a use and its result per call
        text_index = first_tool + 2 * len(output.tools.calls)
        self.in_flight += 1
        try:
            await response.prepare(request)
            start = self._message(reply, body, usage, output, final=False)
            await send({"type": "message_start", "message": start})
            if output.thinking_tokens:
                block = {"type": "thinking", "thinking": "", "signature": ""}
                await send({"type": "content_block_start", "index": 0, "content_block": block})
                await send({"type": "ping"})
                for piece in output.thinking_pieces:
                    await send_delta(0, {"type": "thinking_delta", "thinking": piece})
                signature = {"type": "signature_delta", "signature": output.signature}
                await send({"type": "content_block_delta", "index": 0, "delta": signature})
                await send({"type": "content_block_stop", "index": 0})
                admission.output_tokens = output.thinking_tokens
            for number, call in enumerate(output.tools.calls):
                await send_call(send, first_tool + 2 * number, call)
            if output.text_block:
                start_block = {"type": "content_block_start", "index": text_index}
                block = text_block_start(output.tools.citations)
                await send({**start_block, "content_block": block})
                for cited in output.tools.citations:
                    delta = {"type": "citations_delta", "citation": cited}
                    await send({"type": "content_block_delta", "index": text_index, "delta": delta})
            if not output.thinking_tokens:
                await send({"type": "ping"})
            for number, text in enumerate(deltas, 1):
                await send_delta(text_index, {"type": "text_delta", "text": text})
                admission.output_tokens = output.thinking_tokens + number
                so_far = recorded.sent[-1][1] if recorded.sent else 0
                recorded.sent.append((time.monotonic(), so_far + len(text)))
            if reply.fault == "midstream_error":
                message = reply.error_message or "Overloaded"
                error = {"type": reply.fault_error_type, "message": message}
                await send({"type": "error", "error": error})
            if reply.fault == "garbage":
                await response.write(b"event: content_block_delta\ndata: {not json\n\n")
            if reply.fault == "drop":
                if request.transport is not None:
                    request.transport.abort()
                return response
            if reply.fault is None:
                if output.text_block:
                    await send({"type": "content_block_stop", "index": text_index})
                stop: dict[str, Any] = {"stop_reason": output.stop_reason, "stop_sequence": None}
                details = _stop_details(reply, output.stop_reason)
                if details is not None:
                    stop["stop_details"] = details
                totals = _usage(
                    reply, body, usage, output.output_tokens, output.thinking_tokens, output.tools
                )
                del totals["cache_creation"]  # not in MessageDeltaUsage (no TTL breakdown)
                await send({"type": "message_delta", "delta": stop, "usage": totals})
                await send({"type": "message_stop"})
                admission.output_tokens = output.output_tokens
            await response.write_eof()
        except ConnectionResetError:  # includes aiohttp's ClientConnectionResetError
            self.disconnects += 1
        except asyncio.CancelledError:
            self.disconnects += 1
            raise
        finally:
            self.in_flight -= 1
        return response
