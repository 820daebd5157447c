"""Checking Slack and Anthropic from start-up until each has answered.

A `Watch` tries its service's cheapest authenticated call (Slack's auth.test, then in Socket
Mode the app token and the socket; Anthropic's model list) once, and again with backoff
(RETRY_FIRST_SECONDS doubling to RETRY_MAX_SECONDS) while the service cannot be reached. It
logs each change of state once, sets what the probes report, and stops at the first success.
A refused token or key is final (`Refused`): `first_answers` raises it during start-up, and
after start-up the watch fails the bot (Health.fail), which then stops with that one line.
Slack's answer also becomes Bolt's authorization, so no request waits on auth.test.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.claude import Claude
from bot.config import Settings
from bot.errors import ClaudeError, ClaudeFailure, Refused, Unreachable
from bot.server import Health

log = logging.getLogger(__name__)

RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 60.0
# How long start-up waits for each service's first answer before it goes on without it.
STARTUP_WAIT_SECONDS = 3.0
# Slack's answers that mean the token itself is bad: only a new token can help.
REFUSED_TOKEN = frozenset(
    {"invalid_auth", "account_inactive", "token_revoked", "token_expired", "not_authed"}
)
REFUSED_APP_TOKEN = REFUSED_TOKEN | {"not_allowed_token_type", "missing_scope"}
NETWORK_ERRORS = (aiohttp.ClientError, OSError, TimeoutError, SlackClientError)

Check = Callable[[], Awaitable[tuple[str, str]]]  # (state, what to log); or raises


@dataclass
class Watch:
    name: str  # the Health field it keeps: "slack" or "anthropic"
    check: Check
    health: Health
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    refused: Refused | None = None

    async def run(self) -> None:
        delay, last = RETRY_FIRST_SECONDS, ""
        while True:
            try:
                state, said = await self.check()
            except Refused as error:
                self.refused = error
                self._report(error.state, str(error))
                self.health.fail(str(error))
                return
            except Exception as error:
                state = error.state if isinstance(error, Unreachable) else "error"
                if state != last and isinstance(error, Unreachable):
                    log.warning(
                        "%s; trying again, less and less often (every %g s at most)",
                        error,
                        RETRY_MAX_SECONDS,
                    )
                elif state != last:
                    log.exception("checking %s failed; trying again", self.name)
                self._report(last := state, str(error) or type(error).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            log.info("%s", said)
            self._report(state, None)
            return

    def _report(self, state: str, problem: str | None) -> None:
        setattr(self.health, self.name, state)
        if problem is None:
            self.health.problems.pop(self.name, None)
        else:
            self.health.problems[self.name] = problem
        self.answered.set()


async def first_answers(watches: list[Watch]) -> None:
    """Wait a little for each watch's first answer; raise the first refusal."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(STARTUP_WAIT_SECONDS):
            await asyncio.gather(*(watch.answered.wait() for watch in watches))
    for watch in watches:
        if watch.refused is not None:
            raise watch.refused


@dataclass
class Sockets:
    """The Socket Mode connection, once made: closed at shutdown, once the watches stopped."""

    open: list[Any] = field(default_factory=list)

    async def close(self) -> None:
        while self.open:
            await self.open.pop().close_async()


def slack_watch(
    slack: AsyncWebClient, bolt: AsyncApp, settings: Settings, health: Health, sockets: Sockets
) -> Watch:
    # One try per check: the watch backs off itself (the bot's client retries dropped calls).
    client = AsyncWebClient(
        token=slack.token,
        base_url=slack.base_url,
        session=slack.session,
        timeout=slack.timeout,
        retry_handlers=[],
    )
    where = settings.slack_api_url

    async def check() -> tuple[str, str]:
        try:
            identity = await client.auth_test()
        except SlackApiError as error:
            code = str(error.response.get("error") or "error")
            if code in REFUSED_TOKEN:
                raise Refused(
                    code,
                    f"Slack refused SLACK_BOT_TOKEN ({code}): copy the Bot User OAuth Token "
                    "again from api.slack.com/apps → your app → OAuth & Permissions "
                    "(reinstall the app if its token was revoked).",
                ) from None
            raise Unreachable(code, f"Slack's auth.test failed ({code}) at {where}") from None
        except NETWORK_ERRORS as error:
            raise Unreachable(
                "unreachable", f"Slack's API cannot be reached at {where} ({_brief(error)})"
            ) from None
        authorize_from(bolt, identity)
        health.identified = True
        if settings.slack_app_token:
            await _connect(client, bolt, settings.slack_app_token, sockets)
        return "ok", f"connected to Slack team={identity['team']} bot={identity['user']}"

    return Watch("slack", check, health)


async def _connect(
    client: AsyncWebClient, bolt: AsyncApp, app_token: str, sockets: Sockets
) -> None:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    try:
        await client.apps_connections_open(app_token=app_token)
    except SlackApiError as error:
        code = str(error.response.get("error") or "error")
        if code not in REFUSED_APP_TOKEN:
            raise Unreachable(code, f"Slack's apps.connections.open failed ({code})") from None
        raise Refused(
            code,
            f"SLACK_APP_TOKEN was refused by Slack ({code}): create an app-level token with "
            "the connections:write scope (api.slack.com/apps → your app → Basic Information → "
            "App-Level Tokens) and make sure Socket Mode is enabled for the app.",
        ) from None
    except NETWORK_ERRORS as error:
        raise Unreachable("unreachable", f"Slack's Socket Mode: {_brief(error)}") from None
    socket = AsyncSocketModeHandler(bolt, app_token)
    try:
        await socket.connect_async()  # type: ignore[no-untyped-call]
    except BaseException as error:  # a network error, or shutdown meanwhile: never left open
        with contextlib.suppress(Exception):
            await socket.close_async()  # type: ignore[no-untyped-call]
        if isinstance(error, NETWORK_ERRORS):
            raise Unreachable("unreachable", f"Slack's Socket Mode: {_brief(error)}") from None
        raise
    sockets.open.append(socket)


def authorize_from(bolt: AsyncApp, identity: Any) -> None:
    """Bolt's single-team authorization calls auth.test on its first request and keeps the
    answer; it gets ours now, so no request waits on Slack for it (or fails with a 500)."""
    from slack_bolt.middleware.authorization.async_single_team_authorization import (
        AsyncSingleTeamAuthorization,
    )

    for middleware in bolt._async_middleware_list:  # Bolt has no public way
        if isinstance(middleware, AsyncSingleTeamAuthorization):
            middleware.auth_test_result = identity
            return
    log.error("Bolt's single-team authorization was not found: it will call auth.test itself")


def anthropic_watch(claude: Claude, settings: Settings, health: Health) -> Watch:
    where = settings.anthropic_base_url or "https://api.anthropic.com"

    async def check() -> tuple[str, str]:
        try:
            await claude.check_key()
        except ClaudeError as error:
            detail = _brief(error)
            if error.failure == ClaudeFailure.AUTHENTICATION:
                raise Refused(
                    "refused",
                    f"Anthropic refused ANTHROPIC_API_KEY ({detail}): create a key at "
                    "console.anthropic.com → Settings → API Keys.",
                ) from None
            if error.failure == ClaudeFailure.BAD_REQUEST:  # e.g. a gateway without /v1/models
                return "unchecked", f"ANTHROPIC_API_KEY could not be checked at {where} ({detail})"
            raise Unreachable(
                "unreachable", f"Anthropic's API did not answer at {where} ({detail})"
            ) from None
        return "ok", f"Anthropic accepted ANTHROPIC_API_KEY at {where}"

    return Watch("anthropic", check, health)


def _brief(error: BaseException, limit: int = 200) -> str:
    text = (str(error).strip().splitlines() or [""])[0] or type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
