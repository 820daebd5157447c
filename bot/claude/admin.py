"""Anthropic's Admin API: what the organization was billed, per UTC day and model.

Reads `GET /v1/organizations/cost_report` (daily buckets grouped by description, so each line
names its model) page by page, and sums it per (day, model) in integer micro-dollars. Amounts
arrive as decimal strings in cents; each line is converted exactly and rounded once. Every
failure becomes a `ClaudeError` whose message is one line fit for a terminal.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import anthropic
import httpx2

from bot.errors import ClaudeError, ClaudeFailure

COST_REPORT_PATH = "/v1/organizations/cost_report"
PAGE_DAYS = 31  # the most daily buckets the endpoint returns at once
MICROS_PER_CENT = 10_000
TIMEOUT_SECONDS = 60.0
MAX_PAGES = 100  # a report of a year is 12 pages; more means the server is going round in circles


@dataclass(frozen=True)
class CostLine:
    """What Anthropic billed for one model on one UTC day; model None for costs of no model."""

    day: date
    model: str | None
    micros: int


async def cost_report(
    *, admin_key: str, base_url: str | None, start: date, end: date
) -> list[CostLine]:
    """The organization's cost for UTC days [start, end), summed per (day, model).

    Raises ClaudeError with a one-line message when the report cannot be had.
    """
    client = anthropic.AsyncAnthropic(
        api_key=admin_key,
        base_url=base_url,
        # The Admin API reads the key from x-api-key; the SDK itself sends it as a bearer token.
        default_headers={"x-api-key": admin_key},
        timeout=httpx2.Timeout(TIMEOUT_SECONDS, connect=10.0),
    )
    totals: defaultdict[tuple[date, str | None], int] = defaultdict(int)
    params: dict[str, Any] = {
        "starting_at": _rfc3339(start),
        "ending_at": _rfc3339(end),
        "bucket_width": "1d",
        "group_by": ["description"],  # the SDK writes a list as group_by[]=description
        "limit": PAGE_DAYS,
    }
    try:
        for _ in range(MAX_PAGES):
            page = await _get(client, params)
            for day, model, micros in _lines(page):
                totals[(day, model)] += micros
            next_page = page.get("next_page")
            if not page.get("has_more") or not next_page:
                break
            params["page"] = next_page
        else:
            raise ClaudeError(
                ClaudeFailure.UNAVAILABLE,
                f"Anthropic's cost report did not end after {MAX_PAGES} pages",
            )
    finally:
        await client.close()
    return [
        CostLine(day, model, micros) for (day, model), micros in sorted(totals.items(), key=_key)
    ]


async def _get(client: anthropic.AsyncAnthropic, params: dict[str, Any]) -> dict[str, Any]:
    try:
        page = await client.get(COST_REPORT_PATH, cast_to=object, options={"params": params})
    except anthropic.APIStatusError as error:
        raise ClaudeError(_kind(error.status_code), _refusal(error)) from error
    except (anthropic.APITimeoutError, httpx2.TimeoutException) as error:
        raise ClaudeError(
            ClaudeFailure.TIMEOUT, "Anthropic's cost report did not answer in time: try again"
        ) from error
    except (anthropic.APIError, httpx2.HTTPError) as error:
        raise ClaudeError(
            ClaudeFailure.UNAVAILABLE,
            f"Could not reach Anthropic at {client.base_url} for the cost report "
            f"({type(error).__name__}): check the network and ANTHROPIC_BASE_URL",
        ) from error
    if not isinstance(page, dict):
        raise _malformed("the answer is not a JSON object")
    return page


def _lines(page: dict[str, Any]) -> list[tuple[date, str | None, int]]:
    found = []
    try:
        for bucket in page["data"]:
            day = _utc_day(bucket["starting_at"])
            for result in bucket["results"]:
                currency = result.get("currency") or "USD"
                if currency != "USD":
                    raise _malformed(f"an amount in {currency}, not USD")
                found.append((day, result.get("model") or None, _micros(result["amount"])))
    except (KeyError, TypeError, ValueError, InvalidOperation) as error:
        raise _malformed(f"{type(error).__name__}: {error}") from error
    return found


def _micros(cents: str) -> int:
    """A decimal string of cents ("123.45" is $1.2345) in whole micro-dollars, rounded once."""
    exact = Decimal(cents) * MICROS_PER_CENT
    if not exact.is_finite():
        raise ValueError(f"amount {cents!r}")
    return int(exact.to_integral_value(rounding=ROUND_HALF_UP))


def _refusal(error: anthropic.APIStatusError) -> str:
    status = error.status_code
    if status == 401:
        return f"Anthropic refused the admin key ({status}): check ANTHROPIC_ADMIN_API_KEY"
    if status == 403:
        return (
            f"Anthropic refused the cost report ({status}): ANTHROPIC_ADMIN_API_KEY must be "
            "an Admin API key (sk-ant-admin…) of the organization"
        )
    if status == 404:
        return f"Anthropic has no cost report at this address ({status}): check ANTHROPIC_BASE_URL"
    if status == 429:
        return f"Anthropic's Admin API is rate limited ({status}): try again in a minute"
    if status >= 500:
        return f"Anthropic's cost report failed ({status}): try again later"
    return f"Anthropic rejected the cost report request ({status}, {error.type or 'error'})"


def _kind(status: int) -> ClaudeFailure:
    if status in (401, 403):
        return ClaudeFailure.AUTHENTICATION
    if status == 429:
        return ClaudeFailure.RATE_LIMITED
    if status >= 500:
        return ClaudeFailure.UNAVAILABLE
    return ClaudeFailure.BAD_REQUEST


def _malformed(why: str) -> ClaudeError:
    return ClaudeError(
        ClaudeFailure.UNAVAILABLE, f"Anthropic's cost report was not understood: {why}"
    )


def _rfc3339(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"  # UTC midnight


def _utc_day(moment: str) -> date:
    parsed = datetime.fromisoformat(moment)
    return parsed.astimezone(UTC).date() if parsed.tzinfo else parsed.date()


def _key(item: tuple[tuple[date, str | None], int]) -> tuple[date, str]:
    (day, model), _micros = item
    return day, model or ""
