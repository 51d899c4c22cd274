"""The API's UTC time formats, as epoch seconds in and strings out."""

from __future__ import annotations

import calendar
import re
import time

DAY = 86400.0

# The API rejects anything that is not exactly minute precision for StartTime/EndTime.
_MINUTE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})Z")
_SECOND_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z")


def format_second(epoch: float) -> str:
    """``yyyy-MM-ddTHH:mm:ssZ``: how backup times appear in responses."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def format_minute(epoch: float) -> str:
    """``yyyy-MM-ddTHH:mmZ``: request parameters and policy times."""
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(epoch))


def _to_epoch(fields: tuple[str, ...]) -> float | None:
    year, month, day, hour, minute = (int(value) for value in fields[:5])
    second = int(fields[5]) if len(fields) > 5 else 0
    if not (1 <= month <= 12 and hour < 24 and minute < 60 and second < 60):
        return None
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))


def parse_minute(text: str) -> float | None:
    """Epoch seconds of a strict ``yyyy-MM-ddTHH:mmZ``; None for any other shape or a bad date."""
    match = _MINUTE_RE.fullmatch(text)
    return _to_epoch(match.groups()) if match else None


def parse_second(text: str) -> float | None:
    """Epoch seconds of a strict ``yyyy-MM-ddTHH:mm:ssZ`` (the ``x-acs-date`` header)."""
    match = _SECOND_RE.fullmatch(text)
    return _to_epoch(match.groups()) if match else None
