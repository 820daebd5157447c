"""The App Home tab as Block Kit. Pure: data in, blocks out.

Admins see this month's spend against the workspace budgets, the top channels and people,
spend by model, a daily chart (an uploaded PNG, or a text chart), and each configured
channel's settings with a button to change them. Everyone else sees how to use the bot and
their own usage this month.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.cost.prices import money
from bot.cost.report import UsageReport, cost_text
from bot.engine.channels import ChannelConfig
from bot.slack.channel_commands import show

SETTINGS_ACTION_ID = "home_channel_settings"
MAX_CHANNELS_SHOWN = 15  # a home view holds 100 blocks
HOW_TO = (
    "*How to ask me*\n"
    "• Mention me in a channel I'm in: `@Claude how do I undo a git commit?`. I answer in a "
    "thread and follow the thread's replies there.\n"
    "• `/ask <question>` in any channel, or send me a direct message (the *Messages* tab).\n"
    "• Share an image, a PDF or a text file with your question and I read it.\n"
    "• `/ask settings` shows a channel's settings; `/ask help` the rest."
)


@dataclass(frozen=True)
class Budget:
    label: str  # "this month", "today"
    spent_micros: int
    limit_micros: int


@dataclass(frozen=True)
class Chart:
    """The daily chart: an uploaded file's id, or the text chart when uploading failed."""

    file_id: str | None
    text: str


def admin_home(
    report: UsageReport,
    *,
    budgets: list[Budget],
    chart: Chart,
    channels: list[tuple[str, ChannelConfig]],
) -> dict[str, Any]:
    totals = report.totals
    blocks: list[dict[str, Any]] = [
        _header(f"Claude in this workspace: {report.period.label}"),
        _section(
            f"*Spent:* {cost_text(totals)} on {_count(totals.requests, 'request')} "
            f"({totals.input_tokens:,} input and {totals.output_tokens:,} output tokens)"
        ),
    ]
    for budget in budgets:
        share = budget.spent_micros / budget.limit_micros if budget.limit_micros else 1.0
        blocks.append(
            _section(
                f"*Budget {budget.label}:* {money(budget.spent_micros)} of "
                f"{money(budget.limit_micros)} ({share:.0%})"
            )
        )
    if chart.file_id is not None:
        blocks.append(
            {
                "type": "image",
                "slack_file": {"id": chart.file_id},
                "alt_text": "Spend per day this month, in US dollars",
            }
        )
    else:
        blocks.append(_section(chart.text))
    blocks += [
        _section("*Top channels*\n" + _rows((f"<#{c}>", s) for c, s in report.top_channels)),
        _section("*Top people*\n" + _rows((f"<@{u}>", s) for u, s in report.top_users)),
        _section("*By model*\n" + _rows((f"`{m}`", s) for m, s in report.by_model)),
        {"type": "divider"},
        _header("Channel settings"),
    ]
    for channel_id, config in channels[:MAX_CHANNELS_SHOWN]:
        text = show(config).replace("*Claude's settings in this channel*", f"*<#{channel_id}>*")
        blocks.append(_section(text[:2900], button=("Change", channel_id)))
    blocks.append(
        _section(
            "Other channels use the defaults. Change any channel's settings here, or with "
            "`/ask settings` in the channel.",
            button=("Another channel", ""),
        )
    )
    return {"type": "home", "blocks": blocks}


def member_home(report: UsageReport) -> dict[str, Any]:
    totals = report.totals
    mine = (
        f"*Your usage, {report.period.label}:* {_count(totals.requests, 'question')}, "
        f"{totals.input_tokens + totals.output_tokens:,} tokens, {cost_text(totals)}."
    )
    return {"type": "home", "blocks": [_header("Claude"), _section(HOW_TO), _section(mine)]}


def _rows(rows: Any) -> str:
    lines = [
        f"• {name}: {cost_text(sums)} ({_count(sums.requests, 'request')})" for name, sums in rows
    ]
    return "\n".join(lines) or "_nothing yet_"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:150]}}


def _section(mrkdwn: str, *, button: tuple[str, str] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}
    if button is not None:
        label, value = button
        block["accessory"] = {
            "type": "button",
            "action_id": SETTINGS_ACTION_ID,
            "text": {"type": "plain_text", "text": label},
            "value": value or "-",
        }
    return block
