"""This process's side of the fair queue (bot.store.queue): its questions waiting for a
slot, and one task that ticks for all of them at once.

A tick is one transaction, every QUEUE_TICK_SECONDS while anything waits here (sooner when
a slot is given back here): it shows the questions are still wanted, shares what was learnt
of Anthropic's limits, and brings back which may start and each one's place in line. A
question another process dropped (taking this one for dead) is put back in its place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from bot.engine.capacity import CapacityLearner
from bot.store.rate_limits import RateStore, Waiting

log = logging.getLogger(__name__)

QUEUE_TICK_SECONDS = 0.5


class Waited(StrEnum):
    READY = "ready"  # it may start
    TIMED_OUT = "timed_out"  # QUEUE_WAIT_SECONDS passed in the queue
    STOPPED = "stopped"  # a Stop while it waited


@dataclass
class _Waiter:
    ahead: int
    asked: Waiting
    granted: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class FairQueue:
    def __init__(
        self,
        store: RateStore,
        learner: CapacityLearner,
        *,
        owner: str,
        ceiling: int,
        slot_seconds: float,
        clock: Callable[[], datetime],
        every: float = QUEUE_TICK_SECONDS,
    ) -> None:
        self._store = store
        self._learner = learner
        self._owner = owner
        self._ceiling = ceiling
        self._slot_seconds = slot_seconds
        self._clock = clock
        self._every = every
        self._waiting: dict[int, _Waiter] = {}
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None

    async def wait(
        self,
        slot_id: int,
        asked: Waiting,
        ahead: int,
        within: float,
        on_place: Callable[[int], None],
    ) -> bool:
        """Wait until the slot may fly (True), or `within` seconds pass (False). `on_place`
        hears each new number of questions ahead; it must not block."""
        waiter = self._waiting[slot_id] = _Waiter(ahead, asked)
        self.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        shown = ahead
        try:
            while not waiter.granted:
                waiter.changed.clear()
                try:
                    async with asyncio.timeout_at(deadline):
                        await waiter.changed.wait()
                except TimeoutError:
                    return False
                if not waiter.granted and waiter.ahead != shown:
                    shown = waiter.ahead
                    on_place(shown)
            return waiter.granted
        finally:
            self._waiting.pop(slot_id, None)

    def wake(self) -> None:
        """A slot was given back here: tick now rather than at the next interval."""
        self._wake.set()

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump

    def start(self) -> None:
        """Tick from now on (also to share a slow-down learnt while nothing waits here)."""
        if self._pump is None or self._pump.done():
            self._pump = asyncio.create_task(self._run())
        self._wake.set()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._every):
                    await self._wake.wait()
            self._wake.clear()
            if not self._waiting and not self._learner.urgent():
                continue
            try:
                await self._tick()
            except Exception:
                # The next tick tries again; the waiters' own deadlines still hold.
                log.warning("could not tick the queue", exc_info=True)

    async def _tick(self) -> None:
        asked = {slot_id: waiter.asked for slot_id, waiter in self._waiting.items()}
        change = self._learner.take(queue=bool(asked))
        places = await self._store.tick(
            self._owner,
            asked,
            ceiling=self._ceiling,
            now=self._clock(),
            seconds=self._slot_seconds,
            change=change,
        )
        for slot_id in asked:
            waiter = self._waiting.get(slot_id)
            if waiter is None or slot_id not in places:
                continue
            if places[slot_id] is None:
                waiter.granted = True
            else:
                waiter.ahead = places[slot_id] or 0
            waiter.changed.set()
