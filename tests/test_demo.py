"""``--demo``'s story, told by the real exporter against the demo fleet under a manual clock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from exporter.config import Config
from exporter.demo import DEMO_SEED, build_demo_config, build_demo_fleet
from exporter.simulator import DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, SimulatedRds
from tests.harness import key
from tests.helpers import NOW
from tests.running_config import running_config

HOUR = 3600.0
DAY = 86400.0
MARGIN = 1.5  # prometheus/rules.yml: stale beyond 1.5 x the policy's expected interval


async def test_demo_discovers_its_fleet_and_the_stale_instance_is_stale_by_its_policy() -> None:
    fleet, faults, roles = build_demo_fleet(NOW)

    def config(urls: Sequence[str]) -> Config:
        demo = build_demo_config(urls[0], roles, fleet)
        # More slots than tasks: the manual clock moves on only when every task sleeps on it,
        # and a task waiting for a concurrency slot does not.
        return replace(demo, api=replace(demo.api, concurrency=64, rate_limit=1000))

    def use_demo_faults(sim: SimulatedRds) -> None:
        sim.faults = faults

    credentials = {DEMO_ACCESS_KEY_ID: DEMO_ACCESS_KEY_SECRET}
    # Ten virtual seconds: throttled answers may ask for a wait of up to five.
    async with running_config(
        config, fleet, credentials=credentials, settle=10.0, prepare=use_demo_faults
    ) as h:
        assert h.sims[0].faults is faults
        assert await h.ready() == 200
        samples = await h.scrape()
        info = {dict(k)["instance_id"]: dict(k) for k in samples["aliyun_rds_instance_info"]}
        assert set(info) == {*fleet.instances, roles.missing}
        assert samples["aliyun_rds_exporter_instances"] == {
            # The two failing instances, the missing id, and the one that must have copies in
            # another region (labelled dr: required) but has none.
            key(source="static"): 4,
            key(source="discovery"): len(fleet.instances) - 3,
        }
        for iid in fleet.instances:
            assert info[iid]["description"] == fleet.instance(iid).description
        for iid in roles.failing:
            assert info[iid]["team"] == "demo"  # static labels, discovered description
        assert info[roles.dr_disabled]["dr"] == "required"
        assert samples["aliyun_rds_backup_collect_success"][key(instance_id=roles.missing)] == 0

        interval = {
            dict(k)["instance_id"]: v
            for k, v in samples["aliyun_rds_backup_policy_expected_interval_seconds"].items()
        }
        assert set(interval) == set(fleet.instances)
        age = {
            dict(k)["instance_id"]: v
            for k, v in samples["aliyun_rds_backup_last_success_age_seconds"].items()
            if dict(k)["backup_type"] == "FullBackup"
        }
        # Backups stopped three days ago; a daily schedule makes that stale by its policy.
        assert interval[roles.stale] == DAY + HOUR
        assert age[roles.stale] > 3 * DAY > MARGIN * interval[roles.stale]
        weekly = [iid for iid, seconds in interval.items() if seconds == 7 * DAY + HOUR]
        assert weekly and all(age[iid] < MARGIN * interval[iid] for iid in weekly)
        for iid in roles.healthy:
            if iid in age:
                assert age[iid] < MARGIN * interval[iid], iid


def test_demo_seed_is_stable() -> None:
    first, _, roles = build_demo_fleet(NOW)
    again, _, same = build_demo_fleet(NOW)
    assert list(first.instances) == list(again.instances) and roles == same
    assert DEMO_SEED == 7
