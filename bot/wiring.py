"""Building the bot's parts from the settings: one client of each kind for the whole process.

Everything built here is closed by the exit stack it is given, in reverse order. Slack parts
are built only when Slack is configured; /chat only when CHAT_API_TOKEN is set.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.claude import Claude, Deadlines
from bot.config import Settings
from bot.cost.budgets import BudgetDefaults, Budgets
from bot.cost.prices import load_price_table
from bot.engine import Engine, EngineParts, InFlight
from bot.engine.admission import Admission, ReplySettings
from bot.engine.capacity import CapacityLearner
from bot.engine.channels import ChannelDefaults, Channels
from bot.engine.limits import RateLimiter
from bot.engine.queue import FairQueue
from bot.engine.recording import Recorder
from bot.engine.recovery import Recovery, new_process_id
from bot.engine.spend_limit import SpendLimit
from bot.http.chat import ChatApi
from bot.metrics import Metrics
from bot.slack.responder import Responder
from bot.slack.scheduler import SlackWriter
from bot.store import Ledger, Processes, Store, make_engine, make_sessionmaker
from bot.store.budget_store import BudgetStore
from bot.store.channel_settings import ChannelSettingsStore
from bot.store.models import utcnow
from bot.store.rate_limits import RateStore
from bot.wiring_slack import SlackParts, build_slack


@dataclass
class Services:
    store: Store
    ledger: Ledger
    metrics: Metrics
    slack: AsyncWebClient | None = None
    writer: SlackWriter | None = None
    recorder: Recorder | None = None
    in_flight: InFlight = field(default_factory=InFlight)
    responder: Responder | None = None
    engine: Engine | None = None
    recovery: Recovery | None = None
    bolt: AsyncApp | None = None
    chat: ChatApi | None = None


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
    metrics = Metrics()
    database = make_engine(settings.database_url)
    stack.push_async_callback(database.dispose)
    sessions = make_sessionmaker(database)
    services = Services(store=Store(sessions), ledger=Ledger(sessions), metrics=metrics)
    owner = new_process_id()
    learner = CapacityLearner(utcnow)
    claude = Claude.connect(
        api_key=settings.anthropic_api_key,
        base_url=settings.anthropic_base_url,
        max_retries=settings.anthropic_max_retries,
        timeout=settings.anthropic_timeout,
        on_limits=learner.observe,
    )
    stack.push_async_callback(claude.close)
    slot_seconds = settings.claude_deadline_seconds + 120
    rates = RateStore(sessions)
    queue = FairQueue(
        rates,
        learner,
        owner=owner,
        ceiling=settings.max_concurrent_requests,
        slot_seconds=slot_seconds,
        clock=utcnow,
    )
    queue.start()
    stack.push_async_callback(queue.close)
    budget_store = BudgetStore(sessions)
    defaults = budget_defaults(settings)
    reply = ReplySettings(
        model=settings.claude_model,
        max_tokens=settings.claude_max_tokens,
        system_prompt=settings.system_prompt,
        edit_interval=settings.stream_edit_interval,
        context_window=settings.claude_context_window,
        channel_memory_turns=settings.channel_memory_turns,
        max_tokens_by_kind=settings.max_tokens_by_kind,
    )
    admission = Admission(
        store=services.store,
        claude=claude,
        budgets=Budgets(
            budget_store, defaults, prices, hold_seconds=settings.claude_deadline_seconds + 120
        ),
        limiter=RateLimiter(
            rates,
            queue,
            owner=owner,
            per_minute=settings.user_requests_per_minute,
            concurrent=settings.max_concurrent_requests,
            per_user_concurrent=settings.user_max_concurrent_requests,
            queue_wait=settings.queue_wait_seconds,
            clock=utcnow,
            slot_seconds=slot_seconds,
        ),
        metrics=metrics,
        settings=reply,
        clock=utcnow,
    )
    recorder = services.recorder = Recorder(
        ledger=services.ledger, prices=prices, metrics=metrics, model=settings.claude_model
    )
    deadlines = Deadlines(
        total=settings.claude_deadline_seconds,
        first_token=settings.claude_first_token_seconds,
        stall=settings.claude_stall_seconds,
    )
    engine = services.engine = Engine(
        EngineParts(
            store=services.store,
            claude=claude,
            admission=admission,
            recorder=recorder,
            metrics=metrics,
            settings=reply,
            deadlines=deadlines,
            in_flight=services.in_flight,
            owner=owner,
            spend_limit=SpendLimit(
                clock=utcnow,
                claim=lambda day: budget_store.claim_warning(
                    "", "anthropic", "spend_limit", "daily", day
                ),
            ),
            channels=Channels(
                ChannelSettingsStore(sessions),
                ChannelDefaults(
                    enabled=settings.channels_default == "on",
                    model=settings.claude_model,
                    follow_ups=settings.follow_ups,
                ),
                models={*prices.models, settings.claude_model},
                clock=utcnow,
            ),
        )
    )
    services.recovery = Recovery(
        processes=Processes(sessions),
        store=services.store,
        recorder=recorder,
        owner=owner,
        timeout=settings.recovery_after_seconds,
        clock=utcnow,
        retention_days=settings.retention_days,
    )
    if settings.chat_api_token:
        services.chat = ChatApi(
            token=settings.chat_api_token, max_chars=settings.chat_max_message_chars, engine=engine
        )
    if settings.slack_bot_token:
        await build_slack(
            settings,
            stack,
            services,
            SlackParts(
                sessions, budget_store, defaults, frozenset({*prices.models, settings.claude_model})
            ),
        )
    return services
