"""The App Home tab: built on `app_home_opened`, cached briefly, published with views.publish.

Admins get the month's spend against the budgets, top channels and people, spend by model,
a daily chart and each configured channel's settings, changed in a modal. The chart is a PNG
uploaded to Slack (files.uploadV2 without a channel: private to the app, shown with an image
block); if uploading is not allowed, or takes longer than the home may, a text chart stands
in and the PNG follows when it is ready.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.cost.budgets import BudgetDefaults
from bot.cost.chart import daily_chart_png, daily_chart_text
from bot.cost.report import UsageArgs, UsageReport, build_report, parse_period
from bot.engine.channels import BadSetting, Channels
from bot.slack.admins import Admins
from bot.slack.home_view import SETTINGS_ACTION_ID, Budget, Chart, admin_home, member_home
from bot.slack.scheduler import SLACK_ERRORS
from bot.slack.settings_modal import CALLBACK_ID, CHANNEL, current, settings_modal, submitted
from bot.store import Ledger
from bot.store.budget_store import WORKSPACE, BudgetStore
from bot.store.channel_settings import ChannelSettingsStore

log = logging.getLogger(__name__)

VIEW_SECONDS = 30.0  # a home opened again within this is not rebuilt
CHART_SECONDS = 600.0  # the chart is drawn and uploaded again after this
CHART_WAIT_SECONDS = 1.5  # the home never waits longer than this for the chart


@dataclass
class HomeData:
    ledger: Ledger
    budgets: BudgetStore
    defaults: BudgetDefaults
    channels: Channels
    settings: ChannelSettingsStore
    models: frozenset[str]


class Home:
    def __init__(
        self,
        client: AsyncWebClient,
        admins: Admins,
        data: HomeData,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self._client = client
        self._admins = admins
        self._data = data
        self._clock = clock
        self._views: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._charts: dict[str, tuple[float, asyncio.Task[str | None]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def register(self, app: AsyncApp) -> None:
        app.event("app_home_opened")(self.on_home_opened)
        app.action(SETTINGS_ACTION_ID)(self.on_settings_click)
        app.view(CALLBACK_ID)(self.on_settings_submit)

    async def on_home_opened(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        if event.get("tab") != "home":
            return
        await self.publish(str(body.get("team_id") or ""), str(event.get("user") or ""))

    async def publish(self, team_id: str, user_id: str, *, fresh: bool = False) -> None:
        key = (team_id, user_id)
        cached = self._views.get(key)
        if cached is not None and not fresh and time.monotonic() - cached[0] < VIEW_SECONDS:
            view = cached[1]
        else:
            view = await self._build(team_id, user_id)
            self._views[key] = (time.monotonic(), view)
        try:
            await self._client.views_publish(user_id=user_id, view=view)
        except SLACK_ERRORS:
            log.warning("could not publish the App Home of %s", user_id, exc_info=True)

    async def _build(self, team_id: str, user_id: str) -> dict[str, Any]:
        today = self._clock().date()
        month = parse_period("month", today)
        d = self._data
        if not await self._admins.is_admin(user_id):
            mine = await build_report(d.ledger, UsageArgs(month, user_id=user_id), team_id=team_id)
            return member_home(mine)
        report = await build_report(d.ledger, UsageArgs(month), team_id=team_id)
        channels = [
            (c, await d.channels.config(team_id, c)) for c in await d.settings.configured(team_id)
        ]
        chart = await self._chart(team_id, user_id, report, today)
        return admin_home(
            report, budgets=await self._budgets(team_id, report), chart=chart, channels=channels
        )

    async def _budgets(self, team_id: str, report: UsageReport) -> list[Budget]:
        stored = {
            b.period: b.limit_micros
            for b in await self._data.budgets.budgets(team_id)
            if b.scope == WORKSPACE
        }
        spent = report.totals.cost_micros + report.totals.estimated_micros
        today = report.by_day[-1][1] if report.by_day else None
        found = []
        for period, label, used in (
            ("monthly", "this month", spent),
            ("daily", "today", (today.cost_micros + today.estimated_micros) if today else 0),
        ):
            limit = stored.get(period, self._data.defaults.get(WORKSPACE, period))
            if limit:
                found.append(Budget(label, used, limit))
        return found

    async def _chart(self, team_id: str, user_id: str, report: UsageReport, today: date) -> Chart:
        days = _daily(report)
        text = daily_chart_text(days)
        known = self._charts.get(team_id)
        if known is None or time.monotonic() - known[0] > CHART_SECONDS:
            task = asyncio.create_task(self._upload(days, report.period.label))
            known = self._charts[team_id] = (time.monotonic(), task)
        task = known[1]
        if not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), CHART_WAIT_SECONDS)
            except TimeoutError:
                # The home goes out now with the text chart; the PNG follows when ready.
                task.add_done_callback(lambda _: self._republish(team_id, user_id))
                return Chart(None, text)
        return Chart(task.result() if not task.cancelled() else None, text)

    def _republish(self, team_id: str, user_id: str) -> None:
        task = asyncio.create_task(self.publish(team_id, user_id, fresh=True))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _upload(self, days: list[tuple[date, Decimal]], label: str) -> str | None:
        try:
            png = await asyncio.to_thread(daily_chart_png, days, title=f"Spend per day, {label}")
            uploaded = await self._client.files_upload_v2(
                content=png, filename="claude-spend.png", title="Claude spend per day"
            )
            files = uploaded.get("files") or [uploaded.get("file") or {}]
            return str(files[0]["id"])
        except (*SLACK_ERRORS, KeyError, IndexError):
            log.warning("could not upload the App Home chart; showing a text chart", exc_info=True)
            return None

    async def on_settings_click(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        user_id = str((body.get("user") or {}).get("id") or "")
        if not await self._admins.is_admin(user_id):
            return
        team_id = str((body.get("team") or {}).get("id") or "")
        action = (body.get("actions") or [{}])[0]
        channel = str(action.get("value") or "").strip("-") or None
        config = await self._data.channels.config(team_id, channel or "C")
        modal = settings_modal(channel, config, self._data.models)
        try:
            await self._client.views_open(trigger_id=str(body.get("trigger_id")), view=modal)
        except SLACK_ERRORS:
            log.warning("could not open the channel settings modal", exc_info=True)

    async def on_settings_submit(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        user_id = str((body.get("user") or {}).get("id") or "")
        team_id = str((body.get("team") or {}).get("id") or "")
        channel, values = submitted(view)
        if not await self._admins.is_admin(user_id):
            await ack(response_action="errors", errors={CHANNEL: "Only admins can change this."})
            return
        if not channel:
            await ack(response_action="errors", errors={CHANNEL: "Pick a channel."})
            return
        channels = self._data.channels
        before = current(await channels.config(team_id, channel))
        changed = {k: v for k, v in values.items() if v != before[k]}
        errors = {}
        for name, value in changed.items():
            try:
                channels.check(name, value)
            except BadSetting as error:
                errors[name] = str(error)[:150]
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        for name, value in changed.items():
            await channels.change(team_id, channel, name, value, user_id)
        await self.publish(team_id, user_id, fresh=True)


def _daily(report: UsageReport) -> list[tuple[date, Decimal]]:
    spent = {
        day: Decimal(s.cost_micros + s.estimated_micros) / 1_000_000 for day, s in report.by_day
    }
    return [(d, spent.get(d.isoformat(), Decimal(0))) for d in report.period.days]
