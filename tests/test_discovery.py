"""Instance discovery: filters, paging, merging with the static list, instances that come and go,
and failures that keep the last good list. Against the simulated API over loopback."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest

from exporter.aliyun.client import RdsClient
from exporter.aliyun.models import DBInstance
from exporter.config import DiscoveryConfig, FrozenMap, parse_config
from exporter.discovery import list_instances, listing_filters, merge_targets, wanted
from exporter.service import load_plan
from exporter.simulator import FORBIDDEN_RAM, Fleet, SimulatedRds
from exporter.state import DiscoveryStatus, FleetState, Target
from tests.harness import INTERVAL, key
from tests.helpers import KEY_ID, NOW, SECRET, InstantClock, loopback_client
from tests.running_config import api_section, running_config

MINUTE = 60.0
REGION = "cn-hangzhou"


def entry(**fields: Any) -> DiscoveryConfig:
    fields.setdefault("region", REGION)
    if "tags" in fields:
        fields["tags"] = FrozenMap(fields["tags"])
    for name in ("engines", "statuses", "instance_types"):
        if name in fields:
            fields[name] = tuple(fields[name])
    return DiscoveryConfig(account="default", **fields)


# ----- Filters, unit ----------------------------------------------------------------------------


def listed(**fields: str) -> DBInstance:
    values = {
        "instance_id": "rm-1",
        "region_id": REGION,
        "engine": "MySQL",
        "engine_version": "8.0",
        "description": "",
        "status": "Running",
        "instance_type": "Primary",
        "resource_group_id": "rg-1",
        **fields,
    }
    return DBInstance(**values)


def test_single_values_go_to_the_api_and_lists_are_filtered_here() -> None:
    assert listing_filters(entry()) == [{}]
    common = {
        "Engine": "MySQL",
        "DBInstanceStatus": "Running",
        "DBInstanceType": "Primary",
        "ResourceGroupId": "rg-1",
    }
    single = dict(engines=["MySQL"], statuses=["Running"], instance_types=["Primary"])
    assert listing_filters(entry(**single, resource_group="rg-1", tags={"env": "prod"})) == [
        {**common, "Tags": '{"env":"prod"}'}
    ]
    # Several tags: one listing per pair, each with the other filters (intersected later).
    assert listing_filters(
        entry(**single, resource_group="rg-1", tags={"env": "prod", "团队": "支付"})
    ) == [{**common, "Tags": '{"env":"prod"}'}, {**common, "Tags": '{"团队":"支付"}'}]
    several = entry(engines=["MySQL", "PostgreSQL"], statuses=["Running", "Restoring"])
    assert listing_filters(several) == [{}]
    assert wanted(several, listed(engine="PostgreSQL", status="Restoring"))
    assert not wanted(several, listed(engine="SQLServer"))
    assert not wanted(several, listed(status="Creating"))


def test_read_only_replicas_are_left_out_unless_included() -> None:
    replica = listed(instance_type="Readonly")
    assert not wanted(entry(), replica)
    assert wanted(entry(include_read_only=True), replica)
    assert not wanted(entry(include_read_only=True, instance_types=["Primary"]), replica)


def test_an_empty_field_in_the_answer_does_not_exclude() -> None:
    assert wanted(
        entry(engines=["MySQL", "MariaDB"], resource_group="rg-9"),
        listed(engine="", resource_group_id=""),
    )


# ----- Merging ----------------------------------------------------------------------------------


def test_static_wins_and_takes_only_what_the_config_cannot_say() -> None:
    static = [Target("rm-a", "cn-beijing", account="ops", labels={"team": "pay"})]
    found = Target(
        "rm-a",
        REGION,
        account="other",
        source="discovery",
        description="payments primary",
        engine="MySQL",
        engine_version="8.0",
        instance_type="Primary",
    )
    (merged,) = merge_targets(static, [[found]])
    assert merged == replace(
        static[0],
        description="payments primary",
        engine="MySQL",
        engine_version="8.0",
        instance_type="Primary",
    )
    assert merged.source == "static" and merged.account == "ops" and merged.region == "cn-beijing"


def test_merge_order_and_duplicates_across_entries() -> None:
    static = [Target("rm-s", REGION)]
    first = [Target("rm-x", REGION, account="a", source="discovery", retiring=True)]
    second = [
        Target("rm-x", REGION, account="b", source="discovery"),
        Target("rm-y", REGION, account="b", source="discovery"),
    ]
    merged = merge_targets(static, [first, second])
    assert [t.instance_id for t in merged] == ["rm-s", "rm-x", "rm-y"]
    # The first entry's copy is retiring, the second still finds it: the live one wins.
    assert merged[1].account == "b" and not merged[1].retiring
    again = merge_targets(static, [second, [replace(second[0], account="a")]])
    assert again[1].account == "b"  # the first entry that found it
    assert merge_targets([], []) == []


# ----- Listing against the simulator ------------------------------------------------------------


def filter_fleet() -> tuple[Fleet, dict[str, str]]:
    """Six instances whose attributes make every filter select a different subset."""
    fleet = Fleet(seed=4, now=NOW, readonly_fraction=0.0)
    specs: dict[str, dict[str, Any]] = {
        "a": {
            "engine": "MySQL",
            "resource_group_id": "rg-1",
            "tags": {"env": "prod", "team": "pay"},
        },
        "b": {"engine": "PostgreSQL", "resource_group_id": "rg-2", "tags": {"env": "staging"}},
        "c": {
            "engine": "SQLServer",
            "status": "Rebooting",
            "resource_group_id": "rg-1",
            "tags": {"env": "prod"},
        },
        "e": {
            "engine": "MariaDB",
            "instance_type": "Guard",
            "resource_group_id": "rg-2",
            "tags": {"env": "dev"},
        },
        "f": {"engine": "MySQL", "region_id": "cn-shanghai", "tags": {"env": "prod"}},
    }
    ids: dict[str, str] = {}
    for name, spec in specs.items():
        spec.setdefault("region_id", REGION)
        ids[name] = fleet.add_instance(description=f"instance {name}", **spec).instance_id
    replica = fleet.add_instance(
        engine="MySQL",
        region_id=REGION,
        instance_type="Readonly",
        master_instance_id=ids["a"],
        resource_group_id="rg-1",
        tags={"env": "prod", "team": "pay"},
        description="instance d",
    )
    ids["d"] = replica.instance_id
    return fleet, ids


@asynccontextmanager
async def client_for(sim: SimulatedRds) -> AsyncIterator[RdsClient]:
    async with loopback_client(sim, InstantClock()) as client:
        yield client


@pytest.mark.parametrize(
    ("fields", "expected", "sent"),
    [
        ({}, "abce", {}),
        ({"include_read_only": True}, "abcde", {}),
        ({"engines": ["MySQL"]}, "a", {"Engine": "MySQL"}),
        ({"engines": ["mysql", "PostgreSQL"]}, "ab", {}),
        ({"statuses": ["Running"]}, "abe", {"DBInstanceStatus": "Running"}),
        ({"statuses": ["Running", "Rebooting"]}, "abce", {}),
        ({"instance_types": ["Guard"]}, "e", {"DBInstanceType": "Guard"}),
        (
            {"instance_types": ["Primary", "Readonly"], "include_read_only": True},
            "abcd",
            {},
        ),
        ({"resource_group": "rg-1"}, "ac", {"ResourceGroupId": "rg-1"}),
        ({"tags": {"env": "prod"}}, "ac", {"Tags": '{"env":"prod"}'}),
        ({"tags": {"env": "prod", "team": "pay"}}, "a", {}),
        ({"tags": {"env": "prod", "team": "pay"}, "include_read_only": True}, "ad", {}),
        ({"region": "cn-shanghai"}, "f", {"RegionId": "cn-shanghai"}),
        ({"engines": ["MySQL"], "tags": {"env": "prod"}, "region": "cn-shanghai"}, "f", {}),
    ],
)
@pytest.mark.parametrize("tags_match", ["any", "all"])
async def test_each_filter_selects_what_it_says(
    fields: dict[str, Any], expected: str, sent: dict[str, str], tags_match: str
) -> None:
    fleet, ids = filter_fleet()
    sim = SimulatedRds(fleet, {KEY_ID: SECRET}, clock=lambda: NOW, tags_match=tags_match)
    async with client_for(sim) as client:
        found = await list_instances(client, entry(**fields))
    names = {name for name, iid in ids.items() if iid in {i.instance_id for i in found}}
    assert "".join(sorted(names)) == expected
    listings = max(1, len(fields.get("tags", {})))  # one per tag pair
    assert [r.action for r in sim.requests] == ["DescribeDBInstances"] * listings
    request = sim.requests[0]
    assert sent.items() <= request.params.items()
    assert request.params["PageSize"] == "100"
    by_id = {i.instance_id: i for i in found}
    for name in expected:
        assert by_id[ids[name]].description == f"instance {name}"


# ----- Tags: the API matches any pair given, discovery wants instances with all of them ---------


@pytest.mark.parametrize(("tags_match", "expected"), [("any", "acd"), ("all", "ad")])
async def test_the_simulator_matches_any_tag_pair_unless_told_all(
    tags_match: str, expected: str
) -> None:
    fleet, ids = filter_fleet()
    sim = SimulatedRds(fleet, {KEY_ID: SECRET}, clock=lambda: NOW, tags_match=tags_match)
    async with client_for(sim) as client:
        page = await client.describe_db_instances(REGION, {"Tags": '{"env":"prod","team":"pay"}'})
    listed = {i.instance_id for i in page.items}
    assert "".join(sorted(name for name, iid in ids.items() if iid in listed)) == expected
    assert SimulatedRds(fleet).tags_match == "any"  # the documented behaviour is the default
    with pytest.raises(ValueError, match="tags_match"):
        SimulatedRds(fleet, tags_match="every")


def tagged_fleet() -> tuple[Fleet, list[str]]:
    """More than a page of instances with both tags, mixed with ones having only one of them,
    neither, the wrong engine or the wrong region. Returns the ids discovery should find."""
    fleet = Fleet(seed=6, now=NOW, readonly_fraction=0.0)
    both = {"env": "prod", "team": "pay"}
    wanted_ids: list[str] = []
    for n in range(130):
        add = fleet.add_instance
        wanted_ids.append(add(region_id=REGION, engine="MySQL", tags=both).instance_id)
        if n < 110:
            add(region_id=REGION, engine="MySQL", tags={"env": "prod", "team": "ops"})
        if n < 20:
            add(region_id=REGION, engine="MySQL", tags={"env": "dev", "team": "pay"})
        if n < 5:
            add(region_id=REGION, engine="MySQL", tags={})
            add(region_id=REGION, engine="PostgreSQL", tags=both)
            add(region_id="cn-shanghai", engine="MySQL", tags=both)
    return fleet, wanted_ids


@pytest.mark.parametrize("tags_match", ["any", "all"])
async def test_two_tags_find_exactly_the_instances_having_both(tags_match: str) -> None:
    fleet, expected = tagged_fleet()
    sim = SimulatedRds(fleet, {KEY_ID: SECRET}, clock=lambda: NOW, tags_match=tags_match)
    async with client_for(sim) as client:
        found = await list_instances(
            client, entry(engines=["MySQL"], tags={"env": "prod", "team": "pay"})
        )
    assert [i.instance_id for i in found] == expected  # in the API's order
    # One listing per pair, each paged to the end with the other filters: 240 instances have
    # env=prod (3 pages), 150 team=pay (2 pages).
    assert [(r.params["Tags"], r.params["PageNumber"]) for r in sim.requests] == [
        ('{"env":"prod"}', "1"),
        ('{"env":"prod"}', "2"),
        ('{"env":"prod"}', "3"),
        ('{"team":"pay"}', "1"),
        ('{"team":"pay"}', "2"),
    ]
    assert all(r.params["Engine"] == "MySQL" for r in sim.requests)


async def test_a_tag_no_instance_has_ends_the_listings_early() -> None:
    fleet, _ = tagged_fleet()
    sim = SimulatedRds(fleet, {KEY_ID: SECRET}, clock=lambda: NOW)
    tags = {"env": "nowhere", "team": "pay", "tier": "1"}
    async with client_for(sim) as client:
        assert await list_instances(client, entry(tags=tags)) == []
    assert [r.params["Tags"] for r in sim.requests] == ['{"env":"nowhere"}']


def test_check_config_counts_one_listing_per_tag() -> None:
    config = parse_config(
        {
            "credentials": {"access_key_id": KEY_ID, "access_key_secret": SECRET},
            "discovery": [
                {"region": "cn-shanghai", "tags": {"env": "prod", "team": "pay"}},
                {"region": REGION, "tags": {"env": "prod"}},
            ],
        },
        {},
    )
    lines = load_plan(config)
    assert (
        "discovery: account default, region cn-shanghai: 2 DescribeDBInstances listings (one "
        "per tag), each one call per 100 instances it finds, every 10m; vanished instances kept "
        "for 1h"
    ) in lines
    assert (
        f"discovery: account default, region {REGION}: one DescribeDBInstances call per 100 "
        "instances found, every 10m; vanished instances kept for 1h"
    ) in lines


async def test_paging_goes_past_a_hundred_instances_to_the_end() -> None:
    fleet = Fleet(seed=5, now=NOW, readonly_fraction=0.0)
    for n in range(250):
        fleet.add_instance(region_id=REGION if n % 5 else "cn-shanghai", description=f"n{n}")
    fleet.add_instance(region_id=REGION, instance_type="Readonly", description="replica")
    sim = SimulatedRds(fleet, {KEY_ID: SECRET}, clock=lambda: NOW)
    async with client_for(sim) as client:
        found = await list_instances(client, entry())
    in_region = [i for i in fleet.instances.values() if i.region_id == REGION]
    assert len(in_region) == 201
    assert [i.instance_id for i in found] == [
        i.instance_id for i in in_region if i.instance_type == "Primary"
    ]
    assert [r.params["PageNumber"] for r in sim.requests] == ["1", "2", "3"]


async def test_an_instance_listed_on_two_pages_counts_once() -> None:
    fleet = Fleet(seed=5, now=NOW, readonly_fraction=0.0)
    for _ in range(120):
        fleet.add_instance(region_id=REGION)
    first_id = next(iter(fleet.instances))

    def shift(action: str, params: Any, body: dict[str, Any]) -> dict[str, Any]:
        # The listing moved between pages: page 2 repeats page 1's first instance.
        if action == "DescribeDBInstances" and params.get("PageNumber") == "2":
            body["Items"]["DBInstance"].insert(0, {"DBInstanceId": first_id, "RegionId": REGION})
        return body

    sim = SimulatedRds(fleet, {KEY_ID: SECRET}, clock=lambda: NOW)
    sim.faults.transform = shift
    async with client_for(sim) as client:
        found = await list_instances(client, entry())
    assert sorted(i.instance_id for i in found) == sorted(fleet.instances)


# ----- The exporter with discovery, end to end --------------------------------------------------


def discovery_config(
    urls: Sequence[str],
    discovery: list[dict[str, Any]] | None = None,
    instances: list[dict[str, Any]] | None = None,
    **polling: Any,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "api": api_section(urls[0]),
        "credentials": {"access_key_id": KEY_ID, "access_key_secret": SECRET},
        "polling": {"interval": "5m", "lookback": "8d", "window": "1d", **polling},
        "discovery": discovery if discovery is not None else [{"region": REGION}],
    }
    if instances:
        config["instances"] = instances
    return config


def small_fleet(count: int = 3, *, replica: bool = False) -> Fleet:
    fleet = Fleet(seed=8, now=NOW, readonly_fraction=0.0)
    for n in range(count):
        fleet.add_instance(region_id=REGION, description=f"app {n}")
    if replica:
        master = next(iter(fleet.instances))
        fleet.add_instance(
            region_id=REGION,
            engine=fleet.instance(master).engine,
            instance_type="Readonly",
            master_instance_id=master,
            description="replica",
        )
    return fleet


def instance_ids(samples: dict[str, dict[frozenset[tuple[str, str]], float]]) -> set[str]:
    return {dict(k)["instance_id"] for k in samples.get("aliyun_rds_instance_info", {})}


def labels_of(
    samples: dict[str, dict[frozenset[tuple[str, str]], float]], iid: str
) -> dict[str, str]:
    (labels,) = [
        dict(k) for k in samples["aliyun_rds_instance_info"] if dict(k)["instance_id"] == iid
    ]
    return labels


async def test_discovered_instances_are_polled_and_named() -> None:
    fleet = small_fleet(3, replica=True)
    primaries = [i for i in fleet.instances.values() if i.instance_type == "Primary"]
    async with running_config(discovery_config, fleet) as h:
        assert await h.ready() == 200
        samples = await h.scrape()
        assert instance_ids(samples) == {i.instance_id for i in primaries}
        for instance in primaries:
            labels = labels_of(samples, instance.instance_id)
            assert labels == {
                "instance_id": instance.instance_id,
                "account": "default",
                "region_id": REGION,
                "engine": instance.engine,
                "engine_version": instance.engine_version,
                "description": instance.description,
            }
            assert (
                samples["aliyun_rds_backup_collect_success"][key(instance_id=instance.instance_id)]
                == 1
            )
        where = key(account="default", region_id=REGION)
        assert samples["aliyun_rds_discovery_success"][where] == 1
        assert samples["aliyun_rds_discovery_instances"][where] == 3
        assert samples["aliyun_rds_discovery_last_success_timestamp_seconds"][where] == NOW
        assert samples["aliyun_rds_exporter_instances"] == {
            key(source="static"): 0,
            key(source="discovery"): 3,
        }
        assert (
            samples["aliyun_rds_api_requests_total"][key(action="DescribeDBInstances", code="OK")]
            == 1
        )


async def test_read_only_replicas_polled_only_when_included_and_never_asked_for_a_policy() -> None:
    fleet = small_fleet(2, replica=True)
    replica = next(i for i in fleet.instances.values() if i.instance_type == "Readonly")

    def config(urls: Sequence[str]) -> dict[str, Any]:
        return discovery_config(urls, [{"region": REGION, "include_read_only": True}])

    async with running_config(config, fleet) as h:
        samples = await h.scrape()
        assert replica.instance_id in instance_ids(samples)
        assert (
            samples["aliyun_rds_backup_collect_success"][key(instance_id=replica.instance_id)] == 1
        )
        asked = {r.instance_id for r in h.sim.requests if r.action == "DescribeBackupPolicy"}
        assert asked == {i for i in fleet.instances if i != replica.instance_id}
        # No zero "backup sets" for a replica: "no backup in lookback" must not page for it.
        for name in ("aliyun_rds_backup_sets", "aliyun_rds_backup_failures_total"):
            assert all(dict(k)["instance_id"] != replica.instance_id for k in samples[name])


async def test_static_wins_over_discovery_and_keeps_its_labels() -> None:
    fleet = small_fleet(3)
    first = next(iter(fleet.instances.values()))

    def config(urls: Sequence[str]) -> dict[str, Any]:
        static = [{"id": first.instance_id, "region": REGION, "labels": {"team": "payments"}}]
        return discovery_config(urls, instances=static)

    async with running_config(config, fleet) as h:
        samples = await h.scrape()
        assert labels_of(samples, first.instance_id) == {
            "instance_id": first.instance_id,
            "account": "default",
            "region_id": REGION,
            "engine": first.engine,
            "engine_version": first.engine_version,
            "description": first.description,  # from discovery
            "team": "payments",  # from the config
        }
        assert samples["aliyun_rds_exporter_instances"] == {
            key(source="static"): 1,
            key(source="discovery"): 2,
        }
        target = h.exporter.state.instances[first.instance_id].target
        assert target.source == "static"


def backup_calls(h: Any, iid: str) -> int:
    return sum(1 for r in h.sim.requests if r.action == "DescribeBackups" and r.instance_id == iid)


async def test_instances_appear_and_leave_after_the_grace_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="exporter")
    fleet = small_fleet(2)
    steady = list(fleet.instances)

    def config(urls: Sequence[str]) -> dict[str, Any]:
        return discovery_config(
            urls, [{"region": REGION, "statuses": ["Running"], "refresh": "10m", "grace": "30m"}]
        )

    async with running_config(config, fleet) as h:
        new = fleet.add_instance(region_id=REGION, description="new one").instance_id
        await h.advance(10 * MINUTE)
        samples = await h.scrape()
        assert new in instance_ids(samples)
        assert samples["aliyun_rds_backup_collect_success"][key(instance_id=new)] == 1
        state = h.exporter.state.instances[new]
        assert state.baseline_done

        # A restart: the status filter no longer matches, for less than the grace period.
        fleet.set_status(new, "Rebooting")
        await h.advance(10 * MINUTE)
        assert h.exporter.state.instances[new].target.retiring
        h.sim.clear_requests()
        await h.advance(10 * MINUTE)
        assert backup_calls(h, new) == 2  # still polled, one call per interval
        samples = await h.scrape()
        assert samples["aliyun_rds_backup_collect_success"][key(instance_id=new)] == 1
        fleet.set_status(new, "Running")
        await h.advance(10 * MINUTE)
        assert h.exporter.state.instances[new] is state  # same state: no second baseline
        assert not state.target.retiring

        # Out for longer than the grace period: no longer polled, series gone.
        fleet.set_status(new, "Rebooting")
        await h.advance(20 * MINUTE)
        assert h.exporter.state.instances[new].target.retiring  # last seen 20m ago
        await h.advance(10 * MINUTE)
        assert new not in h.exporter.state.instances  # the refresh 30m after it was last seen
        samples = await h.scrape()
        assert new not in instance_ids(samples)
        assert all(dict(k).get("instance_id") != new for family in samples.values() for k in family)
        h.sim.clear_requests()
        await h.advance(2 * INTERVAL)
        assert backup_calls(h, new) == 0
        assert {r.instance_id for r in h.sim.requests if r.action == "DescribeBackups"} == set(
            steady
        )
        assert any("no longer polled" in r.getMessage() for r in caplog.records)


async def test_a_deleted_instance_is_dropped_at_once_without_a_failure() -> None:
    fleet = small_fleet(3)
    doomed = next(iter(fleet.instances))

    def config(urls: Sequence[str]) -> dict[str, Any]:
        return discovery_config(urls, [{"region": REGION, "refresh": "10m", "grace": "2h"}])

    async with running_config(config, fleet) as h:
        await h.advance(INTERVAL)
        fleet.remove_instance(doomed)
        seen_failure = False
        for _ in range(4):  # the refresh notices, the next poll finds it gone
            await h.advance(INTERVAL)
            samples = await h.scrape()
            seen_failure |= (
                samples["aliyun_rds_backup_collect_success"].get(key(instance_id=doomed)) == 0
            )
        assert not seen_failure
        assert doomed not in h.exporter.state.instances
        assert doomed not in instance_ids(samples)
        assert samples["aliyun_rds_exporter_instances"][key(source="discovery")] == 2
        h.sim.clear_requests()
        await h.advance(3 * INTERVAL)
        assert backup_calls(h, doomed) == 0
        # A static instance that does not exist is a failure, as before: only retiring
        # discovered instances are dropped this way.


async def test_discovery_errors_keep_the_last_list_and_show_on_metrics() -> None:
    fleet = small_fleet(3)

    def config(urls: Sequence[str]) -> dict[str, Any]:
        return discovery_config(urls, [{"region": REGION, "refresh": "10m", "grace": "0s"}])

    async with running_config(config, fleet) as h:
        where = key(account="default", region_id=REGION)
        before = await h.scrape()
        first_success = before["aliyun_rds_discovery_last_success_timestamp_seconds"][where]
        listing = h.sim.faults.for_action("DescribeDBInstances")
        for fault in ("forced", "outage"):
            if fault == "forced":
                listing.forced_error = FORBIDDEN_RAM
            else:
                listing.forced_error = None
                listing.outage = True
            gone = next(iter(fleet.instances))
            fleet.set_status(gone, "Creating")  # would leave the list at once (grace 0s)
            fleet.add_instance(region_id=REGION, description="not seen yet")
            await h.advance(30 * MINUTE)
            during = await h.scrape()
            assert during["aliyun_rds_discovery_success"][where] == 0
            assert (
                during["aliyun_rds_discovery_last_success_timestamp_seconds"][where]
                == first_success
            )
            assert during["aliyun_rds_discovery_instances"][where] == 3
            assert instance_ids(during) == instance_ids(before)
            for iid in instance_ids(before):
                assert during["aliyun_rds_backup_collect_success"][key(instance_id=iid)] == 1
            fleet.set_status(gone, "Running")
        requests = during["aliyun_rds_api_requests_total"]
        assert requests[key(action="DescribeDBInstances", code="Forbidden.RAM")] == 3
        unavailable = [r for r in h.sim.requests if r.code == "ServiceUnavailable"]
        assert {r.action for r in unavailable} == {"DescribeDBInstances"}
        # Retried (two retries per refresh), counted per attempt.
        assert requests[key(action="DescribeDBInstances", code="ServiceUnavailable")] == len(
            unavailable
        )
        assert len(unavailable) > 3
        listing.outage = False
        await h.advance(10 * MINUTE)
        after = await h.scrape()
        assert after["aliyun_rds_discovery_success"][where] == 1
        assert after["aliyun_rds_discovery_last_success_timestamp_seconds"][where] > first_success
        assert after["aliyun_rds_discovery_instances"][where] == 5
        assert len(instance_ids(after)) == 5


def test_not_ready_until_every_discovery_entry_has_finished_its_first_refresh() -> None:
    state = FleetState()
    state.sync_targets([Target("rm-a", REGION)])
    state.instances["rm-a"].polled = True
    state.discovery.append(DiscoveryStatus(account="default", region=REGION))
    assert not state.ready
    state.discovery[0].refreshed = True  # successfully or not
    assert state.ready
