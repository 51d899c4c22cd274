"""Thirty simulated days with churn: instances come and go (found by discovery, next to one
listed by hand), backups fail, the API has outages. Counters never go down, memory stays
bounded by the fleet, and the series of instances that leave go with them. Runs in seconds on
a manual clock."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from exporter.simulator import Fleet
from tests.harness import DAY, key
from tests.helpers import KEY_ID, NOW, SECRET
from tests.running_config import api_section, running_config

pytestmark = pytest.mark.slow  # seconds of CPU: a month of polling

REGION = "cn-hangzhou"
HOUR = 3600.0


def instance_ids(samples: dict[str, dict[frozenset[tuple[str, str]], float]]) -> set[str]:
    return {dict(k)["instance_id"] for k in samples.get("aliyun_rds_instance_info", {})}


async def test_thirty_days_with_churn_failures_and_outages() -> None:
    fleet = Fleet(seed=31, now=NOW, readonly_fraction=0.0)
    for n in range(4):
        fleet.add_instance(region_id=REGION, description=f"app {n}")
    static = fleet.add_instance(region_id="cn-shanghai", description="listed by hand")

    def config(urls: Sequence[str]) -> dict[str, Any]:
        return {
            "api": api_section(urls[0], retries=1),
            "credentials": {"access_key_id": KEY_ID, "access_key_secret": SECRET},
            "polling": {"interval": "1h", "lookback": "8d", "window": "1d"},
            "instances": [{"id": static.instance_id, "region": "cn-shanghai"}],
            "discovery": [{"region": REGION, "refresh": "1h", "grace": "2h"}],
        }

    async with running_config(config, fleet) as h:
        for instance_id in [*list(fleet.instances)[:2], static.instance_id]:
            fleet.set_failure_rate(instance_id, 0.3, since=NOW)
        previous: dict[frozenset[tuple[str, str]], float] = {}
        removed: list[str] = []
        largest_state = 0
        for day in range(1, 31):
            if day % 4 == 0:  # churn: one instance leaves, a new one arrives
                leaving = next(i for i in fleet.instances if i != static.instance_id)
                fleet.remove_instance(leaving)
                removed.append(leaving)
                fleet.add_instance(
                    region_id=REGION, description=f"day {day}", created_at=h.clock.time()
                )
            if day % 7 == 3:  # a six-hour outage in the middle of the day
                await h.advance(10 * HOUR)
                h.sim.faults.outage = True
                await h.advance(6 * HOUR)
                h.sim.faults.outage = False
                await h.advance(8 * HOUR)
            else:
                await h.advance(DAY)
            samples = await h.scrape()
            failures = samples["aliyun_rds_backup_failures_total"]
            for series, value in failures.items():
                if series in previous:
                    assert value >= previous[series], (day, series)
            previous = failures
            live = set(fleet.instances)
            assert instance_ids(samples) == live, day
            for gone in removed:
                assert all(dict(k).get("instance_id") != gone for f in samples.values() for k in f)
            state = h.exporter.state
            assert set(state.instances) == live
            held = max(len(s.backups) for s in state.instances.values())
            largest_state = max(largest_state, held)
            now = h.clock.time()
            for iid, instance in state.instances.items():
                assert all(
                    # pruned at each poll: at most one interval past the lookback
                    b.start is not None and b.start >= now - 8 * DAY - HOUR
                    for b in instance.backups.values()
                )
                assert samples["aliyun_rds_backup_collect_success"][key(instance_id=iid)] == 1
        # Bounded by the lookback: a few backups a day for 8 days, however long the run.
        assert 0 < largest_state <= 8 * 4
        assert len(removed) == 7
        # Failures did happen and were counted, exactly once each (the static instance stayed).
        counted = previous[key(instance_id=static.instance_id, backup_type="FullBackup")]
        assert counted > 0
        last_poll = h.exporter.state.instances[static.instance_id].last_collect_success
        assert last_poll is not None
        assert counted == fleet.count(
            static.instance_id, backup_type="FullBackup", status="Failed", since=NOW, now=last_poll
        )
