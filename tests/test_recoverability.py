"""Can we restore, and to when? End to end against the simulator: the restorable window and its
lag, a gap in the log chain to the second, log files stuck uploading, a backup stuck running and
read back once it finishes, broken point-in-time recovery as an answer (not a failed collection),
and no action ever called on an engine that lacks it."""

from __future__ import annotations

from typing import Any

from exporter.simulator import Faults, Fleet
from tests.harness import DAY, INTERVAL, Harness, Samples, key, running, success_key
from tests.helpers import NOW

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
