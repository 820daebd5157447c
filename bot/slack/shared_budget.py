"""Slack's write budgets shared by every replica through the database (bot.store.write_budgets),
keyed by the app's token: Slack counts its limits per app and workspace, whichever replica
sends. If the database cannot be reached, each replica falls back on its own budget (and
says so once), so replies still reach Slack."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable

from bot.slack.rates import BucketSpec, LocalBudget
from bot.store.write_budgets import WriteBudgetStore

log = logging.getLogger(__name__)


class SharedBudget:
    def __init__(
        self,
        store: WriteBudgetStore,
        token: str,
        *,
        clock: Callable[[], float] = time.time,
        fallback: LocalBudget | None = None,
    ) -> None:
        self._store = store
        # The token itself never reaches the database: a digest names the app and workspace.
        self._scope = hashlib.sha256(token.encode()).hexdigest()[:16]
        self._clock = clock
        self._fallback = fallback or LocalBudget()
        self._failing = False

    async def take(self, spec: BucketSpec, reserve: float) -> float:
        try:
            wait = await self._store.take(
                self._key(spec),
                capacity=spec.capacity,
                rate=spec.rate,
                now=self._clock(),
                reserve=reserve,
                hold=spec.hold,
            )
        except Exception:
            self._failed()
            return self._fallback.take_now(spec, reserve)
        if self._failing:
            self._failing = False
            log.info("Slack write budgets are shared through the database again")
        return wait

    async def pause(self, spec: BucketSpec, seconds: float) -> None:
        await self._fallback.pause(spec, seconds)
        try:
            await self._store.pause(self._key(spec), until=self._clock() + seconds)
        except Exception:
            self._failed()

    async def restart(self, spec: BucketSpec) -> None:
        await self._fallback.restart(spec)
        try:
            await self._store.restart(self._key(spec), now=self._clock())
        except Exception:
            self._failed()

    def _key(self, spec: BucketSpec) -> str:
        return f"{self._scope}:{spec.key}"

    def _failed(self) -> None:
        if not self._failing:
            self._failing = True
            log.warning(
                "cannot reach the database for Slack's write budgets; this replica counts "
                "its own writes until it can",
                exc_info=True,
            )
