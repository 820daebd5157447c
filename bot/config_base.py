"""The settings every command needs, the database first: `migrate` and `usage` need no
Slack or Anthropic. `bot.config` builds the running bot's settings on these, with the shapes
of Slack's and Anthropic's tokens checked here (strictly for Slack's and Anthropic's own
servers; a gateway or test server at SLACK_API_URL / ANTHROPIC_BASE_URL may issue others)."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.config_hints import describe
from bot.errors import ConfigError

# An Admin API key (Console → Settings → Admin Keys); only the cost reconciliation uses it.
AdminKey = Annotated[str, Field(pattern=r"^sk-ant-admin\S+$")]


class DatabaseSettings(BaseSettings):
    """The database alone: enough for migrations and `alembic check`, which need no Slack."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    database_url: str = "sqlite+aiosqlite:///./data/bot.db"

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("not a database URL") from None
        if url.drivername == "sqlite+aiosqlite":
            return value
        if url.drivername == "postgresql+asyncpg":
            if importlib.util.find_spec("asyncpg") is None:
                raise ValueError(
                    "PostgreSQL needs the asyncpg driver: .venv/bin/pip install -e '.[postgres]'"
                )
            return value
        raise ValueError("use sqlite+aiosqlite:///path or postgresql+asyncpg://user:pass@host/db")


class AdminSettings(DatabaseSettings):
    """What `python -m bot usage reconcile` needs: the database and an Admin API key."""

    anthropic_admin_api_key: AdminKey
    anthropic_base_url: str | None = None

    @field_validator("anthropic_base_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value  # an empty key stays "" and reads "is not set"

    @field_validator("anthropic_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return _http_url(value)


def _http_url(value: str | None) -> str | None:
    if value is not None and not re.match(r"^https?://[^\s/]+", value):
        raise ValueError("must start with https:// (or http:// for a local test server)")
    if value is not None and re.search(r"/v1/?$", value):
        raise ValueError("leave out the /v1: the client adds the API's paths itself")
    return value


def sqlite_file(database_url: str) -> Path | None:
    """The file of a file-based SQLite database; None for PostgreSQL or an in-memory one."""
    prefix = "sqlite+aiosqlite:///"
    if not database_url.startswith(prefix):
        return None
    path = database_url[len(prefix) :].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def ensure_sqlite_folder(database_url: str) -> None:
    """Create the folder of a file-based SQLite database, so a fresh clone just works."""
    path = sqlite_file(database_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def load_database_settings() -> DatabaseSettings:
    """Only DATABASE_URL (for `migrate` and `usage`, which need no Slack or Anthropic)."""
    try:
        return DatabaseSettings()
    except ValidationError as error:
        raise ConfigError(describe(error, settings_source(), origin_of)) from None


def load_admin_settings() -> AdminSettings:
    """DATABASE_URL, ANTHROPIC_ADMIN_API_KEY and ANTHROPIC_BASE_URL (for `usage reconcile`)."""
    try:
        return AdminSettings()
    except ValidationError as error:
        raise ConfigError(describe(error, settings_source(), origin_of)) from None


def settings_source(env_file: Any = ".env") -> str:
    """Where the settings are read from, for messages: the environment, and which .env."""
    if not isinstance(env_file, str | Path):
        return "the environment"
    path = Path(env_file).resolve()
    if path.is_file():
        return f"the environment and {path}"
    return f"the environment (there is no {path})"


def origin_of(name: str, env_file: Any = ".env") -> str | None:
    """Where a variable's value came from: the environment wins over the .env file."""
    if any(key.upper() == name for key in os.environ):
        return "the environment"
    path = Path(env_file) if isinstance(env_file, str | Path) else None
    if path is not None and path.is_file() and any(k.upper() == name for k in dotenv_values(path)):
        return str(path.resolve())
    return None


SLACK_HOSTS = ("slack.com", "slack-gov.com")
ANTHROPIC_HOSTS = ("anthropic.com",)


def is_official(url: str | None, hosts: tuple[str, ...]) -> bool:
    """Whether a base URL (None: the default) is Slack's or Anthropic's own."""
    host = (urlsplit(url).hostname or "") if url else hosts[0]
    return any(host == h or host.endswith("." + h) for h in hosts)


def check_token(value: str, prefix: str, others: dict[str, str]) -> str:
    """A token of the shape `prefix` + letters, digits and dashes; `others` says what a
    value with another known prefix is, e.g. {"xoxp-": "a user token"}."""
    for other, what in others.items():
        if value.startswith(other):
            raise ValueError(f"that is {what}, not one starting with {prefix}")
    if not value.startswith(prefix):
        raise ValueError(f"must start with {prefix}")
    if not re.fullmatch(re.escape(prefix) + r"[A-Za-z0-9_-]+", value):
        raise ValueError("has spaces, quotes or other characters tokens never have: copy it again")
    return value


def check_signing_secret(value: str, official: bool) -> str:
    if value.startswith(("xox", "xapp-")):
        raise ValueError("that is a token, not the signing secret")
    if official and not re.fullmatch(r"[0-9a-fA-F]{32}", value):
        size = f"has {len(value)} character" + ("" if len(value) == 1 else "s")
        this = "is not hexadecimal" if len(value) == 32 else size
        raise ValueError(f"Slack's signing secrets are 32 hexadecimal characters; this one {this}")
    if not official and (len(value) < 16 or re.search(r"\s", value)):
        raise ValueError("at least 16 characters without spaces")
    return value


def check_api_key(value: str, official: bool) -> str:
    if re.search(r"\s|[\"']", value):
        raise ValueError("has spaces or quotes in it: copy it again")
    if value.startswith("sk-ant-admin"):
        raise ValueError("that is an Admin API key: the bot needs an API key (sk-ant-api…)")
    if official and not value.startswith("sk-ant-"):
        raise ValueError("Anthropic's API keys start with sk-ant-")
    return value
