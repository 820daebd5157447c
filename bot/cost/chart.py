"""Daily spend as a picture (a PNG bar chart for an image block) or as text (for mrkdwn). Pure.

Both take `days`: (UTC day, US dollars) pairs in any order; a day given twice is summed and
a negative amount counts as no spend. Both cover the whole calendar month of the earliest day
(or of `month`), so a day without spend is a gap and not a missing column.

matplotlib is imported inside `daily_chart_png`, so importing this module costs nothing at
start-up (the first chart pays about half a second). It draws on the Agg canvas directly: no
pyplot, no GUI backend, no global figure or rcParams touched, so `asyncio.to_thread` can run it.
"""

from __future__ import annotations

import calendar
import io
import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from bot.cost.money import MICROS_PER_DOLLAR, money

WIDTH_PX, HEIGHT_PX, DPI = 800, 300, 100
BAR_COLOUR = "#4a7bd0"
SECTION_TEXT_LIMIT = 3000  # a section block's text: invalid_blocks beyond 3,000 characters
FULL = "█"
EIGHTHS = ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")  # partial blocks, 1/8 to 7/8 of a cell
NO_SPEND = "·"
FENCE = "```"
LEFT_OUT = "(earlier days left out)"
MIN_WIDTH = 5  # below this a bar says too little: days are left out instead


def month_days(
    days: Iterable[tuple[date, Decimal]], month: date | None = None
) -> list[tuple[date, Decimal]]:
    """Every day of the month (or months) covered, in order, with its spend (zero if none).

    The range runs from the first of `month`, or of the earliest day's month, to the last day
    of the latest month seen; empty without `days` and `month`."""
    spend: defaultdict[date, Decimal] = defaultdict(Decimal)
    for day, amount in days:
        spend[day] += amount
    seen = [*spend, *([month] if month else [])]
    if not seen:
        return []
    first = (month or min(seen)).replace(day=1)
    latest = max(seen)
    last = latest.replace(day=calendar.monthrange(latest.year, latest.month)[1])
    count = (last - first).days + 1
    return [
        (first + timedelta(n), max(spend.get(first + timedelta(n), Decimal(0)), Decimal(0)))
        for n in range(count)
    ]


def daily_chart_png(
    days: list[tuple[date, Decimal]], *, title: str, month: date | None = None
) -> bytes:
    """A PNG bar chart, 800×300 px, of spend per day in US dollars.

    The x axis holds the month's days (day numbers; the month in the axis label), one bar a
    day with spend and nothing for a day without; the y axis is in dollars, and the month's
    total is written top right. With no spend at all the chart says so. `month`: any day of
    the month to show, when `days` may be empty or start later in the month."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: paid when drawn
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    filled = month_days(days, month)
    amounts = [float(amount) for _, amount in filled]
    peak = max(amounts, default=0.0)
    total = sum((amount for _, amount in filled), Decimal(0))
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=0.09, right=0.985, bottom=0.17, top=0.86)
    axes = figure.add_subplot()
    # parse_math off: "$" is a dollar sign here, never the start of TeX maths. (A tick label
    # has one "$" only, which matplotlib never reads as maths.)
    axes.set_title(title, loc="left", fontsize=11, fontweight="bold", parse_math=False)
    total_text = f"Total {_dollars(total)}"
    axes.text(1.0, 1.03, total_text, transform=axes.transAxes, ha="right", parse_math=False)
    positions = list(range(1, len(filled) + 1))
    spent = [(x, y) for x, y in zip(positions, amounts, strict=True) if y > 0]
    if spent:
        xs, ys = zip(*spent, strict=True)
        axes.bar(xs, ys, width=0.75, color=BAR_COLOUR, zorder=2)
    else:
        axes.text(0.5, 0.5, "No spend", transform=axes.transAxes, ha="center", color="grey")
    axes.set_xlim(0.4, max(len(filled), 1) + 0.6)
    axes.set_ylim(0, peak * 1.1 if peak > 0 else 1.0)
    axes.set_xticks(positions, [str(day.day) for day, _ in filled])
    axes.tick_params(axis="x", labelsize=7)
    axes.tick_params(axis="y", labelsize=9)
    axes.set_xlabel(_month_label(filled), fontsize=8)
    axes.yaxis.set_major_locator(MaxNLocator(nbins=5, min_n_ticks=2))
    ticks = list(axes.get_yticks())
    places = _places(ticks[1] - ticks[0] if len(ticks) > 1 else 1.0)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: _axis(value, places)))
    axes.grid(axis="y", color="#dddddd", zorder=0)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def daily_chart_text(
    days: list[tuple[date, Decimal]],
    *,
    width: int = 30,
    month: date | None = None,
    limit: int = SECTION_TEXT_LIMIT,
) -> str:
    """The same chart as mrkdwn text: a code block, one line per day of the month up to the
    last day with spend (or `month`'s last day given), "MM-DD  bar  amount".

    Bars are █ blocks (eighths at the end) scaled so the biggest day fills `width`; a day
    without spend shows "·". The result is at most `limit` characters (a section block's
    3,000): bars are narrowed first, then the earliest days are left out, and a line says so."""
    filled = month_days(days, month)
    last_spent = max((i for i, (_, amount) in enumerate(filled) if amount > 0), default=-1)
    rows = filled[: last_spent + 1] if month is None else filled
    if not rows:
        return f"{FENCE}\nNo spend\n{FENCE}"
    amounts = [_dollars(amount) for _, amount in rows]
    amount_width = max(map(len, amounts))
    fixed = len("MM-DD  ") + 2 + amount_width + 1  # label, gap, amount, newline
    overhead = 2 * len(FENCE) + 2
    room = (limit - overhead) // len(rows) - fixed
    width = max(min(width, room), min(width, MIN_WIDTH), 1)
    peak = max(amount for _, amount in rows)
    lines = [
        f"{day:%m-%d}  {_bar(amount, peak, width):<{width}}  {shown:>{amount_width}}"
        for (day, amount), shown in zip(rows, amounts, strict=True)
    ]
    return _fenced(lines, limit)


def _bar(amount: Decimal, peak: Decimal, width: int) -> str:
    if amount <= 0 or peak <= 0:
        return NO_SPEND
    eighths = max(1, int((amount / peak * width * 8).to_integral_value(ROUND_HALF_UP)))
    return FULL * (eighths // 8) + EIGHTHS[eighths % 8]


def _fenced(lines: list[str], limit: int) -> str:
    text = "\n".join([FENCE, *lines, FENCE])
    if len(text) <= limit:
        return text
    room = limit - len(f"{FENCE}\n{LEFT_OUT}\n{FENCE}")
    kept: list[str] = []
    for line in reversed(lines):  # the latest days matter most
        room -= len(line) + 1
        if room < 0:
            break
        kept.append(line)
    return "\n".join([FENCE, LEFT_OUT, *reversed(kept), FENCE])


def _dollars(amount: Decimal) -> str:
    micros = int((amount * MICROS_PER_DOLLAR).to_integral_value(ROUND_HALF_UP))
    return money(micros)


def _places(step: float) -> int:
    """Decimal places that tell the y ticks apart: none for whole-dollar steps, else at
    least 2 (cents), so that $1.50 never shows as $2."""
    if step <= 0 or (step >= 1 and abs(step - round(step)) < 1e-9):
        return 0
    if step >= 0.01:
        return 2
    return max(2, -math.floor(math.log10(step) + 1e-9))


def _axis(value: float, places: int) -> str:
    return "$0" if value == 0 else f"${value:,.{places}f}"


def _month_label(filled: list[tuple[date, Decimal]]) -> str:
    if not filled:
        return "Day of the month"
    first, last = filled[0][0], filled[-1][0]
    if (first.year, first.month) == (last.year, last.month):
        return f"{first:%B %Y} (UTC days)"
    return f"{first:%B %Y} – {last:%B %Y} (UTC days)"
