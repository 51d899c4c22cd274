"""A read slower than the clock-skew allowance (a cold start at scale, behind the rate limit):
what closed while it ran is true, not "dated in the future". The duties against the simulator
over loopback, on an instant clock that each answer moves 20 minutes on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from exporter.aliyun.client import RdsClient
from exporter.config import PollingConfig
from exporter.duties.backups import BackupsDuty
from exporter.duties.log_backups import LogBackupsDuty
from exporter.simulator import Faults, Fleet, SimulatedRds
from exporter.state import CLOCK_SKEW, InstanceState, Target
from tests.harness import DAY, INTERVAL
from tests.helpers import KEY_ID, NOW, SECRET, InstantClock, loopback_client

MINUTE = 60.0
HOUR = 3600.0
ANSWER_TAKES = 20 * MINUTE
POLLING = PollingConfig(INTERVAL, 8 * DAY, DAY, DAY - INTERVAL, log_backup_refresh=900.0)


@asynccontextmanager
async def slow_api(fleet: Fleet, clock: InstantClock) -> AsyncIterator[RdsClient]:
    def slow(action: str, params: dict[str, str], body: Any) -> Any:
        clock.now += ANSWER_TAKES
        return body

    sim = SimulatedRds(fleet, {KEY_ID: SECRET}, clock=clock.time, faults=Faults(transform=slow))
    async with loopback_client(sim, clock) as client:
        yield client


def new_state(fleet: Fleet, iid: str) -> InstanceState:
    instance = fleet.instances[iid]
    state = InstanceState(target=Target(iid, instance.region_id))
    state.engine = instance.engine
    return state


async def test_a_backup_that_finished_during_a_slow_catch_up_poll_is_taken_in() -> None:
    clock = InstantClock()
    fleet = Fleet.generate(seed=5, instances=0, now=NOW)
    iid = fleet.add_instance(engine="MySQL").instance_id
    # Running when the poll starts, done half an hour later, while the poll still runs.
    late = fleet.add_backup(iid, start=NOW - 5 * MINUTE, end=NOW + 30 * MINUTE)
    state = new_state(fleet, iid)
    # Its last poll was six days ago (an outage): this one reads six windows, oldest first.
    state.watermark = state.covered_from = NOW - 6 * DAY
    state.baseline_done = state.lookback_complete = True
    duty = BackupsDuty(POLLING, clock)
    async with slow_api(fleet, clock) as client:
        await duty.run(client, state, state.duty(duty.name))
    assert clock.now - NOW > 2 * HOUR  # far beyond the skew allowance
    state.refresh_summaries()
    newest = state.summaries["FullBackup"].last_success
    assert newest is not None and newest.backup_id == late.backup_id
    assert not state.skipped


async def test_a_log_file_that_closed_during_a_slow_catch_up_read_is_taken_in() -> None:
    clock = InstantClock()
    fleet = Fleet.generate(seed=5, instances=0, now=NOW)
    iid = fleet.add_instance(engine="MySQL").instance_id  # binlogs of 20 to 60 minutes
    fleet.set_log_backup(iid, True)
    state = new_state(fleet, iid)
    duty = LogBackupsDuty(POLLING, clock)
    async with slow_api(fleet, clock) as client:
        code = await duty.run(client, state, state.duty(duty.name))
    assert clock.now - NOW > 2 * HOUR
    assert code is None  # not ImplausibleLogFiles
    summary = state.log_chain.summary
    assert summary is not None
    # The file open at the read's start closed while the read ran, and is taken in.
    closed = [f.end for f in fleet.log_files(iid, NOW - HOUR, NOW, clock.now)]
    assert summary.newest_end is not None and summary.newest_end == max(closed)
    assert summary.newest_end > NOW + CLOCK_SKEW
