"""Renders the fleet state as metric families at scrape time. No I/O happens here.

The families are those of the table in ``exporter.metrics``; this module computes their values.
Every scrape builds fresh families from the summaries the poller and the discovery loops left in
state; what is read at scrape time (ages, the next planned backup, when the last poll succeeded)
comes from :data:`SCRAPE_TIME_VALUES` and the injected clock. Each instance is rendered on its
own, so one odd record cannot fail the whole scrape.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from exporter import metrics as m
from exporter.aliyun.client import DESCRIBE_BACKUP_POLICY, DESCRIBE_BACKUPS, DESCRIBE_DB_INSTANCES
from exporter.aliyun.copies import (
    DESCRIBE_COPY_RECOVERY_TIME,
    DESCRIBE_CROSS_BACKUP_POLICY,
    DESCRIBE_CROSS_REGION_BACKUPS,
    DESCRIBE_RESOURCE_USAGE,
)
from exporter.aliyun.recovery import DESCRIBE_BACKUP_TASKS, DESCRIBE_LOCAL_RECOVERY_TIME
from exporter.clock import Clock
from exporter.config import PollingConfig, format_duration
from exporter.metrics import MetricDef
from exporter.policy import next_backup_time
from exporter.schedule import window_width
from exporter.state import DiscoveryStatus, FleetState, InstanceState, Source, TypeSummary

log = logging.getLogger(__name__)

Labels = tuple[str, ...]
# A value read at every scrape: the samples (label values, value) of one instance at ``now``.
ScrapeValues = Callable[[InstanceState, float], list[tuple[Labels, float]]]
DISCOVERY_INTERVAL = "discovery entry's refresh"


def make_family(metric: MetricDef, intervals: Mapping[str, str]) -> Metric:
    """An empty family for one row of the table."""
    text = metric.help_text(intervals)
    labels = list(metric.labels)
    if metric.kind is m.Kind.COUNTER:
        return CounterMetricFamily(metric.full_name, text, labels=labels)
    if metric.kind is m.Kind.INFO:
        return InfoMetricFamily(metric.full_name, text, labels=labels)
    return GaugeMetricFamily(metric.full_name, text, labels=labels)


class Families:
    """One family of each per-instance metric, in the table's order, filled instance by
    instance."""

    def __init__(self, intervals: Mapping[str, str]) -> None:
        self._families = {metric: make_family(metric, intervals) for metric in m.INSTANCE_METRICS}

    def __getitem__(self, metric: MetricDef) -> Metric:
        return self._families[metric]

    def add(self, metric: MetricDef, labels: Sequence[str], value: float) -> None:
        family = self._families[metric]
        assert isinstance(family, (GaugeMetricFamily, CounterMetricFamily))
        family.add_metric(list(labels), value)

    def add_info(self, metric: MetricDef, labels: Sequence[str], data: Mapping[str, str]) -> None:
        family = self._families[metric]
        assert isinstance(family, InfoMetricFamily)
        family.add_metric(list(labels), dict(data))

    def all(self) -> list[Metric]:
        return list(self._families.values())

    def clear(self) -> None:
        for family in self._families.values():
            family.samples.clear()


class BackupCollector(Collector):
    """``state -> metric families``. Takes a clock so ages are exact and testable."""

    def __init__(
        self,
        state: FleetState,
        clock: Clock,
        *,
        interval_text: str,
        version: str,
        policy_refresh_text: str = "6h",
        polling: PollingConfig | None = None,
    ) -> None:
        self._state = state
        self._clock = clock
        self._version = version
        self.set_intervals(interval_text, policy_refresh_text, polling)

    def set_intervals(
        self, interval_text: str, policy_refresh_text: str, polling: PollingConfig | None = None
    ) -> None:
        """What the HELP texts say about the polling schedule (a reload may change it)."""
        polling = polling or PollingConfig()
        self._polling = polling

        def every(refresh: float) -> str:
            return format_duration(max(refresh, polling.interval)) if refresh > 0 else "(off)"

        self._intervals = {
            DESCRIBE_BACKUPS: interval_text,
            DESCRIBE_BACKUP_POLICY: policy_refresh_text,
            DESCRIBE_DB_INSTANCES: DISCOVERY_INTERVAL,
            DESCRIBE_LOCAL_RECOVERY_TIME: every(polling.recovery_window_refresh),
            m.LOG_BACKUP_FILES: every(polling.log_backup_refresh),
            DESCRIBE_BACKUP_TASKS: every(polling.backup_tasks_refresh),
            DESCRIBE_CROSS_BACKUP_POLICY: every(polling.cross_region_policy_refresh),
            DESCRIBE_CROSS_REGION_BACKUPS: every(polling.cross_region_backup_refresh),
            DESCRIBE_COPY_RECOVERY_TIME: every(polling.cross_region_backup_refresh),
            DESCRIBE_RESOURCE_USAGE: every(polling.backup_storage_refresh),
        }

    def describe(self) -> list[Metric]:
        # Registering must not call collect(): the names are all the registry needs.
        return [*self.families().all(), *self.exporter_families()]

    def collect(self) -> Iterator[Metric]:
        families = self.families()
        now = self._clock.time()
        for instance in list(self._state.instances.values()):
            try:
                render_instance(families, instance)
                render_at_scrape(families, instance, now)
            except Exception:  # one broken record must not cost the whole scrape
                log.exception("cannot render instance %s", instance.target.instance_id)
        yield from families.all()
        yield from self.exporter_families()

    def families(self) -> Families:
        """Empty families with this collector's HELP texts."""
        return Families(self._intervals)

    def exporter_families(self) -> list[Metric]:
        """The families about the exporter itself and discovery (a few series, not per
        instance)."""
        instances = make_family(m.EXPORTER_INSTANCES, self._intervals)
        assert isinstance(instances, GaugeMetricFamily)
        counts = {source.value: 0 for source in Source}
        for instance in self._state.instances.values():
            counts[instance.target.source.value] += 1
        for source, count in sorted(counts.items()):
            instances.add_metric([source], count)
        build = make_family(m.BUILD_INFO, self._intervals)
        assert isinstance(build, InfoMetricFamily)
        build.add_metric([], {"version": self._version})
        discovery = _discovery_families(self._state.discovery, self._intervals)
        return [instances, build, *discovery, self._failing_duties(), *self._backfill()]

    def _failing_duties(self) -> Metric:
        family = make_family(m.DUTY_FAILING, self._intervals)
        assert isinstance(family, GaugeMetricFamily)
        failing: dict[str, int] = {}
        for instance in list(self._state.instances.values()):
            for name, status in instance.duties.items():
                failing[name] = failing.get(name, 0) + (1 if status.failing else 0)
        for name, count in sorted(failing.items()):
            family.add_metric([name], count)
        return family

    def _backfill(self) -> list[Metric]:
        """How much of the lookback is left to read, over the instances (about 1 µs each)."""
        now = self._clock.time()
        lookback = self._polling.lookback
        width = window_width(self._polling.window)
        instances = windows = 0
        for instance in list(self._state.instances.values()):
            if instance.lookback_complete:
                continue
            instances += 1
            top = instance.covered_from if instance.covered_from is not None else now
            windows += max(0, math.ceil((top - instance.lookback_floor(now, lookback)) / width))
        families: list[Metric] = []
        for metric, value in ((m.BACKFILL_INSTANCES, instances), (m.BACKFILL_WINDOWS, windows)):
            family = make_family(metric, self._intervals)
            assert isinstance(family, GaugeMetricFamily)
            family.add_metric([], float(value))
            families.append(family)
        return families


def cache_key(instance: InstanceState) -> tuple[object, ...]:
    """Everything of an instance that :func:`render_instance` reads: its output stays the same
    while this compares equal, so /metrics keeps the lines formatted from it. (The failure
    counters are changed in place, hence their items; the rest is replaced when it changes.)"""
    return (
        instance.target,
        instance.summaries,
        instance.policy,
        instance.baseline_done,
        instance.lookback_complete,
        instance.snapshot_chain_bytes,
        instance.engine,
        instance.engine_version,
        instance.collect_success,
        len(instance.skipped),
        instance.recovery,
        instance.log_chain.summary,
        instance.jobs_summary,
        instance.cross_region,
        instance.copies.summary,
        instance.storage,
        *instance.failures_total.items(),
    )


def render_instance(f: Families, instance: InstanceState) -> None:
    """Adds an instance's series to the families, all but those read at scrape time (see
    :func:`render_at_scrape`). What it adds depends only on :func:`cache_key`."""
    target = instance.target
    iid = target.instance_id
    info = {
        "instance_id": iid,
        "account": target.account,
        "region_id": target.region,
        # What the backups say, else what discovery said.
        "engine": instance.engine or target.engine,
        "engine_version": instance.engine_version or target.engine_version,
        "description": target.description,
    }
    for name, value in target.labels.items():
        info.setdefault(name, value)
    f.add_info(m.INSTANCE_INFO, [], info)
    if target.created_at is not None:
        f.add(m.INSTANCE_CREATED, [iid], target.created_at)
    if instance.collect_success is not None:
        f.add(m.COLLECT_SUCCESS, [iid], 1.0 if instance.collect_success else 0.0)
    _render_policy(f, instance)
    _render_recoverability(f, instance)
    _render_disaster_recovery(f, instance)
    if not instance.baseline_done:
        # Until one poll has gone through, absence is the honest answer.
        return
    if instance.snapshot_chain_bytes is not None:
        f.add(m.SNAPSHOT_CHAIN, [iid], float(instance.snapshot_chain_bytes))
    f.add(m.LOOKBACK_COMPLETE, [iid], 1.0 if instance.lookback_complete else 0.0)
    f.add(m.SKIPPED_RECORDS, [iid], float(len(instance.skipped)))
    for backup_type, total in sorted(instance.failures_total.items()):
        f.add(m.FAILURES, [iid, backup_type], float(total))
        if backup_type not in instance.summaries:
            for metric in (m.SETS, m.FAILED_SETS, m.UNUSABLE_SETS):
                f.add(metric, [iid, backup_type], 0.0)
    for backup_type, summary in sorted(instance.summaries.items()):
        _render_type(f, iid, backup_type, summary)


def render_at_scrape(f: Families, instance: InstanceState, now: float) -> None:
    """Adds the series read at scrape time (see :data:`SCRAPE_TIME_VALUES`)."""
    for metric, values in SCRAPE_TIME_VALUES.items():
        for labels, value in values(instance, now):
            f.add(metric, labels, value)


def success_ages(instance: InstanceState, now: float) -> list[tuple[Labels, float]]:
    """Each type's newest restorable backup: seconds since it ended."""
    if not instance.baseline_done:
        return []
    iid = instance.target.instance_id
    return [
        ((iid, backup_type), age_at(now, summary.last_success.end))
        for backup_type, summary in sorted(instance.summaries.items())
        if summary.last_success is not None and summary.last_success.end is not None
    ]


def age_at(now: float, end: float) -> float:
    return max(0.0, now - end)


def last_collect_success(instance: InstanceState, now: float) -> list[tuple[Labels, float]]:
    """When the instance's last successful poll finished (it changes at every poll)."""
    if instance.last_collect_success is None:
        return []
    return [((instance.target.instance_id,), instance.last_collect_success)]


def recovery_lag(instance: InstanceState, now: float) -> list[tuple[Labels, float]]:
    recovery = instance.recovery
    if recovery is None or recovery.window is None:
        return []
    return [((instance.target.instance_id,), age_at(now, recovery.window.end))]


def log_age(instance: InstanceState, now: float) -> list[tuple[Labels, float]]:
    summary = instance.log_chain.summary
    if summary is None or summary.newest_end is None:
        return []
    return [((instance.target.instance_id,), age_at(now, summary.newest_end))]


def uploading_age(instance: InstanceState, now: float) -> list[tuple[Labels, float]]:
    summary = instance.log_chain.summary
    if summary is None or summary.oldest_uploading_end is None:
        return []
    return [((instance.target.instance_id,), age_at(now, summary.oldest_uploading_end))]


def job_seconds(instance: InstanceState, now: float) -> list[tuple[Labels, float]]:
    summary = instance.jobs_summary
    if summary is None:
        return []
    started = summary.oldest_first_seen
    return [((instance.target.instance_id,), 0.0 if started is None else age_at(now, started))]


def job_stalled(instance: InstanceState, now: float) -> list[tuple[Labels, float]]:
    summary = instance.jobs_summary
    if summary is None:
        return []
    since = summary.stalled_since
    return [((instance.target.instance_id,), 0.0 if since is None else age_at(now, since))]


def copy_age(instance: InstanceState, now: float) -> list[tuple[Labels, float]]:
    summary = instance.copies.summary
    if summary is None or summary.last_success_end is None:
        return []
    return [((instance.target.instance_id,), age_at(now, summary.last_success_end))]


def next_backup(instance: InstanceState, now: float) -> list[tuple[Labels, float]]:
    """When its next scheduled backup is due, as of ``now``."""
    if instance.policy is None:
        return []
    upcoming = next_backup_time(instance.policy, now)
    return [] if upcoming is None else [((instance.target.instance_id,), upcoming)]


# The code behind every metric marked ``at_scrape`` in the table.
SCRAPE_TIME_VALUES: Mapping[MetricDef, ScrapeValues] = {
    m.LAST_SUCCESS_AGE: success_ages,
    m.COLLECT_LAST_SUCCESS: last_collect_success,
    m.POLICY_NEXT_BACKUP: next_backup,
    m.RECOVERY_LAG: recovery_lag,
    m.LOG_LAST_END_AGE: log_age,
    m.LOG_UPLOADING_AGE: uploading_age,
    m.JOB_RUNNING_SECONDS: job_seconds,
    m.JOB_STALLED_SECONDS: job_stalled,
    m.COPY_LAST_SUCCESS_AGE: copy_age,
}
assert set(SCRAPE_TIME_VALUES) == {x for x in m.INSTANCE_METRICS if x.at_scrape}


def _render_policy(f: Families, instance: InstanceState) -> None:
    policy = instance.policy
    if policy is None:
        return
    iid = instance.target.instance_id
    if policy.schedule is not None:
        f.add(m.POLICY_INTERVAL, [iid], policy.schedule.expected_interval)
    if policy.retention_days is not None:
        f.add(m.POLICY_RETENTION, [iid], float(policy.retention_days))
    if policy.log_backup_enabled is not None:
        f.add(m.POLICY_LOG_BACKUP, [iid], 1.0 if policy.log_backup_enabled else 0.0)
    if policy.log_retention_days is not None:
        f.add(m.POLICY_LOG_RETENTION, [iid], float(policy.log_retention_days))
    if policy.log_backup_interval is not None:
        f.add(m.POLICY_LOG_INTERVAL, [iid], policy.log_backup_interval)


def _render_recoverability(f: Families, instance: InstanceState) -> None:
    """The restorable window, the log chain and the running backups, once each is known."""
    iid = instance.target.instance_id
    recovery = instance.recovery
    if recovery is not None and recovery.window is not None:
        f.add(m.RECOVERY_WINDOW_START, [iid], recovery.window.begin)
        f.add(m.RECOVERY_WINDOW_END, [iid], recovery.window.end)
    if recovery is not None and recovery.broken is not None:
        f.add(m.RECOVERY_BROKEN, [iid, recovery.broken], 1.0)
    logs = instance.log_chain.summary
    if logs is not None:
        if logs.newest_end is not None:
            f.add(m.LOG_LAST_END, [iid], logs.newest_end)
        f.add(m.LOG_GAP, [iid], logs.gap_seconds)
        f.add(m.LOG_UPLOADING, [iid], float(logs.uploading))
        f.add(m.LOG_STORED_BYTES, [iid], float(logs.stored_bytes))
    jobs = instance.jobs_summary
    if jobs is not None:
        f.add(m.JOBS_RUNNING, [iid], float(jobs.running))
        f.add(m.JOBS_FAILED, [iid], float(jobs.failed))
        if jobs.progress is not None:
            f.add(m.JOB_PROGRESS, [iid], jobs.progress / 100.0)


def _render_disaster_recovery(f: Families, instance: InstanceState) -> None:
    """Cross-region backup settings and copies, and backup storage, once each is known."""
    iid = instance.target.instance_id
    policy = instance.cross_region
    if policy is not None:
        f.add(m.CROSS_ENABLED, [iid], 1.0 if policy.enabled else 0.0)
        if policy.enabled_at is not None:
            f.add(m.CROSS_ENABLED_AT, [iid], policy.enabled_at)
        f.add(m.CROSS_LOG_ENABLED, [iid], 1.0 if policy.log_enabled else 0.0)
        if policy.retention_days is not None:
            f.add(m.CROSS_RETENTION, [iid], float(policy.retention_days))
        if policy.enabled and policy.destination:
            f.add_info(m.CROSS_INFO, [iid], {"destination_region": policy.destination})
    copies = instance.copies.summary
    if copies is not None:
        if copies.last_success_end is not None:
            f.add(m.COPY_LAST_SUCCESS, [iid], copies.last_success_end)
        if copies.last_failure_end is not None:
            f.add(m.COPY_LAST_FAILURE, [iid], copies.last_failure_end)
        f.add(m.COPY_SETS, [iid], float(copies.sets))
        f.add(m.COPY_FAILED_SETS, [iid], float(copies.failed_sets))
        if copies.window is not None:
            f.add(m.COPY_WINDOW_START, [iid], copies.window.begin)
            f.add(m.COPY_WINDOW_END, [iid], copies.window.end)
        if copies.broken is not None:
            f.add(m.COPY_BROKEN, [iid, copies.broken], 1.0)
    storage = instance.storage
    if storage is not None:
        for kind, size in sorted(storage.bytes_by_kind.items()):
            f.add(m.STORAGE_BYTES, [iid, kind], float(size))
        if storage.paid_bytes is not None:
            f.add(m.STORAGE_PAID, [iid], float(storage.paid_bytes))


def _render_type(f: Families, iid: str, backup_type: str, summary: TypeSummary) -> None:
    labels = [iid, backup_type]
    f.add(m.SETS, labels, float(summary.sets))
    f.add(m.FAILED_SETS, labels, float(summary.failed_sets))
    f.add(m.UNUSABLE_SETS, labels, float(summary.unusable_sets))
    if summary.last_unusable is not None and summary.last_unusable.end is not None:
        f.add(m.LAST_UNUSABLE, labels, summary.last_unusable.end)
    if summary.last_automated is not None and summary.last_automated.end is not None:
        f.add(m.LAST_AUTOMATED, labels, summary.last_automated.end)
    if summary.last_completed is not None:
        f.add(m.LAST_STATUS, labels, 1.0 if summary.last_completed.succeeded else 0.0)
    failure = summary.last_failure
    if failure is not None:
        when = failure.end if failure.end is not None else failure.start
        if when is not None:
            f.add(m.LAST_FAILURE, labels, when)
    success = summary.last_success
    if success is None or success.end is None:
        return
    f.add(m.LAST_SUCCESS, labels, success.end)
    if success.size_bytes is not None:
        f.add(m.LAST_SUCCESS_SIZE, labels, float(success.size_bytes))
    if success.start is not None:
        f.add(m.LAST_SUCCESS_DURATION, labels, max(0.0, success.end - success.start))
    if success.available is not None:
        f.add(m.LAST_SUCCESS_AVAILABLE, labels, float(success.available))
    if success.consistent_time:
        f.add(m.LAST_SUCCESS_CONSISTENT, labels, success.consistent_time)
    f.add_info(
        m.LAST_SUCCESS_INFO,
        labels,
        {
            "backup_method": success.method,
            "backup_mode": success.mode,
            "backup_initiator": success.initiator,
            "storage_class": success.storage_class,
            "encrypted": "true" if success.encrypted else "false",
        },
    )


def _discovery_families(
    statuses: Iterable[DiscoveryStatus], intervals: Mapping[str, str]
) -> list[Metric]:
    """Per account and region; several entries for one pair are summed up: success only when
    every one of them succeeded, the oldest last success, the instances they found."""
    success, last_success, instances = (
        make_family(metric, intervals)
        for metric in (m.DISCOVERY_SUCCESS, m.DISCOVERY_LAST_SUCCESS, m.DISCOVERY_INSTANCES)
    )
    assert isinstance(success, GaugeMetricFamily)
    assert isinstance(last_success, GaugeMetricFamily)
    assert isinstance(instances, GaugeMetricFamily)
    groups: dict[tuple[str, str], list[DiscoveryStatus]] = {}
    for status in statuses:
        groups.setdefault((status.account, status.region), []).append(status)
    for (account, region), group in sorted(groups.items()):
        pair = [account, region]
        outcomes = [status.success for status in group]
        if all(outcome is not None for outcome in outcomes):
            success.add_metric(pair, 1.0 if all(outcomes) else 0.0)
        times = [status.last_success for status in group]
        if all(when is not None for when in times):
            last_success.add_metric(pair, min(when for when in times if when is not None))
        counts = [status.instances for status in group]
        if all(count is not None for count in counts):
            instances.add_metric(pair, float(sum(count for count in counts if count is not None)))
    return [success, last_success, instances]
