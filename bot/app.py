"""The composition root and server: serves HTTP at once, then migrates, wires and goes live.

`running_bot` is used alike by `python -m bot` and by the tests (with settings pointing at
the fake servers), so the tests run the production wiring. Nothing here runs at import.
/healthz answers from the first moment: 503 until the database is migrated and Slack has
accepted the token, 200 after. Slack events that arrive before then get a 503, and Slack
delivers them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.answer import Responder
from bot.chat_api import ChatApi
from bot.config import Settings
from bot.errors import ConfigError
from bot.metrics import CONTENT_TYPE, Metrics
from bot.recovery import keep_recovering, recover
from bot.store import Ledger, Store
from bot.store.migrate import upgrade
from bot.wiring import build

log = logging.getLogger(__name__)

SLACK_EVENTS_PATH = "/slack/events"
AUTH_RETRY_MAX_SECONDS = 60.0
# After the grace period, the least time cancelled work gets to write its last words.
FINALISE_SECONDS = 15.0


@dataclass
class Health:
    migrated: bool = False
    slack: str = "pending"  # "ok" once auth.test succeeded, else the last error code
    bolt: AsyncApp | None = None  # set once everything is wired
    chat: ChatApi | None = None
    metrics: Metrics | None = None
    accepting: bool = False  # False before start-up ends and from shutdown on

    @property
    def ready(self) -> bool:
        return self.migrated and self.slack in ("ok", "off") and self.accepting


@dataclass
class RunningBot:
    port: int
    health: Health
    store: Store
    ledger: Ledger
    responder: Responder | None
    metrics: Metrics
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


@contextlib.asynccontextmanager
async def running_bot(settings: Settings) -> AsyncIterator[RunningBot]:
    """Serve, migrate, wire, connect (Socket Mode when configured) until the block exits."""
    health = Health()
    async with contextlib.AsyncExitStack() as stack:
        # Handler cancellation: a /chat client that hangs up cancels its Claude request.
        runner = web.AppRunner(
            web_app(health, http_events=not settings.socket_mode), handler_cancellation=True
        )
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, settings.host, settings.port)
        await site.start()
        port = _bound_port(runner, settings.port)

        await asyncio.to_thread(upgrade, settings.database_url)
        health.migrated = True
        services = await build(settings, stack)
        bot = RunningBot(
            port=port,
            health=health,
            store=services.store,
            ledger=services.ledger,
            responder=services.responder,
            metrics=services.metrics,
        )
        socket: AsyncSocketModeHandler | None = None
        if services.slack is not None and services.bolt is not None and settings.slack_app_token:
            await _check_app_token(services.slack, settings.slack_app_token)
            socket = AsyncSocketModeHandler(services.bolt, settings.slack_app_token)
            await socket.connect_async()  # type: ignore[no-untyped-call]
        ours: set[int] = services.responder.active_turns if services.responder else set()
        if services.recorder is not None:
            await recover(
                services.store,
                services.recorder,
                services.writer,
                quiet_for=settings.recovery_after_seconds,
            )
        health.bolt, health.chat, health.metrics = services.bolt, services.chat, services.metrics
        health.accepting = True
        if services.slack is None:
            health.slack = "off"
            checker = asyncio.create_task(asyncio.sleep(0))
        else:
            checker = asyncio.create_task(_check_slack(services.slack, health))
        bot.tasks.add(checker)
        if services.recorder is not None:
            watcher = asyncio.create_task(
                keep_recovering(
                    services.store,
                    services.recorder,
                    services.writer,
                    quiet_for=settings.recovery_after_seconds,
                    ours=ours,
                )
            )
            bot.tasks.add(watcher)
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


def web_app(health: Health, *, http_events: bool) -> web.Application:
    async def slack_events(request: web.Request) -> web.Response:
        bolt = health.bolt
        if bolt is None or not health.accepting:
            # Starting or stopping: Slack retries a 503, so the event is not lost.
            return web.json_response({"error": "starting or stopping"}, status=503)
        raw = await request.text()
        if not well_formed(raw, request.content_type):
            return web.json_response({"error": "malformed body"}, status=400)
        bolt_response = await bolt.async_dispatch(await to_bolt_request(request))
        if bolt_response.status == 404:
            # An event or command we do not handle: acknowledge it, so Slack does not retry.
            return web.Response(status=200)
        return await to_aiohttp_response(bolt_response)

    async def chat(request: web.Request) -> web.StreamResponse:
        if health.metrics is not None and health.chat is None:
            return web.json_response(
                {"error": "not_found", "message": "The HTTP API is off: set CHAT_API_TOKEN."},
                status=404,
            )
        if health.chat is None or not health.accepting:
            return web.json_response(
                {"error": "unavailable", "message": "Starting or stopping."},
                status=503,
                headers={"Retry-After": "5"},
            )
        return await health.chat.handle(request)

    async def metrics(_request: web.Request) -> web.Response:
        if health.metrics is None:
            return web.Response(status=503, text="starting\n")
        return web.Response(body=health.metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def healthz(_request: web.Request) -> web.Response:
        status = 200 if health.ready else 503
        body = {
            "status": "ok"
            if health.ready
            else ("stopping" if health.slack == "stopping" else "starting"),
            "database": "ok" if health.migrated else "pending",
            "slack": health.slack,
        }
        return web.json_response(body, status=status)

    # Room for the largest /chat message (4 bytes a character at worst) and its JSON.
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/chat", chat)
    if http_events:
        app.router.add_post(SLACK_EVENTS_PATH, slack_events)
    return app


def well_formed(raw: str, content_type: str) -> bool:
    """Whether a body is what Slack sends: a JSON object, or a form (maybe with a JSON
    `payload`). Anything else gets a 400 instead of an error deep inside Bolt."""
    try:
        if content_type == "application/json":
            return isinstance(json.loads(raw), dict)
        form = parse_qs(raw, keep_blank_values=True)
        if "payload" in form:
            return isinstance(json.loads(form["payload"][0]), dict)
        return bool(form)
    except ValueError:
        return False


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
