"""The organisation's Anthropic spend limit, as this process last saw it.

At the limit every request fails the same way until 00:00 UTC on the 1st (the monthly limit)
or until the limit is raised (a contract's), so the bot says so: to the asker each time, to
the admins once a day (the day's notice is claimed in the database, so replicas, teams and
surfaces send one between them), and on /healthz.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.engine.events import Ended
from bot.errors import MONTHLY_SPEND_LIMIT, ClaudeFailure, spend_limit_note, spend_limit_resets

log = logging.getLogger(__name__)


@dataclass
class SpendLimit:
    clock: Callable[[], datetime]
    # Claims the admins' notice for a UTC day; True for the first caller only. The limit is
    # the Anthropic organisation's, the same for every team and surface of this bot.
    claim: Callable[[str], Awaitable[bool]]
    # Tells the admins (a surface that can reach them sets it); gets the note.
    notify: Callable[[str], Awaitable[None]] | None = None
    reached_at: datetime | None = None
    code: str | None = None

    def observe(self, ended: Ended) -> bool:
        """Note how a request ended; True when it met the spend limit."""
        if ended.error is not None and ended.error.failure == ClaudeFailure.SPEND_LIMIT:
            self.reached_at, self.code = self.clock(), ended.error.code
            return True
        if ended.error is None and ended.usage.output_tokens:
            self.reached_at = None  # a request went through: the limit was lifted
        return False

    @property
    def resets_at(self) -> datetime | None:
        """When the monthly limit lifts by itself (a contract's does not)."""
        if self.reached_at is None or self.code not in (None, MONTHLY_SPEND_LIMIT):
            return None
        return spend_limit_resets(self.reached_at)

    def status(self) -> dict[str, Any] | None:
        if self.reached_at is None:
            return None
        resets = self.resets_at
        if resets is not None and self.clock() >= resets:
            return None  # a new month: the limit has reset, whether or not anyone asked since
        return {
            "reached_at": self.reached_at.isoformat(timespec="seconds"),
            "resets_at": None if resets is None else resets.isoformat(timespec="seconds"),
            "message": spend_limit_note(self.reached_at, self.code),
        }

    async def tell_admins(self) -> None:
        """Once a day: the admins learn why nobody gets answers."""
        if self.notify is None:
            return
        try:
            if await self.claim(self.clock().date().isoformat()):
                await self.notify(spend_limit_admin_note(self.clock(), self.code))
        except Exception:
            log.warning("could not tell the admins about the spend limit", exc_info=True)


def spend_limit_admin_note(now: datetime, code: str | None) -> str:
    if code not in (None, MONTHLY_SPEND_LIMIT):
        lift = "It lasts until the contract's limit is raised with Anthropic."
    else:
        resets = spend_limit_resets(now)
        lift = (
            f"It resets on {resets:%-d %B %Y} at 00:00 UTC; to lift it sooner, raise the limit "
            "in the Claude Console (Settings → Limits)."
        )
    return (
        ":warning: Claude can't answer anyone: the organisation's Anthropic spend limit is "
        f"reached. {lift} `/usage` counts the requests it refused. (This notice comes once "
        "a day.)"
    )
