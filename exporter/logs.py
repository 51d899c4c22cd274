"""Log output in logfmt (the Prometheus exporters' default) or JSON, one line per record."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TextIO

from aiohttp.http_exceptions import HttpProcessingError

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
# The HTTP server logs each kind of trouble at most once per this many seconds.
SERVER_LOG_INTERVAL = 60.0
_ACCEPT_FAILED = "socket.accept() out of system resource"


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(record.msecs):03d}Z"


def _level(record: logging.LogRecord) -> str:
    return "warn" if record.levelno == logging.WARNING else record.levelname.lower()


def _message(record: logging.LogRecord) -> str:
    message = record.getMessage()
    if record.exc_info:
        message += "\n" + logging.Formatter().formatException(record.exc_info)
    return message


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "ts": _timestamp(record),
            "level": _level(record),
            "logger": record.name,
            "msg": _message(record),
        }
        return " ".join(f"{key}={_logfmt_value(value)}" for key, value in fields.items())


def _logfmt_value(value: str) -> str:
    if value and not any(c in value for c in ' ="\n\\'):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "ts": _timestamp(record),
                "level": _level(record),
                "logger": record.name,
                "msg": _message(record),
            },
            ensure_ascii=False,
        )


@dataclass
class _Kind:
    quiet_until: float
    suppressed: int = 0


class ServerLogFilter(logging.Filter):
    """Keeps what the HTTP server logs about its clients short, bounded and free of secrets.

    aiohttp logs every malformed request at error level with a traceback whose exception text
    quotes the offending request line or header, Authorization included; a broken or hostile
    client can fill the disk with them. Such a client error becomes one info line naming the
    kind of error and the client's address, nothing of the request. Every kind of record
    (client error, exception in a handler, asyncio's ``accept()`` failing for want of file
    descriptors) is let through at most once per ``interval``, with how many were held back
    since. The kinds are exception classes and fixed messages, so the table stays small.
    """

    def __init__(
        self, interval: float = SERVER_LOG_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._interval = interval
        self._clock = clock
        self._kinds: dict[str, _Kind] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        kind = self._tame(record)
        if kind is None:
            return True
        if not logging.getLogger(record.name).isEnabledFor(record.levelno):
            return False  # lowered below the configured level
        now = self._clock()
        seen = self._kinds.get(kind)
        if seen is not None and now < seen.quiet_until:
            seen.suppressed += 1
            return False
        if seen is not None and seen.suppressed:
            record.msg = (
                f"{record.getMessage()} ({seen.suppressed} more like it since the last one logged)"
            )
            record.args = None
        self._kinds[kind] = _Kind(quiet_until=now + self._interval)
        return True

    def _tame(self, record: logging.LogRecord) -> str | None:
        """Rewrites ``record`` if it must not go out as it is; gives its kind, or None for
        records this filter leaves alone."""
        if record.name == "asyncio":
            if not record.getMessage().startswith(_ACCEPT_FAILED):
                return None
            error = record.exc_info[1] if record.exc_info else None
            record.msg, record.args = f"{_ACCEPT_FAILED}: %s", (error,)
            record.exc_info, record.exc_text = None, None
            return "accept"
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            client = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            # The exception's text and traceback would quote the request: neither goes out.
            record.msg = "rejected a malformed HTTP request from %s: %s (HTTP %d)"
            record.args = (client, type(error).__name__, error.code)
            record.exc_info, record.exc_text, record.stack_info = None, None, None
            record.levelno = min(record.levelno, logging.INFO)
            record.levelname = logging.getLevelName(record.levelno)
            return f"client {type(error).__name__}"
        if error is not None:
            return f"error {type(error).__name__}"
        return f"message {record.msg}"


def setup_logging(level: str, fmt: str, stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    # aiohttp's access log is one line per scrape: noise at info level.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    server_filter = ServerLogFilter()
    for name in ("aiohttp.server", "asyncio"):
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, ServerLogFilter)]:
            logger.removeFilter(old)
        logger.addFilter(server_filter)
