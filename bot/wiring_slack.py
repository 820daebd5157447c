"""The Slack half of the composition root: clients, the write scheduler, the responder,
the listeners and the App Home, wired onto the services `bot.wiring` built."""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.cost.budgets import BudgetDefaults
from bot.cost.usage_command import UsageCommand
from bot.slack.admins import Admins
from bot.slack.channel_commands import ChannelCommands
from bot.slack.client import CountedRateLimitRetries
from bot.slack.connect import SharedChannels
from bot.slack.files import FileLimits, FileReader
from bot.slack.history import ThreadHistory
from bot.slack.home import Home, HomeData
from bot.slack.listeners import Listeners
from bot.slack.rates import WriteRates
from bot.slack.recovery import SlackCloser, answer_kept
from bot.slack.responder import Responder
from bot.slack.scheduler import SlackWriter
from bot.slack.shared_budget import SharedBudget
from bot.store.budget_store import BudgetStore
from bot.store.channel_settings import ChannelSettingsStore
from bot.store.models import utcnow
from bot.store.write_budgets import WriteBudgetStore

if TYPE_CHECKING:
    from bot.wiring import Services

# Slack's advice for 429s is to wait Retry-After; two waits cover a burst without hiding an outage.
SLACK_RATE_LIMIT_RETRIES = 2
# Dropped or refused connections: a few quick tries, with exponential backoff and jitter.
SLACK_CONNECTION_RETRIES = 3


@dataclass(frozen=True)
class SlackParts:
    sessions: async_sessionmaker[AsyncSession]
    budget_store: BudgetStore
    defaults: BudgetDefaults
    models: frozenset[str]


async def build_slack(
    settings: Settings, stack: contextlib.AsyncExitStack, services: Services, parts: SlackParts
) -> None:
    assert settings.slack_bot_token is not None
    assert services.engine is not None
    assert services.recovery is not None
    metrics, engine = services.metrics, services.engine
    sessions, budget_store, defaults = parts.sessions, parts.budget_store, parts.defaults
    # One HTTP session for every Slack call: edits reuse a warm connection.
    # The session's timeout is the one that applies (the client's only covers sessions it makes).
    timeout = aiohttp.ClientTimeout(total=settings.slack_timeout_seconds)
    session = await stack.enter_async_context(aiohttp.ClientSession(timeout=timeout))
    retries: list[AsyncRetryHandler] = [
        AsyncConnectionErrorRetryHandler(
            max_retry_count=SLACK_CONNECTION_RETRIES,
            interval_calculator=BackoffRetryIntervalCalculator(backoff_factor=0.25),
        ),
        CountedRateLimitRetries(metrics, max_retry_count=SLACK_RATE_LIMIT_RETRIES),
    ]
    slack = AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        session=session,
        timeout=int(settings.slack_timeout_seconds),
        retry_handlers=retries,
    )
    # Message writes go through the scheduler, which handles 429s itself (for everyone).
    write_client = AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        session=session,
        timeout=int(settings.slack_timeout_seconds),
        retry_handlers=retries[:1],
    )
    writer = SlackWriter(
        write_client,
        WriteRates(
            update_per_minute=settings.slack_updates_per_minute,
            update_burst=settings.slack_update_burst,
            post_per_second=settings.slack_posts_per_second,
            post_burst=settings.slack_post_burst,
        ),
        on_rate_limited=lambda method: metrics.slack_rate_limited.labels(method).inc(),
        budget=SharedBudget(WriteBudgetStore(sessions), settings.slack_bot_token),
    )
    writer.start()
    stack.push_async_callback(writer.close)
    admins = Admins(slack, settings.admin_user_ids)
    responder = Responder(
        engine=engine,
        writer=writer,
        admins=admins,
        metrics=metrics,
        interval=settings.stream_edit_interval,
        # No waiting out a 429 for history: the answer goes on without it (and says so).
        history=ThreadHistory(
            write_client,
            services.store,
            keep=settings.thread_history_messages,
            commercial=settings.slack_commercial_distribution,
        ),
        files=FileReader(
            session, settings.slack_bot_token, FileLimits(per_message=settings.files_per_message)
        ),
    )
    services.recovery.closers["slack"] = SlackCloser(writer)
    services.recovery.askers["slack"] = functools.partial(answer_kept, responder, writer)
    engine.parts.spend_limit.notify = responder.tell_admins
    bolt = AsyncApp(
        # Named, or Bolt looks its name up in the call stack (a sixth of a second at start-up).
        name="claude-in-slack",
        client=slack,
        signing_secret=settings.slack_signing_secret or "",
        request_verification_enabled=not settings.socket_mode,
    )
    usage = UsageCommand(
        ledger=services.ledger,
        budgets=budget_store,
        defaults=defaults,
        is_admin=admins.is_admin,
        clock=utcnow,
    )
    Listeners(
        store=services.store,
        responder=responder,
        usage=usage,
        commands=ChannelCommands(engine.parts.channels, admins, services.store),
        shared=SharedChannels(slack),
        bots=settings.bot_allowlist,
    ).register(bolt)
    services.slack, services.writer = slack, writer
    services.responder, services.bolt = responder, bolt
    Home(
        slack,
        admins,
        HomeData(
            services.ledger,
            budget_store,
            defaults,
            engine.parts.channels,
            ChannelSettingsStore(sessions),
            parts.models,
        ),
        clock=utcnow,
    ).register(bolt)
