"""``${VAR}`` references in string values, replaced from the environment mapping given.

``$${`` stands for a literal ``${``. Keys are left alone. A string whose reference cannot be
resolved becomes :data:`UNRESOLVED` (its problem is already reported), so no later check
complains about it a second time.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Final

from exporter.config.errors import Report, child

_REFERENCE_RE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_VARIABLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Unresolved(enum.Enum):
    """Stands for a string whose ``${VAR}`` could not be resolved (already reported)."""

    VALUE = "unresolved"


UNRESOLVED: Final = Unresolved.VALUE


def expand(value: object, environ: Mapping[str, str], report: Report) -> object:
    """A copy of the tree with every string's ``${VAR}`` replaced; problems go to ``report``."""
    return _expand(value, "", environ, report, {})


def _expand(
    value: object, path: str, environ: Mapping[str, str], report: Report, memo: dict[int, object]
) -> object:
    if isinstance(value, str):
        return _substitute(value, path, environ, report)
    if isinstance(value, Mapping):
        if id(value) in memo:  # a YAML alias: resolved (and reported) once
            return memo[id(value)]
        mapping: dict[object, object] = {}
        memo[id(value)] = mapping
        for key, item in value.items():
            mapping[key] = _expand(item, child(path, key), environ, report, memo)
        return mapping
    if isinstance(value, (list, tuple)):
        if id(value) in memo:
            return memo[id(value)]
        items: list[object] = []
        memo[id(value)] = items
        for index, item in enumerate(value):
            items.append(_expand(item, f"{path}[{index}]", environ, report, memo))
        return items
    return value


def _substitute(
    text: str, path: str, environ: Mapping[str, str], report: Report
) -> str | Unresolved:
    if "$" not in text:
        return text
    parts: list[str] = []
    resolved = True
    end = 0
    for match in _REFERENCE_RE.finditer(text):
        parts.append(text[end : match.start()])
        end = match.end()
        name = match.group(1)
        if match.group(0) == "$${":
            parts.append("${")
        elif name is None or not _VARIABLE_RE.fullmatch(name):
            # The text is not quoted: it may be part of a secret.
            report.error(path, "invalid ${...} reference (write ${NAME}, or $${ for a literal ${)")
            resolved = False
        elif name not in environ:
            report.error(path, f"environment variable {name} is not set")
            resolved = False
        else:
            parts.append(environ[name])
    parts.append(text[end:])
    return "".join(parts) if resolved else UNRESOLVED
