"""The HTTP server's routes: the probes, /metrics, /chat and Slack's /slack/events.

`Health` is what the routes know of the bot's state; `running_bot` (bot.app) fills it in as
start-up proceeds. A Slack request's signature is checked over the bytes as sent before
anything parses its body. Slack gets its answer within its 3 seconds whatever Slack's API or
the database do: Bolt authorizes from the auth.test answer the bot already has, and a request
Bolt has not answered after ACK_SECONDS is acknowledged while Bolt goes on with it.

Three probes: `/livez` (the process serves HTTP: an orchestrator's liveness probe, never
failed by Slack or the database), `/readyz` (send it traffic, or why not, in words) and
`/healthz` (for people: readiness, Anthropic's state and the spend-limit report; an outside
contract). Probe hits leave no access-log line unless LOG_LEVEL is DEBUG. /metrics answers
on this port only to a bearer of METRICS_TOKEN (`metrics_app` serves the local-only port).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from aiohttp import web
from aiohttp.web_log import AccessLogger
from slack_sdk.signature import SignatureVerifier

from bot.metrics import CONTENT_TYPE, Metrics

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp

    from bot.http.chat import ChatApi

log = logging.getLogger(__name__)

SLACK_EVENTS_PATH = "/slack/events"
# Hit every few seconds by an orchestrator, a load balancer or a monitor: no access-log line.
PROBE_PATHS = frozenset({"/livez", "/readyz", "/healthz"})
# Slack waits 3 s for an answer; past this, Bolt's answer is not waited for.
ACK_SECONDS = 2.5
# A slash command that arrives before Slack's API has ever answered: shown to the asker only.
NOT_CONNECTED = (
    "I can't reach Slack's API right now, so I can't answer yet. Please try again in a minute."
)
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
    # Bolt's work on requests acknowledged before it answered: kept until done.
    unfinished: set[asyncio.Future[Any]] = set()

    async def slack_events(request: web.Request) -> web.Response:
        from slack_bolt.adapter.aiohttp import to_aiohttp_response
        from slack_bolt.request.async_request import AsyncBoltRequest

        bolt = health.bolt
        if bolt is None or not health.accepting:
            # Starting or stopping: Slack retries a 503, so the event is not lost.
            return web.json_response({"error": "starting or stopping"}, status=503)
        # The signature first, over the bytes as sent: nothing parses a forged body.
        body = await request.read()
        if verifier is None or not verifier.is_valid_request(body, request.headers):
            return web.json_response({"error": "invalid signature"}, status=401)
        raw = _utf8(body)
        if raw is None or not well_formed(raw, request.content_type):
            return web.json_response({"error": "malformed body"}, status=400)
        if not health.identified and needs_identity(raw, request.content_type):
            return not_connected(raw, request.content_type)
        # Bolt gets the text just checked (and checks the signature again itself).
        headers: dict[str, Any] = dict(request.headers)
        req = AsyncBoltRequest(body=raw, query=request.query_string, headers=headers)
        dispatch = asyncio.ensure_future(bolt.async_dispatch(req))
        try:
            bolt_response = await asyncio.wait_for(asyncio.shield(dispatch), ACK_SECONDS)
        except TimeoutError:
            unfinished.add(dispatch)
            dispatch.add_done_callback(unfinished.discard)
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


def render_metrics(health: Health) -> web.Response:
    if health.metrics is None:
        return web.Response(status=503, text="starting\n")
    return web.Response(body=health.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


def needs_identity(raw: str, content_type: str) -> bool:
    """Slack's URL check and SSL check need no authorization; everything else does."""
    if content_type == "application/json":
        return bool(json.loads(raw).get("type") != "url_verification")
    return "ssl_check" not in parse_qs(raw)


def not_connected(raw: str, content_type: str) -> web.Response:
    """Slack's API has never answered this process: the bot cannot know who it is, nor
    post. A slash command gets a note for the asker; an event or a click a 503, so Slack
    delivers it again later."""
    if content_type != "application/json" and "command" in parse_qs(raw):
        return web.json_response({"response_type": "ephemeral", "text": NOT_CONNECTED})
    return web.json_response({"error": "Slack's API cannot be reached yet"}, status=503)


class QuietProbesAccessLogger(AccessLogger):
    """aiohttp's access log without the probes' hits (`web.AppRunner(access_log_class=…)`),
    unless its logger is at DEBUG."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if request.path not in PROBE_PATHS or self.logger.isEnabledFor(logging.DEBUG):
            super().log(request, response, time)


class RawSignatureVerifier(SignatureVerifier):
    """slack_sdk's verifier over the bytes as sent (its own decodes them as UTF-8 first)."""

    def generate_signature(self, *, timestamp: str, body: str | bytes) -> str:
        raw = body if isinstance(body, bytes) else body.encode()
        base = b"v0:" + timestamp.encode() + b":" + raw
        return "v0=" + hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()

    def is_valid_request(self, body: str | bytes, headers: Mapping[str, str]) -> bool:
        try:  # a timestamp that is no number, a signature that is not ASCII: not signed
            return super().is_valid_request(body, headers)
        except (ValueError, TypeError, OverflowError):
            return False


def _utf8(body: bytes) -> str | None:
    try:
        return body.decode()
    except UnicodeDecodeError:
        return None


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
