"""A scriptable, in-process fake of the Anthropic Messages API.

Design:

* A real HTTP server (``aiohttp.web``) bound to ``127.0.0.1`` on a random free port, running in the
  test's own event loop (no threads), so the real ``anthropic.AsyncAnthropic`` client can be pointed
  at it with ``base_url=fake.base_url`` and every byte crosses a real socket.
* It speaks the wire format of API version 2026-10-21 as read from SDK 2.12 (see PLATFORM.md
  B7-B9, B13): ``POST /v1/messages`` (JSON or SSE stream) and ``POST /v1/messages/count_tokens``,
  ``Authorization: Bearer`` or ``x-api-key`` auth, a ``request-id`` header on every response and
  ``{"type": "error", "error": {...}, "request_id": ...}`` error bodies.
* Tests script answers with :class:`Reply` objects in a FIFO queue (``enqueue``); when the queue is
  empty a default ``Reply()`` answers. A reply can be slow, an HTTP error, or a stream fault
  (``event: error`` mid-stream, clean EOF without ``message_stop``, or an abrupt TCP abort).
* Everything received is recorded (``requests``), so tests can assert on what the bot sent.
  Recorded header names are lower-cased.
* Prompt caching (B10) is simulated by :class:`~tests.fakes.anthropic_cache.PromptCache`
  (``fake.cache``): ``cache_control`` marks on system blocks, message content blocks and at the
  top level (automatic caching) make successful requests write prefixes, and later requests
  sharing a cached prefix are billed with cache reads; the rules are in that module's docstring.
  ``FakeAnthropic(min_cache_tokens=...)`` sets the minimum cacheable prefix (default 0), and
  ``cache_lookback_blocks`` the lookback window (default 20). A ``Reply`` that sets
  ``input_tokens`` or any non-zero ``cache_*`` number reports exactly its own numbers instead
  (unset cache numbers 0, unset ``input_tokens`` the whole prompt); the cache is still updated.

Usage::

    async with FakeAnthropic() as fake:
        fake.enqueue(Reply(text="Hi there"))
        client = anthropic.AsyncAnthropic(api_key="sk-test", base_url=fake.base_url)
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

from aiohttp import web

from tests.fakes.anthropic_cache import (
    CacheControlError,
    CacheUsage,
    PromptCache,
    estimate_tokens,
)

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
REMOVED_PARAMS = ("temperature", "top_p", "top_k")  # rejected by API version 2026-10-21
MESSAGES_PATH = "/v1/messages"
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"


@dataclass
class Reply:
    """One scripted answer of the fake."""

    text: str = "Hello from the fake Claude."
    chunks: list[str] | None = None  # exact text deltas; default: word-sized pieces of `text`
    delay: float = 0.0  # seconds to sleep between deltas
    first_byte_delay: float = 0.0  # seconds to sleep before sending anything
    status: int = 200  # != 200: an error response (no stream), error type from ERROR_TYPES
    error_message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers
    # Stream faults, applied after `fault_after` deltas (streaming requests only):
    # midstream_error: `event: error` then end; eof: end the body without the closing events;
    # drop: abort the TCP connection (the client sees an incomplete chunked read).
    # garbage: an event whose data is not JSON (what a broken proxy might send).
    fault: Literal["midstream_error", "eof", "drop", "garbage"] | None = None
    fault_after: int = 0
    fault_error_type: str = "overloaded_error"
    stop_reason: str = "end_turn"
    model: str | None = None  # default: the requested model
    # Input usage. If input_tokens is set or any cache number is non-zero, exactly these numbers
    # are reported (input_tokens default: the whole prompt); else the cache simulation's numbers.
    input_tokens: int | None = None  # uncached input tokens
    output_tokens: int | None = None  # default: number of chunks
    cache_creation_5m: int = 0
    cache_creation_1h: int = 0
    cache_read: int = 0

    def deltas(self) -> list[str]:
        """The text deltas to send; they always join back to the full answer."""
        if self.chunks is not None:
            return list(self.chunks)
        return re.findall(r"\s*\S+|\s+\Z", self.text)

    def total_output_tokens(self) -> int:
        return len(self.deltas()) if self.output_tokens is None else self.output_tokens

    def input_usage(self, simulated: CacheUsage, body: dict[str, Any]) -> CacheUsage:
        """The input side of the usage to report: the cache simulation's, unless this reply
        scripts any input number; then exactly the scripted ones (the rest 0, and the uncached
        input the whole prompt)."""
        cache = (self.cache_creation_5m, self.cache_creation_1h, self.cache_read)
        if self.input_tokens is None and not any(cache):
            return simulated
        uncached = estimate_tokens(body) if self.input_tokens is None else self.input_tokens
        return CacheUsage(uncached, *cache)


@dataclass
class RecordedRequest:
    """One request as received by the fake (header names lower-cased)."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]  # parsed JSON ({} when the body was empty or not a JSON object)
    # For benchmarks: (time.monotonic(), characters of text sent so far) per text delta.
    sent: list[tuple[float, int]] = field(default_factory=list)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def error_response(
    status: int, message: str, request_id: str, headers: dict[str, str] | None = None
) -> web.Response:
    """A JSON error in the API's shape, with the matching `request-id` header."""
    error_type = ERROR_TYPES.get(status, "api_error")
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return web.json_response(
        {**body, "request_id": request_id},
        status=status,
        headers={"request-id": request_id, **(headers or {})},
    )


class FakeAnthropic:
    """In-process Anthropic Messages API server; see the module docstring."""

    def __init__(
        self, api_key: str = "sk-test", min_cache_tokens: int = 0, cache_lookback_blocks: int = 20
    ) -> None:
        self.api_key = api_key
        self.cache = PromptCache(min_cache_tokens, cache_lookback_blocks)
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0  # streams the client closed before the fake finished writing
        self.in_flight = 0  # streams currently being written
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
        raw = await request.read()
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = None
        body: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
        headers = {name.lower(): value for name, value in request.headers.items()}
        recorded = RecordedRequest(request.path, headers, body)
        self.requests.append(recorded)

        if request.method != "POST" or request.path not in (MESSAGES_PATH, COUNT_TOKENS_PATH):
            return error_response(404, f"Not found: {request.method} {request.path}", request_id)
        bearer = headers.get("authorization", "").removeprefix("Bearer ")
        if self.api_key not in (headers.get("x-api-key"), bearer):
            return error_response(401, "invalid x-api-key", request_id)
        is_count = request.path == COUNT_TOKENS_PATH
        problem = (
            self._validate(headers, body, require_max_tokens=not is_count)
            if isinstance(parsed, dict)
            else "The request body is not a JSON object."
        )
        if problem is not None:
            return error_response(400, problem, request_id)
        try:
            plan = self.cache.plan(body)
        except CacheControlError as error:
            return error_response(400, str(error), request_id)
        if is_count:  # the total prompt, input + cache tokens; the cache is not touched
            return web.json_response(
                {"input_tokens": estimate_tokens(body)}, headers={"request-id": request_id}
            )

        self._message_requests.append(recorded)
        reply = self._script.pop(0) if self._script else Reply()
        if reply.first_byte_delay:
            await asyncio.sleep(reply.first_byte_delay)
        if reply.status != 200:
            text = reply.error_message or f"Scripted {ERROR_TYPES.get(reply.status, 'api_error')}"
            return error_response(reply.status, text, request_id, reply.headers)
        self.cache.commit(plan)
        usage = reply.input_usage(plan.usage, body)
        if body.get("stream"):
            return await self._stream(request, request_id, reply, body, usage, recorded)
        message = self._message(reply, body, usage, final=True)
        return web.json_response(message, headers={"request-id": request_id, **reply.headers})

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
        reply: Reply, body: dict[str, Any], usage: CacheUsage, *, final: bool
    ) -> dict[str, Any]:
        """The whole message (`final`) or the one in `message_start` (empty, output 1)."""
        text = "".join(reply.deltas())
        return {
            "id": _new_id("msg"),
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": text}] if final else [],
            "model": reply.model or body["model"],
            "stop_reason": reply.stop_reason if final else None,
            "stop_sequence": None,
            "usage": {
                **usage.fields(),
                "output_tokens": reply.total_output_tokens() if final else 1,
                "service_tier": "standard",
            },
        }

    async def _stream(
        self,
        request: web.Request,
        request_id: str,
        reply: Reply,
        body: dict[str, Any],
        usage: CacheUsage,
        recorded: RecordedRequest,
    ) -> web.StreamResponse:
        """Write the SSE events of B7, one write (and flush) per event, honouring faults."""
        sse_headers = {"content-type": "text/event-stream; charset=utf-8", "request-id": request_id}
        response = web.StreamResponse(headers={**sse_headers, **reply.headers})
        response.enable_chunked_encoding()

        async def send(event: dict[str, Any]) -> None:
            data = json.dumps(event, separators=(",", ":"))
            await response.write(f"event: {event['type']}\ndata: {data}\n\n".encode())

        deltas = reply.deltas()
        self.in_flight += 1
        try:
            await response.prepare(request)
            start = self._message(reply, body, usage, final=False)
            await send({"type": "message_start", "message": start})
            start_block = {"type": "content_block_start", "index": 0}
            await send({**start_block, "content_block": {"type": "text", "text": ""}})
            await send({"type": "ping"})
            for number, text in enumerate(deltas[: reply.fault_after] if reply.fault else deltas):
                if number and reply.delay:
                    await asyncio.sleep(reply.delay)
                delta = {"type": "text_delta", "text": text}
                await send({"type": "content_block_delta", "index": 0, "delta": delta})
                sent = recorded.sent[-1][1] if recorded.sent else 0
                recorded.sent.append((time.monotonic(), sent + len(text)))
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
                await send({"type": "content_block_stop", "index": 0})
                stop = {"stop_reason": reply.stop_reason, "stop_sequence": None}
                output = {"output_tokens": reply.total_output_tokens()}
                await send({"type": "message_delta", "delta": stop, "usage": output})
                await send({"type": "message_stop"})
            await response.write_eof()
        except ConnectionResetError:  # includes aiohttp's ClientConnectionResetError
            self.disconnects += 1
        except asyncio.CancelledError:
            self.disconnects += 1
            raise
        finally:
            self.in_flight -= 1
        return response
