"""Sharding: replicas split the fleet by a stable hash of the instance id, exactly and for good.

Unit checks of the assignment, the flags as an operator meets them, and two exporters (two
shards, each with its own access key) against one simulator, through discovery and the static
list, while instances come and go.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from exporter.config import parse_config
from exporter.service import Exporter, load_plan, targets_from_config
from exporter.sharding import Shard, jump_hash, shard_of
from exporter.simulator import Fleet, SimulatedRds
from tests.clock import ManualClock
from tests.harness import Samples, scrape
from tests.helpers import NOW
from tests.test_cli import run_cli

REGION = "cn-hangzhou"
KEYS = {"LTAI5tShardZeroKey000000": "shard-zero-secret-0000000", "LTAI5tShardOneKey0000000": "x1"}


def fleet_ids(count: int, seed: int = 3) -> list[str]:
    """Ids shaped like real ones (rm-bp1 + 14 characters)."""
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return [f"rm-bp1{''.join(rng.choices(alphabet, k=14))}" for _ in range(count)]


# ----- The assignment, unit ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("total", [1, 2, 3, 5, 8, 16])
def test_every_id_is_in_exactly_one_shard_and_shares_are_even(total: int) -> None:
    ids = fleet_ids(20_000)
    shards = [Shard(index, total) for index in range(total)]
    owners = [sum(shard.owns(iid) for shard in shards) for iid in ids]
    assert owners == [1] * len(ids)
    sizes = Counter(shard_of(iid, total) for iid in ids)
    assert set(sizes) == set(range(total))
    expected = len(ids) / total
    assert all(abs(size - expected) < 0.08 * expected for size in sizes.values()), sizes


def test_an_ids_shard_depends_on_the_id_alone() -> None:
    ids = fleet_ids(3_000)
    before = {iid: shard_of(iid, 4) for iid in ids}
    # Instances come and go: a different, shuffled fleet with most of the same ids.
    later = ids[500:] + fleet_ids(1_000, seed=4)
    random.Random(1).shuffle(later)
    after = {iid: shard_of(iid, 4) for iid in later}
    assert all(after[iid] == before[iid] for iid in ids[500:])


def test_the_hash_is_pinned() -> None:
    """Replicas of different versions must agree during a rolling upgrade: these never change."""
    assert [shard_of("rm-uf6wjk5xxxxxxxx", n) for n in (1, 2, 3, 10)] == [0, 0, 2, 4]
    assert [jump_hash(k, 1000) for k in (0, 1, 2**63, 2**64 - 1)] == [0, 549, 453, 313]


@pytest.mark.parametrize("total", [1, 2, 4, 9])
def test_one_more_replica_moves_only_its_share_and_only_to_itself(total: int) -> None:
    ids = fleet_ids(20_000)
    moved = [iid for iid in ids if shard_of(iid, total + 1) != shard_of(iid, total)]
    assert all(shard_of(iid, total + 1) == total for iid in moved)
    share = len(moved) / len(ids)
    assert abs(share - 1 / (total + 1)) < 0.02


@pytest.mark.parametrize(("index", "total"), [(-1, 2), (2, 2), (0, 0), (5, 3)])
def test_impossible_shards_are_refused(index: int, total: int) -> None:
    with pytest.raises(ValueError, match=r"^--shard\.(index|total): must be"):
        Shard(index, total)


def config_with(ids: Sequence[str], **extra: Any) -> Any:
    key, secret = next(iter(KEYS.items()))
    return parse_config(
        {
            "credentials": {"access_key_id": key, "access_key_secret": secret},
            "instances": [{"id": iid, "region": REGION} for iid in ids],
            **extra,
        },
        {},
    )


def test_static_instances_are_split_and_check_config_says_so() -> None:
    ids = fleet_ids(300)
    config = config_with(ids)
    parts = [{t.instance_id for t in targets_from_config(config, Shard(n, 3))} for n in range(3)]
    assert set().union(*parts) == set(ids)
    assert sum(len(part) for part in parts) == len(ids)
    lines = load_plan(config, Shard(1, 3))
    assert lines[1] == (
        f"shard: 1 of 3 (indexes 0..2): {len(parts[1])} of the 300 static instances, and about "
        "1/3 of those discovery finds"
    )
    assert lines[2] == f"instances: {len(parts[1])} static"
    assert not any(line.startswith("shard:") for line in load_plan(config))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--shard.index", "3", "--shard.total", "3"), "--shard.index: must be in 0..2"),
        (("--shard.total", "0"), "--shard.total: must be at least 1"),
        (("--shard.index", "-1"), "--shard.index: must be in 0..0"),
    ],
)
def test_bad_shard_flags_are_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    result = run_cli("--config.file", "/nonexistent.yaml", *args)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"error: {message}")
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_statefulset_gives_each_pod_its_ordinal_and_the_replica_count() -> None:
    path = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes-sharded"
    statefulset = yaml.safe_load((path / "statefulset.yaml").read_text())
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    assert f"--shard.total={statefulset['spec']['replicas']}" in container["args"]
    assert "--shard.index=$(SHARD_INDEX)" in container["args"]
    env = {item["name"]: item for item in container["env"]}
    field = env["SHARD_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert field == "metadata.labels['apps.kubernetes.io/pod-index']"
    kustomization = yaml.safe_load((path / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["../kubernetes", "statefulset.yaml"]


# ----- Two replicas against one simulator -------------------------------------------------------


def polled(samples: Samples) -> set[str]:
    return {dict(labels)["instance_id"] for labels in samples["aliyun_rds_instance_info"]}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[name][frozenset(labels.items())]


@asynccontextmanager
async def two_replicas(
    fleet: Fleet, static: Sequence[str]
) -> AsyncIterator[tuple[ManualClock, SimulatedRds, list[str], aiohttp.ClientSession]]:
    exporters: list[Exporter] = []

    def quiet() -> bool:
        idle = all(e.calls_in_flight == 0 for e in exporters)
        return len(exporters) == 2 and idle and clock.sleeping > 0

    clock = ManualClock(start=NOW, quiet_when=quiet)
    sim = SimulatedRds(fleet, KEYS, clock=clock.time, shuffle_items=True)
    async with AsyncExitStack() as stack:
        url = await stack.enter_async_context(sim.serve("127.0.0.1", 0))
        urls = []
        for index, (key, secret) in enumerate(KEYS.items()):
            config = parse_config(
                {
                    "api": {"endpoint": url, "rate_limit": 1000, "concurrency": 64},
                    "credentials": {"access_key_id": key, "access_key_secret": secret},
                    "polling": {"interval": "5m", "lookback": "8d", "window": "1d"},
                    "instances": [{"id": iid, "region": REGION} for iid in static],
                    "discovery": [{"region": REGION, "refresh": "10m", "grace": "1h"}],
                },
                {},
            )
            exporter = Exporter(
                config, clock=clock, rng=random.Random(index), shard=Shard(index, 2)
            )
            runner = web.AppRunner(exporter.app)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            urls.append(f"http://127.0.0.1:{runner.addresses[0][1]}")
            await exporter.start()
            stack.push_async_callback(exporter.stop)
            exporters.append(exporter)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        await clock.advance(1.0)
        yield clock, sim, urls, session


async def test_two_replicas_split_the_fleet_without_overlap_as_instances_come_and_go() -> None:
    fleet = Fleet(seed=21, now=NOW, readonly_fraction=0.0)
    for n in range(24):
        fleet.add_instance(region_id=REGION, description=f"app {n}")
    # Listed by hand too, and one in another region that only the static list names.
    static = [*list(fleet.instances)[:3], fleet.add_instance(region_id="cn-shanghai").instance_id]
    keys = list(KEYS)
    async with two_replicas(fleet, static) as (clock, sim, urls, session):
        first = [await scrape(session, url) for url in urls]
        parts = [polled(samples) for samples in first]
        assert parts[0].isdisjoint(parts[1])
        assert parts[0] | parts[1] == set(fleet.instances)
        assert all(parts), "both replicas have a share"
        owner = {iid: n for n, part in enumerate(parts) for iid in part}
        assert all(owner[iid] == shard_of(iid, 2) for iid in owner)
        for n, samples in enumerate(first):
            assert value(samples, "aliyun_rds_exporter_shard_index") == n
            assert value(samples, "aliyun_rds_exporter_shards") == 2
            static_share = sum(1 for iid in static if owner[iid] == n)
            assert value(samples, "aliyun_rds_exporter_instances", source="static") == static_share
            assert value(
                samples, "aliyun_rds_discovery_instances", account="default", region_id=REGION
            ) == sum(1 for iid in parts[n] if iid in fleet.instances and iid not in static[3:])
            # Backups are reported, by the owner only.
            assert polled(samples) == {
                dict(labels)["instance_id"]
                for labels in samples["aliyun_rds_backup_last_success_timestamp_seconds"]
            }
        # The API saw each instance from one replica only: its own access key.
        callers: dict[str, set[str]] = {}
        for record in sim.requests:
            if record.action == "DescribeBackups":
                callers.setdefault(record.instance_id, set()).add(record.access_key_id)
        assert callers == {iid: {keys[owner[iid]]} for iid in owner}

        # Instances come and go; nobody's shard changes, and the newcomers are split too.
        gone = [iid for iid in list(fleet.instances)[3:24] if iid not in static][:4]
        for iid in gone:
            fleet.remove_instance(iid)
        added = [fleet.add_instance(region_id=REGION).instance_id for _ in range(10)]
        sim.clear_requests()
        await clock.advance(15 * 60)
        later = [polled(await scrape(session, url)) for url in urls]
        assert later[0].isdisjoint(later[1])
        assert later[0] | later[1] == set(fleet.instances)
        assert not set(gone) & (later[0] | later[1])
        for n, part in enumerate(later):
            assert all(owner[iid] == n for iid in part if iid in owner)
            assert all(shard_of(iid, 2) == n for iid in part)
        assert {shard_of(iid, 2) for iid in added} == {0, 1}, "the test needs newcomers on both"
        callers = {}
        for record in sim.requests:
            if record.action == "DescribeBackups" and record.code == "OK":
                callers.setdefault(record.instance_id, set()).add(record.access_key_id)
        assert all(callers[iid] == {keys[shard_of(iid, 2)]} for iid in callers)
        assert set(added) <= set(callers)
