"""The engine: what it is built from, and admission of a question into a `Turn`."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace

from bot.claude import Claude, Deadlines
from bot.claude.thinking import plan as thinking_plan
from bot.engine.admission import Admission, Refused, ReplySettings
from bot.engine.channels import ChannelConfig, Channels, system_prompt
from bot.engine.events import Ask, Ended
from bot.engine.inflight import InFlight
from bot.engine.kinds import classify, room_of
from bot.engine.recording import Recorder
from bot.engine.spend_limit import SpendLimit
from bot.engine.turns import Turn
from bot.metrics import Metrics
from bot.store import Place, Store

log = logging.getLogger(__name__)

CHANNEL_OFF = (
    "I'm switched off in this channel. A workspace admin can turn me on here with "
    "`/ask settings on`; `/ask settings` shows this channel's settings."
)


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
    channels: Channels


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
        config = ask.config or await self.channel(ask.team_id, ask.channel_id)
        if not config.enabled:
            await self.claim_done(ask.claim)
            return Refused("off", CHANNEL_OFF)
        plain, room = room_of(kind)
        plan = thinking_plan(config.model, plain, settings.max_tokens_for(plain), room)
        place = Place(ask.team_id, ask.channel_id, ask.thread or "")
        admitted = await self.parts.admission.admit(
            place,
            ask.user_id,
            text,
            max_tokens=plan.max_tokens,
            model=config.model,
            system=system_prompt(settings.system_prompt, config.instructions),
            channel_memory=ask.channel_memory and config.memory,
            attachments=ask.attachments,
            tools=config.tools,
        )
        if isinstance(admitted, Refused):
            await self.claim_done(ask.claim)
            return admitted
        return Turn(self, replace(ask, text=text, kind=kind, config=config), admitted, plan)

    async def channel(
        self, team_id: str, channel_id: str, *, external: bool = False
    ) -> ChannelConfig:
        """A channel's settings as they are now (every replica reads the same)."""
        return await self.parts.channels.config(team_id, channel_id, external=external)

    async def claim_done(self, claim: str | None) -> None:
        if claim is None:
            return
        try:
            await self.parts.store.event_done(claim)
        except Exception:
            log.warning("could not mark %s done", claim, exc_info=True)
