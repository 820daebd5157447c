"""The Usage & Cost Admin API's cost report, as served by the fake Anthropic server (0a.8).

``GET /v1/organizations/cost_report`` (admin key only; the fake checks it) answers from
``fake.costs``, a list of :class:`CostItem`. Query parameters:

* ``starting_at`` (required, RFC 3339 with a timezone): the first bucket is its UTC day.
* ``ending_at`` (optional, RFC 3339, default ``fake.now()``): exclusive; the last bucket is the
  last UTC day starting before it. Must be after ``starting_at``.
* ``bucket_width``: only ``1d``.
* ``group_by[]`` (repeatable; ``group_by`` also accepted): ``description`` and/or
  ``workspace_id``.
* ``limit``: buckets per page, 1..31, default 7. ``page``: the ``next_page`` token of the
  previous answer.

Anything else invalid is a 400 ``invalid_request_error``. The answer is
``{"data": [bucket, ...], "has_more": bool, "next_page": str | null}``, one bucket
``{"starting_at": "2026-11-30T00:00:00Z", "ending_at": "2026-12-01T00:00:00Z", "results": [...]}``
per UTC day (``results`` empty on days without costs). A result is ``{"currency": "USD",
"amount": <decimal string, in cents>, "workspace_id", "description", "cost_type",
"context_window", "model", "service_tier", "token_type"}``:

* without ``description`` grouping, a day's items (per workspace when grouped by
  ``workspace_id``) are summed into one result whose other fields are null;
* with it, items with the same (description, model, token_type, cost_type, context_window,
  service_tier) are summed; an item without a description gets one like
  ``"Claude Sonnet 5.5 Usage - Output Tokens"``.

``workspace_id`` is null unless grouped by it. Amounts are summed exactly (``Decimal``).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from multidict import MultiMapping

from tests.fakes.anthropic_models import base_model

COST_REPORT_PATH = "/v1/organizations/cost_report"
GROUPS = ("description", "workspace_id")
DEFAULT_LIMIT, MAX_LIMIT = 7, 31


@dataclass
class CostItem:
    """One cost line of the organization, for one UTC day."""

    day: dt.date
    model: str
    amount_cents: str  # decimal string in cents: "123.45" = $1.2345
    token_type: str | None = "output_tokens"
    cost_type: str = "tokens"
    description: str | None = None
    service_tier: str = "standard"
    context_window: str = "0-200k"
    workspace_id: str | None = None


class CostReportError(ValueError):
    """A query the API would answer with a 400 invalid_request_error."""


def default_description(item: CostItem) -> str:
    """`claude-sonnet-5-5` + output_tokens -> "Claude Sonnet 5.5 Usage - Output Tokens"."""
    family, *version = base_model(item.model).removeprefix("claude-").split("-")
    name = " ".join(["Claude", family.capitalize(), ".".join(version)]).strip()
    what = item.token_type if item.cost_type == "tokens" and item.token_type else item.cost_type
    return f"{name} Usage - {what.replace('_', ' ').title()}"


def _timestamp(query: MultiMapping[str], name: str) -> dt.datetime | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise CostReportError(f"{name}: Input should be an RFC 3339 timestamp") from None
    if value.tzinfo is None:
        raise CostReportError(f"{name}: Input should have a timezone")
    return value.astimezone(dt.UTC)


def _iso(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def _page_token(day: dt.date) -> str:
    return base64.urlsafe_b64encode(f"page:{day.isoformat()}".encode()).decode()


def _page_day(token: str) -> dt.date:
    try:
        decoded = base64.urlsafe_b64decode(token.encode()).decode()
        return dt.date.fromisoformat(decoded.removeprefix("page:"))
    except ValueError:
        raise CostReportError("page: invalid page token") from None


def _results(items: list[CostItem], groups: list[str]) -> list[dict[str, Any]]:
    sums: dict[tuple[str | None, ...], Decimal] = {}
    for item in items:
        workspace = item.workspace_id if "workspace_id" in groups else None
        if "description" in groups:
            description = item.description or default_description(item)
            key: tuple[str | None, ...] = (
                workspace,
                description,
                item.cost_type,
                item.context_window,
                item.model,
                item.service_tier,
                item.token_type,
            )
        else:
            key = (workspace, None, None, None, None, None, None)
        try:
            amount = Decimal(item.amount_cents)
        except InvalidOperation:
            raise AssertionError(f"CostItem.amount_cents is not a decimal: {item!r}") from None
        sums[key] = sums.get(key, Decimal(0)) + amount
    fields = ("workspace_id", "description", "cost_type", "context_window", "model")
    rows = []
    for key in sorted(sums, key=lambda k: tuple(part or "" for part in k)):
        row: dict[str, Any] = {"currency": "USD", "amount": format(sums[key], "f")}
        row.update(zip((*fields, "service_tier", "token_type"), key, strict=True))
        rows.append(row)
    return rows


def cost_report(
    costs: list[CostItem], query: MultiMapping[str], now: Callable[[], dt.datetime]
) -> dict[str, Any]:
    """The response body for one cost_report query; raises CostReportError (a 400)."""
    starting_at = _timestamp(query, "starting_at")
    if starting_at is None:
        raise CostReportError("starting_at: Field required")
    ending_at = _timestamp(query, "ending_at") or now().astimezone(dt.UTC)
    if ending_at <= starting_at:
        raise CostReportError("ending_at: must be after starting_at")
    width = query.get("bucket_width", "1d")
    if width != "1d":
        raise CostReportError(f"bucket_width: Input should be '1d'; got {width!r}")
    groups = [*query.getall("group_by[]", []), *query.getall("group_by", [])]
    for group in groups:
        if group not in GROUPS:
            raise CostReportError("group_by: Input should be 'description' or 'workspace_id'")
    try:
        limit = int(query.get("limit", DEFAULT_LIMIT))
    except ValueError:
        raise CostReportError("limit: Input should be a valid integer") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise CostReportError(f"limit: Input should be between 1 and {MAX_LIMIT}")

    first = starting_at.date()
    page = query.get("page")
    if page is not None:
        first = max(first, _page_day(page))
    days: list[dt.date] = []
    day = first
    while dt.datetime.combine(day, dt.time(), dt.UTC) < ending_at and len(days) <= limit:
        days.append(day)
        day += dt.timedelta(days=1)
    has_more = len(days) > limit
    data = [
        {
            "starting_at": _iso(day),
            "ending_at": _iso(day + dt.timedelta(days=1)),
            "results": _results([c for c in costs if c.day == day], groups),
        }
        for day in days[:limit]
    ]
    return {
        "data": data,
        "has_more": has_more,
        "next_page": _page_token(days[limit]) if has_more else None,
    }
