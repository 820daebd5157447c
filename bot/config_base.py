"""The settings every command needs, the database first: `migrate` and `usage` need no
Slack or Anthropic. `bot.config` builds the running bot's settings on these."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Annotated, Any

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
        raise ConfigError(describe(error)) from None


def load_admin_settings() -> AdminSettings:
    """DATABASE_URL, ANTHROPIC_ADMIN_API_KEY and ANTHROPIC_BASE_URL (for `usage reconcile`)."""
    try:
        return AdminSettings()
    except ValidationError as error:
        raise ConfigError(describe(error)) from None
