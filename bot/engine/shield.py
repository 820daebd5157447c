"""Database work that a cancellation must not cut in half."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def finish_first(work: Awaitable[T]) -> T:
    """Run `work` to its end even if the caller is cancelled meanwhile (then re-raise): a
    database call cut in half leaves a connection behind that nobody closes."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise
