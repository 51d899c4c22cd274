"""Disaster recovery and cost, end to end against the simulator: the cross-region settings and
copies (age and failures exact), an instance that cannot copy, one with copying off, backup
storage figures exact with -1 left out, and what each costs in calls."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from exporter.serving import reload_from
from exporter.simulator import FORBIDDEN_RAM, Faults, Fleet
from exporter.simulator.inferred import Inferred
from tests.harness import DAY, INTERVAL, Harness, Samples, key, running
from tests.helpers import NOW

HOUR = 3600.0
MINUTE = 60.0
POLICY = "DescribeInstanceCrossBackupPolicy"
COPIES = "DescribeCrossRegionBackups"
USAGE = "DescribeResourceUsage"
COPY_WINDOW = "DescribeAvailableRecoveryTime"
FAST = {
    "cross_region_policy_refresh": "5m",
    "cross_region_backup_refresh": "5m",
    "backup_storage_refresh": "5m",
}
LOOKBACK = 8 * DAY


def one(samples: Samples, name: str, iid: str, **labels: str) -> float | None:
    return samples.get(name, {}).get(key(instance_id=iid, **labels))


def elsewhere(fleet: Fleet, iid: str) -> str:
    """A region that is not the instance's own."""
    own = fleet.instance(iid).region_id
    return "cn-beijing" if own != "cn-beijing" else "cn-shanghai"


def calls(h: Harness, iid: str, action: str) -> list[Any]:
    return [r for r in h.sim.requests if r.instance_id == iid and r.action == action]


def truth_copies(h: Harness, iid: str) -> tuple[list[Any], float]:
    """The copies the API lists for the lookback at the last copies call."""
    (last, *_) = reversed(calls(h, iid, COPIES))
    now = last.clock
    return h.fleet.cross_region_copies(iid, now - LOOKBACK - DAY, now, now), now


async def test_copies_in_another_region_their_age_and_failures_are_exact() -> None:
    holder: dict[str, str] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        good = fleet.add_instance(engine="MySQL", storage_type="local_ssd").instance_id
        fleet.set_cross_region(good, True, region=elsewhere(fleet, good), retention_days=15)
        failing = fleet.add_instance(engine="PostgreSQL").instance_id
        fleet.set_cross_region(failing, True, region=elsewhere(fleet, failing), retention_days=7)
        fleet.fail_cross_region_copies(failing, since=NOW - 2 * DAY)
        holder.update(good=good, failing=failing)

    async with running(instances=0, prepare=prepare, **FAST) as h:
        await h.advance(INTERVAL)
        samples = await h.scrape()
        for iid in holder.values():
            copies, now = truth_copies(h, iid)
            in_lookback = [c for c in copies if c.source.end >= now - LOOKBACK]
            good = [c.source.end for c in in_lookback if c.status == 0]
            bad = [c.source.end for c in in_lookback if c.status != 0]
            assert in_lookback, iid
            assert one(samples, "aliyun_rds_cross_region_backup_enabled", iid) == 1
            assert one(samples, "aliyun_rds_cross_region_backup_sets", iid) == len(in_lookback)
            assert one(samples, "aliyun_rds_cross_region_backup_failed_sets", iid) == len(bad)
            last_good = one(
                samples, "aliyun_rds_cross_region_backup_last_success_timestamp_seconds", iid
            )
            assert last_good == (max(good) if good else None), iid
            last_bad = one(
                samples, "aliyun_rds_cross_region_backup_last_failure_timestamp_seconds", iid
            )
            assert last_bad == (max(bad) if bad else None), iid
        good_id, failing_id = holder["good"], holder["failing"]
        assert (
            one(
                samples,
                "aliyun_rds_cross_region_backup_info",
                good_id,
                destination_region=elsewhere(h.fleet, good_id),
            )
            == 1
        )
        assert one(samples, "aliyun_rds_cross_region_backup_retention_days", good_id) == 15
        # Copies have failed for two days: the newest copy is a failed one.
        last_good = one(
            samples, "aliyun_rds_cross_region_backup_last_success_timestamp_seconds", failing_id
        )
        last_bad = one(
            samples, "aliyun_rds_cross_region_backup_last_failure_timestamp_seconds", failing_id
        )
        assert last_bad is not None and (last_good is None or last_bad > last_good)
        # The age is read at scrape time.
        check_copy_age(h, samples, good_id)
        await h.advance(60)
        check_copy_age(h, await h.scrape(), good_id)


def check_copy_age(h: Harness, samples: Samples, iid: str) -> None:
    newest = one(samples, "aliyun_rds_cross_region_backup_last_success_timestamp_seconds", iid)
    age = one(samples, "aliyun_rds_cross_region_backup_last_success_age_seconds", iid)
    assert newest is not None and age == h.clock.time() - newest


async def test_copying_off_or_impossible_shows_as_off_without_listing_copies() -> None:
    holder: dict[str, str] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        off = fleet.add_instance(engine="MySQL", storage_type="local_ssd").instance_id
        fleet.set_cross_region(off, False)
        mariadb = fleet.add_instance(engine="MariaDB").instance_id
        holder.update(off=off, mariadb=mariadb)

    async with running(instances=0, prepare=prepare, **FAST) as h:
        await h.advance(2 * INTERVAL)
        samples = await h.scrape()
        for iid in holder.values():
            assert one(samples, "aliyun_rds_cross_region_backup_enabled", iid) == 0, iid
            assert one(samples, "aliyun_rds_cross_region_log_backup_enabled", iid) == 0, iid
            assert not [
                s
                for s in samples.get("aliyun_rds_cross_region_backup_info", {})
                if ("instance_id", iid) in s
            ]
            # Neither is a failed collection: the answer is about the instance.
            assert one(samples, "aliyun_rds_backup_collect_success", iid) == 1, iid
        # Copying off: its copies are not listed at all.
        assert calls(h, holder["off"], POLICY)
        assert not calls(h, holder["off"], COPIES)
        # MariaDB answers CrossBackupNotSupport once per refresh, not at every poll.
        refused = calls(h, holder["mariadb"], POLICY)
        assert refused and all(r.code == "CrossBackupNotSupport" for r in refused)


async def test_backup_storage_figures_are_exact_and_no_data_is_absent() -> None:
    holder: dict[str, str] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        paid = fleet.add_instance(engine="MySQL").instance_id
        fleet.set_paid_backup_bytes(paid, 3 * 2**30)
        plain = fleet.add_instance(engine="SQLServer").instance_id
        holder.update(paid=paid, plain=plain)

    async with running(instances=0, prepare=prepare, **FAST) as h:
        await h.advance(INTERVAL)
        samples = await h.scrape()
        fields = {
            "total": "BackupSize",
            "data": "BackupDataSize",
            "log": "BackupLogSize",
            "oss_data": "BackupOssDataSize",
            "oss_log": "BackupOssLogSize",
            "archive": "ArchiveBackupSize",
            "cold": "ColdBackupSize",
            "ecs_snapshot": "BackupEcsSnapshotSize",
        }
        for iid in holder.values():
            (last, *_) = reversed(calls(h, iid, USAGE))
            usage = h.fleet.resource_usage(iid, last.clock)
            for kind, field in fields.items():
                given = int(usage[field])
                shown = one(samples, "aliyun_rds_backup_storage_bytes", iid, kind=kind)
                assert shown == (None if given == -1 else given), (iid, kind)
            paid = one(samples, "aliyun_rds_backup_storage_paid_bytes", iid)
            assert paid == usage["PaidBackupSize"]
        assert one(samples, "aliyun_rds_backup_storage_paid_bytes", holder["paid"]) == 3 * 2**30
        # Something is -1 somewhere in a fleet: cold storage unused, say. It is left out.
        assert any(
            int(h.fleet.resource_usage(iid, h.clock.time())[field]) == -1
            for iid in holder.values()
            for field in fields.values()
        )


async def test_steady_state_costs_one_call_per_instance_per_refresh() -> None:
    """After the first read of the lookback, each refresh lists an instance's copies with one
    call, reads its settings once per their refresh, its storage once per its own."""
    async with running(
        instances=4,
        cross_region_policy_refresh="1h",
        cross_region_backup_refresh="30m",
        backup_storage_refresh="1h",
    ) as h:
        await h.advance(2 * HOUR)  # past every first read
        before = len(h.sim.requests)
        counted = {POLICY: 0, COPIES: 0, USAGE: 0}
        start = len(h.sim.requests)
        await h.advance(6 * HOUR)
        for request in h.sim.requests[start:]:
            if request.action in counted:
                counted[request.action] += 1
        assert len(h.sim.requests) > before
        applies = {
            iid
            for iid in h.exporter.state.instances
            if any(r.action == POLICY and r.instance_id == iid for r in h.sim.requests)
        }
        copying = {
            iid
            for iid in applies
            if h.exporter.state.instances[iid].cross_region is not None
            and h.exporter.state.instances[iid].cross_region.enabled  # type: ignore[union-attr]
        }
        assert counted[POLICY] == 6 * len(applies)
        assert counted[COPIES] == 12 * len(copying)
        readable = {
            iid
            for iid, s in h.exporter.state.instances.items()
            if s.target.instance_type != "Readonly"
        }
        assert counted[USAGE] == 6 * len(readable)


async def test_each_new_duty_switched_off_makes_no_call() -> None:
    off = {
        "cross_region_policy_refresh": (POLICY, "aliyun_rds_cross_region_backup_enabled"),
        "cross_region_backup_refresh": (COPIES, "aliyun_rds_cross_region_backup_sets"),
        "backup_storage_refresh": (USAGE, "aliyun_rds_backup_storage_paid_bytes"),
    }
    for key_name, (action, metric) in off.items():
        async with running(instances=3, **{**FAST, key_name: "0"}) as h:
            await h.advance(2 * INTERVAL)
            samples = await h.scrape()
            actions = {r.action for r in h.sim.requests}
            assert action not in actions, key_name
            assert not samples.get(metric), key_name


async def test_the_newest_good_copy_and_how_far_a_restore_from_it_reaches() -> None:
    """MySQL on local disks: the window of the newest good copy, as the API gives it; copies
    without their logs cannot be restored (an answer, not a failure). Other engines: not asked."""
    holder: dict[str, str] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        with_logs = fleet.add_instance(engine="MySQL", storage_type="local_ssd").instance_id
        fleet.set_log_backup(with_logs, True)
        fleet.set_cross_region(with_logs, True, log=True, region=elsewhere(fleet, with_logs))
        no_logs = fleet.add_instance(engine="MySQL", storage_type="local_ssd").instance_id
        fleet.set_cross_region(no_logs, True, log=False, region=elsewhere(fleet, no_logs))
        postgres = fleet.add_instance(engine="PostgreSQL").instance_id
        fleet.set_cross_region(postgres, True, region=elsewhere(fleet, postgres))
        holder.update(with_logs=with_logs, no_logs=no_logs, postgres=postgres)

    async with running(instances=0, prepare=prepare, **FAST) as h:
        await h.advance(INTERVAL)
        samples = await h.scrape()
        iid = holder["with_logs"]
        (asked, *_) = reversed(calls(h, iid, COPY_WINDOW))
        copies, _ = truth_copies(h, iid)
        newest = max((c for c in copies if c.status == 0), key=lambda c: c.source.end)
        assert asked.params["CrossBackupId"] == str(newest.cross_backup_id)
        truth = h.fleet.cross_region_recovery_window(newest.cross_backup_id, asked.clock)
        assert isinstance(truth, tuple)
        start = one(samples, "aliyun_rds_cross_region_recovery_window_start_timestamp_seconds", iid)
        end = one(samples, "aliyun_rds_cross_region_recovery_window_end_timestamp_seconds", iid)
        assert (start, end) == truth
        assert not samples.get("aliyun_rds_cross_region_recovery_broken", {}).get(
            key(instance_id=iid, reason="NoAvailableLogBackup")
        )
        # Logs not copied: a set can be restored there, no point in time. Not asked (the API
        # would say NoAvailableLogBackup), and not shown as broken.
        no_logs = holder["no_logs"]
        assert one(samples, "aliyun_rds_cross_region_log_backup_enabled", no_logs) == 0
        assert not calls(h, no_logs, COPY_WINDOW)
        assert not [
            k
            for k in samples.get("aliyun_rds_cross_region_recovery_broken", {})
            if ("instance_id", no_logs) in k
        ]
        assert not calls(h, holder["postgres"], COPY_WINDOW)


async def test_a_failure_to_ask_for_the_copy_window_keeps_the_copies() -> None:
    """DescribeAvailableRecoveryTime denied (a RAM policy without it): the copies listed still
    show, the window read before stays, and the copies are not withdrawn later."""
    holder: dict[str, str] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        iid = fleet.add_instance(engine="MySQL", storage_type="local_ssd").instance_id
        fleet.set_log_backup(iid, True)
        fleet.set_cross_region(iid, True, log=True, region=elsewhere(fleet, iid))
        holder["iid"] = iid

    async with running(instances=0, prepare=prepare, **FAST) as h:
        iid = holder["iid"]
        await h.advance(INTERVAL)
        before = await h.scrape()
        end = "aliyun_rds_cross_region_recovery_window_end_timestamp_seconds"
        assert one(before, end, iid) is not None
        h.sim.faults.for_action(COPY_WINDOW).forced_error = FORBIDDEN_RAM
        await h.advance(6 * HOUR)
        after = await h.scrape()
        assert calls(h, iid, COPY_WINDOW)[-1].code == FORBIDDEN_RAM.code
        copies, now = truth_copies(h, iid)
        good = [c.source.end for c in copies if c.status == 0 and c.source.end >= now - LOOKBACK]
        newest = one(after, "aliyun_rds_cross_region_backup_last_success_timestamp_seconds", iid)
        assert newest == max(good)
        assert one(after, end, iid) == one(before, end, iid)


@pytest.mark.slow  # days of simulated polling
async def test_no_copy_is_missed_when_reads_are_a_day_apart_or_fail_for_days() -> None:
    """A copy is listed by its backup's start but appears hours later: each read goes back far
    enough for it, whatever the refresh, and after days of failed reads."""
    holder: dict[str, str] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        for _ in range(3):
            iid = fleet.add_instance(engine="PostgreSQL").instance_id
            fleet.set_cross_region(iid, True, region=elsewhere(fleet, iid), retention_days=30)
            # Running when the third daily read comes (about two days in), copied after it:
            # the fourth read must go back before the third one's end to list it.
            fleet.add_backup(iid, start=NOW + 2 * DAY - 30 * MINUTE, end=NOW + 2 * DAY + HOUR)
            holder[iid] = iid

    async with running(instances=0, prepare=prepare, cross_region_backup_refresh="1d") as h:
        await h.advance(3 * DAY + HOUR)
        samples = await h.scrape()
        for iid in holder:
            late = NOW + 2 * DAY + HOUR
            assert late in [c.source.end for c in truth_copies(h, iid)[0]]
            newest = one(
                samples, "aliyun_rds_cross_region_backup_last_success_timestamp_seconds", iid
            )
            assert newest is not None and newest >= late, iid
        h.sim.faults.for_action(COPIES).outage = True
        await h.advance(2 * DAY)
        h.sim.faults.for_action(COPIES).outage = False
        await h.advance(DAY + INTERVAL)
        samples = await h.scrape()
        for iid in holder:
            copies, now = truth_copies(h, iid)
            listed = [c for c in copies if c.source.end >= now - LOOKBACK]
            assert one(samples, "aliyun_rds_cross_region_backup_sets", iid) == len(listed), iid
            newest = one(
                samples, "aliyun_rds_cross_region_backup_last_success_timestamp_seconds", iid
            )
            assert newest == max(c.source.end for c in listed if c.status == 0), iid


@pytest.mark.parametrize(
    "inferred",
    [
        Inferred(cross_window_on_end_time=True),
        Inferred(cross_page_past_end_error=False),
        Inferred(cross_policy_disabled_blank=False),
        Inferred(usage_ecs_snapshot_field=False, usage_backup_size_oss=False),
    ],
    ids=["window-on-end", "empty-page-past-end", "disabled-keeps-settings", "usage-fields"],
)
async def test_the_other_readings_of_what_the_reference_only_infers(inferred: Inferred) -> None:
    """Where the reference guesses, the exporter is right under the other reading too: copies
    exact, a disabled instance off with no destination, storage as given."""
    holder: dict[str, str] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        copying = fleet.add_instance(engine="PostgreSQL").instance_id
        fleet.set_cross_region(copying, True, region=elsewhere(fleet, copying))
        off = fleet.add_instance(engine="SQLServer").instance_id
        fleet.set_cross_region(off, True, region=elsewhere(fleet, off))
        fleet.set_cross_region(off, False)
        holder.update(copying=copying, off=off)

    async with running(instances=0, prepare=prepare, inferred=inferred, **FAST) as h:
        await h.advance(INTERVAL)
        samples = await h.scrape()
        iid = holder["copying"]
        copies, now = truth_copies(h, iid)
        good = [c.source.end for c in copies if c.status == 0 and c.source.end >= now - LOOKBACK]
        newest = one(samples, "aliyun_rds_cross_region_backup_last_success_timestamp_seconds", iid)
        assert good and newest == max(good)
        assert one(samples, "aliyun_rds_cross_region_backup_sets", iid) == len(good)
        off = holder["off"]
        assert one(samples, "aliyun_rds_cross_region_backup_enabled", off) == 0
        assert not [
            k
            for k in samples.get("aliyun_rds_cross_region_backup_info", {})
            if ("instance_id", off) in k
        ]
        for iid in holder.values():
            (last, *_) = reversed(calls(h, iid, USAGE))
            usage = h.fleet.resource_usage(
                iid,
                last.clock,
                backup_size_oss=inferred.usage_backup_size_oss,
                ecs_snapshot_field=inferred.usage_ecs_snapshot_field,
            )
            total = one(samples, "aliyun_rds_backup_storage_bytes", iid, kind="total")
            assert total == (None if usage["BackupSize"] == -1 else usage["BackupSize"])
            snapshot = one(samples, "aliyun_rds_backup_storage_bytes", iid, kind="ecs_snapshot")
            assert (snapshot is None) == ("BackupEcsSnapshotSize" not in usage)


async def test_a_duty_that_keeps_failing_is_counted_until_it_works_or_is_switched_off() -> None:
    """Backup storage denied (a RAM policy without DescribeResourceUsage): its figures go after
    two refreshes, and what says so instead is the count of instances it fails for."""
    async with running(instances=3, **FAST) as h:
        failing = "aliyun_rds_exporter_duty_failing_instances"
        samples = await h.scrape()
        assert set(samples[failing].values()) == {0}
        h.sim.faults.for_action(USAGE).forced_error = FORBIDDEN_RAM
        await h.advance(HOUR)
        samples = await h.scrape()
        counted = {dict(k)["duty"]: v for k, v in samples[failing].items()}
        assert counted.pop("backup_storage") == 3
        assert set(counted.values()) == {0}
        assert not samples.get("aliyun_rds_backup_storage_paid_bytes")  # withdrawn
        config = h.exporter.config
        off = replace(config.polling, backup_storage_refresh=0.0)
        assert await reload_from(h.exporter, lambda: replace(config, polling=off))
        await h.advance(1.0)
        samples = await h.scrape()
        assert "backup_storage" not in {dict(k)["duty"] for k in samples[failing]}
