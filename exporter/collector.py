"""Renders the fleet state as metric families at scrape time. No I/O happens here.

Every scrape builds fresh families from the summaries the poller and the discovery loops left in
state; ages (and the next planned backup) are computed from the injected clock at that moment.
Each instance is rendered on its own, so one odd record cannot fail the whole scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from exporter.clock import Clock
from exporter.policy import next_backup_time
from exporter.state import DiscoveryStatus, FleetState, InstanceState, TypeSummary

log = logging.getLogger(__name__)

PREFIX = "aliyun_rds_"


@dataclass
class Families:
    """One family of each metric, filled instance by instance."""

    source: str
    policy_source: str = "from DescribeBackupPolicy"

    def __post_init__(self) -> None:
        by_type = ["instance_id", "backup_type"]
        src = self.source
        policy = self.policy_source
        self.last_success = GaugeMetricFamily(
            PREFIX + "backup_last_success_timestamp_seconds",
            "BackupEndTime of the newest restorable backup within lookback (BackupStatus "
            f"Success and IsAvail not 0) ({src}).",
            labels=by_type,
        )
        self.age = GaugeMetricFamily(
            PREFIX + "backup_last_success_age_seconds",
            f"Seconds since the newest restorable backup ended, at scrape time ({src}).",
            labels=by_type,
        )
        self.size = GaugeMetricFamily(
            PREFIX + "backup_last_success_size_bytes",
            f"BackupSize of the newest restorable backup ({src}).",
            labels=by_type,
        )
        self.duration = GaugeMetricFamily(
            PREFIX + "backup_last_success_duration_seconds",
            f"End minus start of the newest restorable backup ({src}).",
            labels=by_type,
        )
        self.available = GaugeMetricFamily(
            PREFIX + "backup_last_success_available",
            "IsAvail of the newest restorable backup: always 1, as backups with IsAvail 0 are "
            f"not restore points (see backup_unusable_sets) ({src}).",
            labels=by_type,
        )
        self.consistent = GaugeMetricFamily(
            PREFIX + "backup_last_success_consistent_timestamp_seconds",
            f"ConsistentTime of the newest restorable backup, when the API gives one ({src}).",
            labels=by_type,
        )
        self.success_info = InfoMetricFamily(
            PREFIX + "backup_last_success",
            f"What the newest restorable backup was: method, mode, initiator, storage ({src}).",
            labels=by_type,
        )
        self.last_status = GaugeMetricFamily(
            PREFIX + "backup_last_status",
            f"1 if the newest completed backup succeeded, 0 if it failed ({src}).",
            labels=by_type,
        )
        self.last_failure = GaugeMetricFamily(
            PREFIX + "backup_last_failure_timestamp_seconds",
            f"BackupEndTime (else start) of the newest failed backup within lookback ({src}).",
            labels=by_type,
        )
        self.last_automated = GaugeMetricFamily(
            PREFIX + "backup_last_automated_success_timestamp_seconds",
            "BackupEndTime of the newest restorable backup taken by the schedule (BackupMode "
            f"Automated), which a manual backup cannot stand in for ({src}).",
            labels=by_type,
        )
        self.last_unusable = GaugeMetricFamily(
            PREFIX + "backup_last_unusable_timestamp_seconds",
            "BackupEndTime of the newest backup that succeeded but cannot be restored from "
            f"(IsAvail 0) ({src}).",
            labels=by_type,
        )
        self.unusable_sets = GaugeMetricFamily(
            PREFIX + "backup_unusable_sets",
            f"Successful backups within lookback that cannot be restored from (IsAvail 0) ({src}).",
            labels=by_type,
        )
        self.sets = GaugeMetricFamily(
            PREFIX + "backup_sets",
            f"Completed backups (successful or failed) within lookback ({src}).",
            labels=by_type,
        )
        self.failed_sets = GaugeMetricFamily(
            PREFIX + "backup_failed_sets",
            f"Failed backups within lookback ({src}).",
            labels=by_type,
        )
        self.failures = CounterMetricFamily(
            PREFIX + "backup_failures",
            f"Distinct failed backups first seen after the instance's first successful poll "
            f"({src}).",
            labels=by_type,
        )
        self.skipped = GaugeMetricFamily(
            PREFIX + "backup_skipped_records",
            "Backup records read within lookback that were skipped: unreadable (no id, start "
            f"time or status) or impossible (dated in the future) ({src}).",
            labels=["instance_id"],
        )
        self.snapshot_chain = GaugeMetricFamily(
            PREFIX + "backup_snapshot_chain_bytes",
            f"TotalEcsSnapshotSize: size of the instance's snapshot chain ({src}).",
            labels=["instance_id"],
        )
        self.instance_info = InfoMetricFamily(
            PREFIX + "instance",
            "Instance metadata from the configuration and DescribeDBInstances (discovery), a "
            "join target for names and labels.",
        )
        self.collect_success = GaugeMetricFamily(
            PREFIX + "backup_collect_success",
            f"1 if the instance's last poll succeeded, 0 if it failed ({src}).",
            labels=["instance_id"],
        )
        self.collect_last_success = GaugeMetricFamily(
            PREFIX + "backup_collect_last_success_timestamp_seconds",
            f"When the instance's last successful poll finished ({src}).",
            labels=["instance_id"],
        )
        self.policy_interval = GaugeMetricFamily(
            PREFIX + "backup_policy_expected_interval_seconds",
            "Longest time between two scheduled full backups: the longest gap between "
            "consecutive PreferredBackupPeriod days plus the PreferredBackupTime window "
            f"({policy}).",
            labels=["instance_id"],
        )
        self.policy_retention = GaugeMetricFamily(
            PREFIX + "backup_policy_retention_days",
            f"BackupRetentionPeriod: days data backups are kept ({policy}).",
            labels=["instance_id"],
        )
        self.policy_log_backup = GaugeMetricFamily(
            PREFIX + "backup_policy_log_backup_enabled",
            f"1 if log backup (EnableBackupLog) is on, 0 if off ({policy}).",
            labels=["instance_id"],
        )
        self.policy_next = GaugeMetricFamily(
            PREFIX + "backup_policy_next_backup_timestamp_seconds",
            "When the next scheduled backup is due: PreferredNextBackupTime, or once that has "
            f"passed the next scheduled window's start ({policy}).",
            labels=["instance_id"],
        )

    def all(self) -> list[Metric]:
        return [
            self.last_success,
            self.age,
            self.size,
            self.duration,
            self.available,
            self.consistent,
            self.success_info,
            self.last_automated,
            self.last_unusable,
            self.unusable_sets,
            self.last_status,
            self.last_failure,
            self.sets,
            self.failed_sets,
            self.failures,
            self.skipped,
            self.snapshot_chain,
            self.instance_info,
            self.collect_success,
            self.collect_last_success,
            self.policy_interval,
            self.policy_retention,
            self.policy_log_backup,
            self.policy_next,
        ]


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
    ) -> None:
        self._state = state
        self._clock = clock
        self._version = version
        self.set_intervals(interval_text, policy_refresh_text)

    def set_intervals(self, interval_text: str, policy_refresh_text: str) -> None:
        """What the HELP texts say about the polling schedule (a reload may change it)."""
        self._source = f"from a background poll of DescribeBackups every {interval_text}"
        self._policy_source = (
            f"from a background poll of DescribeBackupPolicy every {policy_refresh_text}"
        )

    def describe(self) -> list[Metric]:
        # Registering must not call collect(): the names are all the registry needs.
        return [
            *Families(self._source, self._policy_source).all(),
            *self.exporter_families(),
        ]

    def collect(self) -> Iterator[Metric]:
        families = Families(self._source, self._policy_source)
        now = self._clock.time()
        for instance in list(self._state.instances.values()):
            try:
                render_instance(families, instance)
                render_volatile(families, instance, now)
            except Exception:  # one broken record must not cost the whole scrape
                log.exception("cannot render instance %s", instance.target.instance_id)
        yield from families.all()
        yield from self.exporter_families()

    def families(self) -> Families:
        """Empty families with this collector's HELP texts."""
        return Families(self._source, self._policy_source)

    def exporter_families(self) -> list[Metric]:
        """The families about the exporter itself and discovery (a few series, not per
        instance)."""
        instances = GaugeMetricFamily(
            PREFIX + "exporter_instances",
            "Instances being polled, by where they came from (static config or discovery).",
            labels=["source"],
        )
        counts = {"static": 0, "discovery": 0}
        for instance in self._state.instances.values():
            counts[instance.target.source] = counts.get(instance.target.source, 0) + 1
        for source, count in sorted(counts.items()):
            instances.add_metric([source], count)
        build = InfoMetricFamily(PREFIX + "exporter_build", "Exporter version.")
        build.add_metric([], {"version": self._version})
        return [instances, build, *_discovery_families(self._state.discovery)]


def rendered_state(instance: InstanceState) -> tuple[object, ...]:
    """Everything of an instance that :func:`render_instance` reads: its output stays the same
    while this compares equal. (The failure counters are changed in place, hence their items;
    the rest is replaced when it changes.)"""
    return (
        instance.target,
        instance.summaries,
        instance.policy,
        instance.baseline_done,
        instance.snapshot_chain_bytes,
        instance.engine,
        instance.engine_version,
        instance.collect_success,
        len(instance.skipped),
        *instance.failures_total.items(),
    )


def render_instance(f: Families, instance: InstanceState) -> None:
    """Adds an instance's series to the families, all but the volatile ones (see
    :func:`render_volatile`). What it adds depends only on :func:`rendered_state`."""
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
    f.instance_info.add_metric([], info)
    if instance.collect_success is not None:
        f.collect_success.add_metric([iid], 1.0 if instance.collect_success else 0.0)
    _render_policy(f, instance)
    if not instance.baseline_done:
        # Until one poll has gone through, absence is the honest answer.
        return
    if instance.snapshot_chain_bytes is not None:
        f.snapshot_chain.add_metric([iid], float(instance.snapshot_chain_bytes))
    f.skipped.add_metric([iid], float(len(instance.skipped)))
    for backup_type, total in sorted(instance.failures_total.items()):
        f.failures.add_metric([iid, backup_type], float(total))
        summary = instance.summaries.get(backup_type)
        if summary is None:
            f.sets.add_metric([iid, backup_type], 0.0)
            f.failed_sets.add_metric([iid, backup_type], 0.0)
            f.unusable_sets.add_metric([iid, backup_type], 0.0)
    for backup_type, summary in sorted(instance.summaries.items()):
        _render_type(f, iid, backup_type, summary)


def render_volatile(f: Families, instance: InstanceState, now: float) -> None:
    """Adds the series whose values change with the clock (the age of the newest successful
    backup, the next planned one) or with every poll (when the last one succeeded)."""
    for labels, end in success_ends(instance):
        f.age.add_metric(labels, age_at(now, end))
    if instance.last_collect_success is not None:
        f.collect_last_success.add_metric(
            [instance.target.instance_id], instance.last_collect_success
        )
    upcoming = next_backup(instance, now)
    if upcoming is not None:
        f.policy_next.add_metric([instance.target.instance_id], upcoming)


def success_ends(instance: InstanceState) -> list[tuple[list[str], float]]:
    """``([instance_id, backup_type], end)`` of each type's newest successful backup: the
    series that ``last_success_age_seconds`` reports at scrape time."""
    if not instance.baseline_done:
        return []
    iid = instance.target.instance_id
    return [
        ([iid, backup_type], summary.last_success.end)
        for backup_type, summary in sorted(instance.summaries.items())
        if summary.last_success is not None and summary.last_success.end is not None
    ]


def age_at(now: float, end: float) -> float:
    return max(0.0, now - end)


def next_backup(instance: InstanceState, now: float) -> float | None:
    return None if instance.policy is None else next_backup_time(instance.policy, now)


def _render_policy(f: Families, instance: InstanceState) -> None:
    policy = instance.policy
    if policy is None:
        return
    iid = instance.target.instance_id
    if policy.schedule is not None:
        f.policy_interval.add_metric([iid], policy.schedule.expected_interval)
    if policy.retention_days is not None:
        f.policy_retention.add_metric([iid], float(policy.retention_days))
    if policy.log_backup_enabled is not None:
        f.policy_log_backup.add_metric([iid], 1.0 if policy.log_backup_enabled else 0.0)


def _render_type(f: Families, iid: str, backup_type: str, summary: TypeSummary) -> None:
    labels = [iid, backup_type]
    f.sets.add_metric(labels, float(summary.sets))
    f.failed_sets.add_metric(labels, float(summary.failed_sets))
    f.unusable_sets.add_metric(labels, float(summary.unusable_sets))
    if summary.last_unusable is not None and summary.last_unusable.end is not None:
        f.last_unusable.add_metric(labels, summary.last_unusable.end)
    if summary.last_automated is not None and summary.last_automated.end is not None:
        f.last_automated.add_metric(labels, summary.last_automated.end)
    if summary.last_completed is not None:
        f.last_status.add_metric(labels, 1.0 if summary.last_completed.succeeded else 0.0)
    failure = summary.last_failure
    if failure is not None:
        when = failure.end if failure.end is not None else failure.start
        if when is not None:
            f.last_failure.add_metric(labels, when)
    success = summary.last_success
    if success is None or success.end is None:
        return
    f.last_success.add_metric(labels, success.end)
    if success.size_bytes is not None:
        f.size.add_metric(labels, float(success.size_bytes))
    if success.start is not None:
        f.duration.add_metric(labels, max(0.0, success.end - success.start))
    if success.available is not None:
        f.available.add_metric(labels, float(success.available))
    if success.consistent_time:
        f.consistent.add_metric(labels, success.consistent_time)
    f.success_info.add_metric(
        labels,
        {
            "backup_method": success.method,
            "backup_mode": success.mode,
            "backup_initiator": success.initiator,
            "storage_class": success.storage_class,
            "encrypted": "true" if success.encrypted else "false",
        },
    )


def _discovery_families(statuses: list[DiscoveryStatus]) -> list[Metric]:
    """Per account and region; several entries for one pair are summed up: success only when
    every one of them succeeded, the oldest last success, the instances they found."""
    source = "from a background poll of DescribeDBInstances every discovery entry's refresh"
    labels = ["account", "region_id"]
    success = GaugeMetricFamily(
        PREFIX + "discovery_success",
        f"1 if the last instance discovery succeeded, 0 if it failed ({source}).",
        labels=labels,
    )
    last_success = GaugeMetricFamily(
        PREFIX + "discovery_last_success_timestamp_seconds",
        f"When instance discovery last succeeded ({source}).",
        labels=labels,
    )
    instances = GaugeMetricFamily(
        PREFIX + "discovery_instances",
        "Instances the last successful discovery found, after filtering; those still in "
        f"their grace period are not counted ({source}).",
        labels=labels,
    )
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
