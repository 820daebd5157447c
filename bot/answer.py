"""Answering a question in a thread: store it, post the working reply, stream, store the result.

History comes from the database, never from Slack, so memory survives restarts and costs no
Slack calls. The reply's turn and its ledger row are written in one transaction at the end.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.claude import Claude, Prompt, Role
from bot.relay import Relay, RelayResult
from bot.slack_text import WORKING_TEXT
from bot.store import Outcome, Place, Store, TurnRecord, UsageRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Question:
    place: Place
    user_id: str
    text: str
    ts: str


@dataclass(frozen=True)
class ReplySettings:
    model: str
    max_tokens: int
    system_prompt: str
    edit_interval: float


class Responder:
    def __init__(
        self, *, store: Store, claude: Claude, slack: AsyncWebClient, settings: ReplySettings
    ) -> None:
        self._store = store
        self._claude = claude
        self._slack = slack
        self._settings = settings
        self._active: set[asyncio.Task[object]] = set()

    async def drain(self, grace: float) -> None:
        """Let answers in flight finish for up to `grace` seconds, then cancel the rest."""
        pending = {task for task in self._active if not task.done()}
        if not pending:
            return
        _done, late = await asyncio.wait(pending, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)

    async def answer(self, question: Question) -> RelayResult | None:
        task = asyncio.current_task()
        if task is not None:
            self._active.add(task)
            task.add_done_callback(self._active.discard)
        place = question.place
        await self._store.add_turn(
            place, role="user", text=question.text, user_id=question.user_id, ts=question.ts
        )
        try:
            posted = await self._slack.chat_postMessage(
                channel=place.channel_id, thread_ts=place.thread_ts, text=WORKING_TEXT
            )
        except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError):
            # Nothing was asked of Claude, so nothing is billed; the question stays stored.
            log.exception("could not post the working reply channel=%s", place.channel_id)
            return None
        reply_ts = str(posted["ts"])
        turn_id = await self._store.add_turn(
            place, role="assistant", text="", user_id=None, ts=reply_ts, outcome=Outcome.STREAMING
        )
        prompts = build_prompts(await self._store.thread_turns(place))
        relay = Relay(
            self._slack,
            channel=place.channel_id,
            thread_ts=place.thread_ts,
            first_ts=reply_ts,
            interval=self._settings.edit_interval,
        )
        result = await relay.run(
            self._claude.stream(
                model=self._settings.model,
                system=self._settings.system_prompt,
                prompts=prompts,
                max_tokens=self._settings.max_tokens,
            )
        )
        await self._store.finish_reply(
            place,
            turn_id=turn_id,
            text=result.text,
            user_id=question.user_id,
            usage=self._usage_row(result),
        )
        return result

    def _usage_row(self, result: RelayResult) -> UsageRow:
        finished = result.finished
        if finished.error is None:
            outcome = Outcome.COMPLETE
        elif result.text:
            outcome = Outcome.PARTIAL
        else:
            outcome = Outcome.ERROR
        usage = finished.usage
        return UsageRow(
            requested_model=self._settings.model,
            resolved_model=finished.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_write_5m_tokens=usage.cache_write_5m,
            cache_write_1h_tokens=usage.cache_write_1h,
            cache_read_tokens=usage.cache_read,
            stop_reason=finished.stop_reason,
            request_id=finished.request_id,
            ttft_ms=finished.ttft_ms,
            latency_ms=finished.latency_ms,
            outcome=outcome,
            error_kind=finished.error.failure.value if finished.error else None,
        )


def build_prompts(turns: list[TurnRecord]) -> list[Prompt]:
    """Turn stored turns into alternating messages, as the Messages API expects.

    Replies that produced no text are skipped, and consecutive turns of one role (a question
    whose answer failed, then the question asked again) are joined.
    """
    prompts: list[Prompt] = []
    for turn in turns:
        if not turn.text.strip():
            continue
        role: Role = "assistant" if turn.role == "assistant" else "user"
        if prompts and prompts[-1].role == role:
            prompts[-1] = Prompt(role, f"{prompts[-1].text}\n\n{turn.text}")
        else:
            prompts.append(Prompt(role, turn.text))
    while prompts and prompts[0].role != "user":
        prompts.pop(0)
    return prompts
