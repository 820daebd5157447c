"""The replies this process is streaming, and Stop clicks for them from any replica.

A Stop button's value is `<random>:<asker>`: whichever replica Slack hands the click to can
check who may stop the reply (the asker or an admin). If the reply streams elsewhere, the
click goes through the database, and the replica streaming it finds it within a poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from bot.engine import Turn
from bot.store import Store

log = logging.getLogger(__name__)

STOP_POLL_SECONDS = 0.5  # a Stop that reached another replica acts within this


class StopResult(StrEnum):
    STOPPED = "stopped"
    REFUSED = "refused"
    GONE = "gone"


@dataclass
class _Active:
    turn: Turn
    asker: str


class ActiveReplies:
    def __init__(self, store: Store, may_act_for: Callable[[str, str], Awaitable[bool]]) -> None:
        self._store = store
        self._may_act_for = may_act_for
        self._active: dict[str, _Active] = {}

    def add(self, key: str, turn: Turn, asker: str) -> None:
        self._active[key] = _Active(turn, asker)

    def remove(self, key: str) -> None:
        self._active.pop(key, None)

    async def stop(self, key: str, user_id: str) -> StopResult:
        active = self._active.get(key)
        asker = active.asker if active else key.partition(":")[2]
        if not asker:
            return StopResult.GONE  # a button from before keys named their asker
        if not await self._may_act_for(asker, user_id):
            return StopResult.REFUSED
        if active is not None:
            active.turn.stop(user_id)
        else:
            await self._store.request_stop(key, user_id)
        return StopResult.STOPPED

    async def watch(self, every: float = STOP_POLL_SECONDS) -> None:
        """Stop the replies streaming here when a Stop for them reached another replica."""
        while True:
            await asyncio.sleep(every)
            if not self._active:
                continue
            try:
                clicks = await self._store.take_stops(list(self._active))
            except Exception:
                log.warning("could not read Stop clicks", exc_info=True)
                continue
            for key, user_id in clicks.items():
                active = self._active.get(key)
                if active is not None:
                    active.turn.stop(user_id)
