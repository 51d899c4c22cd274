"""Per instance: disaster recovery (cross-region copies) and what backups cost (storage)."""

from __future__ import annotations

from exporter.aliyun.copies import (
    COPY_UNRESTORABLE_CODES,
    DESCRIBE_COPY_RECOVERY_TIME,
    DESCRIBE_CROSS_BACKUP_POLICY,
    DESCRIBE_CROSS_REGION_BACKUPS,
    DESCRIBE_RESOURCE_USAGE,
)
from exporter.metrics.base import Kind, MetricDef

CROSS_ENABLED = MetricDef(
    "cross_region_backup_enabled",
    Kind.GAUGE,
    "1 if the instance's backups are copied to another region (BackupEnabled), 0 if not, or if "
    "the API says the instance cannot have cross-region backup (CrossBackupNotSupport)",
    feed=DESCRIBE_CROSS_BACKUP_POLICY,
)
CROSS_ENABLED_AT = MetricDef(
    "cross_region_backup_enabled_timestamp_seconds",
    Kind.GAUGE,
    "When cross-region backup was switched on (BackupEnabledTime), while it is on",
    feed=DESCRIBE_CROSS_BACKUP_POLICY,
)
CROSS_LOG_ENABLED = MetricDef(
    "cross_region_log_backup_enabled",
    Kind.GAUGE,
    "1 if its log backups are copied too (LogBackupEnabled): a restore to a point in time in "
    "the other region",
    feed=DESCRIBE_CROSS_BACKUP_POLICY,
)
CROSS_RETENTION = MetricDef(
    "cross_region_backup_retention_days",
    Kind.GAUGE,
    "Days the copies are kept in the other region (Retention)",
    feed=DESCRIBE_CROSS_BACKUP_POLICY,
)
CROSS_INFO = MetricDef(
    "cross_region_backup",
    Kind.INFO,
    "Where the copies go (CrossBackupRegion), while cross-region backup is on",
    feed=DESCRIBE_CROSS_BACKUP_POLICY,
)
COPY_LAST_SUCCESS = MetricDef(
    "cross_region_backup_last_success_timestamp_seconds",
    Kind.GAUGE,
    "BackupEndTime of the backup behind the newest copy in the other region that succeeded "
    "(BackupSetStatus 0), within lookback",
    feed=DESCRIBE_CROSS_REGION_BACKUPS,
)
COPY_LAST_SUCCESS_AGE = MetricDef(
    "cross_region_backup_last_success_age_seconds",
    Kind.GAUGE,
    "Seconds since the backup behind the newest good copy ended, at scrape time",
    feed=DESCRIBE_CROSS_REGION_BACKUPS,
    at_scrape=True,
)
COPY_LAST_FAILURE = MetricDef(
    "cross_region_backup_last_failure_timestamp_seconds",
    Kind.GAUGE,
    "BackupEndTime of the backup behind the newest copy that failed (BackupSetStatus 1), "
    "within lookback",
    feed=DESCRIBE_CROSS_REGION_BACKUPS,
)
COPY_SETS = MetricDef(
    "cross_region_backup_sets",
    Kind.GAUGE,
    "Copies in the other region within lookback, failed ones included",
    feed=DESCRIBE_CROSS_REGION_BACKUPS,
)
COPY_FAILED_SETS = MetricDef(
    "cross_region_backup_failed_sets",
    Kind.GAUGE,
    "Copies in the other region within lookback that failed",
    feed=DESCRIBE_CROSS_REGION_BACKUPS,
)
COPY_WINDOW_START = MetricDef(
    "cross_region_recovery_window_start_timestamp_seconds",
    Kind.GAUGE,
    "RecoveryBeginTime of the newest good copy: the earliest time a restore from it in the other "
    "region can reach (MySQL on local disks)",
    feed=DESCRIBE_COPY_RECOVERY_TIME,
)
COPY_WINDOW_END = MetricDef(
    "cross_region_recovery_window_end_timestamp_seconds",
    Kind.GAUGE,
    "RecoveryEndTime of the newest good copy: the latest time a restore from it can reach",
    feed=DESCRIBE_COPY_RECOVERY_TIME,
)
COPY_BROKEN = MetricDef(
    "cross_region_recovery_broken",
    Kind.GAUGE,
    "1 while the API answers that the newest good copy cannot be restored, with its code as "
    f"reason ({', '.join(sorted(COPY_UNRESTORABLE_CODES))})",
    ("instance_id", "reason"),
    feed=DESCRIBE_COPY_RECOVERY_TIME,
)
STORAGE_BYTES = MetricDef(
    "backup_storage_bytes",
    Kind.GAUGE,
    "Backup storage by kind, as DescribeResourceUsage gives it: total (BackupSize), data, log, "
    "oss_data, oss_log, archive, cold, ecs_snapshot; absent where the API says -1 (no data). "
    "The kinds do not add up to the total",
    ("instance_id", "kind"),
    feed=DESCRIBE_RESOURCE_USAGE,
)
STORAGE_PAID = MetricDef(
    "backup_storage_paid_bytes",
    Kind.GAUGE,
    "Backup storage billed beyond the free quota (PaidBackupSize)",
    feed=DESCRIBE_RESOURCE_USAGE,
)
