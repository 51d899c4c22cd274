"""Several Alibaba Cloud accounts in one process: own keys, own endpoints, one rate limit."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from exporter.simulator import Fleet, SimulatedRds
from tests.harness import key
from tests.helpers import NOW
from tests.running_config import api_section, running_config

REGION = "cn-hangzhou"
PROD_KEY, PROD_SECRET = "LTAI5tProdAccessKey00001", "prod-secret-0123456789abcdef"
STAGING_KEY, STAGING_SECRET = "LTAI5tStagingAccessKey01", "staging-secret-0123456789abc"


def account(name: str, key_id: str, secret: str, **rest: Any) -> dict[str, Any]:
    return {
        "name": name,
        "credentials": {"access_key_id": key_id, "access_key_secret": secret},
        **rest,
    }


def two_account_fleet() -> tuple[Fleet, list[str], list[str], str]:
    fleet = Fleet(seed=21, now=NOW, readonly_fraction=0.0)
    prod = [
        fleet.add_instance(region_id=REGION, description=f"prod {n}").instance_id for n in range(3)
    ]
    staging = [
        fleet.add_instance(region_id=REGION, description=f"staging {n}").instance_id
        for n in range(2)
    ]
    elsewhere = fleet.add_instance(region_id="cn-shanghai", description="prod, other region")
    return fleet, prod, staging, elsewhere.instance_id


def restrict(owners: dict[str, list[str]]) -> Callable[[SimulatedRds], None]:
    """Each instance is visible to its owner's key only (another account's is NotFound)."""

    def prepare(sim: SimulatedRds) -> None:
        for key_id, ids in owners.items():
            for iid in ids:
                sim.restrict_instance(iid, [key_id])

    return prepare


async def test_each_account_sees_and_polls_its_own_instances_with_its_own_key() -> None:
    fleet, prod, staging, elsewhere = two_account_fleet()

    def config(urls: Sequence[str]) -> dict[str, Any]:
        return {
            "api": api_section(urls[0], rate_limit=20),
            "polling": {"interval": "5m", "lookback": "8d", "window": "1d"},
            "accounts": [
                account("prod", PROD_KEY, PROD_SECRET, discovery=[{"region": REGION}]),
                account(
                    "staging",
                    STAGING_KEY,
                    STAGING_SECRET,
                    discovery=[{"region": REGION}],
                    # A prod instance configured under the wrong account by mistake.
                    instances=[{"id": elsewhere, "region": "cn-shanghai"}],
                ),
            ],
        }

    credentials = {PROD_KEY: PROD_SECRET, STAGING_KEY: STAGING_SECRET}
    owners = {PROD_KEY: [*prod, elsewhere], STAGING_KEY: staging}
    async with running_config(
        config, fleet, credentials=credentials, settle=20.0, prepare=restrict(owners)
    ) as h:
        await h.advance(15 * 60)
        samples = await h.scrape()
        info = {
            dict(k)["instance_id"]: dict(k)["account"] for k in samples["aliyun_rds_instance_info"]
        }
        assert info == {
            **dict.fromkeys(prod, "prod"),
            **dict.fromkeys(staging, "staging"),
            elsewhere: "staging",  # as configured
        }
        success = samples["aliyun_rds_backup_collect_success"]
        for iid in [*prod, *staging]:
            assert success[key(instance_id=iid)] == 1
        # The wrong account's key is rejected for the other account's instance.
        assert success[key(instance_id=elsewhere)] == 0
        assert h.exporter.state.instances[elsewhere].last_error == "InvalidDBInstanceId.NotFound"
        for record in h.sim.requests:
            if record.action == "DescribeBackups" and record.instance_id in prod:
                assert record.access_key_id == PROD_KEY and record.code == "OK"
            elif record.action == "DescribeBackups" and record.instance_id in staging:
                assert record.access_key_id == STAGING_KEY and record.code == "OK"
            elif record.instance_id == elsewhere:
                assert record.access_key_id == STAGING_KEY
                assert record.code == "InvalidDBInstanceId.NotFound"
        listings = {r.access_key_id for r in h.sim.requests if r.action == "DescribeDBInstances"}
        assert listings == {PROD_KEY, STAGING_KEY}
        for name in ("prod", "staging"):
            where = key(account=name, region_id=REGION)
            assert samples["aliyun_rds_discovery_success"][where] == 1
        assert samples["aliyun_rds_discovery_instances"][key(account="prod", region_id=REGION)] == 3
        assert (
            samples["aliyun_rds_discovery_instances"][key(account="staging", region_id=REGION)] == 2
        )


async def test_both_accounts_share_one_rate_limit() -> None:
    fleet, prod, staging, _ = two_account_fleet()
    rate = 10.0

    def config(urls: Sequence[str]) -> dict[str, Any]:
        return {
            "api": api_section(urls[0], rate_limit=rate, concurrency=8),
            "polling": {"interval": "5m", "lookback": "8d", "window": "1d"},
            "accounts": [
                account("prod", PROD_KEY, PROD_SECRET, discovery=[{"region": REGION}]),
                account("staging", STAGING_KEY, STAGING_SECRET, discovery=[{"region": REGION}]),
            ],
        }

    credentials = {PROD_KEY: PROD_SECRET, STAGING_KEY: STAGING_SECRET}
    owners = {PROD_KEY: prod, STAGING_KEY: staging}
    async with running_config(
        config, fleet, credentials=credentials, settle=60.0, prepare=restrict(owners)
    ) as h:
        await h.advance(60.0)
        starts = sorted(r.clock for r in h.sim.requests)
        keys = {r.access_key_id for r in h.sim.requests}
        assert keys == {PROD_KEY, STAGING_KEY}
        assert len(starts) >= 5 * 8 + 2  # five first polls of eight windows, two listings
        # Request starts across both accounts are at least 1/rate apart (the simulator reads
        # the same manual clock the limiter sleeps on).
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert min(gaps) >= 1 / rate - 1e-6


async def test_an_account_endpoint_overrides_the_api_endpoint() -> None:
    prod_fleet = Fleet(seed=31, now=NOW, readonly_fraction=0.0)
    prod = prod_fleet.add_instance(region_id=REGION, description="prod").instance_id
    other_fleet = Fleet(seed=32, now=NOW, readonly_fraction=0.0)
    other = other_fleet.add_instance(region_id=REGION, description="over there").instance_id

    def config(urls: Sequence[str]) -> dict[str, Any]:
        return {
            "api": api_section(urls[0]),
            "polling": {"interval": "5m", "lookback": "8d", "window": "1d"},
            "accounts": [
                account("prod", PROD_KEY, PROD_SECRET, discovery=[{"region": REGION}]),
                account(
                    "other",
                    STAGING_KEY,
                    STAGING_SECRET,
                    endpoint=urls[1],
                    discovery=[{"region": REGION}],
                ),
            ],
        }

    credentials = {PROD_KEY: PROD_SECRET, STAGING_KEY: STAGING_SECRET}
    async with running_config(config, prod_fleet, other_fleet, credentials=credentials) as h:
        samples = await h.scrape()
        info = {
            dict(k)["instance_id"]: dict(k)["account"] for k in samples["aliyun_rds_instance_info"]
        }
        assert info == {prod: "prod", other: "other"}
        first, second = h.sims
        assert {r.access_key_id for r in first.requests} == {PROD_KEY}
        assert {r.access_key_id for r in second.requests} == {STAGING_KEY}
        for iid in (prod, other):
            assert samples["aliyun_rds_backup_collect_success"][key(instance_id=iid)] == 1
