"""The composition root and server: serves HTTP at once, then migrates, wires and goes live.

`running_bot` is used alike by `python -m bot` and by the tests (with settings pointing at
the fake servers), so the tests run the production wiring. Nothing here runs at import.
/livez answers 200 from the first moment to the last; /healthz and /readyz answer 503 until
the database is migrated and Slack has accepted the token, 200 after, and 503 again from
shutdown on. Slack and Anthropic are each checked by a `Watch` (bot.watches): start-up waits
a little for their first answer, and a refused token or key stops it with one line; an
unreachable service is retried with backoff in the background, and a refusal met then stops
the bot (Health.failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Settings
from bot.engine.recovery import Recovery
from bot.errors import StartupError, first_line
from bot.metrics import Metrics
from bot.server import (
    SETTLE_HANDLING_SECONDS,
    SLACK_EVENTS_PATH,
    Health,
    QuietProbesAccessLogger,
    metrics_app,
    web_app,
)
from bot.slack.responder import Responder
from bot.store import Ledger, Store
from bot.store.migrate import upgrade
from bot.watches import Sockets, anthropic_watch, first_answers, slack_watch
from bot.wiring import build

log = logging.getLogger(__name__)

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
    metrics_port: int | None = None  # the local-only /metrics port, when it is served
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


@contextlib.asynccontextmanager
async def running_bot(settings: Settings) -> AsyncIterator[RunningBot]:
    """Serve, migrate, wire, connect (Socket Mode when configured) until the block exits.

    Raises ConfigError (Refused) when Slack or Anthropic refuses a token or key during
    start-up, StartupError when the port or the database cannot be used."""
    health = Health()
    async with contextlib.AsyncExitStack() as stack:
        app = web_app(
            health,
            http_events=not settings.socket_mode,
            signing_secret=settings.slack_signing_secret,
            metrics_token=settings.metrics_token,
        )
        # Handler cancellation: a /chat client that hangs up cancels its Claude request.
        runner = web.AppRunner(
            app, handler_cancellation=True, access_log_class=QuietProbesAccessLogger
        )
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        try:
            await web.TCPSite(runner, settings.host, settings.port).start()
        except OSError as error:
            raise StartupError(
                f"Cannot listen on {settings.host}:{settings.port} ({first_line(error)}): "
                "set PORT (and HOST) to a free port."
            ) from None
        port = _bound_port(runner, settings.port)
        metrics_port = await _serve_metrics(settings, health, stack)
        try:
            await asyncio.to_thread(upgrade, settings.database_url)
        except (SQLAlchemyError, OSError) as error:
            shown = make_url(settings.database_url).render_as_string(hide_password=True)
            raise StartupError(
                f"Cannot use the database at DATABASE_URL={shown}: {first_line(error)}"
            ) from None
        health.migrated = True
        services = await build(settings, stack)
        recovery, engine = services.recovery, services.engine
        assert recovery is not None
        assert engine is not None
        bot = RunningBot(
            port=port,
            health=health,
            store=services.store,
            ledger=services.ledger,
            responder=services.responder,
            metrics=services.metrics,
            recovery=recovery,
            metrics_port=metrics_port,
        )
        stack.push_async_callback(_cancel, bot.tasks)
        health.bolt, health.chat, health.metrics = services.bolt, services.chat, services.metrics
        sockets = Sockets()
        watches = [anthropic_watch(engine.parts.claude, settings, health)]
        if services.slack is None or services.bolt is None:
            health.slack = "off"
        else:
            watches.append(slack_watch(services.slack, services.bolt, settings, health, sockets))
        bot.tasks.update(asyncio.create_task(watch.run()) for watch in watches)
        # Replies a previous incarnation left streaming are closed before serving.
        await recovery.beat()
        await recovery.sweep()
        await first_answers(watches)  # raises Refused: a token or key no retry can fix
        health.spend_limit = engine.parts.spend_limit.status
        health.accepting = True
        # What start-up made lives as long as the process: out of the collector's sight, so
        # a full collection during a burst of events does not walk it all (ack latency).
        gc.freeze()
        bot.tasks.add(asyncio.create_task(recovery.run()))
        if services.responder is not None:
            bot.tasks.add(asyncio.create_task(services.responder.replies.watch()))
        log.info("bot serving on %s:%s (%s)", settings.host, port, _surfaces(settings, bot))
        try:
            yield bot
        finally:
            health.accepting = False  # no new events or requests from here on
            health.stopping = True  # /readyz: "stopping" (/healthz reads health.slack)
            health.slack = "stopping"
            await _cancel(bot.tasks)  # the watches too: no socket opens after this
            # Off the socket now: Slack then delivers new events to the next process.
            await sockets.close()
            # Requests acknowledged but still in Bolt's hands reach their listeners (which
            # count themselves in flight) before the drain below counts.
            await health.settle_handling(SETTLE_HANDLING_SECONDS)
            # Replies cut short still need their final edits, at Slack's pace.
            finalise = FINALISE_SECONDS + len(services.in_flight) * 60 / (
                settings.slack_updates_per_minute
            )
            await services.in_flight.drain(settings.shutdown_grace_seconds, finalise)
            await engine.settle(FINALISE_SECONDS)
            await recovery.leave()


async def _serve_metrics(
    settings: Settings, health: Health, stack: contextlib.AsyncExitStack
) -> int | None:
    """/metrics on 127.0.0.1:METRICS_PORT, without a token and without access-log lines."""
    wanted = settings.metrics_local_port
    if wanted is None:
        return None
    runner = web.AppRunner(metrics_app(health), access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    try:
        await web.TCPSite(runner, "127.0.0.1", wanted).start()
    except OSError as error:
        if settings.metrics_port is not None:
            raise StartupError(
                f"Cannot serve /metrics on 127.0.0.1:{wanted} ({first_line(error)}): "
                "set METRICS_PORT to a free port."
            ) from None
        log.warning(
            "/metrics is not served: 127.0.0.1:%d is taken (%s); set METRICS_PORT to a free "
            "port, or METRICS_TOKEN to serve it on the main port",
            wanted,
            first_line(error),
        )
        return None
    return _bound_port(runner, wanted)


async def _cancel(tasks: set[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _surfaces(settings: Settings, bot: RunningBot) -> str:
    surfaces = []
    if settings.slack_enabled:
        surfaces.append(
            "Slack over Socket Mode"
            if settings.socket_mode
            else f"Slack events at {SLACK_EVENTS_PATH}"
        )
    if settings.chat_api_token:
        surfaces.append("the HTTP API at /chat")
    where = [" and ".join(surfaces)]
    if settings.metrics_token:
        where.append("/metrics here with METRICS_TOKEN")
    if bot.metrics_port is not None:
        where.append(f"/metrics on 127.0.0.1:{bot.metrics_port}")
    return "; ".join(where)


def _bound_port(runner: web.AppRunner, configured: int) -> int:
    # With PORT=0 (tests) the OS picks the port; report the real one.
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return configured
