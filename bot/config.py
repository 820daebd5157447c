"""Settings, read once at start-up from the environment and `.env`, then passed down.

The variable names are an outside contract (deployments rely on them): add, never rename.
`load_settings` turns every validation problem into one readable `ConfigError` that names
each variable and where to get its value, so start-up never ends in a traceback.
"""

from __future__ import annotations

import functools
import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from bot.config_base import (
    ANTHROPIC_HOSTS,
    SLACK_HOSTS,
    AdminKey,
    AdminSettings,
    DatabaseSettings,
    _http_url,
    check_api_key,
    check_signing_secret,
    check_token,
    ensure_sqlite_folder,
    is_official,
    load_admin_settings,
    load_database_settings,
    origin_of,
    settings_source,
    sqlite_file,
)
from bot.config_hints import NO_SURFACE, NOT_SET, describe, limit_problems, render
from bot.errors import ConfigError

__all__ = [
    "AdminSettings",
    "DatabaseSettings",
    "Settings",
    "ensure_sqlite_folder",
    "load_admin_settings",
    "load_database_settings",
    "load_settings",
    "settings_source",
    "sqlite_file",
]

# /metrics on 127.0.0.1 when neither METRICS_PORT nor METRICS_TOKEN says otherwise.
DEFAULT_METRICS_PORT = 9464
# Dollars with at most 6 decimals (micro-dollars), as budgets are kept.
Money = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=6)]

DEFAULT_SYSTEM_PROMPT = """\
You are Claude, an AI assistant in a Slack workspace. People reach you by mentioning you in \
a channel, with the /ask command, or in a direct message, and they watch your answer appear \
as you write it.

Several people may take part in one conversation. Each of their messages starts with the \
speaker's Slack mention, like "<@U123ABC>: ...". Keep track of who said what, and mention \
someone that way when you address them; do not start your own replies with a mention prefix.

Write in Markdown: short paragraphs, lists, **bold**, `inline code`, fenced code blocks with \
a language, and tables when they help. Slack renders it. Put the answer first and the \
details after; keep answers as short as the question allows. Never write @channel, @here \
or @everyone."""


class Settings(DatabaseSettings):
    """Everything the running bot needs."""

    # Optional only for an HTTP-only deployment (CHAT_API_TOKEN set): see _needed_for_http.
    slack_bot_token: str | None = None
    chat_api_token: Annotated[str, Field(min_length=16)] | None = None
    # Declared before the signing secret: its validators read whether Socket Mode is on and
    # whether Slack is Slack's own (its secrets' shape).
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_signing_secret: Annotated[str | None, Field(validate_default=True)] = None

    anthropic_base_url: str | None = None  # declared before the key, whose shape it decides
    anthropic_api_key: Annotated[str, Field(min_length=1)]
    anthropic_admin_api_key: AdminKey | None = None
    anthropic_max_retries: Annotated[int, Field(ge=0, le=10)] = 2
    anthropic_timeout: Annotated[float, Field(gt=0)] = 600.0
    claude_model: Annotated[str, Field(min_length=1)] = "claude-sonnet-5-5"
    claude_max_tokens: Annotated[int, Field(ge=1)] = 1024
    claude_context_window: Annotated[int, Field(ge=1000)] = 200_000
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    system_prompt_file: Path | None = None
    channel_memory_turns: Annotated[int, Field(ge=0)] = 20
    admin_user_ids: Annotated[frozenset[str], NoDecode] = frozenset()
    pricing_file: Path | None = None
    budget_daily_usd: Money | None = None
    budget_monthly_usd: Money | None = None
    budget_channel_daily_usd: Money | None = None
    budget_channel_monthly_usd: Money | None = None
    budget_user_daily_usd: Money | None = None
    budget_user_monthly_usd: Money | None = None

    host: str = "0.0.0.0"  # noqa: S104 - a server in a container listens on every interface
    port: Annotated[int, Field(ge=0, le=65535)] = 3000  # 0: any free port
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # auto: text when stderr is a terminal, else json (bot.logs).
    log_format: Literal["auto", "json", "text"] = "auto"
    # /metrics on the main port, to requests bearing it; without it, on METRICS_PORT.
    metrics_token: Annotated[str, Field(min_length=16)] | None = None
    # /metrics on 127.0.0.1 alone; unset: 9464 unless METRICS_TOKEN is set (then none).
    metrics_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    stream_edit_interval: Annotated[float, Field(ge=0.05, le=30)] = 1.0
    slack_updates_per_minute: Annotated[float, Field(gt=0)] = 50
    slack_update_burst: Annotated[float, Field(ge=1)] = 10
    slack_posts_per_second: Annotated[float, Field(gt=0)] = 1
    slack_post_burst: Annotated[float, Field(ge=1)] = 3
    slack_timeout_seconds: Annotated[float, Field(gt=0)] = 10
    shutdown_grace_seconds: Annotated[float, Field(ge=0)] = 20
    recovery_after_seconds: Annotated[float, Field(ge=0)] = 15

    chat_max_message_chars: Annotated[int, Field(ge=1)] = 100_000

    max_tokens_short: Annotated[int, Field(ge=1)] = 300
    max_tokens_code: Annotated[int, Field(ge=1)] = 2000
    max_tokens_long: Annotated[int, Field(ge=1)] = 4000

    claude_deadline_seconds: Annotated[float, Field(gt=0)] = 300.0
    claude_first_token_seconds: Annotated[float, Field(gt=0)] = 60.0
    claude_stall_seconds: Annotated[float, Field(gt=0)] = 30.0

    user_requests_per_minute: Annotated[int, Field(ge=1)] = 10
    # The most Claude requests in flight at once; within it the bot learns the room
    # Anthropic's rate limits give (bot.engine.capacity). Beyond: the fair queue.
    max_concurrent_requests: Annotated[int, Field(ge=1)] = 32
    queue_wait_seconds: Annotated[float, Field(gt=0, le=3600)] = 120.0
    user_max_concurrent_requests: Annotated[int, Field(ge=1)] = 2

    # What Claude sees of Slack: thread history, follow-ups, files, other bots.
    thread_history_messages: Annotated[int, Field(ge=0, le=1000)] = 200
    slack_commercial_distribution: bool = False
    follow_ups: bool = True
    files_per_message: Annotated[int, Field(ge=0, le=20)] = 5
    bot_allowlist: Annotated[frozenset[str], NoDecode] = frozenset()

    # Channels: on everywhere, or only where an admin turned the bot on (/ask settings on).
    channels_default: Literal["on", "off"] = "on"
    # Delete conversation text older than this many days (0: keep it); the ledger stays.
    retention_days: Annotated[int, Field(ge=0)] = 0

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("admin_user_ids", "bot_allowlist", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            return frozenset(part for part in re.split(r"[\s,]+", value) if part)
        return value

    @field_validator("slack_api_url", "anthropic_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return _http_url(value)

    @field_validator(
        "slack_bot_token",
        "chat_api_token",
        "slack_signing_secret",
        "system_prompt_file",
        "pricing_file",
        "budget_daily_usd",
        "budget_monthly_usd",
        "budget_channel_daily_usd",
        "budget_channel_monthly_usd",
        "budget_user_daily_usd",
        "budget_user_monthly_usd",
        "slack_app_token",
        "anthropic_base_url",
        "anthropic_admin_api_key",
        "metrics_token",
        "metrics_port",
        "log_format",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # `.env.example` copies leave optional variables as `NAME=`; that means "not set".
        return None if value == "" else value

    @field_validator("slack_bot_token")
    @classmethod
    def _bot_token(cls, value: str | None) -> str | None:
        others = {"xoxp-": "a user token", "xapp-": "an app-level token (SLACK_APP_TOKEN)"}
        return None if value is None else check_token(value, "xoxb-", others)

    @field_validator("slack_app_token")
    @classmethod
    def _app_token(cls, value: str | None) -> str | None:
        others = {"xoxb-": "the bot token (SLACK_BOT_TOKEN)", "xoxp-": "a user token"}
        return None if value is None else check_token(value, "xapp-", others)

    @field_validator("anthropic_api_key")
    @classmethod
    def _api_key(cls, value: str, info: ValidationInfo) -> str:
        official = "anthropic_base_url" not in info.data or is_official(
            info.data["anthropic_base_url"], ANTHROPIC_HOSTS
        )
        return check_api_key(value, official)

    @field_validator("slack_signing_secret")
    @classmethod
    def _needed_for_http(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Socket Mode needs no signing secret: Slack's socket, not a signature, vouches for
        # events. Without a bot token there is no Slack at all (an HTTP-only deployment).
        if value:
            check_signing_secret(value, is_official(info.data.get("slack_api_url"), SLACK_HOSTS))
        if not info.data.get("slack_bot_token"):
            if not info.data.get("chat_api_token"):
                raise ValueError(NO_SURFACE)
            return value
        if not value and not info.data.get("slack_app_token"):
            raise ValueError(NOT_SET)
        return value

    def budget_micros(self, scope: str, period: str) -> int | None:
        name = "budget_" + ("" if scope == "workspace" else f"{scope}_") + f"{period}_usd"
        value: Decimal | None = getattr(self, name)
        return None if value is None else int(value * 1_000_000)

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None

    @property
    def max_tokens_by_kind(self) -> dict[str, int]:
        """max_tokens per kind of task; other kinds get CLAUDE_MAX_TOKENS."""
        return {
            "short": self.max_tokens_short,
            "code": self.max_tokens_code,
            "long": self.max_tokens_long,
        }

    @property
    def secrets(self) -> list[str]:
        """Values that must never reach a log line."""
        values = (
            self.slack_bot_token,
            self.slack_signing_secret,
            self.slack_app_token,
            self.anthropic_api_key,
            self.anthropic_admin_api_key,
            self.chat_api_token,
            self.metrics_token,
        )
        return [v for v in values if v]

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    @property
    def metrics_local_port(self) -> int | None:
        """Where /metrics is served on 127.0.0.1 without a token (None: nowhere)."""
        if self.metrics_port is not None or self.metrics_token is not None:
            return self.metrics_port
        return DEFAULT_METRICS_PORT


def load_settings(**overrides: Any) -> Settings:
    """Read the settings once; raise ConfigError with a readable message when they are wrong."""
    env_file = overrides.get("_env_file", ".env")
    source, origin = settings_source(env_file), functools.partial(origin_of, env_file=env_file)
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        raise ConfigError(describe(error, source, origin)) from None
    if problems := limit_problems(settings, origin):
        raise ConfigError(render(problems, source))
    if settings.system_prompt_file is not None:
        try:
            settings.system_prompt = settings.system_prompt_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(
                f"SYSTEM_PROMPT_FILE cannot be read ({error.__class__.__name__}): "
                f"{settings.system_prompt_file}"
            ) from None
    return settings
