"""Work in flight (Slack answers, /chat requests), so that shutdown can wait for it.

On shutdown: wait up to the grace period for everything in flight, then cancel what is left;
each piece of work, when cancelled, closes itself (the text so far, a note, its ledger row)
within the time to finalise. Work that starts while waiting is waited for too.
"""

from __future__ import annotations

import asyncio
import time


class InFlight:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()

    def track(self) -> None:
        """Count the current task in (idempotent)."""
        task = asyncio.current_task()
        if task is not None and task not in self._tasks:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def __len__(self) -> int:
        return sum(1 for task in self._tasks if not task.done())

    async def drain(self, grace: float, finalise: float) -> None:
        deadline = time.monotonic() + grace
        while pending := {t for t in self._tasks if not t.done()}:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await asyncio.wait(pending, timeout=left)
        late = {t for t in self._tasks if not t.done()}
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=finalise)
