"""The configuration file: YAML with ``${VAR}`` references in, one frozen :class:`Config` out.

Loading goes in three steps. The file is read and parsed as YAML (duplicate keys are refused
instead of silently keeping the last one). Every ``${VAR}`` inside a string value is replaced from
the environment mapping the caller passes in. Then the tree is walked once: its shape (types,
unknown keys, required keys) and its meaning (ranges, cross-field rules, duplicates) are checked
while the dataclasses are built. Every problem becomes one ``key.path: problem`` line and all of
them are raised together as a :class:`ConfigError`.

Nothing here logs, and the only I/O is reading the file in :func:`load_config`. Secret values
(``credentials.*``) are never echoed in a message, and never appear in a ``repr``.
"""

from __future__ import annotations

import difflib
import enum
import json
import math
import os
import re
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

import yaml

from exporter.aliyun.endpoints import REGION_PLACEHOLDER
from exporter.filesafe import (
    MAX_FILE_BYTES,
    READ_TIMEOUT,
    UnreadableFile,
    read_bounded,
    read_regular_file,
)

__all__ = [
    "ENGINES",
    "INSTANCE_STATUSES",
    "INSTANCE_TYPES",
    "MAX_DISCOVERY_TAGS",
    "PAGE_SIZES",
    "RESERVED_LABEL_NAMES",
    "AccountConfig",
    "ApiConfig",
    "Config",
    "ConfigError",
    "DiscoveryConfig",
    "FrozenMap",
    "InstanceConfig",
    "PollingConfig",
    "StaticCredentials",
    "format_duration",
    "load_config",
    "load_yaml_file",
    "parse_config",
    "parse_duration",
]

# DescribeDBInstances filter values, spelt as the API spells them.
ENGINES = ("MySQL", "PostgreSQL", "SQLServer", "MariaDB")
INSTANCE_TYPES = ("Primary", "Readonly", "Guard", "Temp")
# Known DBInstanceStatus values. Others are passed on as written, with a warning.
INSTANCE_STATUSES = (
    "Creating",
    "Running",
    "Deleting",
    "Rebooting",
    "DBInstanceClassChanging",
    "TRANSING",
    "EngineVersionUpgrading",
    "TransingToOthers",
    "GuardDBInstanceCreating",
    "Restoring",
    "Importing",
    "ImportingFromOthers",
    "DBInstanceNetTypeChanging",
    "GuardSwitching",
    "INS_CLONING",
    "Released",
)
PAGE_SIZES = (30, 50, 100)
MIN_RESPONSE_BYTES = 1024 * 1024  # api.max_response_bytes below this would refuse real pages
MAX_DISCOVERY_TAGS = 5  # DescribeDBInstances accepts at most five tag pairs

# Label names the exporter sets itself (SPEC.md metrics table, the info metric's likely extras,
# and what Prometheus adds or uses), so a user's `labels:` may not take them.
RESERVED_LABEL_NAMES = frozenset(
    {
        "instance_id",
        "account",
        "region_id",
        "zone_id",
        "engine",
        "engine_version",
        "description",
        "instance_type",
        "instance_class",
        "instance_status",
        "resource_group_id",
        "source",
        "backup_type",
        "backup_method",
        "backup_mode",
        "backup_initiator",
        "storage_class",
        "encrypted",
        "action",
        "code",
        "version",
        "job",
        "instance",
        "le",
        "quantile",
    }
)


class ConfigError(Exception):
    """The configuration is unusable. ``problems`` holds one ``key.path: problem`` line each."""

    def __init__(self, problems: Iterable[str] | str) -> None:
        lines = [problems] if isinstance(problems, str) else list(problems)
        self.problems: list[str] = list(dict.fromkeys(lines))  # drop repeats, keep order
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


class FrozenMap(Mapping[str, str]):
    """A read-only, hashable ``str -> str`` mapping, for labels and tags in frozen dataclasses."""

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, str] = dict(items)

    def __getitem__(self, key: str) -> str:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._items!r})"


@dataclass(frozen=True)
class ApiConfig:
    # "https://host[:port]", normalised; the host may hold {region}, filled in with each
    # instance's region at call time. None = the SDK's endpoint for the region.
    endpoint: str | None = None
    timeout: float = 10.0  # seconds, per HTTP request
    rate_limit: float = 10.0  # requests per second, whole process
    concurrency: int = 8  # requests in flight
    retries: int = 4  # per request
    max_response_bytes: int = 8 * 1024 * 1024  # per answer, compressed and inflated


@dataclass(frozen=True)
class StaticCredentials:
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class PollingConfig:
    interval: float = 300.0
    lookback: float = 8 * 86400.0
    window: float = 86400.0
    overlap: float | None = None  # None: window - interval, at least 0
    page_size: int = 100
    policy_refresh: float = 6 * 3600.0  # DescribeBackupPolicy per instance; 0 = never

    @property
    def effective_overlap(self) -> float:
        """How far before the watermark a later poll starts re-reading; never negative."""
        if self.overlap is not None:
            return max(0.0, self.overlap)
        return max(0.0, self.window - self.interval)


@dataclass(frozen=True)
class InstanceConfig:
    id: str
    region: str
    account: str
    labels: Mapping[str, str] = FrozenMap()


@dataclass(frozen=True)
class DiscoveryConfig:
    region: str
    account: str
    engines: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    instance_types: tuple[str, ...] = ()
    resource_group: str | None = None
    tags: Mapping[str, str] = FrozenMap()
    include_read_only: bool = False
    refresh: float = 600.0
    grace: float = 3600.0


@dataclass(frozen=True)
class AccountConfig:
    name: str
    credentials: StaticCredentials | None  # None: the standard Alibaba Cloud credential chain
    instances: tuple[InstanceConfig, ...] = ()
    discovery: tuple[DiscoveryConfig, ...] = ()
    endpoint: str | None = None  # overrides api.endpoint for this account's calls (same form)


@dataclass(frozen=True)
class Config:
    api: ApiConfig
    polling: PollingConfig
    accounts: tuple[AccountConfig, ...]
    warnings: tuple[str, ...] = ()

    @property
    def instances(self) -> tuple[InstanceConfig, ...]:
        """Every account's static instances, in file order."""
        return tuple(i for account in self.accounts for i in account.instances)

    @property
    def discovery(self) -> tuple[DiscoveryConfig, ...]:
        """Every account's discovery entries, in file order."""
        return tuple(d for account in self.accounts for d in account.discovery)


# --------------------------------------------------------------------------------------------
# Durations

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
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER_RE = re.compile(r"[+-]?\d+")
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
        if _NUMBER_RE.fullmatch(text):
            return _seconds(float(text), value)
        match = _DURATION_RE.fullmatch(text)
        if not text or match is None:
            raise ValueError(f"invalid duration {_quote(value)} ({_DURATION_HINT})")
        ms = sum(
            int(n) * size for n, (_, size) in zip(match.groups(), _MS_PER_UNIT, strict=True) if n
        )
        if ms > _MAX_DURATION_MS:
            raise ValueError(f"duration {_quote(value)} is too long")
        return ms / 1000
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _seconds(value, value)
    raise ValueError(f"must be a duration ({_DURATION_HINT}), got {_describe(value)}")


def _seconds(number: float, original: object) -> float:
    if math.isnan(number):
        raise ValueError(f"must be a duration ({_DURATION_HINT}), got {_describe(original)}")
    if number < 0:
        raise ValueError(f"must not be negative, got {_describe(original)}")
    if number > _MAX_DURATION_MS / 1000:
        raise ValueError(f"duration {_describe(original)} is too long")
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


# --------------------------------------------------------------------------------------------
# Loading


_YAML_TAG_PREFIX = "tag:yaml.org,2002:"
_TIMESTAMP_TAG = _YAML_TAG_PREFIX + "timestamp"
_NUMBER_TAGS = (_YAML_TAG_PREFIX + "int", _YAML_TAG_PREFIX + "float")
# No setting needs more (2**63 has 19 digits); a huge one would cost quadratic time to convert
# and could not even be printed back in a message (Python's 4300-digit limit).
_MAX_INTEGER_CHARS = 100
_MAX_PROBLEMS = 100  # a broken megabyte can hold 500,000; the first ones are what helps


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
        except (ValueError, OverflowError):  # not quoted: the value may be a secret
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
                    problem=f"duplicate key {_describe(key)} "
                    f"(first on line {first[key].start_mark.line + 1})",
                    problem_mark=key_node.start_mark,
                )
            first[key] = key_node
        return super().construct_mapping(node, deep=deep)


def load_config(
    path: str | os.PathLike[str],
    environ: Mapping[str, str],
    *,
    timeout: float = READ_TIMEOUT,
    read: Callable[[str, int], bytes] = read_regular_file,
) -> Config:
    """Read, parse and check the YAML file at ``path``; raise ConfigError with every problem
    (at most the first hundred, then how many more).

    Only a regular file of at most :data:`MAX_FILE_BYTES` is read, and the read is given up
    after ``timeout`` seconds (:func:`exporter.filesafe.read_bounded`; ``read`` is for tests).
    """
    name = os.fspath(path)
    data = load_yaml_file(name, timeout=timeout, read=read)
    try:
        return parse_config(data, environ, source=name)
    except ConfigError as err:
        if len(err.problems) <= _MAX_PROBLEMS:
            raise
        more = len(err.problems) - _MAX_PROBLEMS
        raise ConfigError(
            [*err.problems[:_MAX_PROBLEMS], f"{name}: {more} more problems not shown"]
        ) from None
    except RecursionError:
        raise ConfigError(f"{name}: nested too deeply") from None
    except (ValueError, OverflowError) as exc:  # e.g. a ${VAR} holding a 5,000-digit number
        raise ConfigError(f"{name}: cannot check a value ({type(exc).__name__})") from None


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
        raise ConfigError(f"{name}: {_yaml_problem(exc)}") from None
    except yaml.reader.ReaderError as exc:  # a control character, given text input
        position = int(exc.position)
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        character = f"#x{exc.character:04x}" if isinstance(exc.character, int) else "character"
        raise ConfigError(
            f"{name}: line {line}, column {column}: invalid YAML: "
            f"control character {character} is not allowed"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{name}: invalid YAML ({type(exc).__name__})") from None
    except RecursionError:
        raise ConfigError(f"{name}: invalid YAML: nested too deeply") from None
    except (ValueError, OverflowError) as exc:  # the loader locates these; just in case
        raise ConfigError(f"{name}: invalid YAML ({type(exc).__name__})") from None


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
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


def parse_config(data: object, environ: Mapping[str, str], source: str = "config") -> Config:
    """Check already-parsed YAML data and build the Config; raise ConfigError with every problem.

    ``source`` names the whole document in the few messages that are about it (``config.yaml:
    must be a mapping, got a list``); every other message starts with its key path.
    """
    if data is None:
        raise ConfigError(
            f"{source}: is empty (expected a mapping with instances, discovery or accounts)"
        )
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: must be a mapping, got {_kind(data)}")
    checker = _Checker(environ)
    resolved = checker.interpolate(data, "", {})
    config = checker.config(resolved)
    if checker.problems or config is None:
        raise ConfigError(checker.redacted(checker.problems) or [f"{source}: invalid"])
    return config


# --------------------------------------------------------------------------------------------
# Checking

_T = TypeVar("_T")


class _Unresolved(enum.Enum):
    """Stands for a string whose ``${VAR}`` could not be resolved (already reported)."""

    VALUE = "unresolved"


_TOP_KEYS = ("api", "credentials", "polling", "instances", "discovery", "accounts")
_ACCOUNT_KEYS = ("name", "credentials", "endpoint", "instances", "discovery")
_API_KEYS = ("endpoint", "timeout", "rate_limit", "concurrency", "retries", "max_response_bytes")
_CREDENTIAL_KEYS = ("access_key_id", "access_key_secret", "security_token")
_POLLING_KEYS = ("interval", "lookback", "window", "overlap", "page_size", "policy_refresh")
_INSTANCE_KEYS = ("id", "region", "labels")
_DISCOVERY_KEYS = (
    "region",
    "engines",
    "statuses",
    "instance_types",
    "resource_group",
    "tags",
    "include_read_only",
    "refresh",
    "grace",
)
_REFERENCE_RE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_VARIABLE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_REGION_RE = re.compile(r"[a-z]+(?:-[a-z0-9]+)+")
_ACCOUNT_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
_LABEL_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STATUS_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


class _Checker:
    """Walks the parsed tree once, collecting problems and warnings as ``path: message`` lines."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []
        self.warnings: list[str] = []
        self.instance_paths: dict[str, str] = {}  # instance id -> where it was first seen
        self.secrets: set[str] = set()  # credential values seen, blanked out of every message

    def redacted(self, problems: list[str]) -> list[str]:
        """The problems with any credential value blanked out, wherever it was pasted."""
        for secret in self.secrets:
            problems = [problem.replace(secret, "****") for problem in problems]
        return problems

    def error(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{path}: {message}")

    # ---- ${VAR}

    def interpolate(self, value: object, path: str, memo: dict[int, object]) -> object:
        """A copy of the tree with every string's ``${VAR}`` replaced (keys are left alone)."""
        if isinstance(value, str):
            return self.substitute(value, path)
        if isinstance(value, Mapping):
            if id(value) in memo:  # a YAML alias: resolved (and reported) once
                return memo[id(value)]
            mapping: dict[object, object] = {}
            memo[id(value)] = mapping
            for key, item in value.items():
                mapping[key] = self.interpolate(item, _child(path, key), memo)
            return mapping
        if isinstance(value, (list, tuple)):
            if id(value) in memo:
                return memo[id(value)]
            items: list[object] = []
            memo[id(value)] = items
            for index, item in enumerate(value):
                items.append(self.interpolate(item, f"{path}[{index}]", memo))
            return items
        return value

    def substitute(self, text: str, path: str) -> str | _Unresolved:
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
                self.error(
                    path, "invalid ${...} reference (write ${NAME}, or $${ for a literal ${)"
                )
                resolved = False
            elif name not in self.environ:
                self.error(path, f"environment variable {name} is not set")
                resolved = False
            else:
                parts.append(self.environ[name])
        parts.append(text[end:])
        return "".join(parts) if resolved else _Unresolved.VALUE

    # ---- shapes

    def section(
        self,
        path: str,
        value: object,
        allowed: Sequence[str],
        *,
        allow_null: bool = True,
        elsewhere: Mapping[str, str] | None = None,
    ) -> dict[str, object] | None:
        """The known keys of a mapping with a non-null value; unknown keys are reported.

        None (after reporting) when the value is not a mapping. A null section is empty.
        """
        if value is None and allow_null:
            return {}
        if value is _Unresolved.VALUE:
            return None
        if not isinstance(value, Mapping):
            self.error(path, f"must be a mapping, got {_kind(value)}")
            return None
        fields: dict[str, object] = {}
        for key, item in value.items():
            if isinstance(key, str) and key in allowed:
                if item is not None:
                    fields[key] = item
                continue
            hint = ""
            if isinstance(key, str):
                if elsewhere and key in elsewhere:
                    hint = f" (did you mean {elsewhere[key]}?)"
                else:
                    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.75)
                    if close:
                        hint = f" (did you mean {close[0]}?)"
            self.error(_child(path, key), f"unknown key{hint}")
        return fields

    def sequence(self, path: str, value: object) -> list[object] | None:
        if value is _Unresolved.VALUE:
            return None
        if not isinstance(value, (list, tuple)):
            self.error(path, f"must be a list, got {_kind(value)}")
            return None
        return list(value)

    def read(
        self,
        fields: Mapping[str, object],
        key: str,
        path: str,
        reader: Callable[[str, object], _T | None],
        *,
        required: bool = False,
    ) -> _T | None:
        """``reader``'s result for ``fields[key]``; None when absent (reported if required)."""
        if key not in fields:
            if required:
                self.error(_child(path, key), "required")
            return None
        value = fields[key]
        if value is _Unresolved.VALUE:
            return None
        return reader(_child(path, key), value)

    # ---- values

    def string(self, path: str, value: object) -> str | None:
        if not isinstance(value, str):
            self.error(path, f"must be a string, got {_kind(value)}")
            return None
        return value

    def token(self, path: str, value: object) -> str | None:
        """A non-empty string without whitespace (ids, resource groups)."""
        text = self.string(path, value)
        if text is None:
            return None
        if not text:
            self.error(path, "must not be empty")
            return None
        if any(c.isspace() for c in text):
            self.error(path, f"must not contain whitespace, got {_quote(text)}")
            return None
        return text

    def region(self, path: str, value: object) -> str | None:
        text = self.string(path, value)
        if text is None:
            return None
        if not _REGION_RE.fullmatch(text):
            self.error(path, f"must be a region id like cn-hangzhou, got {_quote(text)}")
            return None
        return text

    def duration(self, path: str, value: object) -> float | None:
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.error(path, str(exc))
            return None

    def positive_number(self, path: str, value: object) -> float | None:
        number = _as_number(value)
        if number is None or not math.isfinite(number) or number <= 0:
            self.error(path, f"must be a number > 0, got {_describe(value)}")
            return None
        return float(number)

    def integer(self, path: str, value: object, minimum: int) -> int | None:
        number = _as_number(value)
        if number is None or not math.isfinite(number) or number != int(number) or number < minimum:
            self.error(path, f"must be an integer >= {minimum}, got {_describe(value)}")
            return None
        return int(number)

    def boolean(self, path: str, value: object) -> bool | None:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        self.error(path, f"must be true or false, got {_describe(value)}")
        return None

    def secret(self, path: str, value: object) -> str | None:
        """A credential: surrounding whitespace dropped, never quoted back. "" means unset."""
        if isinstance(value, str) and len(value.strip()) >= 4:
            self.secrets.add(value.strip())
        if not isinstance(value, str):
            self.error(path, f"must be a string, got {_kind(value)}")
            return None
        text = value.strip()
        if any(c.isspace() for c in text):
            self.error(path, "must not contain whitespace")
            return None
        return text

    def string_map(
        self, path: str, value: object, key_check: Callable[[str, str], bool]
    ) -> FrozenMap | None:
        """A mapping of strings (numbers are turned into strings), keys checked by key_check."""
        if value is _Unresolved.VALUE:
            return None
        if not isinstance(value, Mapping):
            self.error(path, f"must be a mapping, got {_kind(value)}")
            return None
        fields: dict[str, str] = {}
        for key, item in value.items():
            item_path = _child(path, key)
            if not isinstance(key, str):
                self.error(item_path, f"keys must be strings, got {_kind(key)}")
                continue
            if not key_check(item_path, key):
                continue
            if item is _Unresolved.VALUE:
                continue
            if isinstance(item, str):
                fields[key] = item
            elif isinstance(item, (int, float)) and not isinstance(item, bool):
                fields[key] = str(item)
            else:
                self.error(item_path, f"must be a string, got {_kind(item)}")
        return FrozenMap(fields)

    def label_name(self, path: str, name: str) -> bool:
        if not _LABEL_NAME_RE.fullmatch(name):
            self.error(
                path,
                "invalid label name (letters, digits and underscores, not starting with a digit)",
            )
            return False
        if name.startswith("__"):
            self.error(path, "invalid label name (names starting with __ are reserved)")
            return False
        if name in RESERVED_LABEL_NAMES:
            self.error(path, "reserved (the exporter sets this label itself)")
            return False
        return True

    def tag_key(self, path: str, key: str) -> bool:
        if not key.strip():
            self.error(path, "tag keys must not be empty")
            return False
        return True

    def choices(self, path: str, value: object, known: Sequence[str]) -> tuple[str, ...] | None:
        """A list of names from ``known``, matched case-insensitively, in the API's spelling."""
        items = self.sequence(path, value)
        if items is None:
            return None
        spelling = {name.lower(): name for name in known}
        result: list[str] = []
        for index, item in enumerate(items):
            if item is _Unresolved.VALUE:
                continue
            name = spelling.get(item.strip().lower()) if isinstance(item, str) else None
            if name is None:
                self.error(
                    f"{path}[{index}]", f"must be one of {_one_of(known)}, got {_describe(item)}"
                )
            elif name not in result:
                result.append(name)
        return tuple(result)

    def statuses(self, path: str, value: object) -> tuple[str, ...] | None:
        items = self.sequence(path, value)
        if items is None:
            return None
        spelling = {name.lower(): name for name in INSTANCE_STATUSES}
        result: list[str] = []
        for index, item in enumerate(items):
            item_path = f"{path}[{index}]"
            if item is _Unresolved.VALUE:
                continue
            if not isinstance(item, str) or not _STATUS_RE.fullmatch(item.strip()):
                self.error(
                    item_path, f"must be an instance status such as Running, got {_describe(item)}"
                )
                continue
            name = spelling.get(item.strip().lower())
            if name is None:
                name = item.strip()
                self.warn(
                    item_path,
                    f"{_quote(name)} is not a known instance status; "
                    "it is passed to DescribeDBInstances as written",
                )
            if name not in result:
                result.append(name)
        return tuple(result)

    def endpoint(self, path: str, value: object) -> str | None:
        """``scheme://host[:port]``, normalised. The host may hold ``{region}`` (e.g.
        ``https://rds-vpc.{region}.aliyuncs.com``), filled in with each instance's region."""
        text = self.string(path, value)
        if text is None:
            return None
        text = text.strip()
        if not text:
            return None  # e.g. ${RDS_ENDPOINT} set to "": use the region's endpoint
        if "@" in text:  # not quoted: it may hold a password
            self.error(path, "must not contain a user name or password")
            return None
        problem = _template_problem(text)
        if problem is not None:
            self.error(path, problem)
            return None
        message = f"must be an http(s) URL like https://rds.aliyuncs.com, got {_quote(text)}"
        try:
            parts = urlsplit(text)
            hostname = parts.hostname
        except ValueError:  # e.g. an unclosed IPv6 bracket
            self.error(path, message)
            return None
        if parts.scheme not in ("http", "https") or not hostname or any(c.isspace() for c in text):
            self.error(path, message)
            return None
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port is not None and not 0 < port < 65536:
            self.error(path, f"invalid port in {_quote(text)}")
            return None
        if parts.path not in ("", "/") or "?" in text or "#" in text:
            self.error(
                path, f"must be scheme://host[:port] with no path or query, got {_quote(text)}"
            )
            return None
        host = f"[{hostname}]" if ":" in hostname else hostname
        return f"{parts.scheme}://{host}" + (f":{port}" if port else "")

    # ---- sections

    def config(self, data: object) -> Config | None:
        elsewhere = {key: f"api.{key}" for key in _API_KEYS}
        elsewhere.update({key: f"polling.{key}" for key in _POLLING_KEYS})
        top = self.section("", data, _TOP_KEYS, elsewhere=elsewhere)
        if top is None:
            return None
        api = self.api(top.get("api"))
        polling = self.polling(top.get("polling"))
        if "accounts" in top:
            shared = [key for key in ("credentials", "instances", "discovery") if key in top]
            if shared:
                self.error(
                    "accounts",
                    f"cannot be combined with top-level {', '.join(shared)} "
                    "(move them into an entry of accounts)",
                )
            accounts = self.accounts(top["accounts"])
        else:
            account, configured = self.account("", "default", top)
            if not configured:
                self.error("instances", "no instances or discovery configured")
            accounts = (account,)
        return Config(api=api, polling=polling, accounts=accounts, warnings=tuple(self.warnings))

    def api(self, value: object) -> ApiConfig:
        fields = self.section("api", value, _API_KEYS)
        if fields is None:
            return ApiConfig()
        defaults = ApiConfig()
        endpoint = self.read(fields, "endpoint", "api", self.endpoint)
        timeout = self.read(fields, "timeout", "api", self.duration)
        if timeout is not None and timeout <= 0:
            self.error("api.timeout", f"must be a duration > 0, got {format_duration(timeout)}")
            timeout = None
        rate_limit = self.read(fields, "rate_limit", "api", self.positive_number)
        concurrency = self.read(
            fields, "concurrency", "api", lambda p, v: self.integer(p, v, minimum=1)
        )
        retries = self.read(fields, "retries", "api", lambda p, v: self.integer(p, v, minimum=0))
        # Far above a real page (about 150 KB for 100 backups), so only a broken answer hits it.
        max_bytes = self.read(
            fields,
            "max_response_bytes",
            "api",
            lambda p, v: self.integer(p, v, minimum=MIN_RESPONSE_BYTES),
        )
        return ApiConfig(
            endpoint=endpoint,
            timeout=_default(timeout, defaults.timeout),
            rate_limit=_default(rate_limit, defaults.rate_limit),
            concurrency=_default(concurrency, defaults.concurrency),
            retries=_default(retries, defaults.retries),
            max_response_bytes=_default(max_bytes, defaults.max_response_bytes),
        )

    def polling(self, value: object) -> PollingConfig:
        fields = self.section("polling", value, _POLLING_KEYS)
        if fields is None:
            return PollingConfig()
        defaults = PollingConfig()

        interval = self.read(fields, "interval", "polling", self.duration)
        if interval is not None and interval < 1:
            self.error("polling.interval", f"must be at least 1s, got {format_duration(interval)}")
            interval = None
        if interval is not None and interval < 60:
            self.warn(
                "polling.interval",
                f"{format_duration(interval)} is under one minute; fine for tests and demos, "
                "but in production it spends API quota for no gain",
            )

        window = self.read(fields, "window", "polling", self.duration)
        if window is not None and window < 60:
            self.error("polling.window", f"must be at least 1m, got {format_duration(window)}")
            window = None
        elif window is not None and window % 60:
            self.error(
                "polling.window",
                "must be a whole number of minutes (API times have minute precision), "
                f"got {format_duration(window)}",
            )
            window = None
        window_ok = window is not None or "window" not in fields
        window = _default(window, defaults.window)

        lookback = self.read(fields, "lookback", "polling", self.duration)
        if lookback is not None and window_ok and lookback < window:
            self.error(
                "polling.lookback",
                f"must be at least polling.window ({format_duration(window)}), "
                f"got {format_duration(lookback)}",
            )

        overlap = self.read(fields, "overlap", "polling", self.duration)
        if overlap is not None and window_ok and overlap >= window:
            self.error(
                "polling.overlap",
                f"must be less than polling.window ({format_duration(window)}), "
                f"got {format_duration(overlap)}",
            )

        page_size = self.read(fields, "page_size", "polling", self.page_size)
        policy_refresh = self.read(fields, "policy_refresh", "polling", self.duration)
        if policy_refresh is not None and 0 < policy_refresh < 1:
            self.error(
                "polling.policy_refresh",
                f"must be 0 (off) or at least 1s, got {format_duration(policy_refresh)}",
            )
            policy_refresh = None
        polling = PollingConfig(
            interval=_default(interval, defaults.interval),
            lookback=_default(lookback, defaults.lookback),
            window=window,
            overlap=overlap,
            page_size=_default(page_size, defaults.page_size),
            policy_refresh=_default(policy_refresh, defaults.policy_refresh),
        )
        if (
            policy_refresh
            and (interval is not None or "interval" not in fields)
            and policy_refresh < polling.interval
        ):
            self.warn(
                "polling.policy_refresh",
                f"{format_duration(policy_refresh)} is shorter than polling.interval "
                f"({format_duration(polling.interval)}); a policy is fetched at most once per "
                "poll of its instance",
            )
        if (
            "overlap" not in fields
            and window_ok
            and (interval is not None or "interval" not in fields)
            and polling.interval >= polling.window
        ):
            self.warn(
                "polling.overlap",
                f"defaults to 0s because polling.interval ({format_duration(polling.interval)}) "
                f"is not shorter than polling.window ({format_duration(polling.window)}); "
                "a backup still running at one poll may never be seen finishing",
            )
        return polling

    def page_size(self, path: str, value: object) -> int | None:
        number = _as_number(value)
        if number not in PAGE_SIZES:
            self.error(
                path, f"must be {_one_of([str(n) for n in PAGE_SIZES])}, got {_describe(value)}"
            )
            return None
        return int(number)

    def accounts(self, value: object) -> tuple[AccountConfig, ...]:
        items = self.sequence("accounts", value)
        if items is None:
            return ()
        if not items:
            self.error("accounts", "must list at least one account")
        accounts: list[AccountConfig] = []
        names: dict[str, str] = {}
        chain_user: str | None = None
        for index, item in enumerate(items):
            path = f"accounts[{index}]"
            fields = self.section(path, item, _ACCOUNT_KEYS, allow_null=False)
            if fields is None:
                continue
            name = self.read(fields, "name", path, self.account_name, required=True)
            if name is not None:
                if name in names:
                    self.error(f"{path}.name", f"duplicate of {names[name]}")
                else:
                    names[name] = path
            account, configured = self.account(path, name or f"#{index}", fields)
            if not configured:
                self.error(path, "no instances or discovery configured")
            if "credentials" not in fields:
                if chain_user is not None:
                    self.warn(
                        f"{path}.credentials",
                        "not set, so this account uses the default credential chain, "
                        f"like {chain_user}: both are the same account",
                    )
                else:
                    chain_user = path
            accounts.append(account)
        return tuple(accounts)

    def account_name(self, path: str, value: object) -> str | None:
        text = self.string(path, value)
        if text is None:
            return None
        if not _ACCOUNT_NAME_RE.fullmatch(text):
            self.error(path, f"must be letters, digits, '_', '.' or '-' only, got {_quote(text)}")
            return None
        return text

    def account(
        self, path: str, name: str, fields: Mapping[str, object]
    ) -> tuple[AccountConfig, bool]:
        """The account, and whether it lists any instance or discovery entry (even a bad one)."""
        credentials = self.read(fields, "credentials", path, self.credentials)
        endpoint = self.read(fields, "endpoint", path, self.endpoint)
        configured = False
        instances: list[InstanceConfig] = []
        if "instances" in fields:
            found, listed = self.instances(_child(path, "instances"), name, fields["instances"])
            instances.extend(found)
            configured = configured or listed
        discovery: list[DiscoveryConfig] = []
        if "discovery" in fields:
            entries, listed = self.discovery(_child(path, "discovery"), name, fields["discovery"])
            discovery.extend(entries)
            configured = configured or listed
        account = AccountConfig(name, credentials, tuple(instances), tuple(discovery), endpoint)
        return account, configured

    def credentials(self, path: str, value: object) -> StaticCredentials | None:
        fields = self.section(path, value, _CREDENTIAL_KEYS)
        if fields is None:
            return None
        key_id = self.read(fields, "access_key_id", path, self.secret, required=True)
        secret = self.read(fields, "access_key_secret", path, self.secret, required=True)
        token = self.read(fields, "security_token", path, self.secret)
        for key, text in (("access_key_id", key_id), ("access_key_secret", secret)):
            if text == "":
                self.error(f"{path}.{key}", "must not be empty")
        if not key_id or not secret:
            return None
        return StaticCredentials(key_id, secret, token or None)

    def instances(
        self, path: str, account: str, value: object
    ) -> tuple[list[InstanceConfig], bool]:
        items = self.sequence(path, value)
        if items is None:
            return [], True  # reported; don't also say that nothing is configured
        result: list[InstanceConfig] = []
        for index, item in enumerate(items):
            item_path = f"{path}[{index}]"
            fields = self.section(item_path, item, _INSTANCE_KEYS, allow_null=False)
            if fields is None:
                continue
            instance_id = self.read(fields, "id", item_path, self.token, required=True)
            if instance_id is not None:
                first = self.instance_paths.setdefault(instance_id, item_path)
                if first != item_path:
                    self.error(f"{item_path}.id", f"duplicate of {first}")
                    instance_id = None
            region = self.read(fields, "region", item_path, self.region, required=True)
            labels = self.read(
                fields, "labels", item_path, lambda p, v: self.string_map(p, v, self.label_name)
            )
            if instance_id is not None and region is not None:
                result.append(InstanceConfig(instance_id, region, account, labels or FrozenMap()))
        return result, bool(items)

    def discovery(
        self, path: str, account: str, value: object
    ) -> tuple[list[DiscoveryConfig], bool]:
        items = self.sequence(path, value)
        if items is None:
            return [], True
        result: list[DiscoveryConfig] = []
        defaults = DiscoveryConfig(region="", account="")
        for index, item in enumerate(items):
            item_path = f"{path}[{index}]"
            fields = self.section(item_path, item, _DISCOVERY_KEYS, allow_null=False)
            if fields is None:
                continue
            region = self.read(fields, "region", item_path, self.region, required=True)
            engines = self.read(
                fields, "engines", item_path, lambda p, v: self.choices(p, v, ENGINES)
            )
            statuses = self.read(fields, "statuses", item_path, self.statuses)
            types = self.read(
                fields, "instance_types", item_path, lambda p, v: self.choices(p, v, INSTANCE_TYPES)
            )
            group = self.read(fields, "resource_group", item_path, self.token)
            tags = self.read(
                fields, "tags", item_path, lambda p, v: self.string_map(p, v, self.tag_key)
            )
            if tags is not None and len(tags) > MAX_DISCOVERY_TAGS:
                self.error(
                    f"{item_path}.tags",
                    f"at most {MAX_DISCOVERY_TAGS} tags are allowed (the API's limit), "
                    f"got {len(tags)}",
                )
            read_only = self.read(fields, "include_read_only", item_path, self.boolean)
            if types and "Readonly" in types and not read_only:
                self.error(
                    f"{item_path}.instance_types",
                    "lists Readonly, but read-only instances are skipped unless "
                    "include_read_only is true",
                )
            refresh = self.read(fields, "refresh", item_path, self.duration)
            if refresh is not None and refresh < 1:
                self.error(
                    f"{item_path}.refresh", f"must be at least 1s, got {format_duration(refresh)}"
                )
                refresh = None
            grace = self.read(fields, "grace", item_path, self.duration)
            if region is None:
                continue
            result.append(
                DiscoveryConfig(
                    region=region,
                    account=account,
                    engines=engines or (),
                    statuses=statuses or (),
                    instance_types=types or (),
                    resource_group=group,
                    tags=tags or FrozenMap(),
                    include_read_only=bool(read_only),
                    refresh=_default(refresh, defaults.refresh),
                    grace=_default(grace, defaults.grace),
                )
            )
        return result, bool(items)


# --------------------------------------------------------------------------------------------
# Small helpers


def _default(value: _T | None, default: _T) -> _T:
    return default if value is None else value


def _as_number(value: object) -> int | float | None:
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
        if _NUMBER_RE.fullmatch(text):
            return float(text)
    return None


def _child(path: str, key: object) -> str:
    """``path.key``, or ``path["odd key"]`` when the key is not a plain word."""
    if isinstance(key, str) and _PLAIN_KEY_RE.fullmatch(key):
        return f"{path}.{key}" if path else key
    text = json.dumps(key, ensure_ascii=False) if isinstance(key, str) else _describe(key)
    return f"{path}[{text}]"


def _kind(value: object) -> str:
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


def _describe(value: object) -> str:
    """A short rendering of a (non-secret) value for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return _quote(value)
    return _kind(value)


def _quote(text: str, limit: int = 60) -> str:
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return json.dumps(text, ensure_ascii=False)


def _one_of(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)


_PLACEHOLDER_RE = re.compile(r"\{[^{}]*\}")
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME_RE = re.compile(rf"(?:{_HOST_LABEL}\.)*{_HOST_LABEL}")
_SAMPLE_REGION = "cn-hangzhou"  # what a template is checked with


def _template_problem(endpoint: str) -> str | None:
    """What is wrong with the placeholders of an endpoint, if anything; the URL itself is
    checked afterwards (``{region}`` passes those checks as part of the host)."""
    rest = endpoint.replace(REGION_PLACEHOLDER, "")
    if "{" in rest or "}" in rest:
        unknown = _PLACEHOLDER_RE.search(rest)
        what = f"unknown placeholder {unknown.group()}" if unknown else "unmatched brace"
        return f"{what} in {_quote(endpoint)}: the only placeholder is {REGION_PLACEHOLDER}"
    if rest == endpoint:
        return None
    try:
        host = urlsplit(endpoint).hostname or ""
    except ValueError:
        return None  # not a URL: the URL checks say so
    if host.count(REGION_PLACEHOLDER) != endpoint.count(REGION_PLACEHOLDER):
        return f"{REGION_PLACEHOLDER} may only be in the host name, got {_quote(endpoint)}"
    # Filled in with a region it must still be a host name (every region id is one label's
    # worth of [a-z0-9-]), so a template that loads gives a valid URL for every instance.
    if not _HOSTNAME_RE.fullmatch(host.replace(REGION_PLACEHOLDER, _SAMPLE_REGION)):
        return (
            f"{REGION_PLACEHOLDER} must make a host name like "
            f"rds-vpc.{REGION_PLACEHOLDER}.aliyuncs.com, got {_quote(endpoint)}"
        )
    return None
