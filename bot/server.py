"""The HTTP server's routes: the probes, /metrics, /chat and Slack's /slack/events.

`Health` is what the routes know of the bot's state; `running_bot` (bot.app) fills it in as
start-up proceeds. A Slack request's signature is checked over the bytes as sent before
anything parses its body.

Three probes: `/livez` (the process serves HTTP: an orchestrator's liveness probe, never
failed by Slack or the database), `/readyz` (send it traffic, or the reason not to) and
`/healthz` (for people: readiness plus the spend-limit report; an outside contract). Probe
hits leave no access-log line.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web
from aiohttp.web_log import AccessLogger
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier

from bot.http.chat import ChatApi
from bot.metrics import CONTENT_TYPE, Metrics

SLACK_EVENTS_PATH = "/slack/events"
# Hit every few seconds by an orchestrator or a load balancer: no access-log line each time.
PROBE_PATHS = frozenset({"/livez", "/readyz"})


@dataclass
class Health:
    migrated: bool = False
    slack: str = "pending"  # "ok" once auth.test succeeded, else the last error code
    bolt: AsyncApp | None = None  # set once everything is wired
    chat: ChatApi | None = None
    metrics: Metrics | None = None
    accepting: bool = False  # False before start-up ends and from shutdown on
    stopping: bool = False  # from shutdown on
    # The organisation's Anthropic spend limit as last seen: reported, but still healthy
    # (the bot runs and tells people why it cannot answer).
    spend_limit: Callable[[], dict[str, Any] | None] = lambda: None

    @property
    def ready(self) -> bool:
        return self.migrated and self.slack in ("ok", "off") and self.accepting

    def unready_reason(self) -> str | None:
        """Why the bot should get no traffic now, in words; None when it should."""
        if self.stopping or self.slack == "stopping":
            return "stopping"
        if not (self.migrated and self.accepting) or self.slack == "pending":
            return "starting"  # migrating, wiring, or waiting for auth.test's first answer
        if self.slack not in ("ok", "off"):
            return f"slack: {self.slack}"  # auth.test refused the token, or Slack is unreachable
        return None


def web_app(
    health: Health, *, http_events: bool, signing_secret: str | None = None
) -> web.Application:
    verifier = RawSignatureVerifier(signing_secret) if signing_secret else None

    async def slack_events(request: web.Request) -> web.Response:
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
        # Bolt gets the text just checked (and checks the signature again itself).
        headers: dict[str, Any] = dict(request.headers)
        req = AsyncBoltRequest(body=raw, query=request.query_string, headers=headers)
        bolt_response = await bolt.async_dispatch(req)
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
        body: dict[str, Any] = {
            "status": "ok"
            if health.ready
            else ("stopping" if health.slack == "stopping" else "starting"),
            "database": "ok" if health.migrated else "pending",
            "slack": health.slack,
        }
        spend_limit = health.spend_limit()
        if spend_limit is not None:
            body["claude"] = {"status": "spend_limit_reached", **spend_limit}
        return web.json_response(body, status=status)

    async def livez(_request: web.Request) -> web.Response:
        # Alive while the process serves HTTP: what Slack or the database do changes nothing,
        # so an unreachable Slack never has the bot restarted in a loop.
        return web.json_response({"status": "alive"})

    async def readyz(_request: web.Request) -> web.Response:
        details = {"database": "ok" if health.migrated else "pending", "slack": health.slack}
        reason = health.unready_reason()
        if reason is None:
            return web.json_response({"status": "ready", **details})
        return web.json_response({"status": "not_ready", "reason": reason, **details}, status=503)

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


class QuietProbesAccessLogger(AccessLogger):
    """aiohttp's access log without the probes' hits (`web.AppRunner(access_log_class=…)`)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if request.path not in PROBE_PATHS:
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
