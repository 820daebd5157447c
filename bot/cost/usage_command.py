"""`/usage`: the cost report and budget settings, for admins only.

Everything here answers privately. A non-admin learns nothing but that the command is for
admins; a bad argument gets the help.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.cost.budgets import PERIODS, BudgetDefaults
from bot.cost.prices import money as dollars
from bot.cost.report import UsageArgError, build_report, parse_usage_args
from bot.cost.usage_view import NOT_ADMIN, USAGE_HELP, usage_blocks
from bot.store import Ledger
from bot.store.budget_store import CHANNEL, USER, WORKSPACE, BudgetStore

_TARGET_CHANNEL = re.compile(r"^<#([CGD][A-Z0-9]+)(?:\|[^>]*)?>$")
_TARGET_USER = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_AMOUNT = re.compile(r"^\$?(\d+(?:\.\d{1,6})?)$")


@dataclass(frozen=True)
class Answer:
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


class UsageCommand:
    def __init__(
        self,
        *,
        ledger: Ledger,
        budgets: BudgetStore,
        defaults: BudgetDefaults,
        is_admin: Callable[[str], Awaitable[bool]],
        clock: Callable[[], datetime],
    ) -> None:
        self._ledger = ledger
        self._budgets = budgets
        self._defaults = defaults
        self._is_admin = is_admin
        self._clock = clock

    async def handle(self, *, team_id: str, user_id: str, text: str) -> Answer:
        if not await self._is_admin(user_id):
            return Answer(NOT_ADMIN)
        words = text.split()
        if words[:1] == ["help"]:
            return Answer(USAGE_HELP)
        if words[:1] == ["budget"]:
            return await self._budget(team_id, user_id, words[1:])
        try:
            args = parse_usage_args(text, self._clock().date())
        except UsageArgError as error:
            return Answer(f"{error}\n\n{USAGE_HELP}")
        report = await build_report(self._ledger, args, team_id=team_id)
        return Answer("Claude usage and cost", usage_blocks(report))

    async def _budget(self, team_id: str, user_id: str, words: list[str]) -> Answer:
        if not words:
            return Answer(await self._list(team_id))
        if len(words) != 3:
            return Answer(f"Say which budget, which period and how much.\n\n{USAGE_HELP}")
        target_word, period, amount = words
        target = _target(target_word)
        if target is None or period not in PERIODS:
            return Answer(f"`{target_word} {period}` is not a budget I know.\n\n{USAGE_HELP}")
        scope, target_id = target
        name = _name(scope, target_id, period)
        if amount == "default":
            await self._budgets.clear_budget(team_id, scope=scope, target=target_id, period=period)
            fallback = self._defaults.get(scope, period)
            left = f"the default of {dollars(fallback)}" if fallback is not None else "no budget"
            return Answer(f"{name}: back to the bot's setting, {left}.")
        if amount == "off":
            limit = None
        else:
            micros = _micros(amount)
            if micros is None:
                return Answer(f"`{amount}` is not an amount of dollars.\n\n{USAGE_HELP}")
            limit = micros
        await self._budgets.set_budget(
            team_id,
            scope=scope,
            target=target_id,
            period=period,
            limit_micros=limit,
            set_by=user_id,
        )
        shown = "off" if limit is None else dollars(limit)
        return Answer(f"{name} is now {shown}. Everyone's next request is checked against it.")

    async def _list(self, team_id: str) -> str:
        stored = await self._budgets.budgets(team_id)
        own = {(b.scope, b.period): b for b in stored if b.scope == WORKSPACE}
        lines = ["*Budgets in force* (UTC days and calendar months)"]
        for scope, label in (
            (WORKSPACE, "Workspace"),
            (CHANNEL, "Each channel"),
            (USER, "Each person"),
        ):
            for period in PERIODS:
                row = own.get((scope, period))
                if row is not None:
                    shown = _stored(row.limit_micros, row.set_by, row.set_at)
                else:
                    default = self._defaults.get(scope, period)
                    shown = f"{dollars(default)} (bot setting)" if default is not None else "none"
                lines.append(f"• {label}, {period}: {shown}")
        for b in stored:
            if b.scope != WORKSPACE:
                shown = _stored(b.limit_micros, b.set_by, b.set_at)
                lines.append(f"• {_name(b.scope, b.target, b.period)}: {shown}")
        return "\n".join(lines)


def _target(word: str) -> tuple[str, str] | None:
    if word == "workspace":
        return WORKSPACE, ""
    if match := _TARGET_CHANNEL.match(word):
        return CHANNEL, match.group(1)
    if match := _TARGET_USER.match(word):
        return USER, match.group(1)
    return None


def _name(scope: str, target: str, period: str) -> str:
    whose = {WORKSPACE: "The workspace's", CHANNEL: f"<#{target}>'s", USER: f"<@{target}>'s"}
    return f"{whose[scope]} {period} budget"


def _stored(limit: int | None, set_by: str | None, set_at: datetime) -> str:
    shown = "off" if limit is None else dollars(limit)
    return f"{shown} (set by <@{set_by}> on {set_at:%Y-%m-%d})"


def _micros(amount: str) -> int | None:
    match = _AMOUNT.match(amount)
    if not match:
        return None
    try:
        return int(Decimal(match.group(1)) * 1_000_000)
    except InvalidOperation:
        return None
