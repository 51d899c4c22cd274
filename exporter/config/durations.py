"""Durations as the file writes them (``90s``, ``1h30m``, a number of seconds) and back."""

from __future__ import annotations

import math
import re

from exporter.config.errors import describe, quote

_MS_PER_UNIT = (
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
)
_DURATION_RE = re.compile("".join(rf"(?:(\d+){unit})?" for unit, _ in _MS_PER_UNIT))
NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_MAX_DURATION_MS = 2**63 - 1  # Prometheus's limit
_DURATION_HINT = "use e.g. 90s, 5m, 1h30m, 8d or a number of seconds"


def parse_duration(value: object) -> float:
    """Seconds from a Prometheus-style duration (``90s``, ``1h30m``, ``500ms``) or a number.

    Units, largest first, each at most once: ``y`` (365d), ``w``, ``d``, ``h``, ``m``, ``s``,
    ``ms``. Plain numbers (or numeric strings, as ``${VAR}`` gives) are seconds. Raises
    ValueError, worded to follow ``key.path: ``, for anything else or a negative value.
    """
    if isinstance(value, str):
        text = value.strip()
        if NUMBER_RE.fullmatch(text):
            return _seconds(float(text), value)
        match = _DURATION_RE.fullmatch(text)
        if not text or match is None:
            raise ValueError(f"invalid duration {quote(value)} ({_DURATION_HINT})")
        ms = sum(
            int(n) * size for n, (_, size) in zip(match.groups(), _MS_PER_UNIT, strict=True) if n
        )
        if ms > _MAX_DURATION_MS:
            raise ValueError(f"duration {quote(value)} is too long")
        return ms / 1000
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _seconds(value, value)
    raise ValueError(f"must be a duration ({_DURATION_HINT}), got {describe(value)}")


def _seconds(number: float, original: object) -> float:
    if math.isnan(number):
        raise ValueError(f"must be a duration ({_DURATION_HINT}), got {describe(original)}")
    if number < 0:
        raise ValueError(f"must not be negative, got {describe(original)}")
    if number > _MAX_DURATION_MS / 1000:
        raise ValueError(f"duration {describe(original)} is too long")
    return float(number)


def format_duration(seconds: float) -> str:
    """The shortest Prometheus-style spelling, in days down to milliseconds: 5400 -> "1h30m"."""
    if not math.isfinite(seconds):
        return str(seconds)
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    parts = []
    for unit, size in _MS_PER_UNIT[2:]:  # no years or weeks: "8d" reads better than "1w1d"
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)
