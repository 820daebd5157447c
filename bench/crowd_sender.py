"""Slack's side of the deliveries, in a process of its own (bench/crowd.py starts it): Slack
sends events from its own machines, so the acknowledgement is timed where the fakes' work in
the benchmark's process cannot delay reading it.

Reads one JSON line from stdin, a list of {"url", "body", "headers"}; sends them all at once
and writes one JSON line: a list of {"ack_ms", "status"} in the same order.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import aiohttp


async def send_all(deliveries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    connector = aiohttp.TCPConnector(limit=0)  # all at once: no client-side queue
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one(d: dict[str, Any]) -> dict[str, Any]:
            started = time.perf_counter()
            try:
                async with http.post(d["url"], data=d["body"], headers=d["headers"]) as resp:
                    await resp.read()
                    status = resp.status
            except aiohttp.ClientError:
                status = 0
            return {"ack_ms": (time.perf_counter() - started) * 1000, "status": status}

        return await asyncio.gather(*(one(d) for d in deliveries))


def main() -> None:
    print("ready", flush=True)
    deliveries = json.loads(sys.stdin.readline())
    print(json.dumps(asyncio.run(send_all(deliveries))), flush=True)


if __name__ == "__main__":
    main()
