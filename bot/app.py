"""The composition root and server: serves HTTP at once, then migrates, wires and goes live.

`running_bot` is used alike by `python -m bot` and by the tests (with settings pointing at
the fake servers), so the tests run the production wiring. Nothing here runs at import.
/livez answers 200 from the first moment to the last; /healthz and /readyz answer 503 until
the database is migrated and Slack has accepted the token, 200 after, and 503 again from
shutdown on. Slack events that arrive before then get a 503, and Slack delivers them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.engine.recovery import Recovery
from bot.errors import ConfigError
from bot.metrics import Metrics
from bot.server import SLACK_EVENTS_PATH, Health, QuietProbesAccessLogger, web_app
from bot.slack.responder import Responder
from bot.store import Ledger, Store
from bot.store.migrate import upgrade
from bot.wiring import build

log = logging.getLogger(__name__)

AUTH_RETRY_MAX_SECONDS = 60.0
# After the grace period, the least time cancelled work gets to write its last words.
FINALISE_SECONDS = 15.0


@dataclass
class RunningBot:
    port: int
    health: Health
    store: Store
    ledger: Ledger
    responder: Responder | None
    metrics: Metrics
    recovery: Recovery
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


@contextlib.asynccontextmanager
async def running_bot(settings: Settings) -> AsyncIterator[RunningBot]:
    """Serve, migrate, wire, connect (Socket Mode when configured) until the block exits."""
    health = Health()
    async with contextlib.AsyncExitStack() as stack:
        secret = settings.slack_signing_secret
        app = web_app(health, http_events=not settings.socket_mode, signing_secret=secret)
        # Handler cancellation: a /chat client that hangs up cancels its Claude request.
        runner = web.AppRunner(
            app, handler_cancellation=True, access_log_class=QuietProbesAccessLogger
        )
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        port = _bound_port(runner, settings.port)

        await asyncio.to_thread(upgrade, settings.database_url)
        health.migrated = True
        services = await build(settings, stack)
        recovery = services.recovery
        assert recovery is not None
        bot = RunningBot(
            port=port,
            health=health,
            store=services.store,
            ledger=services.ledger,
            responder=services.responder,
            metrics=services.metrics,
            recovery=recovery,
        )
        socket: AsyncSocketModeHandler | None = None
        if services.slack is not None and services.bolt is not None and settings.slack_app_token:
            await _check_app_token(services.slack, settings.slack_app_token)
            socket = AsyncSocketModeHandler(services.bolt, settings.slack_app_token)
            await socket.connect_async()  # type: ignore[no-untyped-call]
        # Replies a previous incarnation left streaming are closed before serving.
        await recovery.beat()
        await recovery.sweep()
        health.bolt, health.chat, health.metrics = services.bolt, services.chat, services.metrics
        if services.engine is not None:
            health.spend_limit = services.engine.parts.spend_limit.status
        health.accepting = True
        if services.slack is None:
            health.slack = "off"
            checker = asyncio.create_task(asyncio.sleep(0))
        else:
            checker = asyncio.create_task(_check_slack(services.slack, health))
        bot.tasks.add(checker)
        bot.tasks.add(asyncio.create_task(recovery.run()))
        if services.responder is not None:
            bot.tasks.add(asyncio.create_task(services.responder.replies.watch()))
        log.info(
            "bot serving on %s:%s (%s)",
            settings.host,
            port,
            _surfaces(settings),
        )
        try:
            yield bot
        finally:
            health.accepting = False  # no new events or requests from here on
            health.stopping = True  # /readyz: "stopping" (/healthz reads health.slack)
            health.slack = "stopping"
            if socket is not None:
                # Off the socket first: Slack then delivers new events to the next process.
                await socket.close_async()  # type: ignore[no-untyped-call]
            for task in bot.tasks:
                task.cancel()
            await asyncio.gather(*bot.tasks, return_exceptions=True)
            # Replies cut short still need their final edits, at Slack's pace.
            finalise = FINALISE_SECONDS + len(services.in_flight) * 60 / (
                settings.slack_updates_per_minute
            )
            await services.in_flight.drain(settings.shutdown_grace_seconds, finalise)
            if services.engine is not None:
                await services.engine.settle(FINALISE_SECONDS)
            await recovery.leave()


def _surfaces(settings: Settings) -> str:
    surfaces = []
    if settings.slack_enabled:
        surfaces.append(
            "Slack over Socket Mode"
            if settings.socket_mode
            else f"Slack events at {SLACK_EVENTS_PATH}"
        )
    if settings.chat_api_token:
        surfaces.append("the HTTP API at /chat")
    return " and ".join(surfaces)


async def _check_app_token(slack: AsyncWebClient, app_token: str) -> None:
    """Fail start-up with a clear message rather than retry a refused token forever."""
    try:
        await slack.apps_connections_open(app_token=app_token)
    except SlackApiError as error:
        code = error.response.get("error") or "refused"
        raise ConfigError(
            f"SLACK_APP_TOKEN was refused by Slack ({code}): create an app-level token with "
            "the connections:write scope (Basic Information → App-Level Tokens) and make "
            "sure Socket Mode is enabled for the app."
        ) from None


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
            log.info("connected to Slack team=%s bot=%s", identity["team"], identity["user"])
            return
        await asyncio.sleep(delay)
        delay = min(delay * 2, AUTH_RETRY_MAX_SECONDS)


def _bound_port(runner: web.AppRunner, configured: int) -> int:
    # With PORT=0 (tests) the OS picks the port; report the real one.
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return configured
