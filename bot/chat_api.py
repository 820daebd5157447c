"""`POST /chat`: Claude over plain HTTP, as JSON or as a text stream, under the bot's rules.

The same admission (rate limits, context window, budgets), ledger (channel `api`) and metrics
as Slack. A client that disconnects cancels the Claude request; what was used is recorded.
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

from bot.admission import Admission, Refused, ReplySettings
from bot.claude import AnswerStream, Claude, Deadlines
from bot.context import estimate_tokens
from bot.inflight import InFlight
from bot.recording import Recorder
from bot.store import Outcome, Place, Store, UsageRow
from bot.tasks import classify

API = "api"  # the ledger's team, channel and user for this surface
_CONVERSATION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


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
    def __init__(
        self,
        *,
        token: str,
        max_chars: int,
        admission: Admission,
        claude: Claude,
        recorder: Recorder,
        store: Store,
        settings: ReplySettings,
        deadlines: Deadlines,
        in_flight: InFlight,
    ) -> None:
        self._token = token
        self._max_chars = max_chars
        self._admission = admission
        self._claude = claude
        self._recorder = recorder
        self._store = store
        self._settings = settings
        self._deadlines = deadlines
        self._in_flight = in_flight

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self._in_flight.track()
        try:
            self._authorize(request)
            chat = await self._parse(request)
        except BadRequest as error:
            return _error(error.status, error.code, error.message)
        kind, text = classify(chat.message)
        text = text or chat.message
        max_tokens = self._settings.max_tokens_for(kind)
        conversation = chat.conversation_id or f"once-{secrets.token_hex(6)}"
        place = Place(API, API, conversation)
        admitted = await self._admission.admit(place, chat.user, text, max_tokens=max_tokens)
        if isinstance(admitted, Refused):
            return _refusal(admitted)
        try:
            turn_id = None
            if chat.conversation_id:
                await self._store.add_turn(
                    place,
                    role="user",
                    text=text,
                    user_id=API,
                    ts=None,
                    tokens=estimate_tokens(text),
                )
                turn_id = await self._store.add_turn(
                    place,
                    role="assistant",
                    text="",
                    user_id=None,
                    ts=None,
                    outcome=Outcome.STREAMING,
                )
            answer = self._claude.stream(
                model=self._settings.model,
                system=admitted.context.system,
                prompts=admitted.context.prompts,
                max_tokens=max_tokens,
                deadlines=self._deadlines,
            )
            parts: list[str] = []
            streamed: web.StreamResponse | None = None
            try:
                if chat.stream:
                    streamed = await self._stream(request, answer, parts)
                else:
                    async for piece in answer:
                        parts.append(piece)
            finally:
                # Shielded: a client that went away must not cost us the ledger row.
                usage = await asyncio.shield(
                    self._record(place, turn_id, answer, "".join(parts), chat.user)
                )
            return streamed or self._json(answer, "".join(parts), usage)
        finally:
            admitted.slot.release()

    async def _stream(
        self, request: web.Request, answer: AnswerStream, parts: list[str]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await response.prepare(request)
        iterator = answer.__aiter__()
        try:
            async for piece in iterator:
                parts.append(piece)
                await response.write(piece.encode())
        except ConnectionResetError:
            await iterator.aclose()  # the client left: stop paying for the answer
            return response
        except asyncio.CancelledError:
            # Shutdown: end the stream with a word about it (the usage is still recorded).
            await iterator.aclose()
            with contextlib.suppress(ConnectionResetError):
                await response.write(b"\n\n[interrupted: the server is restarting]")
            raise
        failure = answer.finished.error
        if failure is not None:
            await response.write(f"\n\n[error: {failure.user_message}]".encode())
        await response.write_eof()
        return response

    async def _record(
        self, place: Place, turn_id: int | None, answer: AnswerStream, text: str, user: str
    ) -> UsageRow:
        usage = self._recorder.usage_row(answer.finished, text=text, stopped=False)
        await self._recorder.record(
            place, surface=API, turn_id=turn_id, text=text, user_id=user, usage=usage
        )
        return usage

    def _json(self, answer: AnswerStream, text: str, usage: UsageRow) -> web.Response:
        finished = answer.finished
        body: dict[str, Any] = {
            "reply": text,
            "model": finished.model or self._settings.model,
            "stop_reason": finished.stop_reason,
            "usage": usage_json(usage),
        }
        if finished.error is not None:
            body["error"] = {
                "type": finished.error.failure.value,
                "message": finished.error.user_message,
            }
            return web.json_response(body, status=502)
        return web.json_response(body)

    def _authorize(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip(), self._token):
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
        if conversation is not None and (
            not isinstance(conversation, str) or not _CONVERSATION_ID.match(conversation)
        ):
            raise BadRequest(
                "invalid_conversation_id",
                "`conversation_id` must be 1-100 letters, digits or _ . : -",
            )
        user = body.get("user", API)
        if not isinstance(user, str) or not _CONVERSATION_ID.match(user):
            raise BadRequest("invalid_user", "`user` must be 1-100 letters, digits or _ . : -")
        return ChatRequest(message.strip(), stream, conversation, user)


def usage_json(usage: UsageRow) -> dict[str, Any]:
    cost = usage.cost_micros
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_write_5m_tokens": usage.cache_write_5m_tokens,
        "cache_write_1h_tokens": usage.cache_write_1h_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cost_micros": cost,
        "cost_usd": None if cost is None else f"{cost / 1_000_000:.6f}",
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
