"""The composition root: builds every client once from the settings and serves the bot.

`running_bot` is used alike by `python -m bot` and by the tests (with settings pointing at
the fake servers), so the tests run the production wiring. Nothing here runs at import.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
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
from bot.store.migrate import upgrade
from bot.store.models import utcnow
from bot.usage_command import UsageCommand

log = logging.getLogger(__name__)

SLACK_EVENTS_PATH = "/slack/events"
# Slack's advice for 429s is to wait Retry-After; two waits cover a burst without hiding an outage.
SLACK_RATE_LIMIT_RETRIES = 2
AUTH_RETRY_MAX_SECONDS = 60.0
SHUTDOWN_GRACE_SECONDS = 10.0


@dataclass
class Health:
    migrated: bool = False
    slack: str = "pending"  # "ok" once auth.test succeeded, else the last error code

    @property
    def ready(self) -> bool:
        return self.migrated and self.slack == "ok"


@dataclass
class RunningBot:
    port: int
    health: Health
    store: Store
    ledger: Ledger
    responder: Responder
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


def budget_defaults(settings: Settings) -> BudgetDefaults:
    return BudgetDefaults(
        **{
            f"{scope}_{period}": settings.budget_micros(scope, period)
            for scope in ("workspace", "channel", "user")
            for period in ("daily", "monthly")
        }
    )


def slack_client(settings: Settings) -> AsyncWebClient:
    return AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_url,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(),
            AsyncRateLimitErrorRetryHandler(max_retry_count=SLACK_RATE_LIMIT_RETRIES),
        ],
    )


@contextlib.asynccontextmanager
async def running_bot(settings: Settings) -> AsyncIterator[RunningBot]:
    """Migrate, wire, serve HTTP (and Socket Mode when configured) until the block exits."""
    health = Health()
    await asyncio.to_thread(upgrade, settings.database_url)
    health.migrated = True

    prices = load_price_table(settings.pricing_file)
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    store = Store(sessions)
    ledger = Ledger(sessions)
    slack = slack_client(settings)
    claude = Claude.connect(
        api_key=settings.anthropic_api_key,
        base_url=settings.anthropic_base_url,
        max_retries=settings.anthropic_max_retries,
        timeout=settings.anthropic_timeout,
    )
    admins = Admins(slack, settings.admin_user_ids)
    budget_store = BudgetStore(sessions)
    defaults = budget_defaults(settings)
    budgets = Budgets(budget_store, defaults, prices)
    responder = Responder(
        store=store,
        ledger=ledger,
        claude=claude,
        slack=slack,
        admins=admins,
        budgets=budgets,
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
        ledger=ledger,
        budgets=budget_store,
        defaults=defaults,
        admins=admins,
        clock=utcnow,
    )
    Listeners(store=store, responder=responder, usage=usage).register(bolt)

    runner = web.AppRunner(web_app(bolt, health, http_events=not settings.socket_mode))
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    port = _bound_port(runner, settings.port)
    bot = RunningBot(port=port, health=health, store=store, ledger=ledger, responder=responder)
    bot.tasks.add(asyncio.create_task(_check_slack(slack, health)))
    socket_handler: AsyncSocketModeHandler | None = None
    try:
        if settings.slack_app_token:
            socket_handler = AsyncSocketModeHandler(bolt, settings.slack_app_token)
            await socket_handler.connect_async()  # type: ignore[no-untyped-call]
        log.info(
            "bot serving on %s:%s (%s)",
            settings.host,
            port,
            "Socket Mode" if settings.socket_mode else f"HTTP events at {SLACK_EVENTS_PATH}",
        )
        yield bot
    finally:
        health.slack = "stopping"
        for task in bot.tasks:
            task.cancel()
        if socket_handler is not None:
            await socket_handler.close_async()  # type: ignore[no-untyped-call]
        await responder.drain(SHUTDOWN_GRACE_SECONDS)
        await runner.cleanup()
        await claude.close()
        await engine.dispose()


def web_app(bolt: AsyncApp, health: Health, *, http_events: bool) -> web.Application:
    async def slack_events(request: web.Request) -> web.Response:
        bolt_response = await bolt.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def healthz(_request: web.Request) -> web.Response:
        status = 200 if health.ready else 503
        body = {
            "status": "ok" if health.ready else "starting",
            "database": "ok" if health.migrated else "pending",
            "slack": health.slack,
        }
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    if http_events:
        app.router.add_post(SLACK_EVENTS_PATH, slack_events)
    return app


async def _check_slack(slack: AsyncWebClient, health: Health) -> None:
    """Call auth.test until it succeeds; /healthz stays 503 until then."""
    delay = 1.0
    while True:
        try:
            identity = await slack.auth_test()
        except SlackApiError as error:
            health.slack = str(error.response.get("error") or "error")
            log.error(  # noqa: TRY400 - the code says it all; a traceback would be noise
                "Slack auth.test failed (%s): check SLACK_BOT_TOKEN and SLACK_API_URL", health.slack
            )
        except Exception:
            health.slack = "unreachable"
            log.exception("Slack auth.test could not reach Slack (SLACK_API_URL)")
        else:
            health.slack = "ok"
            log.info(
                "connected to Slack team=%s bot=%s", identity.get("team"), identity.get("user")
            )
            return
        await asyncio.sleep(delay)
        delay = min(delay * 2, AUTH_RETRY_MAX_SECONDS)


def _bound_port(runner: web.AppRunner, configured: int) -> int:
    # With PORT=0 (tests) the OS picks the port; report the real one.
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return configured
