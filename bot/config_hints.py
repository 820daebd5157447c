"""What start-up says about bad settings: each variable, what is wrong, where to get it, and
where its value came from; and the answer lengths a model cannot give (`limit_problems`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import ValidationError

if TYPE_CHECKING:
    from bot.config import Settings

NOT_SET = "is not set"
NO_SURFACE = "neither Slack nor the HTTP API is configured"

# Where an admin finds each value; quoted in start-up errors next to the variable's name.
HINTS: dict[str, str] = {
    "SLACK_BOT_TOKEN": "api.slack.com/apps → your app → OAuth & Permissions → Bot User OAuth Token "
    "(starts with xoxb-); for an HTTP-only deployment set CHAT_API_TOKEN instead",
    "SLACK_SIGNING_SECRET": "api.slack.com/apps → your app → Basic Information → Signing Secret",
    "SLACK_APP_TOKEN": "api.slack.com/apps → your app → Basic Information → App-Level Tokens "
    "(xapp-, scope connections:write); leave unset to receive events over HTTP",
    "SLACK_API_URL": "leave unset for https://slack.com/api/",
    "ANTHROPIC_API_KEY": "console.anthropic.com → Settings → API Keys",
    "ANTHROPIC_BASE_URL": "leave unset for https://api.anthropic.com",
    "ANTHROPIC_ADMIN_API_KEY": "console.anthropic.com → Settings → Admin Keys (starts with "
    "sk-ant-admin; only an organization admin can create one); used only by "
    "`python -m bot usage reconcile`",
    "ANTHROPIC_MAX_RETRIES": "a whole number ≥ 0, e.g. 2",
    "ANTHROPIC_TIMEOUT": "seconds, a number > 0, e.g. 600",
    "CLAUDE_MODEL": "a model id such as claude-sonnet-5-5",
    "CLAUDE_MAX_TOKENS": "a whole number ≥ 1, e.g. 1024",
    "SYSTEM_PROMPT": "any text",
    "CLAUDE_CONTEXT_WINDOW": "the model's context window in tokens, e.g. 200000",
    "SYSTEM_PROMPT_FILE": "a path to a UTF-8 text file",
    "CHANNEL_MEMORY_TURNS": "a whole number ≥ 0, e.g. 20 (0 turns channel memory off)",
    "ADMIN_USER_IDS": "Slack user ids separated by commas, e.g. U012AB3CD,U045EF6GH",
    "PRICING_FILE": "a path to a TOML price file (see bot/cost/prices.toml)",
    "BUDGET_DAILY_USD": "dollars, e.g. 20 or 7.50; empty for none",
    "BUDGET_MONTHLY_USD": "dollars, e.g. 300; empty for none",
    "BUDGET_CHANNEL_DAILY_USD": "dollars, e.g. 5; empty for none",
    "BUDGET_CHANNEL_MONTHLY_USD": "dollars, e.g. 100; empty for none",
    "BUDGET_USER_DAILY_USD": "dollars, e.g. 2; empty for none",
    "BUDGET_USER_MONTHLY_USD": "dollars, e.g. 40; empty for none",
    "DATABASE_URL": "e.g. sqlite+aiosqlite:///./data/bot.db or "
    "postgresql+asyncpg://user:pass@host/db",
    "HOST": "an interface address, e.g. 0.0.0.0",
    "PORT": "a port number 1-65535 (0 picks a free one)",
    "LOG_LEVEL": "DEBUG, INFO, WARNING or ERROR",
    "STREAM_EDIT_INTERVAL": "seconds between interim edits of a streaming reply, e.g. 1.0",
    "LOG_FORMAT": "auto (text on a terminal, else json), json (one object per line) or text",
    "METRICS_TOKEN": "a random secret of 16+ characters, e.g. from `openssl rand -hex 32`; "
    "Prometheus sends it as a bearer token",
    "METRICS_PORT": "a port number for /metrics on 127.0.0.1, e.g. 9464 (0 picks a free one)",
    "SLACK_UPDATES_PER_MINUTE": "edits per minute for the workspace, e.g. 50 (Slack's Tier 3)",
    "SLACK_UPDATE_BURST": "a whole number ≥ 1, e.g. 10",
    "SLACK_POSTS_PER_SECOND": "new messages per second per channel, e.g. 1",
    "SLACK_POST_BURST": "a whole number ≥ 1, e.g. 3",
    "SLACK_TIMEOUT_SECONDS": "seconds, e.g. 10",
    "SHUTDOWN_GRACE_SECONDS": "seconds, e.g. 20",
    "RECOVERY_AFTER_SECONDS": "seconds, e.g. 60",
    "CHAT_API_TOKEN": "a random secret of 16+ characters, e.g. from `openssl rand -hex 32`",
    "CHAT_MAX_MESSAGE_CHARS": "a whole number ≥ 1, e.g. 100000",
    "MAX_TOKENS_SHORT": "a whole number ≥ 1, e.g. 300",
    "MAX_TOKENS_CODE": "a whole number ≥ 1, e.g. 2000",
    "MAX_TOKENS_LONG": "a whole number ≥ 1, e.g. 4000",
    "CLAUDE_DEADLINE_SECONDS": "seconds, e.g. 300",
    "CLAUDE_FIRST_TOKEN_SECONDS": "seconds, e.g. 60",
    "CLAUDE_STALL_SECONDS": "seconds, e.g. 30",
    "USER_REQUESTS_PER_MINUTE": "a whole number ≥ 1, e.g. 10",
    "MAX_CONCURRENT_REQUESTS": "a whole number ≥ 1, e.g. 8",
    "USER_MAX_CONCURRENT_REQUESTS": "a whole number ≥ 1, e.g. 2",
    "THREAD_HISTORY_MESSAGES": "messages of a thread read from Slack, 0-1000, e.g. 200",
    "SLACK_COMMERCIAL_DISTRIBUTION": "true or false (true: Slack allows 1 history read a minute)",
    "FOLLOW_UPS": "true or false",
    "FILES_PER_MESSAGE": "a whole number 0-20, e.g. 5",
    "BOT_ALLOWLIST": "bot or app ids separated by commas, e.g. B0123,A0456",
}


# The least room an answer's max_tokens (and room to think) must leave in the context window.
MIN_CONVERSATION_TOKENS = 1_024


def describe(
    error: ValidationError,
    source: str = "the environment",
    origin: Callable[[str], str | None] = lambda _name: None,
) -> str:
    """One line per bad variable; `source` says which .env was read, `origin` where a
    variable's value was set (the environment or the .env file)."""
    problems: dict[str, str] = {}
    for item in error.errors():
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        name = ".".join(str(part) for part in item.get("loc", ())).upper()
        if message == NO_SURFACE:
            # Errors come in field order: a malformed bot token has been reported already.
            if not problems.keys() & {"SLACK_BOT_TOKEN", "CHAT_API_TOKEN"}:
                problems["SLACK_BOT_TOKEN"] = problems["SLACK_SIGNING_SECRET"] = NOT_SET
            continue
        if item["type"] == "missing" or item.get("input") == "" or message == NOT_SET:
            problems[name] = NOT_SET
        else:
            where = origin(name)
            problems[name] = (f"(set in {where}) " if where else "") + f"is not valid ({message})"
    return render(problems, source)


def render(problems: dict[str, str], source: str) -> str:
    lines = [
        f"{name} {what}: {HINTS.get(name, 'see .env.example')}" for name, what in problems.items()
    ]
    if len(lines) == 1:
        return f"{lines[0]} (settings come from {source})"
    header = f"Settings need attention (they come from {source}):"
    return "\n".join([header, *(f"  {line}" for line in lines)])


def limit_problems(
    settings: Settings, origin: Callable[[str], str | None] = lambda _name: None
) -> dict[str, str]:
    """Answer lengths beyond what Claude's models can write, or whose max_tokens (with room to
    think, as bot.claude.thinking plans it for CLAUDE_MODEL) leave the context window no room
    for the conversation."""
    from bot.claude.thinking import MAX_OUTPUT, plan  # imports the SDK: `serve` needs it anyway

    lengths = {
        "CLAUDE_MAX_TOKENS": ("default", settings.claude_max_tokens),
        "MAX_TOKENS_SHORT": ("short", settings.max_tokens_short),
        "MAX_TOKENS_CODE": ("code", settings.max_tokens_code),
        "MAX_TOKENS_LONG": ("long", settings.max_tokens_long),
    }
    window = settings.claude_context_window
    problems: dict[str, str] = {}
    for name, (kind, answer) in lengths.items():
        sent = plan(settings.claude_model, kind, answer).max_tokens
        if answer > MAX_OUTPUT:
            why = f"{answer:,} is over the {MAX_OUTPUT:,} tokens Claude's models can write at once"
        elif window - sent < MIN_CONVERSATION_TOKENS:
            why = (
                f"with room to think, {settings.claude_model} is asked for up to {sent:,} "
                f"tokens, which leaves {max(window - sent, 0):,} of CLAUDE_CONTEXT_WINDOW="
                f"{window:,} for the conversation; it needs {MIN_CONVERSATION_TOKENS:,}"
            )
        else:
            continue
        where = origin(name)
        problems[name] = (f"(set in {where}) " if where else "") + f"is not valid ({why})"
    return problems
