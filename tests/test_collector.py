"""Rendering state as metrics: names, types, HELP, full label sets, ages at scrape time."""

from __future__ import annotations

from dataclasses import replace

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from exporter.aliyun.models import Backup
from exporter.collector import BackupCollector
from exporter.state import FleetState, InstanceState, Target
from tests.clock import ManualClock

T0 = 1_764_000_000.0

BASE = Backup(
    backup_id="1",
    instance_id="rm-a",
    status="Success",
    backup_type="FullBackup",
    start=T0 - 3600,
    end=T0 - 600,
    size_bytes=2048,
    method="Physical",
    mode="Automated",
    initiator="System",
    storage_class="regular",
    encrypted=False,
    available=1,
    consistent_time=None,
    engine="MySQL",
    engine_version="8.0",
)


def render(
    state: FleetState, clock: ManualClock
) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    registry = CollectorRegistry()
    registry.register(BackupCollector(state, clock, interval_text="5m", version="1.2.3"))
    text = generate_latest(registry).decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


def make_state(*backups: Backup, baseline: bool = True) -> FleetState:
    fleet = FleetState()
    fleet.sync_targets([Target("rm-a", "cn-hangzhou", account="prod", labels={"team": "payments"})])
    instance = fleet.instances["rm-a"]
    instance.baseline_done = False
    instance.merge(backups, cutoff=0)
    instance.baseline_done = baseline
    instance.polled = True
    instance.collect_success = True
    instance.last_collect_success = T0 - 30
    instance.snapshot_chain_bytes = 12345
    instance.refresh_summaries()
    return fleet


def test_newest_success_and_age_at_scrape_time() -> None:
    clock = ManualClock(start=T0)
    older = replace(BASE, backup_id="0", start=T0 - 90000, end=T0 - 86400, size_bytes=1)
    failed = replace(BASE, backup_id="2", status="Failed", start=T0 - 300, end=T0 - 200)
    state = make_state(older, BASE, failed)
    samples = render(state, clock)
    full = (("backup_type", "FullBackup"), ("instance_id", "rm-a"))
    assert samples["aliyun_rds_backup_last_success_timestamp_seconds"][full] == T0 - 600
    assert samples["aliyun_rds_backup_last_success_age_seconds"][full] == 600
    assert samples["aliyun_rds_backup_last_success_size_bytes"][full] == 2048
    assert samples["aliyun_rds_backup_last_success_duration_seconds"][full] == 3000
    assert samples["aliyun_rds_backup_last_success_available"][full] == 1
    assert samples["aliyun_rds_backup_last_status"][full] == 0  # the newest completed one failed
    assert samples["aliyun_rds_backup_last_failure_timestamp_seconds"][full] == T0 - 200
    assert samples["aliyun_rds_backup_sets"][full] == 3
    assert samples["aliyun_rds_backup_failed_sets"][full] == 1
    assert samples["aliyun_rds_backup_snapshot_chain_bytes"][(("instance_id", "rm-a"),)] == 12345
    assert "aliyun_rds_backup_last_success_consistent_timestamp_seconds" not in samples
    # The age moves with the clock, without any new poll.
    clock_later = ManualClock(start=T0 + 100)
    assert render(state, clock_later)["aliyun_rds_backup_last_success_age_seconds"][full] == 700


def test_info_metrics_carry_full_label_sets() -> None:
    clock = ManualClock(start=T0)
    samples = render(make_state(replace(BASE, encrypted=True)), clock)
    (labels,) = samples["aliyun_rds_backup_last_success_info"]
    assert dict(labels) == {
        "instance_id": "rm-a",
        "backup_type": "FullBackup",
        "backup_method": "Physical",
        "backup_mode": "Automated",
        "backup_initiator": "System",
        "storage_class": "regular",
        "encrypted": "true",
    }
    (info,) = samples["aliyun_rds_instance_info"]
    assert dict(info) == {
        "instance_id": "rm-a",
        "account": "prod",
        "region_id": "cn-hangzhou",
        "engine": "MySQL",
        "engine_version": "8.0",
        "description": "",
        "team": "payments",
    }
    assert samples["aliyun_rds_exporter_build_info"] == {(("version", "1.2.3"),): 1.0}


def test_failure_counter_series_exist_at_zero_after_baseline() -> None:
    samples = render(make_state(BASE), ManualClock(start=T0))
    failures = samples["aliyun_rds_backup_failures_total"]
    assert failures == {
        (("backup_type", "FullBackup"), ("instance_id", "rm-a")): 0.0,
        (("backup_type", "IncrementalBackup"), ("instance_id", "rm-a")): 0.0,
    }
    incr = (("backup_type", "IncrementalBackup"), ("instance_id", "rm-a"))
    assert samples["aliyun_rds_backup_sets"][incr] == 0


def test_nothing_about_backups_before_the_first_successful_poll() -> None:
    state = make_state(BASE, baseline=False)
    state.instances["rm-a"].collect_success = False
    samples = render(state, ManualClock(start=T0))
    assert "aliyun_rds_backup_last_success_timestamp_seconds" not in samples
    assert "aliyun_rds_backup_failures_total" not in samples
    assert samples["aliyun_rds_backup_collect_success"] == {(("instance_id", "rm-a"),): 0.0}


def test_removed_instances_lose_their_series() -> None:
    state = make_state(BASE)
    state.sync_targets([Target("rm-b", "cn-hangzhou")])
    samples = render(state, ManualClock(start=T0))
    rendered = {dict(k).get("instance_id") for fam in samples.values() for k in fam}
    assert "rm-a" not in rendered
    assert samples["aliyun_rds_exporter_instances"][(("source", "static"),)] == 1


def test_help_says_values_come_from_a_background_poll() -> None:
    registry = CollectorRegistry()
    registry.register(
        BackupCollector(
            make_state(BASE),
            ManualClock(start=T0),
            interval_text="5m",
            version="x",
            policy_refresh_text="6h",
        )
    )
    for fmt in (generate_latest, generate_openmetrics):
        text = fmt(registry).decode()
        assert "# TYPE aliyun_rds_backup_failures_total counter" in text or (
            "# TYPE aliyun_rds_backup_failures counter" in text
        )
        help_lines = [
            line for line in text.splitlines() if line.startswith("# HELP aliyun_rds_backup")
        ]
        policy = [line for line in help_lines if line.startswith("# HELP aliyun_rds_backup_policy")]
        tasks = [line for line in help_lines if "DescribeBackupTasks" in line]
        storage = [line for line in help_lines if "DescribeResourceUsage" in line]
        backups = [line for line in help_lines if line not in policy + tasks + storage]
        assert backups and len(policy) == 6
        assert len(tasks) == 5  # running jobs, failed jobs, progress, running for, stalled
        assert len(storage) == 2  # bytes by kind, paid bytes
        assert all("DescribeResourceUsage every 1h" in line for line in storage)
        assert all("background poll of DescribeBackups every 5m" in line for line in backups)
        assert all("background poll of DescribeBackupPolicy every 6h" in line for line in policy)
        discovery = [
            line for line in text.splitlines() if line.startswith("# HELP aliyun_rds_disc")
        ]
        assert len(discovery) == 3
        assert all("DescribeDBInstances" in line for line in discovery)


def test_one_broken_instance_does_not_fail_the_scrape() -> None:
    state = make_state(BASE)
    state.sync_targets([Target("rm-a", "cn-hangzhou"), Target("rm-b", "cn-hangzhou")])
    broken = state.instances["rm-b"]
    broken.baseline_done = True
    broken.summaries = {"FullBackup": "not a summary"}  # type: ignore[dict-item]
    samples = render(state, ManualClock(start=T0))
    assert (("backup_type", "FullBackup"), ("instance_id", "rm-a")) in samples[
        "aliyun_rds_backup_sets"
    ]


def test_instance_state_merge_counts_failures_only_after_baseline() -> None:
    instance = InstanceState(target=Target("rm-a", "r"))
    failed = replace(BASE, backup_id="f1", status="Failed")
    instance.merge([failed], cutoff=0)
    assert instance.failures_total == {}
    instance.baseline_done = True
    instance.merge([failed, replace(failed, backup_id="f2")], cutoff=0)
    assert instance.failures_total == {"FullBackup": 1}
    instance.prune(cutoff=T0)
    assert instance.backups == {}
