"""Every metric the exporter serves, in one table: name, type, HELP, labels, where the value
comes from, and whether it is read at scrape time.

The collector (``exporter.collector``) builds its families from :data:`INSTANCE_METRICS` and
:data:`FLEET_METRICS`, in this order; the /metrics cache (``exporter.exposition``) formats an
instance's lines once per change of its state, except for the metrics marked ``at_scrape``,
whose values it asks for at every scrape; the exporter's own metrics (``exporter.telemetry``)
take their name, HELP and labels from :data:`SELF_METRICS`; and a test checks that the
README's table lists exactly :func:`exposed_names`.

Adding a metric: one entry here, and the code that computes its value (``collector.py``:
``render_instance`` for a value that changes with the state, ``SCRAPE_TIME_VALUES`` for one
read at every scrape).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from exporter.aliyun.client import DESCRIBE_BACKUP_POLICY, DESCRIBE_BACKUPS, DESCRIBE_DB_INSTANCES
from exporter.aliyun.recovery import DESCRIBE_BACKUP_TASKS, DESCRIBE_LOCAL_RECOVERY_TIME

PREFIX = "aliyun_rds_"
BY_TYPE = ("instance_id", "backup_type")
BY_INSTANCE = ("instance_id",)
# The feed of the log backup metrics: one action or the other, by engine.
LOG_BACKUP_FILES = "DescribeBinlogFiles/DescribeLogBackupFiles"


class Kind(enum.Enum):
    GAUGE = "gauge"
    COUNTER = "counter"  # exposed with _total
    INFO = "info"  # exposed with _info, value 1, its data in labels
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class MetricDef:
    name: str
    """Without the prefix, and without the ``_total``/``_info`` the type adds."""
    kind: Kind
    help: str
    """One sentence, no final period: ``help_text`` adds where the value comes from."""
    labels: tuple[str, ...] = BY_INSTANCE
    """For info metrics, the labels every sample has besides its data."""
    feed: str | None = DESCRIBE_BACKUPS
    """The API action whose background poll gives the value; None for what the exporter
    knows itself."""
    at_scrape: bool = False
    """Read at every scrape, not formatted once per change of the instance's state: the value
    depends on the scrape time, or changes at every poll."""

    @property
    def full_name(self) -> str:
        return PREFIX + self.name

    @property
    def exposed_name(self) -> str:
        """The sample name a scrape shows (a histogram's family name)."""
        suffix = {Kind.COUNTER: "_total", Kind.INFO: "_info"}.get(self.kind, "")
        return self.full_name + suffix

    def help_text(self, intervals: Mapping[str, str]) -> str:
        """The HELP line: the sentence, and how often its feed is polled."""
        if self.feed is None:
            return f"{self.help}."
        return f"{self.help} (from a background poll of {self.feed} every {intervals[self.feed]})."


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
INSTANCE_METRICS: tuple[MetricDef, ...] = (
    LAST_SUCCESS,
    LAST_SUCCESS_AGE,
    LAST_SUCCESS_SIZE,
    LAST_SUCCESS_DURATION,
    LAST_SUCCESS_AVAILABLE,
    LAST_SUCCESS_CONSISTENT,
    LAST_SUCCESS_INFO,
    LAST_AUTOMATED,
    LAST_UNUSABLE,
    UNUSABLE_SETS,
    LAST_STATUS,
    LAST_FAILURE,
    SETS,
    FAILED_SETS,
    FAILURES,
    SKIPPED_RECORDS,
    SNAPSHOT_CHAIN,
    INSTANCE_INFO,
    INSTANCE_CREATED,
    COLLECT_SUCCESS,
    COLLECT_LAST_SUCCESS,
    POLICY_INTERVAL,
    POLICY_RETENTION,
    POLICY_LOG_BACKUP,
    POLICY_NEXT_BACKUP,
    POLICY_LOG_RETENTION,
    POLICY_LOG_INTERVAL,
    RECOVERY_WINDOW_START,
    RECOVERY_WINDOW_END,
    RECOVERY_LAG,
    RECOVERY_BROKEN,
    LOG_LAST_END,
    LOG_LAST_END_AGE,
    LOG_GAP,
    LOG_UPLOADING,
    LOG_UPLOADING_AGE,
    LOG_STORED_BYTES,
    JOBS_RUNNING,
    JOBS_FAILED,
    JOB_PROGRESS,
    JOB_RUNNING_SECONDS,
    JOB_STALLED_SECONDS,
)

# About the fleet as a whole, after the instances' families.
BY_DISCOVERY = ("account", "region_id")
EXPORTER_INSTANCES = MetricDef(
    "exporter_instances",
    Kind.GAUGE,
    "Instances being polled, by where they came from (static config or discovery)",
    ("source",),
    feed=None,
)
BUILD_INFO = MetricDef("exporter_build", Kind.INFO, "Exporter version", (), feed=None)
DISCOVERY_SUCCESS = MetricDef(
    "discovery_success",
    Kind.GAUGE,
    "1 if the last instance discovery succeeded, 0 if it failed",
    BY_DISCOVERY,
    feed=DESCRIBE_DB_INSTANCES,
)
DISCOVERY_LAST_SUCCESS = MetricDef(
    "discovery_last_success_timestamp_seconds",
    Kind.GAUGE,
    "When instance discovery last succeeded",
    BY_DISCOVERY,
    feed=DESCRIBE_DB_INSTANCES,
)
DISCOVERY_INSTANCES = MetricDef(
    "discovery_instances",
    Kind.GAUGE,
    "Instances the last successful discovery found, after filtering; those still in their "
    "grace period are not counted",
    BY_DISCOVERY,
    feed=DESCRIBE_DB_INSTANCES,
)
FLEET_METRICS: tuple[MetricDef, ...] = (
    EXPORTER_INSTANCES,
    BUILD_INFO,
    DISCOVERY_SUCCESS,
    DISCOVERY_LAST_SUCCESS,
    DISCOVERY_INSTANCES,
)

# The exporter's own work (exporter.telemetry), listed first on /metrics.
API_REQUESTS = MetricDef(
    "api_requests",
    Kind.COUNTER,
    "RDS API calls (each HTTP attempt, retries included) by action and outcome; code is OK, "
    "the API's error Code when it is a known one, or other",
    ("action", "code"),
    feed=None,
)
API_REQUEST_DURATION = MetricDef(
    "api_request_duration_seconds",
    Kind.HISTOGRAM,
    "Latency of RDS API calls (each HTTP attempt), after waiting for the rate limiter",
    ("action",),
    feed=None,
)
RELOAD_SUCCESS = MetricDef(
    "exporter_config_last_reload_successful",
    Kind.GAUGE,
    "1 if the last configuration reload (SIGHUP) succeeded, 0 if the new file was refused and "
    "the previous configuration kept",
    (),
    feed=None,
)
RELOAD_TIMESTAMP = MetricDef(
    "exporter_config_last_reload_success_timestamp_seconds",
    Kind.GAUGE,
    "When the configuration was last loaded successfully (start-up or SIGHUP)",
    (),
    feed=None,
)
COLLECT_DURATION = MetricDef(
    "backup_collect_duration_seconds",
    Kind.HISTOGRAM,
    "How long one instance's poll took, all windows, pages and retries included",
    (),
    feed=None,
)
SHARD_INDEX = MetricDef(
    "exporter_shard_index",
    Kind.GAUGE,
    "This replica's shard (--shard.index): it polls the instances whose id hashes to it",
    (),
    feed=None,
)
SHARDS = MetricDef(
    "exporter_shards",
    Kind.GAUGE,
    "How many shards the fleet is split into (--shard.total); 1 = not sharded",
    (),
    feed=None,
)
DUTY_REFRESH = MetricDef(
    "exporter_refresh_seconds",
    Kind.GAUGE,
    "How often each duty reads each instance (polling.interval, or its refresh if longer); "
    "absent when switched off. Alert rules add it to their limits on ages",
    ("duty",),
    feed=None,
)
SELF_METRICS: tuple[MetricDef, ...] = (
    API_REQUESTS,
    API_REQUEST_DURATION,
    RELOAD_SUCCESS,
    RELOAD_TIMESTAMP,
    COLLECT_DURATION,
    SHARD_INDEX,
    SHARDS,
    DUTY_REFRESH,
)


def exposed_names() -> set[str]:
    """Every metric name a scrape shows (histograms by their family name)."""
    return {metric.exposed_name for metric in (*INSTANCE_METRICS, *FLEET_METRICS, *SELF_METRICS)}
