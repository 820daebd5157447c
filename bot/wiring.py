"""Building the bot's parts from the settings: one client of each kind for the whole process.

Everything built here is closed by the exit stack it is given, in reverse order. Slack parts
are built only when Slack is configured; /chat only when CHAT_API_TOKEN is set.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.web.async_client import AsyncWebClient

from bot.claude import Claude, Deadlines
from bot.config import Settings
from bot.cost.budgets import BudgetDefaults, Budgets
from bot.cost.prices import load_price_table
from bot.cost.usage_command import UsageCommand
from bot.engine import Engine, EngineParts, InFlight
from bot.engine.admission import Admission, ReplySettings
from bot.engine.capacity import CapacityLearner
from bot.engine.limits import RateLimiter
from bot.engine.queue import FairQueue
from bot.engine.recording import Recorder
from bot.engine.recovery import Recovery, new_process_id
from bot.engine.spend_limit import SpendLimit
from bot.http.chat import ChatApi
from bot.metrics import Metrics
from bot.slack.admins import Admins
from bot.slack.files import FileLimits, FileReader
from bot.slack.history import ThreadHistory
from bot.slack.listeners import Listeners
from bot.slack.rates import WriteRates
from bot.slack.recovery import SlackCloser, answer_kept
from bot.slack.responder import Responder
from bot.slack.scheduler import SlackWriter
from bot.slack.shared_budget import SharedBudget
from bot.store import Ledger, Processes, Store, make_engine, make_sessionmaker
from bot.store.budget_store import BudgetStore
from bot.store.models import utcnow
from bot.store.rate_limits import RateStore
from bot.store.write_budgets import WriteBudgetStore

# Slack's advice for 429s is to wait Retry-After; two waits cover a burst without hiding an outage.
SLACK_RATE_LIMIT_RETRIES = 2
# Dropped or refused connections: a few quick tries, with exponential backoff and jitter.
SLACK_CONNECTION_RETRIES = 3


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


class CountedRateLimitRetries(AsyncRateLimitErrorRetryHandler):
    """Slack's own 429 handling, counted in the metrics."""

    def __init__(self, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._metrics = metrics

    async def _can_retry_async(self, **kwargs: Any) -> bool:
        response = kwargs.get("response")
        if response is not None and response.status_code == 429:
            method = kwargs["request"].url.rsplit("/", 1)[-1]
            self._metrics.slack_rate_limited.labels(method).inc()
        return await super()._can_retry_async(**kwargs)


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
        )
    )
    services.recovery = Recovery(
        processes=Processes(sessions),
        store=services.store,
        recorder=recorder,
        owner=owner,
        timeout=settings.recovery_after_seconds,
        clock=utcnow,
    )
    if settings.chat_api_token:
        services.chat = ChatApi(
            token=settings.chat_api_token, max_chars=settings.chat_max_message_chars, engine=engine
        )
    if not settings.slack_bot_token:
        return services
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
    services.recovery.askers["slack"] = functools.partial(answer_kept, responder)
    engine.parts.spend_limit.notify = responder.tell_admins
    bolt = AsyncApp(
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
        follow_ups=settings.follow_ups,
        bots=settings.bot_allowlist,
    ).register(bolt)
    services.slack, services.writer = slack, writer
    services.responder, services.bolt = responder, bolt
    return services
