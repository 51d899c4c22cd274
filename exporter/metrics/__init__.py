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

from exporter.aliyun.client import DESCRIBE_DB_INSTANCES
from exporter.metrics.backups import (
    COLLECT_LAST_SUCCESS,
    COLLECT_SUCCESS,
    FAILED_SETS,
    FAILURES,
    INSTANCE_CREATED,
    INSTANCE_INFO,
    LAST_AUTOMATED,
    LAST_FAILURE,
    LAST_STATUS,
    LAST_SUCCESS,
    LAST_SUCCESS_AGE,
    LAST_SUCCESS_AVAILABLE,
    LAST_SUCCESS_CONSISTENT,
    LAST_SUCCESS_DURATION,
    LAST_SUCCESS_INFO,
    LAST_SUCCESS_SIZE,
    LAST_UNUSABLE,
    LOOKBACK_COMPLETE,
    POLICY_INTERVAL,
    POLICY_LOG_BACKUP,
    POLICY_LOG_INTERVAL,
    POLICY_LOG_RETENTION,
    POLICY_NEXT_BACKUP,
    POLICY_RETENTION,
    SETS,
    SKIPPED_RECORDS,
    SNAPSHOT_CHAIN,
    UNUSABLE_SETS,
)
from exporter.metrics.base import LOG_BACKUP_FILES, Kind, MetricDef
from exporter.metrics.copies import (
    COPY_BROKEN,
    COPY_FAILED_SETS,
    COPY_LAST_FAILURE,
    COPY_LAST_SUCCESS,
    COPY_LAST_SUCCESS_AGE,
    COPY_SETS,
    COPY_WINDOW_END,
    COPY_WINDOW_START,
    CROSS_ENABLED,
    CROSS_ENABLED_AT,
    CROSS_INFO,
    CROSS_LOG_ENABLED,
    CROSS_RETENTION,
    STORAGE_BYTES,
    STORAGE_PAID,
)
from exporter.metrics.recovery import (
    JOB_PROGRESS,
    JOB_RUNNING_SECONDS,
    JOB_STALLED_SECONDS,
    JOBS_FAILED,
    JOBS_RUNNING,
    LOG_GAP,
    LOG_LAST_END,
    LOG_LAST_END_AGE,
    LOG_STORED_BYTES,
    LOG_UPLOADING,
    LOG_UPLOADING_AGE,
    RECOVERY_BROKEN,
    RECOVERY_LAG,
    RECOVERY_WINDOW_END,
    RECOVERY_WINDOW_START,
)

# Per instance, in the order /metrics lists them.
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
    LOOKBACK_COMPLETE,
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
    CROSS_ENABLED,
    CROSS_ENABLED_AT,
    CROSS_LOG_ENABLED,
    CROSS_RETENTION,
    CROSS_INFO,
    COPY_LAST_SUCCESS,
    COPY_LAST_SUCCESS_AGE,
    COPY_LAST_FAILURE,
    COPY_SETS,
    COPY_FAILED_SETS,
    COPY_WINDOW_START,
    COPY_WINDOW_END,
    COPY_BROKEN,
    STORAGE_BYTES,
    STORAGE_PAID,
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
DUTY_FAILING = MetricDef(
    "exporter_duty_failing_instances",
    Kind.GAUGE,
    "Instances whose last run of an API duty failed, by duty (backups, policy, backup_tasks, "
    "log_backups, recovery_window, cross_region_policy, cross_region_backups, backup_storage): "
    "a failing duty's figures go after two refreshes, and the alerts built on them with them",
    ("duty",),
    feed=None,
)
BACKFILL_INSTANCES = MetricDef(
    "exporter_backfill_instances",
    Kind.GAUGE,
    "Instances whose backup reads do not reach back the whole lookback yet (the backfill "
    "after a start, which uses only the API rate nothing else wants); 0 once complete",
    (),
    feed=None,
)
BACKFILL_WINDOWS = MetricDef(
    "exporter_backfill_windows",
    Kind.GAUGE,
    "DescribeBackups windows those instances have left to read (a call each, at one page)",
    (),
    feed=None,
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
    DUTY_FAILING,
    BACKFILL_INSTANCES,
    BACKFILL_WINDOWS,
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


__all__ = [
    "API_REQUESTS",
    "API_REQUEST_DURATION",
    "BACKFILL_INSTANCES",
    "BACKFILL_WINDOWS",
    "BUILD_INFO",
    "BY_DISCOVERY",
    "COLLECT_DURATION",
    "COLLECT_LAST_SUCCESS",
    "COLLECT_SUCCESS",
    "COPY_BROKEN",
    "COPY_FAILED_SETS",
    "COPY_LAST_FAILURE",
    "COPY_LAST_SUCCESS",
    "COPY_LAST_SUCCESS_AGE",
    "COPY_SETS",
    "COPY_WINDOW_END",
    "COPY_WINDOW_START",
    "CROSS_ENABLED",
    "CROSS_ENABLED_AT",
    "CROSS_INFO",
    "CROSS_LOG_ENABLED",
    "CROSS_RETENTION",
    "DISCOVERY_INSTANCES",
    "DISCOVERY_LAST_SUCCESS",
    "DISCOVERY_SUCCESS",
    "DUTY_FAILING",
    "DUTY_REFRESH",
    "EXPORTER_INSTANCES",
    "FAILED_SETS",
    "FAILURES",
    "FLEET_METRICS",
    "INSTANCE_CREATED",
    "INSTANCE_INFO",
    "INSTANCE_METRICS",
    "JOBS_FAILED",
    "JOBS_RUNNING",
    "JOB_PROGRESS",
    "JOB_RUNNING_SECONDS",
    "JOB_STALLED_SECONDS",
    "LAST_AUTOMATED",
    "LAST_FAILURE",
    "LAST_STATUS",
    "LAST_SUCCESS",
    "LAST_SUCCESS_AGE",
    "LAST_SUCCESS_AVAILABLE",
    "LAST_SUCCESS_CONSISTENT",
    "LAST_SUCCESS_DURATION",
    "LAST_SUCCESS_INFO",
    "LAST_SUCCESS_SIZE",
    "LAST_UNUSABLE",
    "LOG_BACKUP_FILES",
    "LOG_GAP",
    "LOG_LAST_END",
    "LOG_LAST_END_AGE",
    "LOG_STORED_BYTES",
    "LOG_UPLOADING",
    "LOG_UPLOADING_AGE",
    "LOOKBACK_COMPLETE",
    "POLICY_INTERVAL",
    "POLICY_LOG_BACKUP",
    "POLICY_LOG_INTERVAL",
    "POLICY_LOG_RETENTION",
    "POLICY_NEXT_BACKUP",
    "POLICY_RETENTION",
    "RECOVERY_BROKEN",
    "RECOVERY_LAG",
    "RECOVERY_WINDOW_END",
    "RECOVERY_WINDOW_START",
    "RELOAD_SUCCESS",
    "RELOAD_TIMESTAMP",
    "SELF_METRICS",
    "SETS",
    "SHARDS",
    "SHARD_INDEX",
    "SKIPPED_RECORDS",
    "SNAPSHOT_CHAIN",
    "STORAGE_BYTES",
    "STORAGE_PAID",
    "UNUSABLE_SETS",
    "Kind",
    "MetricDef",
    "exposed_names",
]
