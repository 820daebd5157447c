"""Logging set-up, done once by the entry point (never at import).

JSON, one object per line, by default (LOG_FORMAT=text for people). Every line passes through
redaction last: the configured secrets and anything shaped like a Slack or Anthropic token or
a bearer credential become `[redacted]`, whatever logged them (our code, an SDK, a traceback).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
REDACTED = "[redacted]"
_TOKEN_SHAPES = re.compile(
    r"xox[abprs]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|sk-ant-[A-Za-z0-9_-]+|(?<=Bearer )[^\s'\"]+"
)

# Bolt reads SLACK_BOT_TOKEN from the environment by itself and then warns that the client we
# pass wins. That is what we want; the warning would only alarm an admin reading the log.
_BOLT_NOISE = ("As you gave `client` as well, `token` will be unused.",)


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return _TOKEN_SHAPES.sub(REDACTED, text)


class RedactingJsonFormatter(JsonFormatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__(JSON_FIELDS, rename_fields={"levelname": "level", "name": "logger"})
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))


class RedactingTextFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__(TEXT_FORMAT)
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))


def _not_bolt_noise(record: logging.LogRecord) -> bool:
    return record.getMessage() not in _BOLT_NOISE


def formatter(fmt: str, secrets: Iterable[str]) -> logging.Formatter:
    redact = Redactor(secrets)
    return RedactingJsonFormatter(redact) if fmt == "json" else RedactingTextFormatter(redact)


def setup_logging(
    level: str, fmt: str = "json", secrets: Iterable[str] = (), stream: TextIO | None = None
) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(fmt, secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("slack_bolt.AsyncApp").addFilter(_not_bolt_noise)
    # The SDKs log request bodies at DEBUG; keep them quiet unless asked for explicitly.
    for noisy in ("slack_sdk", "slack_bolt", "anthropic", "httpx2", "httpcore", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.INFO))
