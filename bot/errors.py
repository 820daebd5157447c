"""Errors, each carrying the words a user may see.

This is the one place that decides what a failure looks like in Slack. The full error, with
its traceback, goes to the log; users only ever see `user_message`, never exception text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum


class BotError(Exception):
    """Base of our errors; `user_message` is safe to show in Slack."""

    user_message = "Something went wrong on my side. Please try again."


class ConfigError(BotError):
    """Settings are missing or malformed; the message is meant for the admin's terminal."""


class Refused(ConfigError):
    """Slack or Anthropic refused a token or key: no retry can help. The message names the
    variable and what to do; `state` is what the probes report (e.g. `invalid_auth`)."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state


class Unreachable(BotError):
    """Slack or Anthropic did not answer a check (or answered with an error worth retrying);
    `state` is what the probes report (e.g. `unreachable`, `ratelimited`)."""

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state


class StartupError(BotError):
    """The bot cannot start (its port or its database); the message says what to check."""


class ClaudeFailure(StrEnum):
    """What went wrong with a Claude request, in the terms a user needs."""

    OVERLOADED = "overloaded"
    RATE_LIMITED = "rate_limited"
    AUTHENTICATION = "authentication"
    TIMEOUT = "timeout"
    STREAM_DROPPED = "stream_dropped"
    STREAM_CUT = "stream_cut"
    BAD_REQUEST = "bad_request"
    UNAVAILABLE = "unavailable"
    # The organisation's monthly Anthropic spend limit (or its contract or ramp limit): no
    # retry helps before the limit resets or an admin raises it.
    SPEND_LIMIT = "spend_limit"


# Short, plain notes appended to the reply; each says whether trying again will help.
FAILURE_NOTES: dict[ClaudeFailure, str] = {
    ClaudeFailure.OVERLOADED: "Claude is overloaded right now. Please try again in a minute.",
    ClaudeFailure.RATE_LIMITED: "Claude's rate limit was reached. Please try again in a minute.",
    ClaudeFailure.AUTHENTICATION: (
        "I couldn't authenticate with Claude. Retrying won't help: "
        "please ask an admin to check the bot's Anthropic API key."
    ),
    ClaudeFailure.TIMEOUT: "Claude took too long to answer. Please try again.",
    ClaudeFailure.STREAM_DROPPED: (
        "The connection to Claude dropped before the answer finished. Please try again."
    ),
    ClaudeFailure.STREAM_CUT: "Claude's answer was cut off before it finished. Please try again.",
    ClaudeFailure.BAD_REQUEST: (
        "Claude could not handle this request. Rephrasing or shortening it may help; "
        "if it keeps happening, please tell an admin."
    ),
    ClaudeFailure.UNAVAILABLE: "Claude is unavailable right now. Please try again shortly.",
    ClaudeFailure.SPEND_LIMIT: "Your organisation has reached its Claude spend limit.",
}


# Anthropic's `error.details.error_code`s that mean the organisation hit a limit of its own.
MONTHLY_SPEND_LIMIT = "enforced_spend_limit_reached"  # resets 00:00 UTC on the 1st
CONTRACT_SPEND_LIMIT = "contract_spend_limit_reached"  # lifts when the contract changes
RAMP_LIMIT = "ramp_limit_exceeded"  # temporary: retry-after says when


class ClaudeError(BotError):
    """A Claude request failed; carries the failure kind for the note and the log, and
    Anthropic's error code and retry-after where it sent them."""

    def __init__(
        self,
        failure: ClaudeFailure,
        detail: str,
        *,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.failure = failure
        self.code = code
        self.retry_after = retry_after

    @property
    def user_message(self) -> str:  # type: ignore[override]
        if self.failure == ClaudeFailure.SPEND_LIMIT:
            return spend_limit_note(datetime.now(UTC), self.code)
        if self.code == RAMP_LIMIT:
            when = (
                f"in about {max(1, round(self.retry_after / 60))} min"
                if self.retry_after
                else "in a few minutes"
            )
            return (
                "Anthropic is still raising this organisation's usage limit step by step, "
                f"and it is reached for now. Please try again {when}."
            )
        return FAILURE_NOTES[self.failure]


def spend_limit_resets(now: datetime) -> datetime:
    """Anthropic's monthly spend limits reset at 00:00 UTC on the 1st."""
    moment = now.astimezone(UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def spend_limit_note(now: datetime, code: str | None = MONTHLY_SPEND_LIMIT) -> str:
    if code == CONTRACT_SPEND_LIMIT:
        return (
            "Your organisation has reached the Claude spend limit of its contract with "
            "Anthropic, so I can't answer until it is raised. Retrying won't help: please tell "
            "an admin."
        )
    resets = spend_limit_resets(now)
    return (
        "Your organisation has reached its Claude spend limit, so I can't answer until it "
        f"resets on {resets:%-d %B %Y} at 00:00 UTC. Retrying won't help before then: "
        "please tell an admin (they can raise the limit in the Claude Console)."
    )


def first_line(error: BaseException) -> str:
    """An error in one line, for a log line or a message: its first line, or its type."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
