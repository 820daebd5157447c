"""Inserting a row that may be there already, without an error.

A duplicate is the normal case for some rows (a redelivered event, the twin of a mention, a
second Stop click). A failed INSERT would be rolled back by us, but PostgreSQL writes each
one to its log as an ERROR with the statement: an operator would read one per mention.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession


async def insert_new(session: AsyncSession, model: type[Any], **values: Any) -> bool:
    """INSERT … ON CONFLICT DO NOTHING: True when the row is new."""
    postgres = (await session.connection()).dialect.name == "postgresql"
    insert = pg_insert if postgres else sqlite_insert
    result = await session.execute(insert(model).values(**values).on_conflict_do_nothing())
    return bool(result.rowcount)  # type: ignore[attr-defined]
