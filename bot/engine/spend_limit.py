"""The organisation's Anthropic spend limit, as this process last saw it.

At the limit every request fails the same way until 00:00 UTC on the 1st (or an admin raises
it), so the bot says so once: to the asker each time, to the admins once a day (the day's
notice is claimed in the database, so replicas send one between them), and on /healthz.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.engine.events import Ended
from bot.errors import ClaudeFailure, spend_limit_resets


@dataclass
class SpendLimit:
    clock: Callable[[], datetime]
    # Claims the admins' notice for (team, day); True for the first caller only.
    claim: Callable[[str, str], Awaitable[bool]]
    reached_at: datetime | None = None

    def observe(self, ended: Ended) -> None:
        if ended.error is not None and ended.error.failure == ClaudeFailure.SPEND_LIMIT:
            self.reached_at = self.clock()
        elif ended.error is None and ended.usage.output_tokens:
            self.reached_at = None  # a request went through: the limit was lifted

    def status(self) -> dict[str, Any] | None:
        if self.reached_at is None:
            return None
        return {
            "reached_at": self.reached_at.isoformat(timespec="seconds"),
            "resets_at": spend_limit_resets(self.reached_at).isoformat(timespec="seconds"),
        }

    async def first_notice_today(self, team_id: str) -> bool:
        return await self.claim(team_id, self.clock().date().isoformat())
