"""Logging set-up, done once by the entry point (never at import).

One line per event. LOG_FORMAT=auto (the default) writes text when stderr is a terminal, for
people, and JSON otherwise, one object per line, for collectors; both carry the same fields (a
text line ends with the record's extra fields as key=value; an aiohttp access line's fields are
its message). A traceback is written once per distinct failure (logger, message, exception
types, where it was raised); each repeat is one line with `exception` and `repeat`, the count
so far. Every line passes through redaction last: the configured secrets and anything shaped
like a Slack or Anthropic token or a bearer credential become `[redacted]`, whatever logged
them (our code, an SDK, a traceback).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
REDACTED = "[redacted]"
_TOKEN_SHAPES = re.compile(
    r"xox[abprs]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|sk-ant-[A-Za-z0-9_-]+|(?<=Bearer )[^\s'\"]+"
)
# What every record has; the rest are a call's extra fields.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}
ACCESS_LOGGER = "aiohttp.access"
# The most distinct failures remembered (the oldest is forgotten first).
FAILURES_KEPT = 1024

# Lines that say nothing to an admin: Bolt reads SLACK_BOT_TOKEN from the environment by
# itself and then warns that the client we pass wins (which is what we want); Alembic says
# which database dialect it uses at every start ("Running upgrade …" lines stay).
_NOISE = {
    "slack_bolt.AsyncApp": ("As you gave `client` as well, `token` will be unused.",),
    "alembic.runtime.migration": ("Context impl ", "Will assume "),
}


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return _TOKEN_SHAPES.sub(REDACTED, text)


class OncePerFailure(logging.Filter):
    """A traceback once per distinct failure; each repeat becomes one line with its count."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: OrderedDict[tuple[object, ...], int] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is None:
            return True
        key = _failure_key(record, error)
        count = self._seen.pop(key, 0) + 1
        self._seen[key] = count
        if len(self._seen) > FAILURES_KEPT:
            self._seen.popitem(last=False)
        record.exception = _first_line(error)
        if count > 1:
            record.repeat = count
            record.exc_info = record.exc_text = None
        return True


def _chain(error: BaseException) -> list[BaseException]:
    """The exception, then what caused it, and so on (the order Python prints, reversed)."""
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen in found):
        found.append(current)
        if current.__cause__ is not None:
            current = current.__cause__
        else:
            current = None if current.__suppress_context__ else current.__context__
    return found


def _failure_key(record: logging.LogRecord, error: BaseException) -> tuple[object, ...]:
    chain = _chain(error)
    root = chain[-1].__traceback__
    while root is not None and root.tb_next is not None:
        root = root.tb_next
    where = (root.tb_frame.f_code.co_filename, root.tb_lineno) if root is not None else None
    names = tuple(type(e).__qualname__ for e in chain)
    return (record.name, str(record.msg), names, where)


def _first_line(error: BaseException) -> str:
    text = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a call added to its record (`extra=`), and the once-per-failure ones."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class RedactingJsonFormatter(JsonFormatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__(JSON_FIELDS, rename_fields={"levelname": "level", "name": "logger"})
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))


class RedactingTextFormatter(logging.Formatter):
    """TEXT_FORMAT, then the extra fields as key=value, then any traceback."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__(TEXT_FORMAT)
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        line = self.formatMessage(record)
        if record.name != ACCESS_LOGGER:
            line += "".join(f" {k}={_text(v)}" for k, v in extra_fields(record).items())
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return self._redact(line)


def _text(value: Any) -> str:
    if value is None:
        return "null"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if not text or re.search(r'[\s"=]', text) else text


def _not_noise(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith(_NOISE.get(record.name, ()))


def resolved_format(fmt: str, stream: TextIO) -> str:
    """`auto`: text for a person at a terminal, JSON for everything else."""
    if fmt != "auto":
        return fmt
    isatty = getattr(stream, "isatty", None)
    return "text" if callable(isatty) and isatty() else "json"


def formatter(fmt: str, secrets: Iterable[str]) -> logging.Formatter:
    redact = Redactor(secrets)
    return RedactingJsonFormatter(redact) if fmt == "json" else RedactingTextFormatter(redact)


def setup_logging(
    level: str, fmt: str = "auto", secrets: Iterable[str] = (), stream: TextIO | None = None
) -> str:
    """Configure the root logger; returns the format used (json or text)."""
    out = stream or sys.stderr
    fmt = resolved_format(fmt, out)
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter(fmt, secrets))
    handler.addFilter(OncePerFailure())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _NOISE:
        logging.getLogger(name).addFilter(_not_noise)
    # The SDKs log a line per HTTP request and per retry at INFO, and request bodies at DEBUG:
    # their warnings only, unless LOG_LEVEL=DEBUG asks for their INFO lines too (never the
    # bodies). aiohttp's access log follows LOG_LEVEL: at DEBUG it has the probes' hits too.
    quiet = logging.INFO if level == "DEBUG" else logging.WARNING
    for noisy in ("slack_sdk", "slack_bolt", "anthropic", "httpx2", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), quiet))
    return fmt
