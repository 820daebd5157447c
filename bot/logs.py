"""Logging set-up, done once by the entry point (never at import)."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Bolt reads SLACK_BOT_TOKEN from the environment by itself and then warns that the client we
# pass wins. That is what we want; the warning would only alarm an admin reading the log.
_BOLT_NOISE = ("As you gave `client` as well, `token` will be unused.",)


def _not_bolt_noise(record: logging.LogRecord) -> bool:
    return record.getMessage() not in _BOLT_NOISE


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level, format=FORMAT)
    logging.getLogger("slack_bolt.AsyncApp").addFilter(_not_bolt_noise)
    # The SDKs log request bodies at DEBUG; keep them quiet unless asked for explicitly.
    for noisy in ("slack_sdk", "slack_bolt", "anthropic", "httpx2", "httpcore", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.INFO))
