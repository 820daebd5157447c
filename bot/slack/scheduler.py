"""One Slack write scheduler per workspace, shared by every reply in flight.

Every message write (post, update, delete, ephemeral) goes through it. It keeps a token
bucket per Slack method matching Slack's tiers (chat.update about 50 a minute per workspace,
chat.postMessage about 1 a second per channel), holds only the latest version of each
message, and spends the budget in this order: final writes, then a reply's first text, then
the interim edit that has waited longest. So the workspace stays under its budget instead of
collecting 429s, and every reply's interval between edits stretches as more replies stream.
A 429 that still happens pauses that method for its Retry-After; nothing is dropped.
At most one write is in flight per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.rates import (
    WRITE_TIMEOUT_SECONDS,
    BucketSpec,
    LocalBudget,
    WriteBudget,
    WriteRates,
    bucket_for,
)

log = logging.getLogger(__name__)

# What a Slack call can fail with, short of a bug: Slack's answer, or the network's.
SLACK_ERRORS = (SlackClientError, aiohttp.ClientError, OSError, TimeoutError)

# Priorities, lower first: a reply's end, its first text, its text so far, then a waiting
# question's place in line (only when nothing more useful waits for the budget).
FINAL, FIRST, INTERIM, QUEUED = 0, 1, 2, 3
# Non-final writes leave room in the edit budget for the final writes of the replies that
# are streaming (one each, up to the burst), so an answer that ends is shown whole at once.
# A reply whose text has not been refreshed for this long may dip into that reserve.
STARVED_AFTER_SECONDS = 15.0
MAX_IN_FLIGHT = 4


@dataclass
class _Write:
    key: str  # the message (or a unique key for posts and ephemerals)
    method: str
    channel: str
    call: Callable[[], Awaitable[Any]]
    priority: int
    since: float
    order: int
    done: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class SlackWriter:
    def __init__(
        self,
        client: AsyncWebClient,
        rates: WriteRates,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_rate_limited: Callable[[str], None] | None = None,
        budget: WriteBudget | None = None,
    ) -> None:
        # The client must not retry 429s itself: pausing the method here is what keeps
        # every other reply from running into the same limit.
        self._client = client
        self._rates = rates
        self._clock = clock
        self._on_rate_limited = on_rate_limited
        # Shared by every replica in production (bot.slack.shared_budget).
        self._budget = budget or LocalBudget(clock)
        self._pending: dict[str, _Write] = {}
        self._busy: set[str] = set()
        self._order = itertools.count()
        self._streams = 0
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        for task in list(self._tasks):
            task.cancel()
        for write in self._pending.values():
            if not write.done.done():
                write.done.cancel()

    async def post(self, *, channel: str, priority: int = FIRST, **kwargs: Any) -> Any:
        key = f"post:{next(self._order)}"
        call = lambda: self._client.chat_postMessage(channel=channel, **kwargs)  # noqa: E731
        return await self.submit(key, "chat.postMessage", channel, call, priority=priority)

    async def update(
        self,
        *,
        channel: str,
        ts: str,
        priority: int,
        render: Callable[[], dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Edit a message. With `render`, the content is made when the write is sent, so an
        edit that waited for the budget shows the latest text, not the text of its turn."""

        def call() -> Awaitable[Any]:
            content = render() if render is not None else kwargs
            return self._client.chat_update(channel=channel, ts=ts, **content)

        return await self.submit(f"{channel}:{ts}", "chat.update", channel, call, priority=priority)

    async def delete(self, *, channel: str, ts: str) -> Any:
        call = lambda: self._client.chat_delete(channel=channel, ts=ts)  # noqa: E731
        return await self.submit(f"{channel}:{ts}", "chat.delete", channel, call, priority=FINAL)

    async def ephemeral(self, *, channel: str, user: str, **kwargs: Any) -> Any:
        key = f"ephemeral:{next(self._order)}"
        call = lambda: self._client.chat_postEphemeral(channel=channel, user=user, **kwargs)  # noqa: E731
        return await self.submit(key, "chat.postEphemeral", channel, call, priority=FIRST)

    def stream_started(self) -> None:
        self._streams += 1

    def stream_ended(self) -> None:
        self._streams -= 1
        self._wake.set()

    def submit(
        self,
        key: str,
        method: str,
        channel: str,
        call: Callable[[], Awaitable[Any]],
        *,
        priority: int,
    ) -> asyncio.Future[Any]:
        """Queue a write; a waiting write for the same message is replaced (latest wins).

        The future resolves with Slack's response, or raises its error.
        """
        now = self._clock()
        earlier = self._pending.get(key)
        write = _Write(key, method, channel, call, priority, now, next(self._order))
        if earlier is not None:
            # Keep the older wait time and the higher priority; hand the old waiter the new result.
            write.since = earlier.since
            write.priority = min(priority, earlier.priority)
            old = earlier.done
            write.done.add_done_callback(lambda f: _relay_result(f, old))
        self._pending[key] = write
        self._wake.set()
        return write.done

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            delay = await self._dispatch()
            if delay is None:
                await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def _dispatch(self) -> float | None:
        """Start every write the budgets allow; return how long until the next may go."""
        soonest: float | None = None
        refused: dict[str, float] = {}  # a bucket's smallest reserve refused in this pass
        for write in sorted(self._pending.values(), key=lambda w: (w.priority, w.since, w.order)):
            if write.done.cancelled():  # nobody wants this version any more
                if self._pending.get(write.key) is write:
                    del self._pending[write.key]
                continue
            if write.key in self._busy or len(self._busy) >= MAX_IN_FLIGHT:
                continue
            spec = self._spec(write.method, write.channel)
            reserve = self._reserve(write, spec)
            if spec.key in refused and reserve >= refused[spec.key]:
                continue  # the bucket said no to as little a reserve already
            wait = await self._budget.take(spec, reserve)
            if wait > 0:
                refused[spec.key] = min(reserve, refused.get(spec.key, reserve))
                soonest = wait if soonest is None else min(soonest, wait)
                continue
            # A newer version of the message may have come while the budget was asked:
            # it goes instead (older versions' waiters get its result).
            current = self._pending.pop(write.key, write)
            self._busy.add(current.key)
            task = asyncio.create_task(self._send(current))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return soonest

    async def _send(self, write: _Write) -> None:
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_SECONDS):
                result = await write.call()
        except SlackApiError as error:
            if error.response.status_code == 429:
                self._rate_limited(write, error)
                return
            _settle(write.done, error=error)
        except asyncio.CancelledError:
            # Closing: the waiter must still learn that this write is over.
            write.done.cancel()
            raise
        except Exception as error:
            _settle(write.done, error=error)
        else:
            _settle(write.done, result=result)
        finally:
            spec = self._spec(write.method, write.channel)
            if spec.hold:
                await self._restart(spec)
            self._busy.discard(write.key)
            self._wake.set()

    async def _restart(self, spec: BucketSpec) -> None:
        try:
            await self._budget.restart(spec)
        except Exception:
            # The hold ends by itself (WRITE_TIMEOUT_SECONDS); until then writes just wait.
            log.warning("could not restart the %s budget", spec.key, exc_info=True)

    def _reserve(self, write: _Write, spec: BucketSpec) -> float:
        if write.priority == FINAL or write.method != "chat.update":
            return 0.0
        if self._clock() - write.since >= STARVED_AFTER_SECONDS:
            return 0.0
        # Never the whole bucket: a reply's first text can still get through between finals.
        return min(spec.capacity - 1, float(self._streams))

    def _rate_limited(self, write: _Write, error: SlackApiError) -> None:
        # Pause the method for Retry-After and send this write again (unless a newer one
        # for the same message is waiting, which then carries the result).
        if self._on_rate_limited is not None:
            self._on_rate_limited(write.method)
        retry_after = float(error.response.headers.get("Retry-After", 1) or 1)
        pause = asyncio.create_task(
            self._budget.pause(self._spec(write.method, write.channel), retry_after)
        )
        self._tasks.add(pause)
        pause.add_done_callback(self._tasks.discard)
        newer = self._pending.get(write.key)
        if newer is None:
            self._pending[write.key] = write
        else:
            newer.done.add_done_callback(lambda f: _relay_result(f, write.done))

    def _spec(self, method: str, channel: str) -> BucketSpec:
        return bucket_for(self._rates, method, channel)


def _settle(
    future: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _relay_result(source: asyncio.Future[Any], target: asyncio.Future[Any]) -> None:
    if target.done():
        return
    if source.cancelled():
        target.cancel()
    elif source.exception() is not None:
        target.set_exception(source.exception())  # type: ignore[arg-type]
    else:
        target.set_result(source.result())
