"""Typed results of the disaster-recovery and cost actions: an instance's cross-region backup
settings (DescribeInstanceCrossBackupPolicy), the copies made in another region
(DescribeCrossRegionBackups) and backup storage (DescribeResourceUsage). Read as leniently as
``models``; a body without the fields that carry the answer is a ``ResponseShapeError``.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

from exporter.aliyun.client import RdsClient, paged
from exporter.aliyun.errors import untrusted
from exporter.aliyun.models import (
    ResponseShapeError,
    format_api_second,
    items_of,
    parse_time,
    to_int,
    to_str,
)

DESCRIBE_CROSS_BACKUP_POLICY = "DescribeInstanceCrossBackupPolicy"
DESCRIBE_CROSS_REGION_BACKUPS = "DescribeCrossRegionBackups"
DESCRIBE_RESOURCE_USAGE = "DescribeResourceUsage"
# The restorable window of one copy (MySQL on local disks); not the instance's own window.
DESCRIBE_COPY_RECOVERY_TIME = "DescribeAvailableRecoveryTime"
# Its answers that say the copy cannot be restored: monitoring signals, not failures to ask.
COPY_UNRESTORABLE_CODES = frozenset(
    {"NoAvailableLogBackup", "NoAvailableDisasterRestoreBakset", "InvalidBackupSetID.NotFound"}
)
# DescribeCrossRegionBackups answers a page past the end with this (not DescribeBackups' code).
CROSS_PAGE_PAST_END = "InvalidPage.notFound"
CROSS_PAGE_SIZE = 100  # it takes 30, 50 or 100 only
# The engine or edition has no cross-region backup: an answer about the instance.
CROSS_BACKUP_NOT_SUPPORTED = "CrossBackupNotSupport"


@dataclass(frozen=True, slots=True)
class CrossRegionPolicy:
    enabled: bool  # BackupEnabled: data backups are copied to another region
    log_enabled: bool  # LogBackupEnabled: log backups too (point-in-time restore there)
    destination: str  # CrossBackupRegion ("" when not said)
    retention_days: int | None  # Retention of the copies
    enabled_at: float | None = None  # BackupEnabledTime, while on


def _switch(body: Mapping[str, Any], field: str) -> bool:
    value = body.get(field)
    text = value.strip().lower() if isinstance(value, str) else value
    if text in ("enable", "enabled", "1", 1, True):
        return True
    if text in ("disable", "disabled", "0", 0, False, ""):  # blank: never set up
        return False
    raise ResponseShapeError(f"{field} is neither Enable nor Disable")


def parse_cross_region_policy(body: Mapping[str, Any]) -> CrossRegionPolicy:
    enabled = _switch(body, "BackupEnabled")
    retention = to_int(body.get("Retention"))
    return CrossRegionPolicy(
        enabled=enabled,
        # Without copies, the log switch (if given at all) says nothing.
        log_enabled=enabled and "LogBackupEnabled" in body and _switch(body, "LogBackupEnabled"),
        destination=untrusted(to_str(body.get("CrossBackupRegion")), 64) if enabled else "",
        retention_days=retention if retention is not None and retention > 0 else None,
        enabled_at=parse_time(body.get("BackupEnabledTime")) if enabled else None,
    )


@dataclass(frozen=True, slots=True)
class CrossCopy:
    """One copy in the destination region. Its times are the source backup's."""

    copy_id: str  # CrossBackupId
    succeeded: bool  # BackupSetStatus 0 (1: the copy failed)
    start: float  # BackupStartTime
    end: float  # BackupEndTime
    size_bytes: int | None  # CrossBackupSetSize


@dataclass(frozen=True)
class CrossCopiesPage:
    items: tuple[CrossCopy, ...]
    total_record_count: int | None
    raw_count: int


def parse_cross_copies_page(body: Mapping[str, Any], page_size: int | None) -> CrossCopiesPage:
    raw_items = items_of(body, "Items", "Item", page_size)
    copies = [copy for copy in map(_copy, raw_items) if copy is not None]
    return CrossCopiesPage(tuple(copies), to_int(body.get("TotalRecordCount")), len(raw_items))


def _copy(raw: object) -> CrossCopy | None:
    """None for a record that cannot be placed or judged: no id, times or status."""
    if not isinstance(raw, Mapping):
        return None
    copy_id = untrusted(to_str(raw.get("CrossBackupId")), 64)
    status = to_int(raw.get("BackupSetStatus"))
    start, end = parse_time(raw.get("BackupStartTime")), parse_time(raw.get("BackupEndTime"))
    if not copy_id or status not in (0, 1) or start is None or end is None or end < start:
        return None
    size = to_int(raw.get("CrossBackupSetSize"))
    return CrossCopy(copy_id, status == 0, start, end, size if size and size >= 0 else None)


def iter_cross_copy_pages(
    client: RdsClient, instance_id: str, region: str, start: float, end: float
) -> AsyncIterator[CrossCopiesPage]:
    """Every page of the copies of backups in [start, end] (the source instance's region)."""
    parse = functools.partial(parse_cross_copies_page, page_size=CROSS_PAGE_SIZE)

    def fetch(number: int) -> Awaitable[CrossCopiesPage]:
        params = {
            "DBInstanceId": instance_id,
            "RegionId": region,
            "StartTime": format_api_second(start),
            "EndTime": format_api_second(end),
            "PageSize": str(CROSS_PAGE_SIZE),
            "PageNumber": str(number),
        }
        return client.call(DESCRIBE_CROSS_REGION_BACKUPS, params, region=region, parse=parse)

    return paged(DESCRIBE_CROSS_REGION_BACKUPS, fetch, CROSS_PAGE_SIZE, CROSS_PAGE_PAST_END)


# DescribeResourceUsage fields by the `kind` label they are exported with.
STORAGE_FIELDS = {
    "total": "BackupSize",
    "data": "BackupDataSize",
    "log": "BackupLogSize",
    "oss_data": "BackupOssDataSize",
    "oss_log": "BackupOssLogSize",
    "archive": "ArchiveBackupSize",
    "cold": "ColdBackupSize",
    "ecs_snapshot": "BackupEcsSnapshotSize",  # a string in the answer
}


@dataclass(frozen=True, slots=True)
class StorageUsage:
    """Backup storage as the API gives it: no field is derived from another (the API's sums do
    not add up). -1 (no data) and anything unreadable are left out."""

    bytes_by_kind: Mapping[str, int]
    paid_bytes: int | None  # PaidBackupSize: billed beyond the free quota


def parse_storage_usage(body: Mapping[str, Any]) -> StorageUsage:
    if not any(field in body for field in (*STORAGE_FIELDS.values(), "PaidBackupSize")):
        raise ResponseShapeError("none of the backup size fields is there")
    sizes = {kind: to_int(body.get(field)) for kind, field in STORAGE_FIELDS.items()}
    paid = to_int(body.get("PaidBackupSize"))
    return StorageUsage(
        bytes_by_kind={
            kind: size for kind, size in sizes.items() if size is not None and size >= 0
        },
        paid_bytes=paid if paid is not None and paid >= 0 else None,
    )
