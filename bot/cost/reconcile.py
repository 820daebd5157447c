"""Reconciling the ledger with Anthropic's bill: the cost per UTC day and model, side by side.

Pure: the ledger's rows (`Ledger.by_day_and_model`) and the lines of Anthropic's cost report
(anything with a day, a model and micro-dollars) go in, a table or JSON comes out. Models are
matched after canonicalising both ids, so a dated or Bedrock id meets its plain alias. The
difference is always Anthropic minus the ledger; a side with no row counts as zero.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, Protocol

from bot.cost.prices import canonical_model, money
from bot.cost.report import Period, add
from bot.store import Sums

Format = Literal["table", "json"]
TOLERANCE_MICROS = 10_000  # $0.01
TOLERANCE_PERCENT = 1
TOLERANCE_TEXT = "±1 % or ±$0.01"  # TOLERANCE_PERCENT, TOLERANCE_MICROS
NO_MODEL = "(no model)"  # Anthropic's costs that belong to no model
MISSING = "—"
TOTAL = "TOTAL"
LISTED = 5  # rows named in the closing line when they differ
CAVEATS = (
    "DIFFERENCE is Anthropic minus the ledger. Anthropic's report can lag by hours and "
    "excludes Priority Tier costs;\nit covers the whole organization, not only this bot."
)


class Billed(Protocol):
    """One line of Anthropic's cost report (bot.claude.admin.CostLine)."""

    @property
    def day(self) -> date: ...

    @property
    def model(self) -> str | None: ...

    @property
    def micros(self) -> int: ...


@dataclass(frozen=True)
class LedgerCost:
    """The ledger's figure for one day and model (or the total)."""

    micros: int
    unpriced: int = 0  # requests without a price: their cost is not in `micros`


def ledger_cost(sums: Sums) -> LedgerCost:
    """What the ledger says a group of its rows cost: the one place that reads Sums."""
    return LedgerCost(micros=sums.cost_micros, unpriced=sums.unknown_cost_requests)


@dataclass(frozen=True)
class Line:
    """One row: a day (ISO) and model, or the TOTAL; None where a side has no row."""

    day: str
    model: str
    ledger: LedgerCost | None
    anthropic: int | None

    @property
    def difference(self) -> int:
        return (self.anthropic or 0) - (self.ledger.micros if self.ledger else 0)

    @property
    def percent(self) -> Decimal | None:
        """The difference as a share of Anthropic's figure; None when that is missing or 0."""
        if not self.anthropic:
            return None
        return Decimal(self.difference * 100) / Decimal(self.anthropic)

    @property
    def agrees(self) -> bool:
        off = abs(self.difference)
        return off <= TOLERANCE_MICROS or off * 100 <= abs(self.anthropic or 0) * TOLERANCE_PERCENT


@dataclass(frozen=True)
class Reconciliation:
    period: Period
    lines: list[Line]  # by day, then model
    total: Line

    @property
    def differing(self) -> list[Line]:
        return [line for line in self.lines if not line.agrees]

    @property
    def unpriced(self) -> int:
        return self.total.ledger.unpriced if self.total.ledger else 0


def compare(
    period: Period, ledger_rows: Iterable[tuple[str, str, Sums]], billed: Iterable[Billed]
) -> Reconciliation:
    """Both sides per (UTC day, canonical model), sorted by day then model, with a total."""
    ours: dict[tuple[str, str], Sums] = {}
    total = Sums()
    for day, model, sums in ledger_rows:
        add(ours.setdefault((day, canonical_model(model)), Sums()), sums)
        add(total, sums)
    theirs: dict[tuple[str, str], int] = {}
    for line in billed:
        key = (line.day.isoformat(), canonical_model(line.model) if line.model else NO_MODEL)
        theirs[key] = theirs.get(key, 0) + line.micros
    lines = [
        Line(
            day,
            model,
            ledger_cost(ours[(day, model)]) if (day, model) in ours else None,
            theirs.get((day, model)),
        )
        for day, model in sorted(ours.keys() | theirs.keys())
    ]
    return Reconciliation(
        period=period,
        lines=lines,
        total=Line(
            TOTAL,
            "",
            ledger_cost(total) if ours else None,
            sum(theirs.values()) if theirs else None,
        ),
    )


def render(result: Reconciliation, fmt: Format) -> str:
    return _json(result) if fmt == "json" else _table(result)


def _table(result: Reconciliation) -> str:
    title = f"Ledger vs Anthropic's cost report, {result.period.heading}"
    if not result.lines:
        return "\n".join([title, "", "No costs on either side in this period.", "", CAVEATS])
    header = ["DAY", "MODEL", "LEDGER", "ANTHROPIC", "DIFFERENCE", "DIFF %"]
    body = [_cells(line) for line in [*result.lines, result.total]]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    rows = [
        "  ".join(
            cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        )
        for row in [header, *body]
    ]
    rows.insert(len(rows) - 1, "-" * len(rows[0]))
    return "\n".join([title, "", *rows, "", *_verdict(result), CAVEATS])


def _cells(line: Line) -> list[str]:
    ledger = MISSING
    if line.ledger is not None:
        ledger = money(line.ledger.micros)
        if line.ledger.unpriced:
            ledger += f" + {line.ledger.unpriced} unpriced"
    anthropic = MISSING if line.anthropic is None else money(line.anthropic)
    percent = line.percent
    shown = MISSING if percent is None else f"{percent.quantize(Decimal('0.1'), ROUND_HALF_UP):+} %"
    return [line.day, line.model, ledger, anthropic, _signed(line.difference), shown]


def _signed(micros: int) -> str:
    return f"+{money(micros)}" if micros > 0 else money(micros)


def _verdict(result: Reconciliation) -> list[str]:
    differing = result.differing
    if not differing:
        lines = [f"They agree: every day and model is within {TOLERANCE_TEXT}."]
    else:
        named = ", ".join(f"{line.day} {line.model}" for line in differing[:LISTED])
        more = f" and {len(differing) - LISTED} more" if len(differing) > LISTED else ""
        lines = [
            f"They differ: {len(differing)} of {len(result.lines)} rows are beyond "
            f"{TOLERANCE_TEXT} ({named}{more})."
        ]
    if result.unpriced:
        lines.append(
            f"{result.unpriced} of the ledger's requests had no price: their cost is missing "
            "from LEDGER (PRICING_FILE can add the price)."
        )
    return lines


def _json(result: Reconciliation) -> str:
    period = result.period
    body = {
        "period": {
            "first_day": period.start.isoformat(),
            "last_day": (period.end - timedelta(days=1)).isoformat(),
        },
        "difference": "anthropic_micros - ledger_micros",
        "tolerance": {"micros": TOLERANCE_MICROS, "percent": TOLERANCE_PERCENT},
        "agree": not result.differing,
        "rows": [{"day": line.day, "model": line.model, **_figures(line)} for line in result.lines],
        "total": _figures(result.total),
    }
    return json.dumps(body, indent=2)


def _figures(line: Line) -> dict[str, Any]:
    # Exact integers; a side without a row is null, not 0.
    return {
        "ledger_micros": line.ledger.micros if line.ledger else None,
        "ledger_unpriced_requests": line.ledger.unpriced if line.ledger else 0,
        "anthropic_micros": line.anthropic,
        "difference_micros": line.difference,
        "agrees": line.agrees,
    }
