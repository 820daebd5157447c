"""Building the bot's parts from the settings: one client of each kind for the whole process.

Everything built here is closed by the exit stack it is given, in reverse order.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.admins import Admins
from bot.answer import ReplySettings, Responder
from bot.budgets import BudgetDefaults, Budgets
from bot.claude import Claude
from bot.config import Settings
from bot.listeners import Listeners
from bot.pricing import load_price_table
from bot.store import Ledger, Store, make_engine, make_sessionmaker
from bot.store.budget_store import BudgetStore
from bot.store.models import utcnow
from bot.usage_command import UsageCommand

# Slack's advice for 429s is to wait Retry-After; two waits cover a burst without hiding an outage.
SLACK_RATE_LIMIT_RETRIES = 2


@dataclass
class Services:
    slack: AsyncWebClient
    store: Store
    ledger: Ledger
    responder: Responder
    bolt: AsyncApp


def budget_defaults(settings: Settings) -> BudgetDefaults:
    return BudgetDefaults(
        **{
            f"{scope}_{period}": settings.budget_micros(scope, period)
            for scope in ("workspace", "channel", "user")
            for period in ("daily", "monthly")
        }
    )


async def build(settings: Settings, stack: contextlib.AsyncExitStack) -> Services:
    prices = load_price_table(settings.pricing_file)
    engine = make_engine(settings.database_url)
    stack.push_async_callback(engine.dispose)
    sessions = make_sessionmaker(engine)
    store = Store(sessions)
    ledger = Ledger(sessions)
    # One HTTP session for every Slack call: edits reuse a warm connection.
    session = await stack.enter_async_context(aiohttp.ClientSession())
    slack = AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        session=session,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(),
            AsyncRateLimitErrorRetryHandler(max_retry_count=SLACK_RATE_LIMIT_RETRIES),
        ],
    )
    claude = Claude.connect(
        api_key=settings.anthropic_api_key,
        base_url=settings.anthropic_base_url,
        max_retries=settings.anthropic_max_retries,
        timeout=settings.anthropic_timeout,
    )
    stack.push_async_callback(claude.close)
    admins = Admins(slack, settings.admin_user_ids)
    budget_store = BudgetStore(sessions)
    defaults = budget_defaults(settings)
    responder = Responder(
        store=store,
        ledger=ledger,
        claude=claude,
        slack=slack,
        admins=admins,
        budgets=Budgets(budget_store, defaults, prices),
        prices=prices,
        settings=ReplySettings(
            model=settings.claude_model,
            max_tokens=settings.claude_max_tokens,
            system_prompt=settings.system_prompt,
            edit_interval=settings.stream_edit_interval,
            context_window=settings.claude_context_window,
            channel_memory_turns=settings.channel_memory_turns,
        ),
    )
    bolt = AsyncApp(
        client=slack,
        signing_secret=settings.slack_signing_secret or "",
        request_verification_enabled=not settings.socket_mode,
    )
    usage = UsageCommand(
        ledger=ledger, budgets=budget_store, defaults=defaults, admins=admins, clock=utcnow
    )
    Listeners(store=store, responder=responder, usage=usage).register(bolt)
    return Services(slack=slack, store=store, ledger=ledger, responder=responder, bolt=bolt)
