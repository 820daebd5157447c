"""Logging set-up, done once by the entry point (never at import)."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level, format=FORMAT)
    # The SDKs log request bodies at DEBUG; keep them quiet unless asked for explicitly.
    for noisy in ("slack_sdk", "slack_bolt", "anthropic", "httpx2", "httpcore", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.INFO))
