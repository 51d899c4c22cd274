"""Readers of single values: each takes ``(report, path, value)`` and returns the checked value,
or reports ``path: problem`` and returns None.

Numbers and booleans are also taken as strings, since a ``${VAR}`` always gives a string.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from exporter.config.durations import NUMBER_RE, format_duration, parse_duration
from exporter.config.envvars import UNRESOLVED
from exporter.config.errors import Report, child, describe, kind, one_of, quote
from exporter.config.model import FrozenMap
from exporter.config.vocabulary import (
    INSTANCE_STATUSES,
    MAX_DISCOVERY_TAGS,
    PAGE_SIZES,
    RESERVED_LABEL_NAMES,
)

T = TypeVar("T")
Reader = Callable[[Report, str, object], T | None]

_INTEGER_RE = re.compile(r"[+-]?\d+")
_REGION_RE = re.compile(r"[a-z]+(?:-[a-z0-9]+)+")
_ACCOUNT_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
_LABEL_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STATUS_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def sequence(report: Report, path: str, value: object) -> list[object] | None:
    if value is UNRESOLVED:
        return None
    if not isinstance(value, (list, tuple)):
        report.error(path, f"must be a list, got {kind(value)}")
        return None
    return list(value)


# ---- text


def string(report: Report, path: str, value: object) -> str | None:
    if not isinstance(value, str):
        report.error(path, f"must be a string, got {kind(value)}")
        return None
    return value


def token(report: Report, path: str, value: object) -> str | None:
    """A non-empty string without whitespace (ids, resource groups)."""
    text = string(report, path, value)
    if text is None:
        return None
    if not text:
        report.error(path, "must not be empty")
        return None
    if any(c.isspace() for c in text):
        report.error(path, f"must not contain whitespace, got {quote(text)}")
        return None
    return text


def region(report: Report, path: str, value: object) -> str | None:
    text = string(report, path, value)
    if text is None:
        return None
    if not _REGION_RE.fullmatch(text):
        report.error(path, f"must be a region id like cn-hangzhou, got {quote(text)}")
        return None
    return text


def account_name(report: Report, path: str, value: object) -> str | None:
    text = string(report, path, value)
    if text is None:
        return None
    if not _ACCOUNT_NAME_RE.fullmatch(text):
        report.error(path, f"must be letters, digits, '_', '.' or '-' only, got {quote(text)}")
        return None
    return text


def secret(report: Report, path: str, value: object) -> str | None:
    """A credential: surrounding whitespace dropped, never quoted back. "" means unset."""
    if isinstance(value, str) and len(value.strip()) >= 4:
        report.secrets.add(value.strip())
    if not isinstance(value, str):
        report.error(path, f"must be a string, got {kind(value)}")
        return None
    text = value.strip()
    if any(c.isspace() for c in text):
        report.error(path, "must not contain whitespace")
        return None
    return text


# ---- durations


def duration(report: Report, path: str, value: object) -> float | None:
    try:
        return parse_duration(value)
    except ValueError as exc:
        report.error(path, str(exc))
        return None


def positive_duration(report: Report, path: str, value: object) -> float | None:
    seconds = duration(report, path, value)
    if seconds is not None and seconds <= 0:
        report.error(path, f"must be a duration > 0, got {format_duration(seconds)}")
        return None
    return seconds


def duration_from(minimum: float) -> Reader[float]:
    """A duration of at least ``minimum`` seconds."""

    def read(report: Report, path: str, value: object) -> float | None:
        seconds = duration(report, path, value)
        if seconds is not None and seconds < minimum:
            report.error(
                path, f"must be at least {format_duration(minimum)}, got {format_duration(seconds)}"
            )
            return None
        return seconds

    return read


def poll_interval(report: Report, path: str, value: object) -> float | None:
    """At least 1s; under a minute is allowed with a warning (tests and demos use it)."""
    seconds = duration_from(1)(report, path, value)
    if seconds is not None and seconds < 60:
        report.warn(
            path,
            f"{format_duration(seconds)} is under one minute; fine for tests and demos, "
            "but in production it spends API quota for no gain",
        )
    return seconds


def poll_window(report: Report, path: str, value: object) -> float | None:
    """Whole minutes, at least one: the API's times have minute precision."""
    seconds = duration_from(60)(report, path, value)
    if seconds is not None and seconds % 60:
        report.error(
            path,
            "must be a whole number of minutes (API times have minute precision), "
            f"got {format_duration(seconds)}",
        )
        return None
    return seconds


def off_or_duration(report: Report, path: str, value: object) -> float | None:
    """0 (off) or at least 1s."""
    seconds = duration(report, path, value)
    if seconds is not None and 0 < seconds < 1:
        report.error(path, f"must be 0 (off) or at least 1s, got {format_duration(seconds)}")
        return None
    return seconds


# ---- numbers and booleans


def as_number(value: object) -> int | float | None:
    """A number from a number or a numeric string (``${VAR}`` gives strings); never a bool."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 100:  # no setting needs more digits; int() of thousands would raise
            return None
        if _INTEGER_RE.fullmatch(text):
            return int(text)
        if NUMBER_RE.fullmatch(text):
            return float(text)
    return None


def positive_number(report: Report, path: str, value: object) -> float | None:
    number = as_number(value)
    if number is None or not math.isfinite(number) or number <= 0:
        report.error(path, f"must be a number > 0, got {describe(value)}")
        return None
    return float(number)


def integer_from(minimum: int) -> Reader[int]:
    """A whole number of at least ``minimum``."""

    def read(report: Report, path: str, value: object) -> int | None:
        number = as_number(value)
        if number is None or not math.isfinite(number) or number != int(number) or number < minimum:
            report.error(path, f"must be an integer >= {minimum}, got {describe(value)}")
            return None
        return int(number)

    return read


def page_size(report: Report, path: str, value: object) -> int | None:
    number = as_number(value)
    if number not in PAGE_SIZES:
        report.error(path, f"must be {one_of([str(n) for n in PAGE_SIZES])}, got {describe(value)}")
        return None
    return int(number)


def boolean(report: Report, path: str, value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    report.error(path, f"must be true or false, got {describe(value)}")
    return None


# ---- mappings and lists


def string_map(key_check: Callable[[Report, str, str], bool]) -> Reader[FrozenMap]:
    """A mapping of strings (numbers are turned into strings), keys checked by ``key_check``."""

    def read(report: Report, path: str, value: object) -> FrozenMap | None:
        if not isinstance(value, Mapping):
            report.error(path, f"must be a mapping, got {kind(value)}")
            return None
        fields: dict[str, str] = {}
        for key, item in value.items():
            item_path = child(path, key)
            if not isinstance(key, str):
                report.error(item_path, f"keys must be strings, got {kind(key)}")
                continue
            if not key_check(report, item_path, key) or item is UNRESOLVED:
                continue
            if isinstance(item, str):
                fields[key] = item
            elif isinstance(item, (int, float)) and not isinstance(item, bool):
                fields[key] = str(item)
            else:
                report.error(item_path, f"must be a string, got {kind(item)}")
        return FrozenMap(fields)

    return read


def label_name(report: Report, path: str, name: str) -> bool:
    if not _LABEL_NAME_RE.fullmatch(name):
        report.error(
            path, "invalid label name (letters, digits and underscores, not starting with a digit)"
        )
        return False
    if name.startswith("__"):
        report.error(path, "invalid label name (names starting with __ are reserved)")
        return False
    if name in RESERVED_LABEL_NAMES:
        report.error(path, "reserved (the exporter sets this label itself)")
        return False
    return True


def tag_key(report: Report, path: str, key: str) -> bool:
    if not key.strip():
        report.error(path, "tag keys must not be empty")
        return False
    return True


_tag_map = string_map(tag_key)


def tags(report: Report, path: str, value: object) -> FrozenMap | None:
    """Discovery tags: at most as many as DescribeDBInstances takes."""
    found = _tag_map(report, path, value)
    if found is not None and len(found) > MAX_DISCOVERY_TAGS:
        report.error(
            path,
            f"at most {MAX_DISCOVERY_TAGS} tags are allowed (the API's limit), got {len(found)}",
        )
    return found


def choices(known: Sequence[str]) -> Reader[tuple[str, ...]]:
    """A list of names from ``known``, matched case-insensitively, in the API's spelling."""
    spelling = {name.lower(): name for name in known}

    def read(report: Report, path: str, value: object) -> tuple[str, ...] | None:
        items = sequence(report, path, value)
        if items is None:
            return None
        result: list[str] = []
        for index, item in enumerate(items):
            if item is UNRESOLVED:
                continue
            name = spelling.get(item.strip().lower()) if isinstance(item, str) else None
            if name is None:
                report.error(
                    f"{path}[{index}]", f"must be one of {one_of(known)}, got {describe(item)}"
                )
            elif name not in result:
                result.append(name)
        return tuple(result)

    return read


def statuses(report: Report, path: str, value: object) -> tuple[str, ...] | None:
    """Instance statuses: known ones in the API's spelling, others as written with a warning."""
    items = sequence(report, path, value)
    if items is None:
        return None
    spelling = {name.lower(): name for name in INSTANCE_STATUSES}
    result: list[str] = []
    for index, item in enumerate(items):
        item_path = f"{path}[{index}]"
        if item is UNRESOLVED:
            continue
        if not isinstance(item, str) or not _STATUS_RE.fullmatch(item.strip()):
            report.error(
                item_path, f"must be an instance status such as Running, got {describe(item)}"
            )
            continue
        name = spelling.get(item.strip().lower())
        if name is None:
            name = item.strip()
            report.warn(
                item_path,
                f"{quote(name)} is not a known instance status; "
                "it is passed to DescribeDBInstances as written",
            )
        if name not in result:
            result.append(name)
    return tuple(result)
