"""Apply Alembic migrations from code: at start-up and for `python -m bot migrate`."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, String
from sqlalchemy.types import TypeEngine

from bot.config import ensure_sqlite_folder, sqlite_file

# migrations/ and alembic.ini sit at the project's top level, beside the bot package.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    # Passed as an attribute, not a main option: configparser would read `%` in a password.
    config.attributes["database_url"] = database_url
    config.attributes["configured_logging"] = True
    return config


def upgrade(database_url: str) -> None:
    """Bring the database to the newest schema. Blocking: call it off the event loop.

    Processes starting together migrate one at a time: on PostgreSQL under an advisory lock
    (migrations/env.py), on SQLite under a lock file beside the database.
    """
    ensure_sqlite_folder(database_url)
    with _sqlite_lock(database_url):
        command.upgrade(alembic_config(database_url), "head")


@contextlib.contextmanager
def _sqlite_lock(database_url: str) -> Iterator[None]:
    path = sqlite_file(database_url)
    if path is None:
        yield
        return
    with open(f"{path}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def compare_type(
    context: MigrationContext,
    inspected: Column[Any],
    metadata: Column[Any],
    inspected_type: TypeEngine[Any],
    metadata_type: TypeEngine[Any],
) -> bool | None:
    # SQLite ignores VARCHAR lengths (migrations widen them on PostgreSQL only): a length
    # that differs there is no difference.
    if (
        context.dialect.name == "sqlite"
        and isinstance(inspected_type, String)
        and isinstance(metadata_type, String)
    ):
        return False
    return None  # the default comparison
