"""How the SDK's errors and usage become ours (imports `anthropic`, like the rest of
`bot.claude`)."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import anthropic
import httpx2

from bot.claude.types import Finished, Usage
from bot.errors import (
    CONTRACT_SPEND_LIMIT,
    MONTHLY_SPEND_LIMIT,
    RAMP_LIMIT,
    ClaudeError,
    ClaudeFailure,
)

log = logging.getLogger("bot.claude")


def stream_failure(
    error: Exception, deadline: str, wrote: bool, request_id: str | None
) -> ClaudeError:
    """What broke a stream: `deadline` names the deadline a TimeoutError is for; `wrote` says
    whether text had arrived (a connection lost then dropped the stream, else Anthropic was
    unavailable)."""
    lost = ClaudeFailure.STREAM_DROPPED if wrote else ClaudeFailure.UNAVAILABLE
    if isinstance(error, TimeoutError):
        return ClaudeError(ClaudeFailure.TIMEOUT, deadline)
    if isinstance(error, anthropic.APIStatusError):
        return failed(status_failure(error), error)
    if isinstance(error, anthropic.APITimeoutError | httpx2.TimeoutException):
        return failed(ClaudeFailure.TIMEOUT, error)
    if not isinstance(error, anthropic.APIConnectionError | httpx2.TransportError):
        # Anything else (a garbled event, an SDK surprise) must still end the reply
        # cleanly: the user gets a note, the ledger a row, the log the traceback.
        log.exception("unexpected error in a Claude stream request_id=%s", request_id)
    return failed(lost, error)


def call_failure(error: anthropic.APIError | httpx2.HTTPError) -> ClaudeError:
    """What made a plain (not streamed) call fail."""
    if isinstance(error, anthropic.APIStatusError):
        return ClaudeError(status_failure(error), describe(error))
    return ClaudeError(ClaudeFailure.UNAVAILABLE, describe(error))


def log_failure(finished: Finished) -> None:
    if finished.error is not None:
        log.warning(
            "claude request failed: %s (%s) request_id=%s",
            finished.error.failure,
            finished.error,
            finished.request_id,
            exc_info=finished.error.__cause__,
        )


def failed(kind: ClaudeFailure, error: BaseException) -> ClaudeError:
    code = retry_after = None
    if isinstance(error, anthropic.APIStatusError):
        code, retry_after = error.error_code, _retry_after(error.response.headers)
    failure = ClaudeError(kind, describe(error), code=code, retry_after=retry_after)
    failure.__cause__ = error  # so the log shows the original traceback
    return failure


# The organisation's own limits: retrying at once cannot help (the spend limits last until
# the month or the contract changes; a ramp limit's retry-after can be long), so the SDK is
# told not to retry them and the asker is told why and until when.
SPEND_LIMIT_CODES = frozenset({MONTHLY_SPEND_LIMIT, CONTRACT_SPEND_LIMIT})
NO_RETRY_CODES = SPEND_LIMIT_CODES | {RAMP_LIMIT}


def _retry_after(headers: Any) -> float | None:
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        if headers.get("retry-after"):
            return float(headers["retry-after"])
    except ValueError:
        pass  # an HTTP date: no figure to quote
    return None


def status_failure(error: anthropic.APIStatusError) -> ClaudeFailure:
    # A mid-stream `error` event arrives as a plain APIStatusError with status 200;
    # its kind is only in `error.type`, so classify by type first, then by status.
    if error.error_code in SPEND_LIMIT_CODES:
        return ClaudeFailure.SPEND_LIMIT
    by_type = {
        "overloaded_error": ClaudeFailure.OVERLOADED,
        "rate_limit_error": ClaudeFailure.RATE_LIMITED,
        "authentication_error": ClaudeFailure.AUTHENTICATION,
        "permission_error": ClaudeFailure.AUTHENTICATION,
        "invalid_request_error": ClaudeFailure.BAD_REQUEST,
        "not_found_error": ClaudeFailure.BAD_REQUEST,
        "request_too_large": ClaudeFailure.BAD_REQUEST,
        "timeout_error": ClaudeFailure.TIMEOUT,
    }
    if error.type in by_type:
        return by_type[error.type]
    status = error.status_code
    if status == 529:
        return ClaudeFailure.OVERLOADED
    if status == 429:
        return ClaudeFailure.RATE_LIMITED
    if status in (401, 403):
        return ClaudeFailure.AUTHENTICATION
    if status == 408:
        return ClaudeFailure.TIMEOUT
    if 400 <= status < 500:
        return ClaudeFailure.BAD_REQUEST
    return ClaudeFailure.UNAVAILABLE


def merge_usage(
    usage: Usage, reported: anthropic.types.Usage | anthropic.types.MessageDeltaUsage
) -> None:
    # message_delta counts are cumulative and, when present, overwrite message_start's.
    usage.output_tokens = reported.output_tokens
    if reported.input_tokens is not None:
        usage.input_tokens = reported.input_tokens
    if reported.cache_read_input_tokens is not None:
        usage.cache_read = reported.cache_read_input_tokens
    details = reported.output_tokens_details
    if details is not None:
        usage.thinking_tokens = details.thinking_tokens
    tools = reported.server_tool_use
    if tools is not None:
        usage.web_search_requests = tools.web_search_requests
        usage.web_fetch_requests = tools.web_fetch_requests
    for name in ("inference_geo", "speed"):
        value = getattr(reported, name, None)
        if value is not None:
            setattr(usage, name, value)
    written = reported.cache_creation_input_tokens
    # message_delta's type has no TTL breakdown; a server that sends one anyway arrives as
    # a plain dict (an extra field), so read either shape.
    detail = getattr(reported, "cache_creation", None)
    if isinstance(detail, dict):
        usage.cache_write_5m = int(detail.get("ephemeral_5m_input_tokens") or 0)
        usage.cache_write_1h = int(detail.get("ephemeral_1h_input_tokens") or 0)
    elif detail is not None:
        usage.cache_write_5m = detail.ephemeral_5m_input_tokens
        usage.cache_write_1h = detail.ephemeral_1h_input_tokens
    elif written is not None and written != usage.cache_write_5m + usage.cache_write_1h:
        # Without the TTL breakdown, the write used the default TTL (5 minutes).
        usage.cache_write_5m = written
        usage.cache_write_1h = 0


def add_usage(earlier: Usage, latest: Usage) -> Usage:
    """The usage of two requests of one answer (a paused turn and its continuation): token
    counts add up; where it ran and at what speed is the latest request's."""
    total = dataclasses.replace(latest)
    for name, value in vars(earlier).items():
        if isinstance(value, int):
            setattr(total, name, value + getattr(latest, name))
        elif getattr(total, name) is None:
            setattr(total, name, value)
    return total


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class NoRetryAtSpendLimit(anthropic.Middleware):
    """The SDK retries every 429, but one for the organisation's own limits fails the same
    way for a long time: mark it not retryable (the SDK's own `x-should-retry` rule) and fail
    at once, so the asker hears why instead of waiting."""

    async def handle_async(
        self, request: anthropic.APIRequest, call_next: anthropic.AsyncCallNext
    ) -> anthropic.AsyncAPIResponse[Any]:
        response = await call_next(request)
        raw = response.http_response
        if raw.status_code == 429:
            await raw.aread()
            try:
                body = json.loads(raw.content)
            except ValueError:
                return response
            if anthropic_error_code(body) in NO_RETRY_CODES:
                raw.headers["x-should-retry"] = "false"
        return response


def anthropic_error_code(body: object) -> str | None:
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    code = details.get("error_code") if isinstance(details, dict) else None
    return code if isinstance(code, str) else None
