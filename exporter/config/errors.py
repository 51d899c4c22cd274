"""ConfigError, the Report that gathers ``path: problem`` lines, and how messages show values.

Messages quote a value only through :func:`describe` or :func:`quote`, and never a credential:
the readers of ``credentials.*`` word their complaints without the value, and the report also
blanks out every credential value it saw, wherever one was pasted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence

_PLAIN_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")


class ConfigError(Exception):
    """The configuration is unusable. ``problems`` holds one ``key.path: problem`` line each."""

    def __init__(self, problems: Iterable[str] | str) -> None:
        lines = [problems] if isinstance(problems, str) else list(problems)
        self.problems: list[str] = list(dict.fromkeys(lines))  # drop repeats, keep order
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


class Report:
    """What one check of a document found, as ``path: message`` lines in the order found."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.secrets: set[str] = set()  # credential values seen, blanked out of every message
        self._first: dict[tuple[str, str], str] = {}

    def error(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{path}: {message}")

    def first(self, kind: str, name: str, path: str) -> str:
        """Where ``name`` (an instance id, an account name...) was first declared: ``path`` if
        this is the first time, else the earlier path."""
        return self._first.setdefault((kind, name), path)

    def redacted(self) -> list[str]:
        """The problems with any credential value blanked out, wherever it was pasted."""
        problems = self.problems
        for secret in self.secrets:
            problems = [problem.replace(secret, "****") for problem in problems]
        return problems


def child(path: str, key: object) -> str:
    """``path.key``, or ``path["odd key"]`` when the key is not a plain word."""
    if isinstance(key, str) and _PLAIN_KEY_RE.fullmatch(key):
        return f"{path}.{key}" if path else key
    text = json.dumps(key, ensure_ascii=False) if isinstance(key, str) else describe(key)
    return f"{path}[{text}]"


def kind(value: object) -> str:
    """What sort of YAML value this is: ``a list``, ``null``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def describe(value: object) -> str:
    """A short rendering of a (non-secret) value for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return quote(value)
    return kind(value)


def quote(text: str, limit: int = 60) -> str:
    """The text in double quotes, cut to ``limit`` characters."""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return json.dumps(text, ensure_ascii=False)


def one_of(names: Sequence[str]) -> str:
    """``a, b or c``."""
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)
