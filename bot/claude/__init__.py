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
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from typing import Any

import anthropic
import httpx2
from anthropic.types import MessageParam, TextBlockParam

from bot.claude.failures import (
    NoRetryAtSpendLimit,
    add_usage,
    call_failure,
    log_failure,
    merge_usage,
    stream_failure,
)
from bot.claude.files import Uploaded, file_block, upload
from bot.claude.limits import LimitSignal, WatchRateLimits
from bot.claude.thinking import ThinkingPlan
from bot.claude.tools import MAX_CONTINUATIONS, TOOL_STALL, ToolWatch, request_options
from bot.claude.types import Attachment, Deadlines, Finished, Prompt, Role, Source, Usage
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
    "Source",
    "ThinkingPlan",
    "Uploaded",
    "Usage",
]


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
        tools: Sequence[str] = (),
    ) -> AnswerStream:
        """A stream of the answer's text; its `finished` holds what is known so far.

        `plan` says how much Claude may think and sets max_tokens to leave room for it.
        `tools`: the server tools Claude may use ("web_search", "web_fetch"; else ValueError).

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
            tools=tools,
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
        except (anthropic.APIError, httpx2.HTTPError) as error:
            raise call_failure(error) from error
        return counted.input_tokens

    async def check_key(self) -> None:
        """The cheapest authenticated call (list one model), once: ClaudeError if it fails."""
        try:
            await self._client.with_options(max_retries=0, timeout=10.0).models.list(limit=1)
        except (anthropic.APIError, httpx2.HTTPError) as error:
            raise call_failure(error) from error


class AnswerStream:
    """One streaming request. Iterate it for text; read `finished` at any time, even after a
    cancellation (Stop, shutdown), to learn the usage reported so far. Iterating also yields ""
    whenever `activity` changed with no text to go with it (a reader that only appends text may
    ignore it): what a server tool is doing now (`searching the web for "query"`, `reading
    example.com`), None while Claude thinks or writes and once the stream ends. A turn paused in a
    long tool loop (`pause_turn`) is continued by further requests; `finished` adds up usage."""

    def __init__(
        self,
        client: anthropic.AsyncAnthropic,
        *,
        model: str,
        system: list[TextBlockParam],
        messages: list[MessageParam],
        plan: ThinkingPlan,
        deadlines: Deadlines,
        tools: Sequence[str] = (),
    ) -> None:
        self._client = client
        self._model = model
        self._system = system
        self._max_tokens = plan.max_tokens
        self._messages = messages
        self._deadlines = deadlines
        self._options = request_options(plan, tools)
        self._watch = ToolWatch()
        self.finished = Finished(sources=self._watch.sources, tool_errors=self._watch.errors)
        self.deltas = 0  # text deltas
        self._events = 0  # text, thinking and tool events: signs of life
        self._why = ""  # what the latest deadline was for
        self._content: list[Any] = []  # the latest response's content blocks

    @property
    def activity(self) -> str | None:
        return self._watch.activity

    def _next_deadline(self, start: float) -> float:
        # Each wait gets its own deadline, so no timer ever spans a `yield` to the caller.
        d, now = self._deadlines, asyncio.get_running_loop().time()
        limits = [(start + d.total, f"no complete answer within {d.total:g} s")]
        stall = d.stall if self.activity is None else max(d.stall, TOOL_STALL)
        if self._events:  # thinking counts: a model may think for a while before it writes
            limits.append((now + stall, f"the stream stalled for {stall:g} s"))
        else:
            limits.append((start + d.first_token, f"no first token within {d.first_token:g} s"))
        when, self._why = min(limits)
        return when

    async def __aiter__(self) -> AsyncGenerator[str, None]:
        started = time.monotonic()
        start = asyncio.get_running_loop().time()
        done = self.finished
        try:
            messages, paused = self._messages, list[Any]()
            for _ in range(MAX_CONTINUATIONS + 1):
                async for piece in self._request(messages, done.usage, started, start):
                    yield piece
                if done.stop_reason != "pause_turn":
                    break
                paused.extend(self._content)  # sent back as it came, to be continued
                messages = [*self._messages, {"role": "assistant", "content": paused}]
            if done.stop_reason is None:
                # A stream closed cleanly without message_delta: the answer is incomplete.
                done.error = ClaudeError(ClaudeFailure.STREAM_CUT, "stream ended without stop")
        except (asyncio.CancelledError, GeneratorExit):
            # Stopped by a person, a client that went away, or shutdown: not a failure.
            done.cancelled = True
            raise
        except Exception as error:
            done.request_id = getattr(error, "request_id", None) or done.request_id
            done.error = stream_failure(error, self._why, bool(self.deltas), done.request_id)
        finally:
            self._watch.idle()  # no tool is at work any more
            done.latency_ms = _ms_since(started)
            if done.stop_reason is None:
                # The server's output count arrives with message_delta; without it, each text
                # delta is at least one token generated, so count those as a lower bound.
                done.usage.output_tokens = max(done.usage.output_tokens, self.deltas)
        log_failure(done)

    async def _request(
        self, messages: list[MessageParam], earlier: Usage, started: float, start: float
    ) -> AsyncGenerator[str, None]:
        """One request: its text, and "" when `activity` changed. `earlier`: the usage of the
        requests before it in this answer (a paused turn's), to which its own is added."""
        done, usage = self.finished, Usage()
        done.stop_reason = None
        async with contextlib.AsyncExitStack() as stack:
            manager = self._client.messages.stream(
                model=self._model,
                system=self._system,
                max_tokens=self._max_tokens,
                messages=messages,
                **self._options,
            )
            async with asyncio.timeout_at(self._next_deadline(start)):
                stream = await stack.enter_async_context(manager)
            done.request_id = stream.request_id
            events = stream.__aiter__()
            while True:
                try:
                    async with asyncio.timeout_at(self._next_deadline(start)):
                        event = await anext(events)
                except StopAsyncIteration:
                    break
                if event.type == "message_start":
                    done.model = event.message.model
                    merge_usage(usage, event.message.usage)
                    done.usage = add_usage(earlier, usage)
                elif event.type == "message_delta":
                    done.stop_reason = event.delta.stop_reason
                    done.stop_detail = getattr(event.delta.stop_details, "category", None)
                    merge_usage(usage, event.usage)
                    done.usage = add_usage(earlier, usage)
                elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                    if event.delta.text:
                        if done.ttft_ms is None:
                            done.ttft_ms = _ms_since(started)
                        self.deltas += 1
                        self._events += 1
                        self._watch.idle()
                        yield event.delta.text
                elif event.type in ("content_block_start", "content_block_delta"):
                    self._events += 1  # thinking and tool use: never text, but signs of life
                    if self._watch.see(event):
                        yield ""
                elif event.type == "content_block_stop" and self._watch.see(event):
                    yield ""
            if done.stop_reason == "pause_turn":
                self._content = list(stream.current_message_snapshot.content)


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
