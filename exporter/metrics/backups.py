"""Per instance: the backup sets (DescribeBackups), the instance, collection health and the
backup policy (DescribeBackupPolicy)."""

from __future__ import annotations

from exporter.aliyun.client import DESCRIBE_BACKUP_POLICY, DESCRIBE_DB_INSTANCES
from exporter.metrics.base import BY_TYPE, Kind, MetricDef

# Per instance, in the order /metrics lists them.
LAST_SUCCESS = MetricDef(
    "backup_last_success_timestamp_seconds",
    Kind.GAUGE,
    "BackupEndTime of the newest restorable backup within lookback (BackupStatus Success and "
    "IsAvail not 0)",
    BY_TYPE,
)
LAST_SUCCESS_AGE = MetricDef(
    "backup_last_success_age_seconds",
    Kind.GAUGE,
    "Seconds since the newest restorable backup ended, at scrape time",
    BY_TYPE,
    at_scrape=True,
)
LAST_SUCCESS_SIZE = MetricDef(
    "backup_last_success_size_bytes",
    Kind.GAUGE,
    "BackupSize of the newest restorable backup",
    BY_TYPE,
)
LAST_SUCCESS_DURATION = MetricDef(
    "backup_last_success_duration_seconds",
    Kind.GAUGE,
    "End minus start of the newest restorable backup",
    BY_TYPE,
)
LAST_SUCCESS_AVAILABLE = MetricDef(
    "backup_last_success_available",
    Kind.GAUGE,
    "IsAvail of the newest restorable backup: always 1, as backups with IsAvail 0 are not "
    "restore points (see backup_unusable_sets)",
    BY_TYPE,
)
LAST_SUCCESS_CONSISTENT = MetricDef(
    "backup_last_success_consistent_timestamp_seconds",
    Kind.GAUGE,
    "ConsistentTime of the newest restorable backup, when the API gives one",
    BY_TYPE,
)
LAST_SUCCESS_INFO = MetricDef(
    "backup_last_success",
    Kind.INFO,
    "What the newest restorable backup was: method, mode, initiator, storage",
    BY_TYPE,
)
LAST_AUTOMATED = MetricDef(
    "backup_last_automated_success_timestamp_seconds",
    Kind.GAUGE,
    "BackupEndTime of the newest restorable backup taken by the schedule (BackupMode "
    "Automated), which a manual backup cannot stand in for",
    BY_TYPE,
)
LAST_UNUSABLE = MetricDef(
    "backup_last_unusable_timestamp_seconds",
    Kind.GAUGE,
    "BackupEndTime of the newest backup that succeeded but cannot be restored from (IsAvail 0)",
    BY_TYPE,
)
UNUSABLE_SETS = MetricDef(
    "backup_unusable_sets",
    Kind.GAUGE,
    "Successful backups within lookback that cannot be restored from (IsAvail 0)",
    BY_TYPE,
)
LAST_STATUS = MetricDef(
    "backup_last_status",
    Kind.GAUGE,
    "1 if the newest completed backup succeeded, 0 if it failed",
    BY_TYPE,
)
LAST_FAILURE = MetricDef(
    "backup_last_failure_timestamp_seconds",
    Kind.GAUGE,
    "BackupEndTime (else start) of the newest failed backup within lookback",
    BY_TYPE,
)
SETS = MetricDef(
    "backup_sets",
    Kind.GAUGE,
    "Completed backups (successful or failed) within lookback",
    BY_TYPE,
)
FAILED_SETS = MetricDef("backup_failed_sets", Kind.GAUGE, "Failed backups within lookback", BY_TYPE)
FAILURES = MetricDef(
    "backup_failures",
    Kind.COUNTER,
    "Distinct failed backups first seen after the instance's first successful poll",
    BY_TYPE,
)
LOOKBACK_COMPLETE = MetricDef(
    "backup_lookback_complete",
    Kind.GAUGE,
    "1 once the reads reach back the whole lookback, 0 while the backfill after a start is "
    "still reading older windows: the newest backups are known either way, but the sets, "
    "failed sets and the last failure may not count all of the lookback yet",
)
SKIPPED_RECORDS = MetricDef(
    "backup_skipped_records",
    Kind.GAUGE,
    "Backup records read within lookback that were skipped: unreadable (no id, start time or "
    "status) or impossible (dated in the future)",
)
SNAPSHOT_CHAIN = MetricDef(
    "backup_snapshot_chain_bytes",
    Kind.GAUGE,
    "TotalEcsSnapshotSize: size of the instance's snapshot chain",
)
INSTANCE_INFO = MetricDef(
    "instance",
    Kind.INFO,
    "Instance metadata from the configuration and DescribeDBInstances (discovery), a join "
    "target for names and labels",
    (),
    feed=None,
)
INSTANCE_CREATED = MetricDef(
    "instance_created_timestamp_seconds",
    Kind.GAUGE,
    "CreateTime of a discovered instance: no restorable window can start before it",
    feed=DESCRIBE_DB_INSTANCES,
)
COLLECT_SUCCESS = MetricDef(
    "backup_collect_success",
    Kind.GAUGE,
    "1 if the instance's last poll succeeded, 0 if it failed",
)
COLLECT_LAST_SUCCESS = MetricDef(
    "backup_collect_last_success_timestamp_seconds",
    Kind.GAUGE,
    "When the instance's last successful poll finished",
    at_scrape=True,
)
POLICY_INTERVAL = MetricDef(
    "backup_policy_expected_interval_seconds",
    Kind.GAUGE,
    "Longest time between two scheduled full backups: the longest gap between consecutive "
    "PreferredBackupPeriod days plus the PreferredBackupTime window",
    feed=DESCRIBE_BACKUP_POLICY,
)
POLICY_RETENTION = MetricDef(
    "backup_policy_retention_days",
    Kind.GAUGE,
    "BackupRetentionPeriod: days data backups are kept",
    feed=DESCRIBE_BACKUP_POLICY,
)
POLICY_LOG_BACKUP = MetricDef(
    "backup_policy_log_backup_enabled",
    Kind.GAUGE,
    "1 if log backup (EnableBackupLog) is on, 0 if off",
    feed=DESCRIBE_BACKUP_POLICY,
)
POLICY_NEXT_BACKUP = MetricDef(
    "backup_policy_next_backup_timestamp_seconds",
    Kind.GAUGE,
    "When the next scheduled backup is due: PreferredNextBackupTime, or once that has passed "
    "the next scheduled window's start",
    feed=DESCRIBE_BACKUP_POLICY,
    at_scrape=True,
)
POLICY_LOG_RETENTION = MetricDef(
    "backup_policy_log_retention_days",
    Kind.GAUGE,
    "LogBackupRetentionPeriod: days log backups are kept",
    feed=DESCRIBE_BACKUP_POLICY,
)
POLICY_LOG_INTERVAL = MetricDef(
    "backup_policy_log_backup_interval_seconds",
    Kind.GAUGE,
    "Seconds between log backups where the policy says (SQL Server: every 5 or 30 minutes, or "
    "with the data backups): the recovery-point lag the policy implies",
    feed=DESCRIBE_BACKUP_POLICY,
)
