"""How the SDK's errors and usage become ours (imports `anthropic`, like the rest of
`bot.claude`)."""

from __future__ import annotations

import anthropic

from bot.claude.types import Usage
from bot.errors import ClaudeError, ClaudeFailure


def failed(kind: ClaudeFailure, error: BaseException) -> ClaudeError:
    failure = ClaudeError(kind, describe(error))
    failure.__cause__ = error  # so the log shows the original traceback
    return failure


def status_failure(error: anthropic.APIStatusError) -> ClaudeFailure:
    # A mid-stream `error` event arrives as a plain APIStatusError with status 200;
    # its kind is only in `error.type`, so classify by type first, then by status.
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
    written = reported.cache_creation_input_tokens
    detail = getattr(reported, "cache_creation", None)
    if detail is not None:
        usage.cache_write_5m = detail.ephemeral_5m_input_tokens
        usage.cache_write_1h = detail.ephemeral_1h_input_tokens
    elif written is not None and written != usage.cache_write_5m + usage.cache_write_1h:
        # Without the TTL breakdown, the write used the default TTL (5 minutes).
        usage.cache_write_5m = written
        usage.cache_write_1h = 0


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
