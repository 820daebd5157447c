"""`POST /chat`: Claude over plain HTTP, as JSON or as a text stream, under the bot's rules.

A thin adapter over the engine, like Slack: the same admission (rate limits, context window,
budgets), ledger (channel `api`) and metrics. Memory is per caller and `conversation_id`;
a call without one carries none. A client that disconnects cancels the Claude request;
what was used is recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.cost.prices import usd
from bot.engine import Ask, Ended, Engine, Refused, Turn, Waited
from bot.engine.limits import queue_timed_out
from bot.store import UsageRow

API = "api"  # the ledger's team, channel and user for this surface
NAME_LIMIT = 100  # characters in a conversation_id or a user (the store has room for them)
_NAME = re.compile(rf"^[A-Za-z0-9_.:-]{{1,{NAME_LIMIT}}}$")


@dataclass(frozen=True)
class ChatRequest:
    message: str
    stream: bool
    conversation_id: str | None
    user: str  # who is asking, for the ledger and the per-person limits


class BadRequest(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class ChatApi:
    def __init__(self, *, token: str, max_chars: int, engine: Engine) -> None:
        self._token = token.encode()
        self._max_chars = max_chars
        self._engine = engine

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self._engine.track()
        try:
            self._authorize(request)
            chat = await self._parse(request)
        except BadRequest as error:
            return _error(error.status, error.code, error.message)
        # A conversation belongs to the caller that named it: the same id under another
        # `user` is another conversation. Without an id there is no memory at all.
        thread = f"{chat.user}/{chat.conversation_id}" if chat.conversation_id else None
        ask = Ask(API, API, API, thread, chat.user, chat.message, channel_memory=False)
        turn = await self._engine.admit(ask)
        if isinstance(turn, Refused):
            return _refusal(turn)
        async with turn:
            if await turn.wait_for_slot() is not Waited.READY:
                return _error(
                    503, "busy", queue_timed_out(turn.queue_wait), **{"Retry-After": "30"}
                )
            await turn.start(thread=thread or f"{chat.user}/once-{secrets.token_hex(8)}")
            if chat.stream:
                return await self._stream(request, turn)
            ended = None
            async for event in turn.events():
                if isinstance(event, Ended):
                    ended = event
            assert ended is not None
            return _json(ended, await turn.recorded())

    async def _stream(self, request: web.Request, turn: Turn) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await response.prepare(request)
        sent = 0
        try:
            async for event in turn.events():
                if event.text[sent:]:
                    await response.write(event.text[sent:].encode())
                    sent = len(event.text)
                if isinstance(event, Ended) and event.error is not None:
                    await response.write(f"\n\n[error: {event.error.user_message}]".encode())
                elif isinstance(event, Ended) and event.stop_note is not None:
                    await response.write(f"\n\n[{event.stop_note}]".encode())
        except ConnectionResetError:
            await turn.interrupt("cancelled")  # the client left: stop paying for the answer
            return response
        except asyncio.CancelledError:
            # Shutdown: end the stream with a word about it (the usage is still recorded).
            await asyncio.shield(turn.interrupt("cancelled"))
            with contextlib.suppress(ConnectionResetError):
                await response.write(b"\n\n[interrupted: the server is restarting]")
            raise
        await response.write_eof()
        return response

    def _authorize(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        # Bytes, not str: compare_digest refuses non-ASCII text, and a header may carry some.
        given_bytes = given.strip().encode("utf-8", "surrogateescape")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given_bytes, self._token):
            raise BadRequest(
                "unauthorized", "Send Authorization: Bearer <CHAT_API_TOKEN>.", status=401
            )

    async def _parse(self, request: web.Request) -> ChatRequest:
        try:
            body = json.loads(await request.text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadRequest("invalid_json", "The body must be a JSON object.") from None
        if not isinstance(body, dict):
            raise BadRequest("invalid_json", "The body must be a JSON object.")
        message = body.get("message")
        if not isinstance(message, str):
            raise BadRequest("invalid_message", "`message` must be a string.")
        if not message.strip():
            raise BadRequest("invalid_message", "`message` must not be empty.")
        if len(message) > self._max_chars:
            raise BadRequest(
                "message_too_long",
                f"`message` has {len(message):,} characters; the most is {self._max_chars:,}.",
            )
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise BadRequest("invalid_stream", "`stream` must be true or false.")
        conversation = body.get("conversation_id")
        if conversation is not None:
            conversation = _name(conversation, "conversation_id")
        user = _name(body.get("user", API), "user")
        return ChatRequest(message.strip(), stream, conversation, user)


def _name(value: object, field: str) -> str:
    """A caller's name for a conversation or a user: short, and plain characters only."""
    if isinstance(value, str) and len(value) > NAME_LIMIT:
        raise BadRequest(
            f"invalid_{field}",
            f"`{field}` has {len(value):,} characters; the most is {NAME_LIMIT}.",
        )
    if not isinstance(value, str) or not _NAME.match(value):
        raise BadRequest(
            f"invalid_{field}", f"`{field}` must be 1-{NAME_LIMIT} letters, digits or _ . : -"
        )
    return value


def _json(ended: Ended, warnings: tuple[str, ...]) -> web.Response:
    body: dict[str, Any] = {
        "reply": ended.text,
        "model": ended.model,
        "stop_reason": ended.stop_reason,
        "usage": usage_json(ended.usage),
    }
    if ended.stop_note is not None:
        body["note"] = ended.stop_note
    if warnings:
        body["warnings"] = list(warnings)
    if ended.error is not None:
        body["error"] = {"type": ended.error.failure.value, "message": ended.error.user_message}
        return web.json_response(body, status=502)
    return web.json_response(body)


def usage_json(usage: UsageRow) -> dict[str, Any]:
    cost = usage.cost_micros
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_write_5m_tokens": usage.cache_write_5m_tokens,
        "cache_write_1h_tokens": usage.cache_write_1h_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "thinking_tokens": usage.thinking_tokens,
        "cost_micros": cost,
        "cost_usd": None if cost is None else usd(cost),
        # Where the price is unknown, what budgets count instead (never $0).
        "estimate_micros": None if cost is not None else usage.estimate_micros,
    }


def _error(status: int, code: str, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status, headers=headers)


def _refusal(refused: Refused) -> web.Response:
    if refused.reason == "too_long":
        return _error(400, "message_too_long", refused.message)
    headers = {}
    if refused.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(refused.retry_after)))
    status = 429 if refused.reason != "budget" else 402
    return _error(
        status, "rate_limited" if status == 429 else "over_budget", refused.message, **headers
    )
