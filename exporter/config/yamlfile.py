"""One YAML document from a file, read with bounds and strictness; used for both config files.

The file is read as :func:`exporter.filesafe.read_bounded` reads it (a regular file of at most
:data:`~exporter.filesafe.MAX_FILE_BYTES`, given up after a timeout). The YAML is read with the
safe loader, refusing what would silently lose or change a value: a key written twice, a
control character. Every problem is one ``file: line L, column C: invalid YAML: ...`` line in
a ConfigError, worded without quoting the offending text (it may hold a secret).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import yaml

from exporter.config.errors import ConfigError, describe
from exporter.filesafe import (
    MAX_FILE_BYTES,
    READ_TIMEOUT,
    UnreadableFile,
    read_bounded,
    read_regular_file,
)

_YAML_TAG_PREFIX = "tag:yaml.org,2002:"
_TIMESTAMP_TAG = _YAML_TAG_PREFIX + "timestamp"
_NUMBER_TAGS = (_YAML_TAG_PREFIX + "int", _YAML_TAG_PREFIX + "float")
# No setting needs more (2**63 has 19 digits); a huge one would cost quadratic time to convert
# and could not even be printed back in a message (Python's 4300-digit limit).
_MAX_INTEGER_CHARS = 100


class _UniqueKeyLoader(yaml.SafeLoader):
    """The safe loader, refusing a key written twice in one mapping (YAML forbids it).

    Plain scalars that YAML 1.1 reads as dates or as base-60 numbers stay strings: ``id:
    2001-02-30`` is an id (not an invalid date), and ``interval: 1:30`` is a duration refused
    as such (not 90 seconds). A value that cannot be built (an integer too long, a bad
    ``!!float``) is a located error, never a ValueError from deep inside the library.
    """

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        tag: str = super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]
        if tag == _TIMESTAMP_TAG or (tag in _NUMBER_TAGS and ":" in value):
            return str(self.DEFAULT_SCALAR_TAG)
        return tag

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        tag = str(node.tag).replace(_YAML_TAG_PREFIX, "!!")
        if tag == "!!int" and isinstance(node.value, str) and len(node.value) > _MAX_INTEGER_CHARS:
            raise yaml.constructor.ConstructorError(
                problem=f"integer longer than {_MAX_INTEGER_CHARS} characters "
                "(quote it if it is text)",
                problem_mark=node.start_mark,
            )
        try:
            return super().construct_object(node, deep=deep)
        # IndexError: PyYAML's own on an empty `!!int ""`. Not quoted: it may be a secret.
        except (ValueError, OverflowError, IndexError):
            raise yaml.constructor.ConstructorError(
                problem=f"not a valid {tag} value", problem_mark=node.start_mark
            ) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        first: dict[object, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # the base class reports unhashable keys
            if key in first:
                raise yaml.constructor.ConstructorError(
                    problem=f"duplicate key {describe(key)} "
                    f"(first on line {first[key].start_mark.line + 1})",
                    problem_mark=key_node.start_mark,
                )
            first[key] = key_node
        return super().construct_mapping(node, deep=deep)


def load_yaml_file(
    name: str,
    *,
    timeout: float = READ_TIMEOUT,
    read: Callable[[str, int], bytes] = read_regular_file,
) -> object:
    """The one YAML document in the file, read as :func:`load_config` reads it; every problem
    raises a ConfigError of one ``name: problem`` line. Also used for ``--web.config.file``."""
    try:
        raw = read_bounded(name, MAX_FILE_BYTES, timeout, read)
    except UnreadableFile as exc:
        raise ConfigError(f"{name}: {exc.reason}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{name}: line {line}: invalid YAML: not UTF-8 text") from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(f"{name}: {_located_problem(exc)}") from None
    except yaml.reader.ReaderError as exc:  # a control character, given text input
        raise ConfigError(f"{name}: {_control_character(text, exc)}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: invalid YAML ({type(exc).__name__})") from None
    except RecursionError:
        raise ConfigError(f"{name}: invalid YAML: nested too deeply") from None
    except (ValueError, OverflowError, IndexError) as exc:  # located above; just in case
        raise ConfigError(f"{name}: invalid YAML ({type(exc).__name__})") from None


def _located_problem(exc: yaml.MarkedYAMLError) -> str:
    # Only the parser's own words and positions: str(exc) would quote the offending line,
    # which may hold a secret.
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = exc.problem or exc.context or "cannot parse"
    if exc.problem and exc.context:
        context = exc.context
        if exc.context_mark is not None and exc.context_mark is not mark:
            context += f" (line {exc.context_mark.line + 1})"
        problem = f"{context}: {exc.problem}"
    return f"{where}invalid YAML: {problem}"


def _control_character(text: str, exc: yaml.reader.ReaderError) -> str:
    position = int(exc.position)
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    character = f"#x{exc.character:04x}" if isinstance(exc.character, int) else "character"
    return (
        f"line {line}, column {column}: invalid YAML: control character {character} is not allowed"
    )
