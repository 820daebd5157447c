"""A turn's whole life, for every surface: store, stream, save progress, record.

    turn = await engine.admit(ask)           # a Refused costs nothing and says why
    async with turn:                         # whatever happens, the turn is recorded once
        await turn.wait_for_slot(on_place)   # beyond the capacity: its turn in the queue
        await turn.start(shown=...)          # question + streaming reply stored, Claude called
        async for event in turn.events():    # Text ... Ended
            render(event)

Claude's stream is read by a task the turn owns, not by the surface: a surface that is slow
to render never slows the stream, a Stop cancels the request at once, and the turn and its
ledger row are written in one transaction when the stream ends, whoever is listening.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from bot.claude import ThinkingPlan
from bot.engine.admission import Admitted
from bot.engine.context import estimate_tokens
from bot.engine.events import Ask, Ended, Event, Text
from bot.engine.progress import Progress
from bot.engine.queue import Waited
from bot.engine.shield import finish_first
from bot.engine.uploads import upload_files, with_files
from bot.store import Place, UsageRow

if TYPE_CHECKING:
    from bot.engine.engine import Engine

log = logging.getLogger(__name__)

# How often a streaming turn's text and usage are saved, for crash recovery.
PROGRESS_SECONDS = 1.0


class Turn:
    """One question and its answer, from admission to the ledger."""

    def __init__(self, engine: Engine, ask: Ask, admitted: Admitted, plan: ThinkingPlan) -> None:
        self.ask = ask
        self.kind = ask.kind or "default"
        self.model = ask.config.model if ask.config else engine.parts.settings.model
        self.plan = plan
        self.place: Place | None = None
        self.id: int | None = None
        self._engine = engine
        self._parts = engine.parts
        self._admitted = admitted
        self._text = ""
        self._activity: str | None = None
        self._prompts = admitted.context.prompts
        self._changed = asyncio.Event()
        self._progress = Progress(surface=ask.surface, user=ask.user_id, claim=ask.claim)
        self._saved_at = 0.0
        self._task: asyncio.Task[Ended] | None = None
        self._streaming = False
        self._stopped_by: str | None = None
        self._ending: str | None = None  # "interrupted" | "cancelled"
        self._ended: Ended | None = None
        self._warnings: tuple[str, ...] = ()
        self._waiting: asyncio.Task[bool] | None = None
        self._queued = False

    @property
    def stopped_by(self) -> str | None:
        return self._stopped_by

    @property
    def queue_wait(self) -> float:
        """How long a question may wait in the queue before it is given up."""
        return self._admitted.slot.within

    @property
    def ahead(self) -> int | None:
        """Questions ahead of this one in the queue; None when it may start at once."""
        return self._admitted.slot.ahead

    async def wait_for_slot(self, on_place: Callable[[int], None] = lambda ahead: None) -> Waited:
        """Wait for this question's turn in the fair queue. `on_place` hears its new place
        as it moves (it must not block). Nothing is stored or billed until it starts."""
        metrics = self._parts.metrics
        if self.ahead is None:
            return Waited.READY
        self._queued = True
        started = time.monotonic()
        waiting = self._waiting = asyncio.create_task(self._admitted.slot.wait(on_place))
        if self._stopped_by is not None:
            waiting.cancel()  # a Stop came before the wait began
        try:
            await asyncio.wait({waiting})
        finally:
            waiting.cancel()  # only if our caller was cancelled: the wait is over anyway
            self._waiting = None
        waited = Waited.STOPPED
        if not waiting.cancelled():
            waited = Waited.READY if waiting.result() else Waited.TIMED_OUT
        metrics.queue_wait.observe(time.monotonic() - started)
        metrics.queue_outcomes.labels(waited.value).inc()
        return waited

    async def __aenter__(self) -> Turn:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is None:  # never started: nothing stored, nothing billed
            await asyncio.shield(self._admitted.release())
            await asyncio.shield(self._engine.claim_done(self.ask.claim))
            return
        # A surface that left early (a client hung up, an error) still gets its turn recorded.
        await asyncio.shield(self.interrupt("cancelled"))

    async def start(
        self,
        *,
        thread: str | None = None,
        question_ts: str | None = None,
        reply_ts: str | None = None,
        **shown: Any,
    ) -> None:
        """Store the question and the reply being written, then ask Claude.

        `thread` names a new conversation (an `Ask` without one); `shown` is the surface's
        record of where the answer is visible, handed back to it if this process dies.
        """
        if self.ahead is not None:
            raise RuntimeError("a question in the queue starts after wait_for_slot says READY")
        if not self._queued:
            self._parts.metrics.queue_wait.observe(0)
        ask = self.ask
        name = thread or ask.thread
        if not name:
            raise ValueError("a new conversation needs a name when its first turn starts")
        self.place = Place(ask.team_id, ask.channel_id, name)
        self._progress.shown = dict(shown)
        p = self._parts
        files = await upload_files(p.store, p.claude, ask.team_id, ask.attachments)
        self._prompts = with_files(self._admitted.context.prompts, ask.attachments, files)
        self.id = await self._parts.store.open_turn(
            self.place,
            question=ask.text,
            user_id=ask.user_id,
            ts=question_ts or ask.ts,
            tokens=estimate_tokens(ask.text),
            reply_ts=reply_ts,
            owner=self._parts.owner,
            progress=self._progress.to_json(),
            attachments=[f.stored() for f in files],
        )
        if ask.claim is not None:
            # From here on a redelivery must not answer again: a crash leaves a turn to close.
            await self._parts.store.event_replied(ask.claim)
        self._streaming = True
        self._saved_at = time.monotonic()
        self._task = asyncio.create_task(self._run())
        self._engine._runs.add(self._task)
        self._task.add_done_callback(self._engine._runs.discard)

    async def show(self, **shown: Any) -> None:
        """The surface shows the answer somewhere new (another message): save it now."""
        self._progress.shown.update(shown)
        await finish_first(self._save())

    async def events(self) -> AsyncIterator[Event]:
        """The answer so far as it grows (latest wins), then how it ended."""
        sent: tuple[str, str | None] = ("", None)
        while True:
            self._changed.clear()
            now = (self._text, self._activity)
            if now != sent and (self._text or self._activity):
                sent = now
                yield Text(*now)
            if self._ended is not None:
                yield self._ended
                return
            await self._changed.wait()

    def stop(self, user_id: str) -> None:
        """A person's Stop: cancel the Claude request at once; the turn ends as stopped."""
        if self._stopped_by is None and self._ending is None:
            self._stopped_by = user_id
        if self._waiting is not None:
            self._waiting.cancel()
        if self._task is not None and self._streaming:
            self._task.cancel()

    async def interrupt(self, reason: str = "interrupted") -> Ended | None:
        """End the turn now (shutdown, or a surface that went away) and return how it ended."""
        if self._task is None:
            return None
        if self._streaming:
            if self._ending is None and self._stopped_by is None:
                self._ending = reason
            self._task.cancel()
        return await asyncio.shield(self._task)

    async def recorded(self) -> tuple[str, ...]:
        """Wait until the turn is in the ledger; the budget warnings due now, for the asker."""
        if self._task is None:
            return ()
        await asyncio.shield(self._task)
        return self._warnings

    async def _run(self) -> Ended:
        p, context = self._parts, self._admitted.context
        answer = p.claude.stream(
            model=self.model,
            system=context.system,
            prompts=self._prompts,
            plan=self.plan,
            deadlines=p.deadlines,
            tools=self.ask.config.tools if self.ask.config else (),
        )
        p.metrics.in_flight.inc()
        try:
            async for piece in answer:
                self._text += piece
                self._activity = answer.activity
                self._changed.set()
                self._progress.update(answer.finished)
                if time.monotonic() - self._saved_at >= PROGRESS_SECONDS:
                    await finish_first(self._save())
        except asyncio.CancelledError:
            pass  # a Stop or an interruption; `_stopped_by` and `_ending` say which
        finally:
            self._streaming = False
            p.metrics.in_flight.dec()
        finished = answer.finished
        usage = p.recorder.usage_row(
            finished,
            model=self.model,
            text=self._text,
            stopped=self._stopped_by is not None,
            interrupted=self._ending == "interrupted",
        )
        # The surface may show the end at once; the ledger row follows in the same task.
        ended = self._ended = Ended(
            text=self._text,
            usage=usage,
            error=finished.error,
            stopped_by=self._stopped_by,
            interrupted=self._ending == "interrupted",
            cancelled=self._ending == "cancelled",
            sources=tuple(finished.sources),
        )
        self._activity = None
        self._changed.set()
        limited = p.spend_limit.observe(ended)
        await self._record(usage)
        if limited:
            await p.spend_limit.tell_admins()
        return ended

    async def _save(self) -> None:
        if self.id is None:
            return
        self._saved_at = time.monotonic()
        try:
            await self._parts.store.save_progress(
                self.id, text=self._text, progress=self._progress.to_json()
            )
        except Exception:
            # Only crash recovery needs it; the answer itself goes on.
            log.warning("could not save a turn's progress", exc_info=True)

    async def _record(self, usage: UsageRow) -> None:
        p, ask = self._parts, self.ask
        assert self.place is not None
        assert self.id is not None
        recorded = False
        try:
            recorded = await p.recorder.record_surely(
                self.place,
                surface=ask.surface,
                turn_id=self.id,
                text=self._text,
                user_id=ask.user_id,
                usage=usage,
            )
            self._warnings = tuple(await p.admission.warnings(self.place, ask.user_id))
        except Exception:
            log.exception("could not read the budget warnings of turn %s", self.id)
        finally:
            # The budget hold ends once the cost is in the ledger; a cost that could not be
            # written keeps its hold until the hold expires, so budgets never count it as $0.
            await self._admitted.release(budget=recorded)
            await self._engine.claim_done(ask.claim)
