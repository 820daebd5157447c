"""Knowing which process owns a turn, and closing the turns of processes that died.

Each process beats a heartbeat row every few seconds. A reply still streaming whose owner's
heartbeat is older than the timeout, or whose owner is known dead (a previous incarnation on
this host: the same pid, or a pid that no longer exists), is adopted by one live process,
which closes it: the surface's closer fixes what people see (Slack: the text so far and a
note), and the turn is recorded as interrupted with the usage saved while it streamed. No
model call is repeated, and a live turn of any surface is never touched.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from bot.engine.progress import Progress
from bot.engine.recording import Recorder
from bot.engine.shield import finish_first
from bot.store import Orphan, Peer, Processes, Store

log = logging.getLogger(__name__)

# A surface's way of closing what people see of an orphan (its messages); may raise.
Closer = Callable[[Orphan, Progress], Awaitable[None]]
# A surface's way of answering a question a dead process took and never answered.
Asker = Callable[[dict[str, Any]], Coroutine[Any, Any, object]]


@functools.cache
def _os_process_nonce() -> str:
    """The same for every bot in this OS process (tests run several), new in each process."""
    return secrets.token_hex(8)


RETENTION_EVERY = timedelta(hours=1)
# A question no process could answer (its own died, or Slack took no reply) is tried again at
# every sweep for this long after it came.
QUESTION_RETRY = timedelta(minutes=15)


def new_process_id() -> str:
    return f"{_os_process_nonce()}.{secrets.token_hex(4)}"


class Recovery:
    def __init__(
        self,
        *,
        processes: Processes,
        store: Store,
        recorder: Recorder,
        owner: str,
        timeout: float,
        clock: Callable[[], datetime],
        retention_days: int = 0,
    ) -> None:
        self._processes = processes
        self._retention = timedelta(days=retention_days) if retention_days else None
        self._retained_at: datetime | None = None
        self._store = store
        self._recorder = recorder
        self.owner = owner
        self.timeout = timeout
        self._clock = clock
        self.closers: dict[str, Closer] = {}
        self.askers: dict[str, Asker] = {}
        self._answering: set[asyncio.Task[None]] = set()
        self._host = socket.gethostname()
        self._pid = os.getpid()

    @property
    def interval(self) -> float:
        """Beat often enough that a single late beat never looks like a death."""
        return max(0.05, min(5.0, self.timeout / 3))

    async def beat(self) -> None:
        await self._processes.beat(self.owner, host=self._host, pid=self._pid)

    async def leave(self) -> None:
        """A clean exit: this process owns nothing any more."""
        try:
            await self._processes.forget(self.owner)
        except Exception:
            log.warning("could not remove this process's heartbeat", exc_info=True)

    async def sweep(self) -> int:
        """Close the turns whose owners are gone; returns how many this process closed."""
        now = self._clock()
        stale = now - timedelta(seconds=self.timeout)
        peers = await self._processes.peers()
        live = {p.id for p in peers if p.beat_at > stale and not self._dead(p)}
        live.add(self.owner)
        closed = 0
        for orphan in await self._processes.orphans(live=live):
            if not await self._processes.adopt(orphan, self.owner):
                continue  # another process took it
            await self._close(orphan)
            closed += 1
        if closed:
            log.warning("closed %d replies left unfinished by a process that died", closed)
        await self._answer_pending(live)
        # Their turns are closed: the dead need no row (one that was only slow beats again).
        await self._processes.forget(*(p.id for p in peers if p.id not in live))
        await self._apply_retention(now)
        return closed

    async def _apply_retention(self, now: datetime) -> None:
        """RETENTION_DAYS: conversation text older than that goes, once an hour at most."""
        if self._retention is None:
            return
        if self._retained_at is not None and now - self._retained_at < RETENTION_EVERY:
            return
        self._retained_at = now
        deleted = await self._store.forget_before(now - self._retention)
        if deleted:
            log.info("deleted %d stored messages older than the retention period", deleted)

    async def _answer_pending(self, live: set[str]) -> None:
        """Questions a dead process took and never began to answer: answered here, each in
        a task of its own (an answer streams for a while; the sweep goes on)."""
        now = self._clock()
        for pending in await self._store.pending_questions(live=live):
            if now - pending.received_at > QUESTION_RETRY:
                # Slack has taken no reply for that long (or no process could answer):
                # the question is stale now, and trying forever would only fill the logs.
                if await self._store.adopt_question(pending, self.owner):
                    log.warning("gave up on question %s after %s", pending.claim, QUESTION_RETRY)
                    await self._store.event_done(pending.claim)
                continue
            asker = self.askers.get(str(pending.payload.get("surface")))
            if asker is None or not await self._store.adopt_question(pending, self.owner):
                continue
            log.warning("answering question %s left by a process that died", pending.claim)
            task = asyncio.create_task(_logged(asker(pending.payload), pending.claim))
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)

    async def run(self) -> None:
        """Beat and sweep until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                await finish_first(self._tick())
            except Exception:
                log.exception("heartbeat or recovery failed")

    async def _tick(self) -> None:
        await self.beat()
        await self.sweep()

    def _dead(self, peer: Peer) -> bool:
        if peer.id == self.owner or peer.host != self._host:
            return False
        if peer.id.split(".")[0] == _os_process_nonce():
            return False  # another bot in this very process (tests)
        if peer.pid == self._pid:
            return True  # this pid is us now: that row is a previous incarnation's
        try:
            os.kill(peer.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # exists, owned by someone else
        return False

    async def _close(self, orphan: Orphan) -> None:
        progress = Progress.from_json(orphan.progress)
        if orphan.place.channel_id == "api":
            progress.surface = "api"
        closer = self.closers.get(progress.surface)
        if closer is not None:
            try:
                await closer(orphan, progress)
            except Exception:
                log.exception("could not close the messages of turn %s", orphan.turn_id)
        usage = self._recorder.usage_row(
            progress.finished(), text=orphan.text, stopped=False, interrupted=True
        )
        await self._recorder.record(
            orphan.place,
            surface=progress.surface,
            turn_id=orphan.turn_id,
            text=orphan.text,
            user_id=progress.user,
            usage=usage,
        )
        if progress.claim:
            await self._store.event_done(progress.claim)


async def _logged(answer: Coroutine[Any, Any, object], claim: str) -> None:
    try:
        await answer
    except Exception:
        log.exception("could not answer question %s left by a process that died", claim)
