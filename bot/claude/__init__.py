"""The Claude client wrapper: this package is the only place that imports `anthropic`.

It turns the SDK's stream into a vocabulary of our own: an `AnswerStream` yields text, and its
`Finished` carries usage, stop reason, resolved model, request id and latencies, plus a
`ClaudeError` when the request failed. Failures never escape as exceptions (cancellation
does), so callers always learn what was billed, even for a stream that broke halfway.
May import only `bot.errors`; the engine is its one caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

import anthropic
import httpx2
from anthropic.types import MessageParam, TextBlockParam

from bot.claude.failures import (
    NoRetryAtSpendLimit,
    describe,
    failed,
    merge_usage,
    status_failure,
)
from bot.claude.files import Uploaded, file_block, upload
from bot.claude.limits import LimitSignal, WatchRateLimits
from bot.claude.thinking import ThinkingPlan
from bot.claude.types import Attachment, Deadlines, Finished, Prompt, Role, Usage
from bot.errors import ClaudeError, ClaudeFailure

__all__ = [
    "AnswerStream",
    "Attachment",
    "Claude",
    "Deadlines",
    "Finished",
    "LimitSignal",
    "Prompt",
    "Role",
    "ThinkingPlan",
    "Uploaded",
    "Usage",
]

log = logging.getLogger(__name__)


class Claude:
    """One AsyncAnthropic client for the whole process."""

    def __init__(self, client: anthropic.AsyncAnthropic) -> None:
        self._client = client
        self._files_api = True  # until Anthropic (or a gateway) says it has none

    @classmethod
    def connect(
        cls,
        *,
        api_key: str,
        base_url: str | None,
        max_retries: int,
        timeout: float,
        on_limits: Callable[[LimitSignal], None] | None = None,
    ) -> Claude:
        """`on_limits` hears what every answer says of the organisation's rate limits."""
        watch = [WatchRateLimits(on_limits)] if on_limits is not None else []
        client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=max_retries,
            timeout=httpx2.Timeout(timeout, connect=min(timeout, 10.0)),
            # Outermost first: the watch sees each answer as NoRetryAtSpendLimit left it.
            middleware=[*watch, NoRetryAtSpendLimit()],
        )
        return cls(client)

    async def close(self) -> None:
        await self._client.close()

    def stream(
        self,
        *,
        model: str,
        system: str,
        prompts: Sequence[Prompt],
        plan: ThinkingPlan,
        deadlines: Deadlines | None = None,
    ) -> AnswerStream:
        """A stream of the answer's text; its `finished` holds what is known so far.

        `plan` says how much Claude may think and sets max_tokens to leave room for it.

        The system prompt and the conversation before the newest question are marked for
        prompt caching: the next turn of the conversation reads them at the cache price.
        """
        messages = [_message(p, cached=i == len(prompts) - 2) for i, p in enumerate(prompts)]
        system_blocks: list[TextBlockParam] = [
            {"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}
        ]
        return AnswerStream(
            self._client,
            model=model,
            system=system_blocks,
            messages=messages,
            plan=plan,
            deadlines=deadlines or Deadlines(),
        )

    async def upload(self, attachment: Attachment) -> Uploaded | None:
        """Upload a file to Anthropic's Files API once; None when it cannot be (a platform
        without the Files API, or an error): the file is then sent inline instead."""
        if not self._files_api:
            return None
        uploaded, available = await upload(self._client, attachment)
        self._files_api = available
        return uploaded

    async def count_tokens(self, *, model: str, system: str, prompts: Sequence[Prompt]) -> int:
        """Exact input tokens of a request, from Anthropic's free counting endpoint.

        Raises ClaudeError when the count cannot be had; callers fall back to an estimate.
        """
        try:
            counted = await self._client.messages.count_tokens(
                model=model, system=system, messages=[_message(p) for p in prompts]
            )
        except anthropic.APIStatusError as error:
            raise ClaudeError(status_failure(error), describe(error)) from error
        except (anthropic.APIError, httpx2.HTTPError) as error:
            raise ClaudeError(ClaudeFailure.UNAVAILABLE, describe(error)) from error
        return counted.input_tokens


class AnswerStream:
    """One streaming request. Iterate it for text; read `finished` at any time, even after a
    cancellation (Stop, shutdown), to learn the usage reported so far."""

    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        *,
        model: str,
        system: list[TextBlockParam],
        messages: list[MessageParam],
        plan: ThinkingPlan,
        deadlines: Deadlines,
    ) -> None:
        self._client = client
        self._model = model
        self._system = system
        self._plan = plan
        self._messages = messages
        self._deadlines = deadlines
        self.finished = Finished()
        self.deltas = 0  # text deltas
        self._events = 0  # text and thinking deltas: signs of life

    def _next_deadline(self, loop_now: float, start: float) -> tuple[float, str]:
        # Each wait gets its own deadline, so no timer ever spans a `yield` to the caller.
        d = self._deadlines
        limits = [(start + d.total, f"no complete answer within {d.total:g} s")]
        if self._events:  # thinking counts: a model may think for a while before it writes
            limits.append((loop_now + d.stall, f"the stream stalled for {d.stall:g} s"))
        else:
            limits.append((start + d.first_token, f"no first token within {d.first_token:g} s"))
        return min(limits)

    async def __aiter__(self) -> AsyncGenerator[str, None]:
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        start = loop.time()
        done = self.finished
        why = ""
        try:
            async with contextlib.AsyncExitStack() as stack:
                plan = self._plan
                manager = self._client.messages.stream(
                    model=self._model,
                    system=self._system,
                    max_tokens=plan.max_tokens,
                    messages=self._messages,
                    **_thinking_options(plan),
                )
                when, why = self._next_deadline(loop.time(), start)
                async with asyncio.timeout_at(when):
                    stream = await stack.enter_async_context(manager)
                done.request_id = stream.request_id
                events = stream.__aiter__()
                while True:
                    when, why = self._next_deadline(loop.time(), start)
                    try:
                        async with asyncio.timeout_at(when):
                            event = await anext(events)
                    except StopAsyncIteration:
                        break
                    if event.type == "message_start":
                        done.model = event.message.model
                        merge_usage(done.usage, event.message.usage)
                    elif event.type == "message_delta":
                        done.stop_reason = event.delta.stop_reason
                        detail = getattr(event.delta, "stop_details", None)
                        done.stop_detail = getattr(detail, "category", None)
                        merge_usage(done.usage, event.usage)
                    elif event.type == "content_block_delta" and event.delta.type in (
                        "thinking_delta",
                        "signature_delta",
                    ):
                        self._events += 1  # thinking: never shown, but a sign of life
                    elif (
                        event.type == "content_block_delta"
                        and event.delta.type == "text_delta"
                        and event.delta.text
                    ):
                        if done.ttft_ms is None:
                            done.ttft_ms = _ms_since(started)
                        self.deltas += 1
                        self._events += 1
                        yield event.delta.text
            if done.stop_reason is None:
                # A stream closed cleanly without message_delta: the answer is incomplete.
                done.error = ClaudeError(ClaudeFailure.STREAM_CUT, "stream ended without stop")
        except (asyncio.CancelledError, GeneratorExit):
            # Stopped by a person, a client that went away, or shutdown: not a failure.
            done.cancelled = True
            raise
        except TimeoutError:
            done.error = ClaudeError(ClaudeFailure.TIMEOUT, why)
        except anthropic.APIStatusError as error:
            done.request_id = error.request_id or done.request_id
            done.error = failed(status_failure(error), error)
        except (anthropic.APITimeoutError, httpx2.TimeoutException) as error:
            done.error = failed(ClaudeFailure.TIMEOUT, error)
        except (anthropic.APIConnectionError, httpx2.TransportError) as error:
            kind = ClaudeFailure.STREAM_DROPPED if self.deltas else ClaudeFailure.UNAVAILABLE
            done.error = failed(kind, error)
        except Exception as error:
            # Anything else (a garbled event, an SDK surprise) must still end the reply
            # cleanly: the user gets a note, the ledger a row, the log the traceback.
            log.exception("unexpected error in a Claude stream request_id=%s", done.request_id)
            kind = ClaudeFailure.STREAM_DROPPED if self.deltas else ClaudeFailure.UNAVAILABLE
            done.error = failed(kind, error)
        finally:
            done.latency_ms = _ms_since(started)
            if done.stop_reason is None:
                # The server's output count arrives with message_delta; without it, each text
                # delta is at least one token generated, so count those as a lower bound.
                done.usage.output_tokens = max(done.usage.output_tokens, self.deltas)
        if done.error is not None:
            log.warning(
                "claude request failed: %s (%s) request_id=%s",
                done.error.failure,
                done.error,
                done.request_id,
                exc_info=done.error.__cause__,
            )


def _thinking_options(plan: ThinkingPlan) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if plan.thinking is not None:
        options["thinking"] = plan.thinking
    if plan.output_config is not None:
        options["output_config"] = plan.output_config
    return options


def _message(prompt: Prompt, *, cached: bool = False) -> MessageParam:
    if not cached and not prompt.attachments:
        if prompt.role == "assistant":
            return {"role": "assistant", "content": prompt.text}
        return {"role": "user", "content": prompt.text}
    # Files first (Anthropic reads images and documents best before the question about
    # them), then the text, which ends the stable part of the conversation when `cached`.
    blocks: list[Any] = [file_block(a) for a in prompt.attachments]
    text: TextBlockParam = {"type": "text", "text": prompt.text}
    if cached:
        text["cache_control"] = {"type": "ephemeral"}
    blocks.append(text)
    if prompt.role == "assistant":
        return {"role": "assistant", "content": blocks}
    return {"role": "user", "content": blocks}


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
