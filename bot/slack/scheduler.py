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

from bot.slack.rates import Bucket, WriteRates

log = logging.getLogger(__name__)

# What a Slack call can fail with, short of a bug: Slack's answer, or the network's.
SLACK_ERRORS = (SlackClientError, aiohttp.ClientError, OSError, TimeoutError)

FINAL, FIRST, INTERIM = 0, 1, 2  # priorities: lower goes first
# Non-final writes leave room in the edit budget for the final writes of the replies that
# are streaming (one each, up to the burst), so an answer that ends is shown whole at once.
# A reply whose text has not been refreshed for this long may dip into that reserve.
STARVED_AFTER_SECONDS = 15.0
# A write that hangs must not hold a message (or shutdown) forever.
WRITE_TIMEOUT_SECONDS = 15.0
MAX_IN_FLIGHT = 4
SAFETY = 0.98


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
    ) -> None:
        # The client must not retry 429s itself: pausing the method here is what keeps
        # every other reply from running into the same limit.
        self._client = client
        self._rates = rates
        self._clock = clock
        self._on_rate_limited = on_rate_limited
        self._buckets: dict[tuple[str, str], Bucket] = {}
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
            delay = self._dispatch()
            if delay is None:
                await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)

    def _dispatch(self) -> float | None:
        """Start every write the budgets allow; return how long until the next may go."""
        soonest: float | None = None
        for write in sorted(self._pending.values(), key=lambda w: (w.priority, w.since, w.order)):
            if write.done.cancelled():  # nobody wants this version any more
                del self._pending[write.key]
                continue
            if write.key in self._busy or len(self._busy) >= MAX_IN_FLIGHT:
                continue
            now = self._clock()
            bucket = self._bucket(write.method, write.channel)
            wait = bucket.wait(now, reserve=self._reserve(write, bucket, now))
            if wait > 0:
                soonest = wait if soonest is None else min(soonest, wait)
                continue
            bucket.take(now)
            del self._pending[write.key]
            self._busy.add(write.key)
            task = asyncio.create_task(self._send(write))
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
            self._busy.discard(write.key)
            self._wake.set()

    def _reserve(self, write: _Write, bucket: Bucket, now: float) -> float:
        if write.priority == FINAL or write.method != "chat.update":
            return 0.0
        if now - write.since >= STARVED_AFTER_SECONDS:
            return 0.0
        # Never the whole bucket: a reply's first text can still get through between finals.
        return min(bucket.capacity - 1, float(self._streams))

    def _rate_limited(self, write: _Write, error: SlackApiError) -> None:
        # Pause the method for Retry-After and send this write again (unless a newer one
        # for the same message is waiting, which then carries the result).
        if self._on_rate_limited is not None:
            self._on_rate_limited(write.method)
        retry_after = float(error.response.headers.get("Retry-After", 1) or 1)
        self._bucket(write.method, write.channel).pause(self._clock(), retry_after)
        newer = self._pending.get(write.key)
        if newer is None:
            self._pending[write.key] = write
        else:
            newer.done.add_done_callback(lambda f: _relay_result(f, write.done))

    def _bucket(self, method: str, channel: str) -> Bucket:
        # Our count runs a little slower than Slack's, so that the moment a token exists here
        # it surely exists there too (Slack counts when a request arrives, a little later).
        b = WriteRates(
            update_per_minute=self._rates.update_per_minute * SAFETY,
            update_burst=self._rates.update_burst,
            post_per_second=self._rates.post_per_second * SAFETY,
            post_burst=self._rates.post_burst,
            ephemeral_per_minute=self._rates.ephemeral_per_minute * SAFETY,
        )
        key = (method, channel if method == "chat.postMessage" else "")
        if key not in self._buckets:
            if method == "chat.postMessage":
                self._buckets[key] = Bucket(b.post_burst, b.post_per_second)
            elif method == "chat.postEphemeral":
                self._buckets[key] = Bucket(b.ephemeral_per_minute / 6, b.ephemeral_per_minute / 60)
            else:  # chat.update, chat.delete: Tier 3, per workspace
                self._buckets[key] = Bucket(b.update_burst, b.update_per_minute / 60)
        return self._buckets[key]


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
