"""The HTTP server's routes: the probes, /metrics, /chat and Slack's /slack/events.

`Health` is what the routes know of the bot's state; `running_bot` (bot.app) fills it in as
start-up proceeds. A Slack request's signature is checked over the bytes as sent before
anything parses its body (bot.slack.requests). An event is acknowledged as soon as it is
checked, and Bolt handles it afterwards, so thirty at once are all answered within
milliseconds. Other requests get Bolt's answer within Slack's 3 seconds whatever Slack's API
or the database do: Bolt authorizes from the auth.test answer the bot already has, and a
request Bolt has not answered after ACK_SECONDS is acknowledged while Bolt goes on with it.

Three probes: `/livez` (the process serves HTTP: an orchestrator's liveness probe, never
failed by Slack or the database), `/readyz` (send it traffic, or why not, in words) and
`/healthz` (for people: readiness, Anthropic's state and the spend-limit report; an outside
contract). Probe hits leave no access-log line unless LOG_LEVEL is DEBUG. /metrics answers
on this port only to a bearer of METRICS_TOKEN (`metrics_app` serves the local-only port).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiohttp.web_log import AccessLogger

from bot.metrics import CONTENT_TYPE, Metrics
from bot.slack.requests import RawSignatureVerifier, read_body

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp
    from slack_bolt.response import BoltResponse

    from bot.http.chat import ChatApi

log = logging.getLogger(__name__)

SLACK_EVENTS_PATH = "/slack/events"
# Hit every few seconds by an orchestrator, a load balancer or a monitor: no access-log line.
PROBE_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
# Slack waits 3 s for an answer; past this, Bolt's answer is not waited for.
ACK_SECONDS = 2.5
# At shutdown, the longest wait for Bolt to hand acknowledged requests to their listeners.
SETTLE_HANDLING_SECONDS = 5.0
METRICS_ELSEWHERE = (
    "/metrics is served on 127.0.0.1 (METRICS_PORT), or here with METRICS_TOKEN set\n"
)
BEARER = {"WWW-Authenticate": "Bearer"}


@dataclass
class Health:
    migrated: bool = False
    slack: str = "pending"  # "ok" once auth.test succeeded, "off", else the last error code
    # "ok" once Anthropic accepted the key, "unchecked" (the server has no way to check it),
    # "unreachable", or "pending" until its first answer.
    anthropic: str = "pending"
    problems: dict[str, str] = field(default_factory=dict)  # "slack"/"anthropic": in words
    fatal: str | None = None  # a refused token or key: the bot stops, saying this
    failed: asyncio.Event = field(default_factory=asyncio.Event)
    identified: bool = False  # Bolt has the bot's identity (auth.test) to authorize with
    bolt: AsyncApp | None = None  # set once everything is wired
    chat: ChatApi | None = None
    metrics: Metrics | None = None
    accepting: bool = False  # False before start-up ends and from shutdown on
    stopping: bool = False  # from shutdown on
    # The organisation's Anthropic spend limit as last seen: reported, but still healthy
    # (the bot runs and tells people why it cannot answer).
    spend_limit: Callable[[], dict[str, Any] | None] = lambda: None
    # Bolt's work on Slack requests already acknowledged: finished before shutdown drains.
    handling: set[asyncio.Future[Any]] = field(default_factory=set)

    def fail(self, why: str) -> None:
        """A refused token or key: no retry can help, so the bot stops (bot.__main__)."""
        self.fatal = why
        self.failed.set()

    @property
    def ready(self) -> bool:
        return self.migrated and self.slack in ("ok", "off") and self.accepting and not self.fatal

    def unready_reason(self) -> str | None:
        """Why the bot should get no traffic now, in words; None when it should."""
        if self.stopping or self.slack == "stopping":
            return "stopping: finishing the answers in flight"
        if self.fatal:
            return self.fatal
        if not self.migrated:
            return "starting: applying the database migrations"
        if self.slack == "pending":
            return "starting: waiting for Slack to answer auth.test"
        if self.slack not in ("ok", "off"):
            return self.problems.get("slack") or f"Slack: {self.slack}"
        if not self.accepting:
            return "starting"
        return None

    async def settle_handling(self, seconds: float) -> None:
        if self.handling:
            await asyncio.wait(set(self.handling), timeout=seconds)
        await asyncio.sleep(0)  # the listeners those started take their first step

    def claude_problem(self) -> str | None:
        if self.anthropic in ("ok", "unchecked"):
            return None
        if self.anthropic == "pending":
            return "waiting for Anthropic to answer the API key check"
        return self.problems.get("anthropic") or f"Anthropic: {self.anthropic}"

    def states(self) -> dict[str, str]:
        database = "ok" if self.migrated else "pending"
        return {"database": database, "slack": self.slack, "anthropic": self.anthropic}


def web_app(
    health: Health,
    *,
    http_events: bool,
    signing_secret: str | None = None,
    metrics_token: str | None = None,
) -> web.Application:
    verifier = RawSignatureVerifier(signing_secret) if signing_secret else None

    async def slack_events(request: web.Request) -> web.Response:
        from slack_bolt.adapter.aiohttp import to_aiohttp_response

        bolt = health.bolt
        if bolt is None or not health.accepting:
            # Starting or stopping: Slack retries a 503, so the event is not lost.
            return web.json_response({"error": "starting or stopping"}, status=503)
        # The signature first, over the bytes as sent: nothing parses a forged body.
        body = await request.read()
        if verifier is None or not verifier.is_valid_request(body, request.headers):
            return web.json_response({"error": "invalid signature"}, status=401)
        slack_body = read_body(body, request.content_type)
        if slack_body is None:
            return web.json_response({"error": "malformed body"}, status=400)
        if not health.identified and slack_body.needs_identity:
            return slack_body.not_connected()
        # Bolt gets the text just checked (and checks the signature again itself).
        headers: dict[str, Any] = dict(request.headers)
        dispatch = asyncio.ensure_future(
            _dispatch(bolt, slack_body.raw, request.query_string, headers)
        )
        health.handling.add(dispatch)
        dispatch.add_done_callback(health.handling.discard)
        if slack_body.kind == "event_callback":
            # An event's answer is an empty 200 whatever Bolt makes of it (Bolt acknowledges
            # before its listener, which claims and keeps the question): answered now, so
            # a crowd's acknowledgements do not queue behind Bolt's work on each.
            return web.Response(status=200)
        try:
            bolt_response = await asyncio.wait_for(asyncio.shield(dispatch), ACK_SECONDS)
        except TimeoutError:
            log.warning("acknowledged a Slack request after %.1f s; still handling it", ACK_SECONDS)
            return web.Response(status=200)
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

    async def metrics(request: web.Request) -> web.Response:
        if metrics_token is None:
            return web.Response(status=404, text=METRICS_ELSEWHERE)
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), metrics_token.encode()):
            return web.Response(
                status=401, text="send METRICS_TOKEN as a bearer token\n", headers=BEARER
            )
        return render_metrics(health)

    async def healthz(_request: web.Request) -> web.Response:
        reason = health.unready_reason()
        claude = health.claude_problem()
        if reason is None:
            status = "degraded" if claude else "ok"
        else:
            status = "stopping" if health.slack == "stopping" else "starting"
        body: dict[str, Any] = {"status": status, **health.states()}
        if reason or claude:
            body["reason"] = "; ".join(filter(None, (reason, claude)))
        spend_limit = health.spend_limit()
        if spend_limit is not None:
            body["claude"] = {"status": "spend_limit_reached", **spend_limit}
        return web.json_response(body, status=200 if health.ready else 503)

    async def livez(_request: web.Request) -> web.Response:
        # Alive while the process serves HTTP: what Slack or the database do changes nothing,
        # so an unreachable Slack never has the bot restarted in a loop.
        return web.json_response({"status": "alive"})

    async def readyz(_request: web.Request) -> web.Response:
        reason = health.unready_reason()
        if reason is None:
            return web.json_response({"status": "ready", **health.states()})
        body = {"status": "not_ready", "reason": reason, **health.states()}
        return web.json_response(body, status=503)

    # Room for the largest /chat message (4 bytes a character at worst) and its JSON.
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/chat", chat)
    if http_events:
        app.router.add_post(SLACK_EVENTS_PATH, slack_events)
    return app


def metrics_app(health: Health) -> web.Application:
    """/metrics alone, without a token: for METRICS_PORT, which listens on 127.0.0.1 only."""

    async def metrics(_request: web.Request) -> web.Response:
        return render_metrics(health)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app


async def _dispatch(bolt: AsyncApp, raw: str, query: str, headers: dict[str, Any]) -> BoltResponse:
    # Bolt parses the request again as it builds it: off the acknowledgement's path too.
    from slack_bolt.request.async_request import AsyncBoltRequest

    return await bolt.async_dispatch(AsyncBoltRequest(body=raw, query=query, headers=headers))


def render_metrics(health: Health) -> web.Response:
    if health.metrics is None:
        return web.Response(status=503, text="starting\n")
    return web.Response(body=health.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


class QuietProbesAccessLogger(AccessLogger):
    """aiohttp's access log without the probes' hits (`web.AppRunner(access_log_class=…)`),
    unless its logger is at DEBUG."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if request.path not in PROBE_PATHS or self.logger.isEnabledFor(logging.DEBUG):
            super().log(request, response, time)
