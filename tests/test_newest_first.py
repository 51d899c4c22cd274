"""After a start, newest first: each instance's newest backups are known after about one call,
and the rest of the lookback is read afterwards by the backfill, in the rate limiter's background
lane, at no extra cost. The limiter on its own, then the exporter against the simulator over
loopback on a manual clock."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest

from exporter.aliyun.limiter import RequestLimiter
from exporter.config.checks import DUTY_REFRESHES
from exporter.simulator import Faults, Fleet, InstanceFaults, SimPolicy
from exporter.simulator.timefmt import parse_minute
from tests.clock import ManualClock
from tests.harness import DAY, INTERVAL, Harness, key, running, success_key
from tests.helpers import NOW

LOOKBACK_WINDOWS = 8  # 8d / 1d
# DescribeBackups alone: the other duties' first reads would share the rate at start.
BACKUPS_ONLY = dict.fromkeys(("policy_refresh", *DUTY_REFRESHES), "0")


async def test_background_calls_only_take_the_rate_nothing_else_wants() -> None:
    clock = ManualClock(start=NOW)
    limiter = RequestLimiter(10.0, 100, clock)
    starts: list[tuple[str, float]] = []

    async def call(kind: str, background: bool = False) -> None:
        async with limiter.slot(background=background):
            starts.append((kind, clock.monotonic()))

    def spawn(kind: str, count: int, background: bool = False) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(call(kind, background)) for _ in range(count)]

    tasks = spawn("poll", 20)
    await clock.settle()
    tasks += spawn("backfill", 3, background=True)
    await clock.advance(1.0)
    tasks += spawn("later poll", 5)  # they come after the backfill calls, and go first
    await clock.advance(10.0)
    await asyncio.gather(*tasks)
    kinds = [kind for kind, _ in starts]
    assert kinds == ["poll"] * 20 + ["later poll"] * 5 + ["backfill"] * 3
    times = [at for _, at in starts]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.1 - 1e-9  # the rate holds across both lanes
    assert max(gaps) <= 0.1 + 1e-9  # and the backfill used the rate as soon as it was spare

    # At rest, a backfill call goes at once; a poll right after it waits one start, no more.
    starts.clear()
    await clock.advance(5.0)
    begun = clock.monotonic()
    tasks = spawn("backfill", 1, background=True)
    await clock.settle()
    tasks += spawn("poll", 1)
    await clock.advance(1.0)
    await asyncio.gather(*tasks)
    assert starts == [("backfill", begun), ("poll", begun + 0.1)]


class CountingClock(ManualClock):
    def __init__(self, start: float) -> None:
        super().__init__(start=start)
        self.sleeps = 0

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        await super().sleep(seconds)


async def test_many_waiting_backfill_calls_cost_one_wake_up_per_start() -> None:
    # A large fleet's backfill queues many calls behind a busy rate: each would otherwise wake
    # at every start to look for a spare one (CPU spent on nothing, at 3 a.m. on every host).
    clock = CountingClock(start=NOW)
    limiter = RequestLimiter(10.0, 1000, clock)

    async def call(background: bool) -> None:
        async with limiter.slot(background=background):
            pass

    polls = [asyncio.create_task(call(False)) for _ in range(50)]
    await clock.settle()
    backfills = [asyncio.create_task(call(True)) for _ in range(200)]
    await clock.advance(60.0)
    await asyncio.gather(*polls, *backfills)
    # 250 starts: the polls' sleeps, and about one per start for the background lane.
    assert clock.sleeps <= 50 + 2 * 200 + 50, clock.sleeps


def weekly(fleet: Fleet, iid: str) -> float:
    """Full backups on one weekday only, the newest six days ago; returns its end."""
    newest_day = (NOW - 6 * DAY) // DAY
    weekday = (int(newest_day) + 3) % 7  # 1970-01-01 was a Thursday
    fleet.set_policy(iid, SimPolicy(weekdays=frozenset({weekday}), window_start_hour=2))
    newest = fleet.newest_success(iid, now=NOW)
    assert newest is not None and NOW - 7 * DAY < newest.end < NOW - 5 * DAY
    return newest.end


async def test_a_weekly_instance_is_not_reported_without_backup_while_its_search_goes_back() -> (
    None
):
    ends: dict[str, float] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        iid = sorted(fleet.instances)[0]
        ends[iid] = weekly(fleet, iid)

    # One call a second: the search back to the weekly backup takes seven.
    async with running(instances=2, prepare=prepare, api={"rate_limit": 1}) as h:
        iid = next(iter(ends))
        await h.advance(2.0)
        mid_search = await h.scrape()
        assert await h.ready() == 503
        for name in ("backup_sets", "backup_last_success_timestamp_seconds"):
            series = mid_search.get("aliyun_rds_" + name, {})
            assert success_key(iid) not in series, name  # "none yet" is not "none"
        await h.advance(8.0)
        assert await h.ready() == 200
        found = await h.scrape()
        assert (
            found["aliyun_rds_backup_last_success_timestamp_seconds"][success_key(iid)]
            == (ends[iid])
        )
        # Its search reached back almost the whole lookback: little is left for the backfill,
        # which waits for the other duties' first reads (about 40 calls at one a second).
        await h.advance(120.0)
        done = await h.scrape()
        assert done["aliyun_rds_backup_lookback_complete"][key(instance_id=iid)] == 1
        assert done["aliyun_rds_exporter_backfill_instances"][key()] == 0
        calls = [r for r in h.sim.requests if r.action == "DescribeBackups"]
        assert sum(1 for r in calls if r.instance_id == iid) == LOOKBACK_WINDOWS


async def test_the_backfill_completes_the_counts_and_its_failures_are_the_baseline() -> None:
    old_failure: list[float] = []

    def prepare(fleet: Fleet, faults: Faults) -> None:
        iid = sorted(fleet.instances)[0]
        failed = fleet.add_backup(
            iid, start=NOW - 5 * DAY, end=NOW - 5 * DAY + 600, status="Failed"
        )
        old_failure.append(failed.end)

    async with running(instances=2, prepare=prepare, api={"rate_limit": 2}) as h:
        iid = sorted(h.fleet.instances)[0]
        k = success_key(iid)
        await h.advance(1.0)
        assert await h.ready() == 200
        early = await h.scrape()
        assert early["aliyun_rds_backup_lookback_complete"][key(instance_id=iid)] == 0
        assert early["aliyun_rds_exporter_backfill_instances"][key()] == 2
        assert 0 < early["aliyun_rds_exporter_backfill_windows"][key()] <= 2 * 7
        assert early["aliyun_rds_backup_failed_sets"].get(k, 0) == 0  # not read yet
        # After the other duties' first reads (about 40 calls), which go before the backfill.
        await h.advance(60.0)
        samples = await h.scrape()
        now = h.clock.time()
        for each in h.fleet.instances:
            assert samples["aliyun_rds_backup_lookback_complete"][key(instance_id=each)] == 1
            for status in (None, "Failed"):
                name = "aliyun_rds_backup_failed_sets" if status else "aliyun_rds_backup_sets"
                assert samples[name][success_key(each)] == h.fleet.count(
                    each, backup_type="FullBackup", status=status, since=now - 8 * DAY, now=now
                )
        assert samples["aliyun_rds_exporter_backfill_windows"][key()] == 0
        assert samples["aliyun_rds_backup_failed_sets"][k] >= 1
        assert samples["aliyun_rds_backup_last_failure_timestamp_seconds"][k] >= old_failure[0]
        # There before the exporter looked: the baseline, not a new failure.
        assert samples["aliyun_rds_backup_failures_total"][k] == 0


async def test_a_failed_backfill_is_tried_again_after_the_next_poll(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="exporter.backfill")
    async with running(instances=1, api={"rate_limit": 2, "retries": 0}) as h:
        iid = next(iter(h.fleet.instances))
        assert await h.ready() == 200
        h.sim.faults.per_instance[iid] = InstanceFaults(outage=True)
        await h.advance(10.0)
        assert h.exporter.state.instances[iid].lookback_complete is False
        warnings = [r.getMessage() for r in caplog.records if "backfill" in r.getMessage()]
        assert len(warnings) == 1 and iid in warnings[0], warnings
        h.sim.faults.per_instance.pop(iid)
        await h.advance(INTERVAL + 10.0)
        samples = await h.scrape()
        assert samples["aliyun_rds_backup_lookback_complete"][key(instance_id=iid)] == 1
        assert any("recovered" in r.getMessage() for r in caplog.records)


def first_read_costs(h: Harness) -> tuple[int, int]:
    """DescribeBackups calls of the first reads (the first poll's newest window, its search back
    and the backfill) and of the later polls: the first request of each instance reads the
    newest window; every older window ends where it starts or earlier, later polls start after."""
    calls = [r for r in h.sim.requests if r.action == "DescribeBackups"]
    newest_start: dict[str, float] = {}
    first = later = 0
    for record in calls:
        start, end = (parse_minute(record.params[name]) for name in ("StartTime", "EndTime"))
        assert start is not None and end is not None
        top = newest_start.setdefault(record.instance_id, start)
        if start == top or end <= top:
            first += 1
        else:
            later += 1
    return first, later


@pytest.mark.slow
async def test_a_cold_start_of_1000_instances_knows_each_newest_backup_near_the_floor() -> None:
    instances, rate, interval = 1000, 50.0, 60.0
    floor = instances / rate  # one call per instance: 20 s
    api = {"rate_limit": rate, "concurrency": 2 * instances}
    async with running(instances=instances, api=api, interval="1m", **BACKUPS_ONLY) as h:
        state = h.exporter.state
        while not state.ready:
            await h.advance(1.0)
            assert h.clock.time() - NOW < 10 * floor, "the first polls never ended"
        known_after = h.clock.time() - NOW
        assert known_after <= 1.5 * floor + interval, known_after
        samples = await h.scrape()
        now = h.clock.time()
        for iid in h.fleet.instances:
            got = samples.get("aliyun_rds_backup_last_success_timestamp_seconds", {})
            ends = {
                None if b is None else b.end
                for b in (h.fleet.newest_success(iid, now=t) for t in (NOW, now))
            }
            assert got.get(success_key(iid)) in ends, iid
        # The backfill then completes, without holding back the polls of known instances.
        while not all(s.lookback_complete for s in state.instances.values()):
            await h.advance(5.0)
            now = h.clock.time()
            lag = max(now - (s.last_collect_success or 0.0) for s in state.instances.values())
            assert lag <= 2 * interval, lag
            assert now - NOW < 3600, "the backfill never completed"
        first, _ = first_read_costs(h)
        assert first <= 1.1 * instances * LOOKBACK_WINDOWS, first
        assert first >= instances * (LOOKBACK_WINDOWS - 1)  # it did read the lookback


async def test_a_throttled_backfill_marks_its_instance_on_the_status_page() -> None:
    async with running(instances=1, api={"rate_limit": 2, "retries": 0}) as h:
        iid = next(iter(h.fleet.instances))
        assert await h.ready() == 200
        # Only the backfill asks DescribeBackups before the next poll (one interval away).
        h.sim.faults.for_action("DescribeBackups").throttle_rate = 1.0
        await h.advance(10.0)
        assert h.exporter.state.instances[iid].lookback_complete is False
        async with h.session.get(h.url + "/status.json") as response:
            row = (await response.json())["instances"][0]
        # A warning next to what else it has (this seed's instance has no log backup).
        assert "throttled" in [p["code"] for p in row["problems"]], row
