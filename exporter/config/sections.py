"""How a declared section of the file is read, the same way for every section.

A :class:`Section` names its keys in the order they are read, each with its reader and whether
it is required, and the cross-field checks to run after a given key (so each problem is
reported where a reader of the file would expect it: ``polling.lookback`` right after
lookback). Unknown keys are refused, with a "did you mean" hint when one is close. A null value
counts as absent. The result is a :class:`Values`: what was written, and what of it is valid.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from exporter.config.envvars import UNRESOLVED
from exporter.config.errors import Report, child, kind
from exporter.config.values import Reader, sequence

T = TypeVar("T")
M = TypeVar("M")


@dataclass(frozen=True)
class Key(Generic[T]):
    """A key of a section; ``name`` is also the model's field name it fills."""

    name: str
    read: Reader[T]
    required: bool = False


@dataclass
class Values:
    """One section as read: ``given`` holds the keys written with a non-null value (after
    ``${VAR}``), ``valid`` each of them that was read without a problem, checked."""

    path: str
    given: Mapping[str, object]
    valid: dict[str, object] = field(default_factory=dict)

    def get(self, name: str, of_type: type[T]) -> T | None:
        value = self.valid.get(name)
        return value if isinstance(value, of_type) else None

    def usable(self, name: str) -> bool:
        """Valid, or not written at all (so its default holds)."""
        return name not in self.given or name in self.valid

    def section(self, name: str) -> Values | None:
        return self.get(name, Values)

    def items(self, name: str) -> list[Values | None] | None:
        """A list of sections, None for each entry that is not a mapping."""
        return cast("list[Values | None] | None", self.get(name, list))

    def drop(self, name: str) -> None:
        self.valid.pop(name, None)

    def build(self, model: Callable[..., M], **extra: object) -> M:
        """``model`` from the valid keys (the rest keep their defaults) and ``extra``."""
        return model(**self.valid, **extra)


Check = Callable[[Report, Values], None]


@dataclass(frozen=True)
class After:
    """Run ``check`` once ``key`` has been read; None: after the last key."""

    key: str | None
    check: Check


@dataclass(frozen=True)
class Section:
    keys: tuple[Key[Any], ...]
    checks: tuple[After, ...] = ()
    read_by_caller: tuple[str, ...] = ()  # allowed here, read by whoever reads this section
    allow_null: bool = True  # null counts as an empty mapping
    hints: Mapping[str, str] = field(default_factory=dict)  # unknown key -> where it belongs

    @property
    def allowed(self) -> tuple[str, ...]:
        return tuple(key.name for key in self.keys) + self.read_by_caller


def read_section(report: Report, path: str, value: object, section: Section) -> Values | None:
    """The section's values; None (reported, unless ${VAR} was) when it is not a mapping."""
    given = _known_keys(report, path, value, section)
    return None if given is None else read_keys(report, path, given, section)


def read_keys(report: Report, path: str, given: Mapping[str, object], section: Section) -> Values:
    """Each key of ``section`` from ``given`` (already shape-checked), and the checks."""
    values = Values(path, given)
    for key in section.keys:
        _read_key(report, values, key)
        _run_checks(report, values, section, key.name)
    _run_checks(report, values, section, None)
    return values


def section_of(section: Section) -> Reader[Values]:
    """A reader for a key whose value is a section."""
    return lambda report, path, value: read_section(report, path, value, section)


def list_of(section: Section) -> Reader[list[Values | None]]:
    """A reader for a key whose value is a list of sections (None for an entry in error)."""

    def read(report: Report, path: str, value: object) -> list[Values | None] | None:
        items = sequence(report, path, value)
        if items is None:
            return None
        return [
            read_section(report, f"{path}[{index}]", item, section)
            for index, item in enumerate(items)
        ]

    return read


def _read_key(report: Report, values: Values, key: Key[Any]) -> None:
    if key.name not in values.given:
        if key.required:
            report.error(child(values.path, key.name), "required")
        return
    value = values.given[key.name]
    if value is UNRESOLVED:
        return
    result = key.read(report, child(values.path, key.name), value)
    if result is not None:
        values.valid[key.name] = result


def _run_checks(report: Report, values: Values, section: Section, after: str | None) -> None:
    for check in section.checks:
        if check.key == after:
            check.check(report, values)


def _known_keys(
    report: Report, path: str, value: object, section: Section
) -> dict[str, object] | None:
    if value is None and section.allow_null:
        return {}
    if value is UNRESOLVED:
        return None
    if not isinstance(value, Mapping):
        report.error(path, f"must be a mapping, got {kind(value)}")
        return None
    fields: dict[str, object] = {}
    for key, item in value.items():
        if isinstance(key, str) and key in section.allowed:
            if item is not None:
                fields[key] = item
            continue
        hint = _hint(key, section) if isinstance(key, str) else None
        message = f"unknown key (did you mean {hint}?)" if hint else "unknown key"
        report.error(child(path, key), message)
    return fields


def _hint(key: str, section: Section) -> str | None:
    """Where an unknown key probably belongs: another section, or a close spelling."""
    if key in section.hints:
        return section.hints[key]
    close = difflib.get_close_matches(key, section.allowed, n=1, cutoff=0.75)
    return close[0] if close else None
