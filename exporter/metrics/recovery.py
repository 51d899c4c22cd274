"""Per instance: can we restore, and to when? The restorable window, the log backups and the
running backups."""

from __future__ import annotations

from exporter.aliyun.recovery import DESCRIBE_BACKUP_TASKS, DESCRIBE_LOCAL_RECOVERY_TIME
from exporter.metrics.base import LOG_BACKUP_FILES, Kind, MetricDef

RECOVERY_WINDOW_START = MetricDef(
    "recovery_window_start_timestamp_seconds",
    Kind.GAUGE,
    "RecoveryBeginTime: the earliest time a point-in-time restore can reach",
    feed=DESCRIBE_LOCAL_RECOVERY_TIME,
)
RECOVERY_WINDOW_END = MetricDef(
    "recovery_window_end_timestamp_seconds",
    Kind.GAUGE,
    "RecoveryEndTime: the latest time a point-in-time restore can reach",
    feed=DESCRIBE_LOCAL_RECOVERY_TIME,
)
RECOVERY_LAG = MetricDef(
    "recovery_point_lag_seconds",
    Kind.GAUGE,
    "Seconds from the latest restorable time to the scrape: what a restore now would lose",
    feed=DESCRIBE_LOCAL_RECOVERY_TIME,
    at_scrape=True,
)
RECOVERY_BROKEN = MetricDef(
    "recovery_broken",
    Kind.GAUGE,
    "1 while the API answers that point-in-time recovery is broken, with its code as reason "
    "(LogBackupNotEnabled, InvalidBinlog.NotFound, InvalidBackup.NotFound); absent while it "
    "works, and once asking has failed for two refreshes",
    ("instance_id", "reason"),
    feed=DESCRIBE_LOCAL_RECOVERY_TIME,
)
LOG_LAST_END = MetricDef(
    "log_backup_last_end_timestamp_seconds",
    Kind.GAUGE,
    "LogEndTime of the newest log backup file in backup storage",
    feed=LOG_BACKUP_FILES,
)
LOG_LAST_END_AGE = MetricDef(
    "log_backup_last_end_age_seconds",
    Kind.GAUGE,
    "Seconds since the newest log backup file in backup storage ends, at scrape time",
    feed=LOG_BACKUP_FILES,
    at_scrape=True,
)
LOG_GAP = MetricDef(
    "log_backup_gap_seconds",
    Kind.GAUGE,
    "Seconds between the first and the newest log backup file within lookback that no file of "
    "any node covers: times a point-in-time restore cannot reach",
    feed=LOG_BACKUP_FILES,
)
LOG_UPLOADING = MetricDef(
    "log_backup_uploading_files",
    Kind.GAUGE,
    "Log backup files not yet in backup storage (RemoteStatus Uploading)",
    feed=LOG_BACKUP_FILES,
)
LOG_UPLOADING_AGE = MetricDef(
    "log_backup_oldest_uploading_seconds",
    Kind.GAUGE,
    "Seconds since the oldest log backup file still uploading was closed (its LogEndTime), "
    "at scrape time",
    feed=LOG_BACKUP_FILES,
    at_scrape=True,
)
LOG_STORED_BYTES = MetricDef(
    "log_backup_stored_bytes",
    Kind.GAUGE,
    "FileSize of the log backup files within lookback that are in backup storage, summed",
    feed=LOG_BACKUP_FILES,
)
JOBS_RUNNING = MetricDef(
    "backup_running_jobs",
    Kind.GAUGE,
    "Backups running or queued now",
    feed=DESCRIBE_BACKUP_TASKS,
)
JOBS_FAILED = MetricDef(
    "backup_failed_jobs",
    Kind.GAUGE,
    "Backup jobs the API lists as Failed",
    feed=DESCRIBE_BACKUP_TASKS,
)
JOB_PROGRESS = MetricDef(
    "backup_running_job_progress_ratio",
    Kind.GAUGE,
    "Progress (0 to 1) of the running backup that has run longest",
    feed=DESCRIBE_BACKUP_TASKS,
)
JOB_RUNNING_SECONDS = MetricDef(
    "backup_running_job_seconds",
    Kind.GAUGE,
    "Seconds since the exporter first saw the running backup that has run longest (the API "
    "gives no start time), at scrape time",
    feed=DESCRIBE_BACKUP_TASKS,
    at_scrape=True,
)
JOB_STALLED_SECONDS = MetricDef(
    "backup_running_job_stalled_seconds",
    Kind.GAUGE,
    "Seconds since a running backup's progress last moved (the longest such wait), at scrape time",
    feed=DESCRIBE_BACKUP_TASKS,
    at_scrape=True,
)
