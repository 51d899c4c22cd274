"""Can we restore, and to when? End to end against the simulator: the restorable window and its
lag, a gap in the log chain to the second, log files stuck uploading, a backup stuck running and
read back once it finishes, broken point-in-time recovery as an answer (not a failed collection),
and no action ever called on an engine that lacks it."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from exporter.aliyun.models import parse_time
from exporter.config import PollingConfig
from exporter.duties import log_backups
from exporter.serving import reload_from
from exporter.simulator import FORBIDDEN_RAM, Faults, Fleet, SimulatedRds
from exporter.state import InstanceState, Target
from tests.harness import DAY, INTERVAL, Harness, Samples, key, running, success_key
from tests.helpers import KEY_ID, NOW, SECRET, InstantClock, loopback_client

HOUR = 3600.0
MINUTE = 60.0
RECOVERY = "DescribeLocalAvailableRecoveryTime"
BINLOGS = "DescribeBinlogFiles"
SQLSERVER_LOGS = "DescribeLogBackupFiles"
TASKS = "DescribeBackupTasks"
FAST = {"recovery_window_refresh": "5m", "log_backup_refresh": "5m", "backup_tasks_refresh": "5m"}


def one(samples: Samples, name: str, iid: str) -> float | None:
    return samples.get(name, {}).get(key(instance_id=iid))


def calls(h: Harness, iid: str, action: str) -> list[Any]:
    return [r for r in h.sim.requests if r.instance_id == iid and r.action == action]


async def test_the_restorable_window_and_its_lag() -> None:
    holder: dict[str, str] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        iid = fleet.add_instance(engine="MySQL").instance_id
        fleet.set_log_backup(iid, True)
        holder["iid"] = iid

    async with running(instances=0, prepare=prepare, **FAST) as h:
        iid = holder["iid"]
        await h.advance(INTERVAL)
        samples = await h.scrape()
        (last, *_) = reversed(calls(h, iid, RECOVERY))
        assert last.code == "OK"
        truth = h.fleet.recovery_window(iid, last.clock)
        assert isinstance(truth, tuple)
        start = one(samples, "aliyun_rds_recovery_window_start_timestamp_seconds", iid)
        end = one(samples, "aliyun_rds_recovery_window_end_timestamp_seconds", iid)
        assert (start, end) == truth
        lag = one(samples, "aliyun_rds_recovery_point_lag_seconds", iid)
        assert lag == h.clock.time() - truth[1]
        assert one(samples, "aliyun_rds_recovery_broken", iid) is None
        # The lag grows with the clock between reads.
        await h.advance(60)
        later = await h.scrape()
        assert one(later, "aliyun_rds_recovery_point_lag_seconds", iid) == lag + 60


async def test_a_gap_in_the_log_chain_is_reported_to_the_second() -> None:
    holder: dict[str, Any] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        iid = fleet.add_instance(engine="MySQL").instance_id
        fleet.set_log_backup(iid, True)
        start = NOW - 2 * DAY
        fleet.add_log_gap(iid, start, start + 17 * MINUTE + 3)
        holder["iid"] = iid

    async with running(instances=0, prepare=prepare, **FAST) as h:
        iid = holder["iid"]
        samples = await h.scrape()
        now = h.clock.time()
        gaps = h.fleet.log_gaps(iid, now - 8 * DAY, now)
        assert sum(end - start for start, end in gaps) >= 17 * MINUTE + 3
        assert one(samples, "aliyun_rds_log_backup_gap_seconds", iid) == sum(
            end - start for start, end in gaps
        )
        newest = h.fleet.newest_completed_log_end(iid, now)
        assert one(samples, "aliyun_rds_log_backup_last_end_timestamp_seconds", iid) == newest
        # A steady-state read is one call.
        before = len(calls(h, iid, BINLOGS))
        await h.advance(INTERVAL)
        assert len(calls(h, iid, BINLOGS)) == before + 1


async def test_log_files_stuck_uploading_are_counted_and_aged() -> None:
    holder: dict[str, str] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        iid = fleet.add_instance(engine="PostgreSQL").instance_id
        fleet.set_log_backup(iid, True)
        fleet.stick_log_upload(iid, NOW - 3 * HOUR)
        holder["iid"] = iid

    async with running(instances=0, prepare=prepare, **FAST) as h:
        iid = holder["iid"]
        samples = await h.scrape()
        assert one(samples, "aliyun_rds_log_backup_uploading_files", iid) > 0
        age = one(samples, "aliyun_rds_log_backup_oldest_uploading_seconds", iid)
        assert age is not None and age > 2 * HOUR
        newest = one(samples, "aliyun_rds_log_backup_last_end_timestamp_seconds", iid)
        assert newest is not None and newest <= NOW - 3 * HOUR + 60 * MINUTE


async def test_a_stuck_backup_is_seen_and_read_back_once_it_finishes() -> None:
    """Running for 30 hours, longer than the polling overlap: without the read-back, the
    backup would never be seen finishing (DescribeBackups filters on the start time)."""
    holder: dict[str, Any] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        iid = fleet.add_instance(engine="MySQL").instance_id
        fleet.stop_backups(iid, after=NOW - 2 * DAY)
        fleet.stick_backup(iid, NOW - 30 * HOUR, 42)
        holder["iid"] = iid

    async with running(instances=0, prepare=prepare, **FAST) as h:
        iid = holder["iid"]
        first = await h.scrape()
        assert one(first, "aliyun_rds_backup_running_jobs", iid) == 1
        assert one(first, "aliyun_rds_backup_running_job_progress_ratio", iid) == 0.42
        await h.advance(2 * HOUR)
        samples = await h.scrape()
        running_for = one(samples, "aliyun_rds_backup_running_job_seconds", iid)
        stalled = one(samples, "aliyun_rds_backup_running_job_stalled_seconds", iid)
        assert running_for is not None and running_for >= 2 * HOUR
        assert stalled is not None and stalled >= 2 * HOUR  # its progress never moved
        stale = samples["aliyun_rds_backup_last_success_timestamp_seconds"][success_key(iid)]
        # It finishes; the next listing no longer shows it, the next poll reads it back.
        end = h.clock.time() - MINUTE
        h.fleet.unstick_backup(iid, end)
        await h.advance(2 * INTERVAL)
        after = await h.scrape()
        assert one(after, "aliyun_rds_backup_running_jobs", iid) == 0
        newest = after["aliyun_rds_backup_last_success_timestamp_seconds"][success_key(iid)]
        assert newest == end > stale


async def test_broken_point_in_time_recovery_is_an_answer_not_a_failed_collection() -> None:
    holder: dict[str, str] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        iid = fleet.add_instance(engine="MySQL").instance_id
        fleet.set_log_backup(iid, False)
        holder["iid"] = iid

    async with running(instances=0, prepare=prepare, **FAST) as h:
        iid = holder["iid"]
        samples = await h.scrape()
        broken = samples["aliyun_rds_recovery_broken"]
        assert broken == {key(instance_id=iid, reason="LogBackupNotEnabled"): 1.0}
        assert one(samples, "aliyun_rds_backup_collect_success", iid) == 1.0
        assert one(samples, "aliyun_rds_recovery_window_end_timestamp_seconds", iid) is None
        requests = samples["aliyun_rds_api_requests_total"]
        assert requests[key(action=RECOVERY, code="LogBackupNotEnabled")] >= 1


async def test_no_action_is_called_on_an_engine_that_lacks_it() -> None:
    holder: dict[str, str] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        holder["sqlserver"] = fleet.add_instance(engine="SQLServer").instance_id
        holder["mysql"] = fleet.add_instance(engine="MySQL").instance_id
        holder["pg"] = fleet.add_instance(engine="PostgreSQL").instance_id

    async with running(instances=0, prepare=prepare, **FAST) as h:
        await h.advance(3 * INTERVAL)
        actions = {
            iid: {r.action for r in h.sim.requests if r.instance_id == iid}
            for iid in h.fleet.instances
        }
        assert RECOVERY not in actions[holder["sqlserver"]]
        assert BINLOGS not in actions[holder["sqlserver"]]
        assert SQLSERVER_LOGS in actions[holder["sqlserver"]]
        for engine in ("mysql", "pg"):
            assert SQLSERVER_LOGS not in actions[holder[engine]]
            assert {RECOVERY, BINLOGS, TASKS} <= actions[holder[engine]]
        errors = [
            r
            for r in h.sim.requests
            if r.code in ("IncorrectDBInstanceEngine", "ReadDBInstanceNotSupport")
        ]
        assert errors == []


async def test_a_cold_start_reads_every_backup_list_before_any_recoverability_call() -> None:
    """/-/ready waits for the backups of every instance; the recoverability duties must not
    share the rate limit with them until the whole fleet has had its first poll."""

    def prepare(fleet: Fleet, faults: Faults) -> None:
        # One throttled instance: its retries back off, the others finish their backup lists
        # long before it gives up.
        faults.for_instance(next(iter(fleet.instances))).throttle_rate = 1.0

    async with running(instances=6, prepare=prepare, **FAST) as h:
        for _ in range(600):  # its retries back off for a few virtual seconds
            if await h.ready() == 200:
                break
            await h.advance(1.0)
        assert await h.ready() == 200
        await h.advance(1.0)
        order = [r.action for r in h.sim.requests]
        later = {RECOVERY, BINLOGS, SQLSERVER_LOGS, TASKS, "DescribeBackupPolicy"}
        first_later = min(i for i, action in enumerate(order) if action in later)
        backups = [i for i, action in enumerate(order) if action == "DescribeBackups"]
        assert len(backups) > 5 * 8  # eight one-day windows per instance, retries
        assert max(backups) < first_later
        # ... and then they all ran.
        assert {RECOVERY, BINLOGS, TASKS} <= set(order)


async def test_each_duty_switched_off_makes_no_call_and_no_series() -> None:
    off = {
        "recovery_window_refresh": (RECOVERY, "aliyun_rds_recovery_window_end_timestamp_seconds"),
        "log_backup_refresh": (BINLOGS, "aliyun_rds_log_backup_last_end_timestamp_seconds"),
        "backup_tasks_refresh": (TASKS, "aliyun_rds_backup_running_jobs"),
    }
    for key_name, (action, metric) in off.items():
        refreshes = {**FAST, key_name: "0"}
        async with running(instances=3, **refreshes) as h:
            await h.advance(2 * INTERVAL)
            samples = await h.scrape()
            actions = {r.action for r in h.sim.requests}
            assert action not in actions, key_name
            assert not samples.get(metric), key_name
            others = {a for k, (a, _) in off.items() if k != key_name}
            assert others <= actions, key_name  # the others still run


@pytest.mark.slow  # days of simulated polling
async def test_days_of_log_polling_keep_a_few_records_and_the_truth() -> None:
    """A busy PostgreSQL instance lists hundreds of WAL files a day on each node: the exporter
    keeps a record only of those a later read may list again, and still reports the newest
    stored end, the gaps and the bytes (to the hour) of the whole lookback."""
    holder: dict[str, str] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        iid = fleet.add_instance(engine="PostgreSQL").instance_id
        fleet.set_log_backup(iid, True)
        fleet.add_log_gap(iid, NOW - 3 * DAY, NOW - 3 * DAY + 11 * MINUTE)
        holder["iid"] = iid

    async with running(instances=0, prepare=prepare, **FAST) as h:
        iid = holder["iid"]
        for _ in range(2 * 24):
            await h.advance(HOUR)
        samples = await h.scrape()
        state = h.exporter.state.instances[iid]
        (last, *_) = reversed(calls(h, iid, BINLOGS))
        now = last.clock
        lookback = now - 8 * DAY
        listed = h.fleet.log_files(iid, lookback, now, now)
        assert len(listed) > 1000
        assert len(state.log_chain.files) < 60
        assert one(samples, "aliyun_rds_log_backup_last_end_timestamp_seconds", iid) == (
            h.fleet.newest_completed_log_end(iid, now)
        )
        gaps = h.fleet.log_gaps(iid, lookback, now)
        assert one(samples, "aliyun_rds_log_backup_gap_seconds", iid) == sum(
            end - start for start, end in gaps
        )
        stored = sum(f.size for f in listed if f.completed(now) and f.end >= lookback)
        reported = one(samples, "aliyun_rds_log_backup_stored_bytes", iid)
        assert reported is not None and stored <= reported <= stored * 1.01


async def test_a_duty_failing_for_long_withdraws_its_growing_figures() -> None:
    """DescribeBackupTasks denied after a first listing: the job may have finished since, so
    "running for N hours" must not keep growing; two refreshes and a poll later it is gone."""
    holder: dict[str, str] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        iid = fleet.add_instance(engine="MySQL").instance_id
        fleet.set_log_backup(iid, True)
        fleet.stick_backup(iid, NOW - HOUR, 42)
        holder["iid"] = iid

    async with running(instances=0, prepare=prepare, **FAST) as h:
        iid = holder["iid"]
        assert one(await h.scrape(), "aliyun_rds_backup_running_jobs", iid) == 1
        h.sim.faults.for_action(TASKS).forced_error = FORBIDDEN_RAM
        await h.advance(2 * INTERVAL)  # failing, not yet for long: still shown
        assert one(await h.scrape(), "aliyun_rds_backup_running_job_seconds", iid) is not None
        await h.advance(2 * INTERVAL)
        samples = await h.scrape()
        for name in ("aliyun_rds_backup_running_jobs", "aliyun_rds_backup_running_job_seconds"):
            assert one(samples, name, iid) is None, name
        # The other duties carry on: the restorable window is still there.
        assert one(samples, "aliyun_rds_recovery_point_lag_seconds", iid) is not None
        h.sim.faults.for_action(TASKS).forced_error = None
        await h.advance(INTERVAL)
        assert one(await h.scrape(), "aliyun_rds_backup_running_jobs", iid) == 1


async def test_a_reload_that_switches_duties_off_removes_their_series() -> None:
    async with running(instances=2, **FAST) as h:
        before = await h.scrape()
        gone = (
            "aliyun_rds_backup_running_jobs",
            "aliyun_rds_log_backup_gap_seconds",
            "aliyun_rds_cross_region_backup_enabled",
            "aliyun_rds_backup_storage_paid_bytes",
        )
        for name in gone:
            assert before.get(name), name
        assert before.get("aliyun_rds_recovery_point_lag_seconds") or before.get(
            "aliyun_rds_recovery_broken"
        )
        assert {dict(k)["duty"] for k in before["aliyun_rds_exporter_refresh_seconds"]} == {
            "backups",
            "policy",
            "backup_tasks",
            "log_backups",
            "recovery_window",
            "cross_region_policy",
            "cross_region_backups",
            "backup_storage",
        }
        config = h.exporter.config
        off = replace(
            config.polling,
            recovery_window_refresh=0.0,
            log_backup_refresh=0.0,
            backup_tasks_refresh=0.0,
            cross_region_policy_refresh=0.0,
            cross_region_backup_refresh=0.0,
            backup_storage_refresh=0.0,
        )
        assert await reload_from(h.exporter, lambda: replace(config, polling=off))
        await h.advance(1.0)
        after = await h.scrape()
        for name in (
            *gone,
            "aliyun_rds_log_backup_last_end_age_seconds",
            "aliyun_rds_recovery_point_lag_seconds",
            "aliyun_rds_recovery_broken",
            "aliyun_rds_cross_region_backup_sets",
            "aliyun_rds_backup_storage_bytes",
        ):
            assert not after.get(name), name
        assert {dict(k)["duty"] for k in after["aliyun_rds_exporter_refresh_seconds"]} == {
            "backups",
            "policy",
        }


async def test_a_job_listed_as_finished_is_no_longer_running_and_is_read_back() -> None:
    """Some regions keep a finished job listed for a while, BackupStatus Finished (inferred)."""
    holder: dict[str, str] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        iid = fleet.add_instance(engine="MySQL").instance_id
        fleet.stop_backups(iid, after=NOW - 2 * DAY)
        holder["iid"] = iid

    async with running(instances=0, prepare=prepare, **FAST) as h:
        iid = holder["iid"]
        h.sim.inferred.finished_job_seconds = 3 * HOUR
        assert one(await h.scrape(), "aliyun_rds_backup_running_jobs", iid) == 0
        # A backup starts after the first listing, and runs longer than the polls' overlap.
        started = h.clock.time() + 60
        h.fleet.stick_backup(iid, started, 10)
        await h.advance(INTERVAL)
        assert one(await h.scrape(), "aliyun_rds_backup_running_jobs", iid) == 1
        await h.advance(30 * HOUR)
        end = h.clock.time() - MINUTE
        h.fleet.unstick_backup(iid, end)
        h.sim.clear_requests()
        await h.advance(2 * INTERVAL)
        after = await h.scrape()
        assert one(after, "aliyun_rds_backup_running_jobs", iid) == 0
        assert after["aliyun_rds_backup_last_success_timestamp_seconds"][success_key(iid)] == end
        # The read-back starts where the job could have started (after the listing before it
        # was first seen), not at the start of the lookback.
        reads = [r for r in h.sim.requests if r.action == "DescribeBackups"]
        earliest = min(parse_time(r.params["StartTime"]) or 0.0 for r in reads)
        assert started - INTERVAL - DAY <= earliest <= started


async def test_an_instance_of_unknown_engine_still_gets_its_recoverability_read() -> None:
    """A static instance without a backup in the lookback: no engine is known, which is
    exactly when point-in-time recovery may be broken."""
    holder: dict[str, str] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        for engine in ("MySQL", "SQLServer"):
            iid = fleet.add_instance(engine=engine).instance_id
            fleet.stop_backups(iid, after=NOW - 30 * DAY)
            fleet.set_log_backup(iid, False)
            holder[engine] = iid

    async with running(instances=0, prepare=prepare, **FAST) as h:
        await h.advance(2 * INTERVAL)
        samples = await h.scrape()
        mysql, sqlserver = holder["MySQL"], holder["SQLServer"]
        assert h.exporter.state.instances[mysql].known_engine == ""
        broken = samples.get("aliyun_rds_recovery_broken", {})
        assert {dict(k)["instance_id"] for k in broken} == {mysql}
        assert calls(h, sqlserver, SQLSERVER_LOGS) and not calls(h, sqlserver, BINLOGS)
        assert calls(h, mysql, BINLOGS) and not calls(h, mysql, SQLSERVER_LOGS)
        # SQL Server was asked for its window once, to learn that it is SQL Server.
        assert len(calls(h, sqlserver, RECOVERY)) == 1


async def test_catch_up_reads_of_the_log_files_run_a_bounded_number_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cold start reads eight days of log files for every instance; each read holds a
    window's files until it folds them, so only so many run at once (here one). The duty
    against the simulator over loopback, on an instant clock."""
    monkeypatch.setattr(log_backups, "CATCH_UP_READS", 1)
    clock = InstantClock()
    fleet = Fleet.generate(seed=11, instances=4, now=NOW, readonly_fraction=0.0)
    sim = SimulatedRds(fleet, {KEY_ID: SECRET}, clock=clock.time)
    polling = PollingConfig(INTERVAL, 8 * DAY, DAY, DAY - INTERVAL, log_backup_refresh=900.0)
    duty = log_backups.LogBackupsDuty(polling, clock)
    async with loopback_client(sim, clock) as client:
        states = []
        for iid, instance in fleet.instances.items():
            state = InstanceState(target=Target(iid, instance.region_id))
            state.engine = instance.engine
            states.append(state)
        await asyncio.gather(*(duty.run(client, s, s.duty(duty.name)) for s in states))
    order = [r.instance_id for r in sim.requests]
    assert len(order) >= 4 * 8
    runs = [iid for n, iid in enumerate(order) if n == 0 or order[n - 1] != iid]
    assert len(runs) == len(set(runs)) == 4  # one instance after the other, never interleaved
    assert all(s.log_chain.summary is not None for s in states)
