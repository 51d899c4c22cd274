"""Typed results of the RDS actions we call, parsed defensively.

Two kinds of trouble are told apart. An answer of the wrong *shape* (no ``Items``, a list that is
not a list, more records than the page may hold) raises ``ResponseShapeError``: the answer as a
whole cannot be trusted, the poll fails and is redone later. A single *record* that cannot be
interpreted (no id, no start time or status, a success without an end) is skipped and reported
in the page's ``skipped``, so one odd record never hides the rest of the history.

Fields are read leniently, as the API and its documentation disagree: numbers as ints, floats or
numeric strings; times with or without seconds, with fractions, ``Z``/``z``/offsets, a space for
``T``, or epoch seconds or milliseconds. A field we only report that cannot be read is left out.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from exporter.aliyun.errors import untrusted


class ResponseShapeError(ValueError):
    """An answer that parsed as JSON but lacks what we need; the message says what."""


_TIME_RE = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})[Tt ](\d{1,2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?"
    r"\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?"
)
# Epoch values above this are milliseconds (as seconds it would be the year 5138).
_EPOCH_MILLIS_FROM = 1e11
# No number the API sends is larger (its integers are 64-bit): a bigger one is not a value, and
# a JSON integer of hundreds of digits would not even convert to a float.
_LARGEST = 2**63


def parse_time(value: object) -> float | None:
    """Epoch seconds from an API time, or None when it is not one.

    ``yyyy-MM-ddTHH:mmZ`` and ``yyyy-MM-ddTHH:mm:ssZ`` (the documented and the observed form),
    with fractions, a space or ``t`` for ``T``, ``Z``, ``z`` or an offset (UTC when there is
    none), and epoch seconds or milliseconds as numbers or numeric strings.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return _epoch(float(value)) if abs(value) < _LARGEST else None
    if isinstance(value, float):
        return _epoch(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) > 40:
        return None
    if text and (text[0].isdigit() or text[0] in "+-.") and _is_number(text):
        return _epoch(float(text))
    match = _TIME_RE.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            tzinfo=timezone.utc,
        )
    except ValueError:
        return None
    offset = 0
    if zone and zone not in ("Z", "z", "UTC"):
        digits = zone[1:].replace(":", "")
        minutes = int(digits[2:]) if len(digits) > 2 else 0
        offset = (int(digits[:2]) * 3600 + minutes * 60) * (1 if zone[0] == "+" else -1)
    return moment.timestamp() - offset + (float(fraction) if fraction else 0.0)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _epoch(number: float) -> float | None:
    if not math.isfinite(number):
        return None
    return number / 1000.0 if abs(number) >= _EPOCH_MILLIS_FROM else number


def format_api_minute(epoch: float) -> str:
    """DescribeBackups StartTime/EndTime form: UTC ``yyyy-MM-ddTHH:mmZ``."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def format_api_second(epoch: float) -> str:
    """DescribeBinlogFiles StartTime/EndTime form: UTC ``yyyy-MM-ddTHH:mm:ssZ``."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_int(value: object) -> int | None:
    """An integer from an int, a float or a numeric string (a fraction is dropped); None for
    anything else, booleans and non-finite numbers included."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) < _LARGEST else None
    number: float
    if isinstance(value, float):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if len(text) > 40:
            return None
        try:
            whole = int(text)
        except ValueError:
            pass
        else:
            return whole if abs(whole) < _LARGEST else None
        try:
            number = float(text)
        except ValueError:
            return None
    else:
        return None
    return int(number) if math.isfinite(number) and abs(number) < _LARGEST else None


def to_str(value: object) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value).strip()


def items_of(body: Mapping[str, Any], outer: str, inner: str, page_size: int | None) -> list[Any]:
    """The list at ``body[outer][inner]``. ``outer`` must be an object; a missing ``inner`` is
    an empty list (how the API renders one), anything else of the wrong type is a shape error,
    and so is a page holding more than the ``page_size`` records asked for."""
    container = body.get(outer)
    if not isinstance(container, Mapping):
        what = "missing" if outer not in body else f"not an object ({_kind(container)})"
        raise ResponseShapeError(f"{outer} is {what}")
    if inner not in container:
        return []
    listed = container[inner]
    if not isinstance(listed, list):
        raise ResponseShapeError(f"{outer}.{inner} is not a list ({_kind(listed)})")
    _check_count(len(listed), page_size)
    return listed


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _check_count(raw_count: int, page_size: int | None) -> None:
    if page_size is not None and raw_count > page_size:
        raise ResponseShapeError(
            f"the page holds {raw_count} records, more than PageSize {page_size}"
        )


def _encrypted(value: object) -> bool:
    """``Encryption`` is a JSON string; ``{}`` or empty means not encrypted."""
    if isinstance(value, Mapping):
        return bool(value)
    text = to_str(value)
    if not text or text in ("{}", "null"):
        return False
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return True
    return bool(parsed)


_STORAGE_CLASSES = {"0": "regular", "1": "archive"}


@dataclass(frozen=True, slots=True)
class Backup:
    backup_id: str
    instance_id: str
    status: str
    backup_type: str
    start: float | None
    end: float | None
    size_bytes: int | None
    method: str
    mode: str
    initiator: str
    storage_class: str
    encrypted: bool
    available: int | None
    consistent_time: float | None
    engine: str
    engine_version: str

    @property
    def succeeded(self) -> bool:
        return self.status == "Success"

    @property
    def failed(self) -> bool:
        return self.status == "Failed"

    @property
    def restorable(self) -> bool:
        """A success that can be restored from: ``IsAvail`` 0 marks a set that cannot."""
        return self.succeeded and self.available != 0

    @property
    def unusable(self) -> bool:
        """A success that cannot be restored from (``IsAvail`` 0)."""
        return self.succeeded and self.available == 0

    @property
    def automated(self) -> bool:
        """Taken by the backup schedule: any ``BackupMode`` but Manual (the API always says)."""
        return self.mode != "Manual"


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    """A record that could not be folded in: ``key`` names it (its BackupId, or a digest of the
    record when it has none) so it is counted once however often it is read again."""

    key: str
    reason: str


def _shared(value: object) -> str:
    """``to_str``, stored once for all backups: the text fields other than the id repeat
    (status, type, method, engine, the instance id), and a fleet keeps tens of thousands of
    backups in memory."""
    return sys.intern(to_str(value)[:64])


def parse_backup(raw: Mapping[str, Any]) -> Backup | None:
    """The record as a Backup, reading every field leniently; None without a BackupId."""
    backup_id = untrusted(to_str(raw.get("BackupId")), 64)
    if not backup_id:
        return None
    consistent = to_int(raw.get("ConsistentTime"))
    storage = _shared(raw.get("StorageClass"))
    size = to_int(raw.get("BackupSize"))
    return Backup(
        backup_id=backup_id,
        instance_id=_shared(raw.get("DBInstanceId")),
        status=_shared(raw.get("BackupStatus")),
        backup_type=_shared(raw.get("BackupType")) or "FullBackup",
        start=parse_time(raw.get("BackupStartTime")),
        end=parse_time(raw.get("BackupEndTime")),
        # A negative size is no size at all.
        size_bytes=size if size is not None and size >= 0 else None,
        method=_shared(raw.get("BackupMethod")),
        mode=_shared(raw.get("BackupMode")),
        initiator=_shared(raw.get("BackupInitiator")),
        storage_class=_STORAGE_CLASSES.get(storage, storage),
        encrypted=_encrypted(raw.get("Encryption")),
        available=to_int(raw.get("IsAvail")),
        consistent_time=float(consistent) if consistent and consistent > 0 else None,
        engine=_shared(raw.get("Engine")),
        engine_version=_shared(raw.get("EngineVersion")),
    )


def record_key(raw: object) -> str:
    """What names a record in logs and counts: its BackupId, else a digest of its content."""
    if isinstance(raw, Mapping):
        backup_id = untrusted(to_str(raw.get("BackupId")), 64)
        if backup_id:
            return backup_id
    text = json.dumps(raw, sort_keys=True, default=str)[:100_000]
    return "#" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def unreadable(raw: object) -> str | None:
    """Why a backup record cannot be folded in, or None when it can."""
    if not isinstance(raw, Mapping):
        return "the record is not an object"
    if not untrusted(to_str(raw.get("BackupId")), 64):
        return "no BackupId"  # nor one of control characters only
    start = parse_time(raw.get("BackupStartTime"))
    if start is None:
        return "BackupStartTime missing or not a time"
    status = to_str(raw.get("BackupStatus"))
    if not status:
        return "BackupStatus missing"
    end = parse_time(raw.get("BackupEndTime"))
    if status == "Success" and end is None:
        return "a successful backup without a readable BackupEndTime"
    if end is not None and end < start:
        return "BackupEndTime before BackupStartTime"
    return None


@dataclass(frozen=True)
class BackupsPage:
    items: tuple[Backup, ...]
    total_record_count: int | None
    snapshot_chain_bytes: int | None
    raw_count: int
    """How many records the page held, readable or not (paging decisions need it)."""
    request_id: str
    """Names the answer in the log when a record is skipped (for a support ticket)."""
    skipped: tuple[SkippedRecord, ...] = ()


def parse_backups_page(body: Mapping[str, Any], page_size: int | None = None) -> BackupsPage:
    """One DescribeBackups page. ``page_size``: what the request asked for; a page holding
    more records than that is of the wrong shape."""
    raw_items = items_of(body, "Items", "Backup", page_size)
    items: list[Backup] = []
    skipped: list[SkippedRecord] = []
    for raw in raw_items:
        problem = unreadable(raw)
        backup = parse_backup(raw) if problem is None else None
        if backup is None:
            skipped.append(SkippedRecord(record_key(raw), problem or "no BackupId"))
        else:
            items.append(backup)
    snapshot = to_int(body.get("TotalEcsSnapshotSize"))
    return BackupsPage(
        items=tuple(items),
        total_record_count=to_int(body.get("TotalRecordCount")),
        snapshot_chain_bytes=snapshot if snapshot is not None and snapshot >= 0 else None,
        raw_count=len(raw_items),
        request_id=untrusted(to_str(body.get("RequestId")), 64),
        skipped=tuple(skipped),
    )


@dataclass(frozen=True)
class BackupPolicy:
    """DescribeBackupPolicy, as given; interpreting the schedule is the poller's business."""

    preferred_backup_period: str
    preferred_backup_time: str
    retention_days: int | None
    log_backup_enabled: bool | None
    """EnableBackupLog (else BackupLog). SQL Server says on only for 5-minute log backups."""
    next_backup_time: float | None
    log_retention_days: int | None = None
    log_backup_frequency: str = ""
    """LogBackupFrequency (SQL Server): LogInterval = every 30 minutes, else with the data."""
    backup_interval_minutes: int | None = None
    """BackupInterval: SQL Server's log backup frequency; MySQL's snapshot frequency."""


def _flag(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    text = to_str(value).lower()
    if text in ("1", "true", "enable", "enabled"):
        return True
    if text in ("0", "false", "disable", "disabled"):
        return False
    return None


def parse_backup_policy(body: Mapping[str, Any]) -> BackupPolicy:
    return BackupPolicy(
        preferred_backup_period=to_str(body.get("PreferredBackupPeriod"))[:200],
        preferred_backup_time=to_str(body.get("PreferredBackupTime"))[:200],
        retention_days=to_int(body.get("BackupRetentionPeriod")),
        log_backup_enabled=_flag(body.get("EnableBackupLog", body.get("BackupLog"))),
        next_backup_time=parse_time(body.get("PreferredNextBackupTime")),
        log_retention_days=to_int(body.get("LogBackupRetentionPeriod")),
        log_backup_frequency=to_str(body.get("LogBackupFrequency"))[:32],
        backup_interval_minutes=to_int(body.get("BackupInterval")),
    )


@dataclass(frozen=True)
class DBInstance:
    instance_id: str
    region_id: str
    engine: str
    engine_version: str
    description: str
    status: str
    instance_type: str
    resource_group_id: str
    created_at: float | None = None
    """CreateTime: no backup of the instance can be older."""


@dataclass(frozen=True)
class DBInstancesPage:
    items: tuple[DBInstance, ...]
    total_record_count: int | None
    raw_count: int


def parse_db_instances_page(
    body: Mapping[str, Any], page_size: int | None = None
) -> DBInstancesPage:
    raw_items = items_of(body, "Items", "DBInstance", page_size)
    items = tuple(
        DBInstance(
            instance_id=to_str(raw.get("DBInstanceId"))[:64],
            region_id=to_str(raw.get("RegionId"))[:64],
            engine=to_str(raw.get("Engine"))[:64],
            engine_version=to_str(raw.get("EngineVersion"))[:64],
            description=untrusted(to_str(raw.get("DBInstanceDescription")), 256),
            status=to_str(raw.get("DBInstanceStatus"))[:64],
            instance_type=to_str(raw.get("DBInstanceType"))[:64],
            resource_group_id=to_str(raw.get("ResourceGroupId"))[:64],
            created_at=parse_time(raw.get("CreateTime")),
        )
        for raw in raw_items
        if isinstance(raw, Mapping) and to_str(raw.get("DBInstanceId"))
    )
    return DBInstancesPage(
        items=items,
        total_record_count=to_int(body.get("TotalRecordCount")),
        raw_count=len(raw_items),
    )
