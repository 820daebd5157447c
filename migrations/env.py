"""Async Alembic environment; the URL comes from the bot's settings, never from alembic.ini."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Any

from alembic import context
from alembic.ddl.base import AddColumn, visit_add_column
from sqlalchemy import Boolean, DefaultClause, TextClause, false, text, true
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import DDLCompiler

from bot.config import DatabaseSettings
from bot.store.channel_settings import ChannelSettingRow  # noqa: F401 - in the metadata
from bot.store.engine import make_engine
from bot.store.files_table import UploadedFile  # noqa: F401 - its table is in the metadata
from bot.store.migrate import compare_type
from bot.store.models import Base

config = context.config
# Called from `bot.store.migrate` the bot's logging is already set up; from the alembic CLI it is not.
if config.config_file_name is not None and not config.attributes.get("configured_logging"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


@compiles(AddColumn, "postgresql")
def _add_column_on_postgresql(element: AddColumn, compiler: DDLCompiler, **kw: Any) -> str:
    """Revision 0004 gives a Boolean column `DEFAULT 0`, which SQLite takes and PostgreSQL
    refuses. Shipped revisions are never edited, so the SQLite spelling of a boolean default
    is translated here, for every revision: "0"/"1" become false/true on PostgreSQL."""
    column = element.column
    default = column.server_default
    if (
        isinstance(column.type, Boolean)
        and isinstance(default, DefaultClause)
        and isinstance(default.arg, TextClause)
        and default.arg.text.strip() in ("0", "1")
    ):
        column.server_default = DefaultClause(
            true() if default.arg.text.strip() == "1" else false()
        )
    return visit_add_column(element, compiler, **kw)


def database_url() -> str:
    url = config.attributes.get("database_url")
    return str(url) if url else DatabaseSettings().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    # Batch mode lets SQLite, which cannot ALTER most things, take the same migrations.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=compare_type,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Replicas starting together each migrate: one at a time, the others then find
            # the schema at head (a lock held until this transaction ends).
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('bot-migrations'))"))
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = make_engine(database_url())
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_async_migrations())
