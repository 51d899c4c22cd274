"""DescribeResourceUsage's figures, from what the fleet measured of one instance's backups and
logs: pure functions, no clock of their own.

Backup bytes are measured (data backups within the backup retention, log files within the log
retention); the instance's own disk, its SQL audit data and its cold backups are drawn from
hashes of their own. The free quota follows the billing docs: 50% of the purchased storage on
local disks, 200% on cloud disks; PaidBackupSize = max(0, data + log - quota).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from exporter.simulator.logchain import (
    PG_FILES_PER_DAY,
    WAL_SEGMENT_BYTES,
    hash_words,
    log_bytes_per_second,
    unit,
)
from exporter.simulator.models import SimInstance
from exporter.simulator.timefmt import DAY

GIB = 1 << 30
MIN_STORAGE_GB = 20
STORAGE_STEP_GB = 5
QUOTA_HEADROOM = (1.2, 3.0)  # drawn storage: the quota covers this many times the usage
ESTIMATE_DAYS = 30
LOCAL_QUOTA_SHARE = 0.5
CLOUD_QUOTA_SHARE = 2.0
COLD_RATE = 0.1  # share of instances with cold backups (the others answer -1)
SQL_AUDIT_RATE = 0.3  # share with SQL audit data (the others answer -1)
NO_DATA = -1


@dataclass(frozen=True)
class BackupBytes:
    """What one instance's backups and log backups take up at some time."""

    physical: int  # successful non-snapshot data backups, outside the archive
    snapshot: int  # successful snapshot backups
    archive: int  # successful data backups kept in archive storage (StorageClass "1")
    log: int  # log files in backup storage
    has_backup: bool  # any successful data backup within the retention

    @property
    def data(self) -> int:
        """BackupDataSize: data backups but archived ones (SQL Server: physical plus snapshot)."""
        return self.physical + self.snapshot


def quota_share(instance: SimInstance) -> float:
    return LOCAL_QUOTA_SHARE if instance.storage_type == "local_ssd" else CLOUD_QUOTA_SHARE


def free_quota_bytes(instance: SimInstance, storage_gb: int) -> int:
    return int(quota_share(instance) * storage_gb * GIB)


def paid_bytes(instance: SimInstance, measured: BackupBytes, storage_gb: int) -> int:
    return max(0, measured.data + measured.log - free_quota_bytes(instance, storage_gb))


def disk_bytes(seed: int, instance: SimInstance, now: float) -> tuple[int, int]:
    """DataSize and LogSize: the instance's own data and log files, growing with its data."""
    words = hash_words(seed, "disk", instance.instance_id)
    age = max(0.0, (now - instance.created_at) / DAY)
    data = int(instance.base_size_bytes * (1.5 + 2.5 * unit(words[0])))
    data = int(data * (1.0 + instance.daily_growth) ** age)
    return data, int(data * (0.01 + 0.2 * unit(words[1])))


def _data_estimate(instance: SimInstance) -> float:
    """About the most its successful data backups take within the retention (a month at
    most: an instance that keeps a year of backups outgrows its quota, as in real life)."""
    policy = instance.policy
    days = min(policy.retention_days, ESTIMATE_DAYS)
    fulls = math.ceil(days * len(policy.weekdays) / 7) + 1  # and a manual one
    incremental = days * 0.1 if policy.incremental else 0.0
    return instance.base_size_bytes * (1.0 + instance.daily_growth) ** days * (fulls + incremental)


def _log_estimate(seed: int, instance: SimInstance) -> float:
    """About the most its log files take within the log retention (see ``logchain``)."""
    policy = instance.policy
    if not instance.has_backups or (not policy.log_backup and instance.engine != "SQLServer"):
        return 0.0
    seconds = policy.log_retention_days * DAY
    if instance.engine == "PostgreSQL":
        per_second = WAL_SEGMENT_BYTES * PG_FILES_PER_DAY[1] / DAY
    else:
        # Rate with its widest wobble, plus a file's overhead every five minutes.
        per_second = 1.3 * log_bytes_per_second(seed, instance.instance_id) + 8192 / 300
    nodes = 1 if instance.engine == "SQLServer" else len(instance.host_ids)
    return per_second * seconds * nodes


def derived_storage_gb(seed: int, instance: SimInstance) -> int:
    """Purchased storage for an instance that has none set: room for its disk a month after
    its creation, and a free quota a drawn 1.2 to 3 times what its backups take at most (so
    that the instance pays nothing for backup storage unless a test shrinks it). A function of
    the instance alone: no knob a test turns changes it."""
    words = hash_words(seed, "storage", instance.instance_id)
    low, high = QUOTA_HEADROOM
    headroom = low + (high - low) * unit(words[0])
    backups = _data_estimate(instance) + _log_estimate(seed, instance)
    quota_gb = headroom * backups / quota_share(instance) / GIB
    grown = instance.created_at + ESTIMATE_DAYS * DAY
    disk_gb = 1.25 * sum(disk_bytes(seed, instance, grown)) / GIB
    needed = max(MIN_STORAGE_GB, math.ceil(quota_gb), math.ceil(disk_gb))
    return -(-needed // STORAGE_STEP_GB) * STORAGE_STEP_GB


def _drawn_or_none(word: int, rate: float, size: int) -> int:
    return size if unit(word) < rate else NO_DATA


def usage_fields(
    seed: int,
    instance: SimInstance,
    measured: BackupBytes,
    *,
    paid: int,
    now: float,
    backup_size_oss: bool = True,
    ecs_snapshot_field: bool = True,
) -> dict[str, int | str]:
    """Every field DescribeResourceUsage answers but RequestId.

    The OSS sizes are what the sets take once stored (data compressed to a drawn 10 to 50%,
    logs 90 to 100%); BackupSize is their sum, as in the official example
    (``backup_size_oss``; else BackupDataSize + BackupLogSize), and -1 while the instance has
    no successful data backup. ``ecs_snapshot_field``: BackupEcsSnapshotSize is answered.
    """
    words = hash_words(seed, "usage", instance.instance_id)
    oss_data = int(measured.physical * (0.1 + 0.4 * unit(words[0])))
    oss_log = int(measured.log * (0.9 + 0.1 * unit(words[1])))
    total = oss_data + oss_log if backup_size_oss else measured.data + measured.log
    data_size, log_size = disk_bytes(seed, instance, now)
    fields: dict[str, int | str] = {
        "DBInstanceId": instance.instance_id,
        "Engine": instance.engine,
        "BackupSize": total if measured.has_backup else NO_DATA,
        "BackupDataSize": measured.data,
        "BackupLogSize": measured.log,
        "BackupOssDataSize": oss_data,
        "BackupOssLogSize": oss_log,
        "ArchiveBackupSize": measured.archive,
        "ColdBackupSize": _drawn_or_none(
            words[2], COLD_RATE, int(instance.base_size_bytes * (0.5 + 2 * unit(words[3])))
        ),
        "PaidBackupSize": paid,
        "DiskUsed": data_size + log_size,  # documented as DataSize + LogSize
        "DataSize": data_size,
        "LogSize": log_size,
        "SQLSize": _drawn_or_none(words[4], SQL_AUDIT_RATE, int(data_size * unit(words[5]))),
    }
    if ecs_snapshot_field:
        # SQL Server's snapshot backups only, and a string, as documented.
        sql_server = instance.engine == "SQLServer"
        fields["BackupEcsSnapshotSize"] = str(measured.snapshot if sql_server else 0)
    return fields
