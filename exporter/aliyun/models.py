"""Typed results of the RDS actions we call, parsed defensively.

Numbers may arrive as strings and times with or without seconds; a field we only report may be
missing. A backup record without what the exporter needs to place and judge it (its id, start
time, status, and for a success its end time) makes the whole page a ``ResponseShapeError``: the
poll fails and is redone later, rather than folding in a record that would hide a backup.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


class ResponseShapeError(ValueError):
    """An answer that parsed as JSON but lacks what we need; the message says what."""


_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_time(value: object) -> float | None:
    """Epoch seconds from ``yyyy-MM-ddTHH:mmZ`` or ``yyyy-MM-ddTHH:mm:ssZ`` (UTC when no zone)."""
    if not isinstance(value, str):
        return None
    match = _TIME_RE.match(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
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
    if zone and zone != "Z":
        digits = zone[1:].replace(":", "")
        offset = (int(digits[:2]) * 3600 + int(digits[2:]) * 60) * (1 if zone[0] == "+" else -1)
    return moment.timestamp() - offset


def format_api_minute(epoch: float) -> str:
    """DescribeBackups StartTime/EndTime form: UTC ``yyyy-MM-ddTHH:mmZ``."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def to_int(value: object) -> int | None:
    """An integer from an int, an integral float or a numeric string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return None
            return int(number) if number.is_integer() else None
    return None


def to_str(value: object) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value).strip()


def _items(body: Mapping[str, Any], outer: str, inner: str) -> list[Mapping[str, Any]]:
    container = body.get(outer)
    if isinstance(container, Mapping):
        container = container.get(inner)
    if not isinstance(container, list):
        return []
    return [item for item in container if isinstance(item, Mapping)]


def _encrypted(value: object) -> bool:
    """``Encryption`` is a JSON string; ``{}`` or empty means not encrypted."""
    if isinstance(value, Mapping):
        return bool(value)
    text = to_str(value)
    if not text or text in ("{}", "null"):
        return False
    try:
        parsed = json.loads(text)
    except ValueError:
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


def _shared(value: object) -> str:
    """``to_str``, stored once for all backups: the text fields other than the id repeat
    (status, type, method, engine, the instance id), and a fleet keeps tens of thousands of
    backups in memory."""
    return sys.intern(to_str(value))


def parse_backup(raw: Mapping[str, Any]) -> Backup | None:
    backup_id = to_str(raw.get("BackupId"))
    if not backup_id:
        return None
    consistent = to_int(raw.get("ConsistentTime"))
    storage = _shared(raw.get("StorageClass"))
    return Backup(
        backup_id=backup_id,
        instance_id=_shared(raw.get("DBInstanceId")),
        status=_shared(raw.get("BackupStatus")),
        backup_type=_shared(raw.get("BackupType")) or "FullBackup",
        start=parse_time(raw.get("BackupStartTime")),
        end=parse_time(raw.get("BackupEndTime")),
        size_bytes=to_int(raw.get("BackupSize")),
        method=_shared(raw.get("BackupMethod")),
        mode=_shared(raw.get("BackupMode")),
        initiator=_shared(raw.get("BackupInitiator")),
        storage_class=_STORAGE_CLASSES.get(storage, storage),
        encrypted=_encrypted(raw.get("Encryption")),
        available=to_int(raw.get("IsAvail")),
        consistent_time=float(consistent) if consistent else None,
        engine=_shared(raw.get("Engine")),
        engine_version=_shared(raw.get("EngineVersion")),
    )


@dataclass(frozen=True)
class BackupsPage:
    items: tuple[Backup, ...]
    page_number: int | None
    page_record_count: int | None
    total_record_count: int | None
    snapshot_chain_bytes: int | None
    raw_count: int
    """How many records the page held (paging decisions need it)."""
    request_id: str


def _unusable(raw: object) -> str | None:
    """Why a backup record cannot be folded in, or None when it can."""
    if not isinstance(raw, Mapping):
        return "a backup record is not an object"
    backup_id = to_str(raw.get("BackupId"))
    if not backup_id:
        return "a backup record has no BackupId"
    if parse_time(raw.get("BackupStartTime")) is None:
        return f"backup {backup_id}: BackupStartTime missing or not a time"
    status = to_str(raw.get("BackupStatus"))
    if not status:
        return f"backup {backup_id}: BackupStatus missing"
    if status == "Success" and parse_time(raw.get("BackupEndTime")) is None:
        return f"backup {backup_id}: BackupEndTime missing or not a time"
    return None


def parse_backups_page(body: Mapping[str, Any]) -> BackupsPage:
    container = body.get("Items")
    if isinstance(container, Mapping):
        container = container.get("Backup")
    raw_items: list[Any] = container if isinstance(container, list) else []
    for raw in raw_items:
        problem = _unusable(raw)
        if problem is not None:
            raise ResponseShapeError(problem)
    items = tuple(b for b in (parse_backup(raw) for raw in raw_items) if b is not None)
    return BackupsPage(
        items=items,
        page_number=to_int(body.get("PageNumber")),
        page_record_count=to_int(body.get("PageRecordCount")),
        total_record_count=to_int(body.get("TotalRecordCount")),
        snapshot_chain_bytes=to_int(body.get("TotalEcsSnapshotSize")),
        raw_count=len(raw_items),
        request_id=to_str(body.get("RequestId")),
    )


@dataclass(frozen=True)
class BackupPolicy:
    """DescribeBackupPolicy, as given; interpreting the schedule is the poller's business."""

    preferred_backup_period: str
    preferred_backup_time: str
    retention_days: int | None
    log_backup_enabled: bool | None
    log_retention_days: int | None
    next_backup_time: float | None
    backup_interval_minutes: int | None
    category: str
    request_id: str


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
        preferred_backup_period=to_str(body.get("PreferredBackupPeriod")),
        preferred_backup_time=to_str(body.get("PreferredBackupTime")),
        retention_days=to_int(body.get("BackupRetentionPeriod")),
        log_backup_enabled=_flag(body.get("EnableBackupLog")),
        log_retention_days=to_int(body.get("LogBackupRetentionPeriod")),
        next_backup_time=parse_time(body.get("PreferredNextBackupTime")),
        backup_interval_minutes=to_int(body.get("BackupInterval")),
        category=to_str(body.get("Category")),
        request_id=to_str(body.get("RequestId")),
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


@dataclass(frozen=True)
class DBInstancesPage:
    items: tuple[DBInstance, ...]
    page_number: int | None
    total_record_count: int | None
    raw_count: int
    next_token: str
    request_id: str


def parse_db_instances_page(body: Mapping[str, Any]) -> DBInstancesPage:
    raw_items = _items(body, "Items", "DBInstance")
    items = tuple(
        DBInstance(
            instance_id=to_str(raw.get("DBInstanceId")),
            region_id=to_str(raw.get("RegionId")),
            engine=to_str(raw.get("Engine")),
            engine_version=to_str(raw.get("EngineVersion")),
            description=to_str(raw.get("DBInstanceDescription")),
            status=to_str(raw.get("DBInstanceStatus")),
            instance_type=to_str(raw.get("DBInstanceType")),
            resource_group_id=to_str(raw.get("ResourceGroupId")),
        )
        for raw in raw_items
        if to_str(raw.get("DBInstanceId"))
    )
    return DBInstancesPage(
        items=items,
        page_number=to_int(body.get("PageNumber")),
        total_record_count=to_int(body.get("TotalRecordCount")),
        raw_count=len(raw_items),
        next_token=to_str(body.get("NextToken")),
        request_id=to_str(body.get("RequestId")),
    )
