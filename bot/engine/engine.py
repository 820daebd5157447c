"""The engine: what it is built from, and admission of a question into a `Turn`."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace

from bot.claude import Claude, Deadlines
from bot.claude.thinking import plan as thinking_plan
from bot.engine.admission import Admission, Refused, ReplySettings
from bot.engine.events import Ask, Ended
from bot.engine.inflight import InFlight
from bot.engine.kinds import classify, room_of
from bot.engine.recording import Recorder
from bot.engine.spend_limit import SpendLimit
from bot.engine.turns import Turn
from bot.metrics import Metrics
from bot.store import Place, Store

log = logging.getLogger(__name__)


@dataclass
class EngineParts:
    store: Store
    claude: Claude
    admission: Admission
    recorder: Recorder
    metrics: Metrics
    settings: ReplySettings
    deadlines: Deadlines
    in_flight: InFlight
    owner: str  # this process's id: the owner of the turns it streams
    spend_limit: SpendLimit


class Engine:
    def __init__(self, parts: EngineParts) -> None:
        self.parts = parts
        self._runs: set[asyncio.Task[Ended]] = set()

    async def settle(self, within: float) -> None:
        """Shutdown: let every turn finish recording before the database goes away."""
        if self._runs:
            await asyncio.wait(set(self._runs), timeout=within)

    def track(self) -> None:
        """Count the calling task in, for shutdown, from its first moment."""
        self.parts.in_flight.track()

    async def admit(self, ask: Ask) -> Turn | Refused:
        """Decide whether the question may go to Claude; nothing is stored yet."""
        self.track()
        text, kind = ask.text, ask.kind
        if kind is None:
            kind, stripped = classify(text)
            text = stripped or text
        settings = self.parts.settings
        plain, room = room_of(kind)
        plan = thinking_plan(settings.model, plain, settings.max_tokens_for(plain), room)
        place = Place(ask.team_id, ask.channel_id, ask.thread or "")
        admitted = await self.parts.admission.admit(
            place,
            ask.user_id,
            text,
            max_tokens=plan.max_tokens,
            channel_memory=ask.channel_memory,
            attachments=ask.attachments,
        )
        if isinstance(admitted, Refused):
            await self.claim_done(ask.claim)
            return admitted
        return Turn(self, replace(ask, text=text, kind=kind), admitted, plan)

    async def claim_done(self, claim: str | None) -> None:
        if claim is None:
            return
        try:
            await self.parts.store.event_done(claim)
        except Exception:
            log.warning("could not mark %s done", claim, exc_info=True)
