"""The simulated disaster-recovery and cost actions (DescribeInstanceCrossBackupPolicy,
DescribeCrossRegionBackupDBInstance, DescribeCrossRegionBackups, DescribeAvailableRecoveryTime,
DescribeResourceUsage) over real loopback HTTP with signed requests, against the fleet's ground
truth; each ``Inferred`` switch changes the answer."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from exporter.demo import build_demo_fleet
from exporter.simulator import FORBIDDEN_RAM, Fleet, SimulatedRds
from exporter.simulator.timefmt import format_second, parse_second
from exporter.simulator.usage import GIB
from tests.helpers import KEY_ID, NOW, SECRET
from tests.signed_api import Reply, SetClock, SignedApi

DAY, HOUR = 86400.0, 3600.0
POLICY = {
    "DBInstanceId": str, "RegionId": str, "DBInstanceDescription": str, "DBInstanceStatus": str,
    "Engine": str, "EngineVersion": str, "LockMode": str, "BackupEnabled": str,
    "BackupEnabledTime": str, "LogBackupEnabled": str, "LogBackupEnabledTime": str,
    "CrossBackupRegion": str, "CrossBackupType": str, "RetentType": int, "Retention": int,
}  # fmt: skip
COPY = {
    "CrossBackupId": int, "BackupSetStatus": int, "BackupStartTime": str, "BackupEndTime": str,
    "ConsistentTime": str, "CrossBackupSetSize": int, "CrossBackupRegion": str,
    "CrossBackupSetLocation": str, "CrossBackupSetFile": str, "CrossBackupDownloadLink": str,
    "BackupType": str, "BackupMethod": str, "BackupSetScale": int, "InstanceId": int,
    "Engine": str, "EngineVersion": str, "Category": str, "DBInstanceStorageType": str,
    "RestoreRegions": dict,
}  # fmt: skip
NOT_FOUND, NO_SET = "InvalidDBInstance.NotFound", "InvalidBackupSetID.NotFound"
USAGE_NOT_FOUND = "InvalidDBInstanceId.NotFound"
USAGE_INTS = (
    "BackupSize", "BackupDataSize", "BackupLogSize", "BackupOssDataSize", "BackupOssLogSize",
    "ArchiveBackupSize", "ColdBackupSize", "PaidBackupSize", "DiskUsed", "DataSize", "LogSize",
    "SQLSize",
)  # fmt: skip


Clock = SetClock


class Api(SignedApi):
    def __init__(self, session: aiohttp.ClientSession, base_url: str, sim: SimulatedRds) -> None:
        super().__init__(session, base_url, sim.clock)
        self.fleet = sim.fleet

    async def policy(self, iid: str, **params: str) -> Reply:
        region = self.fleet.instance(iid).region_id
        params = {"DBInstanceId": iid, "RegionId": region, **params}
        return await self.call("DescribeInstanceCrossBackupPolicy", **params)

    async def cross(self, iid: str, **params: str) -> Reply:
        region = self.fleet.instance(iid).region_id
        params = {"DBInstanceId": iid, "RegionId": region, **params}
        return await self.call("DescribeCrossRegionBackups", **params)

    async def copies(self, iid: str, start: float, end: float, **params: str) -> Reply:
        times = {"StartTime": format_second(start), "EndTime": format_second(end)}
        return await self.cross(iid, **times, **params)

    async def window(self, cross_backup_id: int, **params: str) -> Reply:
        return await self.call(
            "DescribeAvailableRecoveryTime", CrossBackupId=str(cross_backup_id), **params
        )

    async def usage(self, iid: str) -> Reply:
        return await self.call("DescribeResourceUsage", DBInstanceId=iid)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fleet() -> Fleet:
    return Fleet.generate(seed=5, instances=10, now=NOW)


@pytest.fixture
def sim(fleet: Fleet, clock: Clock) -> SimulatedRds:
    return SimulatedRds(fleet, {KEY_ID: SECRET}, clock=clock)


@pytest.fixture
async def api(sim: SimulatedRds) -> AsyncIterator[Api]:
    async with sim.serve() as base_url, aiohttp.ClientSession() as session:
        yield Api(session, base_url, sim)


def added(fleet: Fleet, engine: str, storage: str = "local_ssd", **kw: Any) -> str:
    """A new primary of ``engine`` on ``storage``, daily backups, logs on, no drawn gap."""
    instance = fleet.add_instance(engine=engine, storage_type=storage, **kw)
    iid = instance.instance_id
    daily = dataclasses.replace(instance.policy, weekdays=frozenset(range(7)), log_backup=True)
    fleet.set_policy(iid, daily)
    fleet.clear_log_gaps(iid)
    return iid


def when(text: str) -> float:
    value = parse_second(text)
    assert value is not None, text
    return value


def items(reply: Reply) -> list[dict[str, Any]]:
    assert reply.status == 200, reply.body
    found: list[dict[str, Any]] = reply.body["Items"]["Item"]
    return found


# ----- DescribeInstanceCrossBackupPolicy ---------------------------------------------------


async def test_policy_is_flat_with_every_documented_field(api: Api, fleet: Fleet) -> None:
    iid = added(fleet, "MySQL")
    set_up = fleet.set_cross_region(iid, True, log=False, region="cn-beijing", retention_days=15)
    reply = await api.policy(iid)
    assert reply.status == 200 and set(reply.body) == {*POLICY, "RequestId"}
    assert all(isinstance(reply.body[name], kind) for name, kind in POLICY.items())
    instance = fleet.instance(iid)
    assert reply.body | {"RequestId": ""} == {
        "RequestId": "", "DBInstanceId": iid, "RegionId": instance.region_id,
        "DBInstanceDescription": instance.description, "DBInstanceStatus": "Running",
        "Engine": "MySQL", "EngineVersion": instance.engine_version, "LockMode": "Unlock",
        "BackupEnabled": "Enable", "BackupEnabledTime": format_second(set_up.enabled_at),
        "LogBackupEnabled": "Disable", "LogBackupEnabledTime": "",
        "CrossBackupRegion": "cn-beijing", "CrossBackupType": "1", "RetentType": 1,
        "Retention": 15,
    }  # fmt: skip


async def test_a_disabled_policy_is_blank_or_kept(
    api: Api, fleet: Fleet, sim: SimulatedRds
) -> None:
    iid = added(fleet, "PostgreSQL", "cloud_essd")
    fleet.set_cross_region(iid, False, region="cn-beijing", retention_days=20)
    blank = (await api.policy(iid)).body
    assert (blank["BackupEnabled"], blank["LogBackupEnabled"]) == ("Disable", "Disable")
    assert (blank["CrossBackupRegion"], blank["Retention"], blank["BackupEnabledTime"]) == (
        "", 0, "",
    )  # fmt: skip
    sim.inferred.cross_policy_disabled_blank = False
    kept = (await api.policy(iid)).body
    assert (kept["BackupEnabled"], kept["CrossBackupRegion"], kept["Retention"]) == (
        "Disable", "cn-beijing", 20,
    )  # fmt: skip


async def test_policy_errors(api: Api, fleet: Fleet, sim: SimulatedRds) -> None:
    mysql, mariadb = added(fleet, "MySQL"), added(fleet, "MariaDB", "cloud_essd")
    cloud = added(fleet, "MySQL", "cloud_essd")
    region = fleet.instance(mysql).region_id
    other = next(r for r in ("cn-beijing", "cn-shenzhen") if r != region)
    action = "DescribeInstanceCrossBackupPolicy"
    cases = [
        (await api.call(action, RegionId=region), (400, "MissingDBInstanceId")),
        (await api.call(action, DBInstanceId=mysql), (400, "MissingRegionId")),
        (await api.policy(mysql, RegionId="Hangzhou!"), (400, "InvalidRegion.Format")),
        (await api.policy(mysql, RegionId=other), (404, NOT_FOUND)),
        (await api.call(action, DBInstanceId="rm-x", RegionId=region), (404, NOT_FOUND)),
        (await api.policy(mariadb), (403, "CrossBackupNotSupport")),
        (await api.policy(cloud), (403, "CrossBackupNotSupport")),
    ]  # fmt: skip
    assert [r.sc for r, _ in cases] == [expected for _, expected in cases]
    sim.faults.for_action("DescribeInstanceCrossBackupPolicy").forced_error = FORBIDDEN_RAM
    assert (await api.policy(mysql)).code == "Forbidden.RAM"
    sim.faults.per_action.clear()
    sim.restrict_instance(mysql, ["someone-else"])
    assert (await api.policy(mysql)).code == NOT_FOUND


# ----- DescribeCrossRegionBackupDBInstance -------------------------------------------------


async def test_region_listing_pages_through_the_enabled_instances(
    api: Api, fleet: Fleet, sim: SimulatedRds
) -> None:
    region = "cn-hangzhou"
    for _ in range(8):
        iid = added(fleet, "PostgreSQL", "cloud_essd", region_id=region)
        fleet.set_cross_region(iid, True)
    enabled = [
        i for i, inst in fleet.instances.items()
        if inst.region_id == region and (p := fleet.cross_region_policy(i)) and p.enabled
    ]  # fmt: skip
    assert len(enabled) >= 8
    pages = [
        await api.call(
            "DescribeCrossRegionBackupDBInstance", RegionId=region, PageSize="3", PageNumber=str(n)
        )
        for n in range(1, -(-len(enabled) // 3) + 1)
    ]
    listed = [item for page in pages for item in items(page)]
    assert [i["DBInstanceId"] for i in listed] == enabled
    assert all(set(i) == set(POLICY) - {"RegionId"} for i in listed)
    assert all(i["BackupEnabled"] == "Enable" for i in listed)
    first = pages[0].body
    assert (first["TotalRecords"], first["ItemsNumbers"], first["PageSize"]) == (len(enabled), 3, 3)
    assert (first["RegionId"], first["PageNumber"]) == (region, 1)
    past = {"RegionId": region, "PageSize": "3", "PageNumber": str(len(pages) + 1)}
    reply = await api.call("DescribeCrossRegionBackupDBInstance", **past)
    assert reply.sc == (404, "InvalidPage.notFound")
    sim.inferred.cross_page_past_end_error = False
    assert items(await api.call("DescribeCrossRegionBackupDBInstance", **past)) == []
    sim.inferred.cross_list_disabled_instances = True
    fleet.set_cross_region(enabled[0], False)
    every = items(await api.call("DescribeCrossRegionBackupDBInstance", RegionId=region))
    supported = [
        i for i, inst in fleet.instances.items()
        if inst.region_id == region and fleet.cross_region_policy(i)
    ]  # fmt: skip
    assert [i["DBInstanceId"] for i in every] == supported[:30]
    assert {i["BackupEnabled"] for i in every} == {"Enable", "Disable"}


async def test_region_listing_by_ids_and_its_errors(api: Api, fleet: Fleet) -> None:
    one, two = (added(fleet, "SQLServer", region_id="cn-shanghai") for _ in range(2))
    mariadb = added(fleet, "MariaDB", "cloud_essd", region_id="cn-shanghai")
    fleet.set_cross_region(one, True)
    fleet.set_cross_region(two, False)
    action = "DescribeCrossRegionBackupDBInstance"
    ids = f"{one}, {two}"
    listed = items(await api.call(action, RegionId="cn-shanghai", DBInstanceId=ids))
    assert [i["DBInstanceId"] for i in listed] == [one]
    too_many = ",".join(f"rm-{n}" for n in range(31))
    for params, expected in [
        ({"RegionId": "cn-shanghai", "DBInstanceId": too_many}, (400, "InvalidParameters.Format")),
        ({"RegionId": "cn-shanghai", "DBInstanceId": mariadb}, (403, "CrossBackupNotSupport")),
        ({"RegionId": "cn-shanghai", "PageSize": "0"}, (400, "InvalidParameters.Format")),
        ({}, (400, "MissingRegionId")),
    ]:
        reply = await api.call(action, **params)
        assert reply.sc == expected


# ----- DescribeCrossRegionBackups ----------------------------------------------------------


async def test_copies_carry_every_documented_field_and_match_the_ground_truth(
    api: Api, fleet: Fleet, sim: SimulatedRds
) -> None:
    iid = added(fleet, "MySQL")
    fleet.set_cross_region(iid, True, region="cn-hongkong", retention_days=30)
    truth = fleet.cross_region_copies(iid, NOW - 8 * DAY, NOW, NOW)
    assert len(truth) >= 6
    listed = items(await api.copies(iid, NOW - 8 * DAY, NOW))
    assert all(set(i) == set(COPY) for i in listed)
    assert all(isinstance(i[name], kind) for i in listed for name, kind in COPY.items())
    assert [i["CrossBackupId"] for i in listed] == [c.cross_backup_id for c in truth]
    instance = fleet.instance(iid)
    sources = {b.backup_id: b for b in fleet.backups_between(iid, NOW - 9 * DAY, NOW, NOW)}
    for item, copy in zip(listed, truth, strict=True):
        source = sources[copy.source.backup_id]
        assert source.backup_type == "FullBackup" and source.status == "Success"
        begin, end = when(item["BackupStartTime"]), when(item["BackupEndTime"])
        assert (begin, end) == (int(source.start), int(source.end))
        assert begin <= when(item["ConsistentTime"]) <= end
        assert item["CrossBackupSetSize"] == source.size and item["BackupSetStatus"] == 0
        assert item["InstanceId"] == int(source.host_instance_id)
        assert item["RestoreRegions"] == {"RestoreRegion": [instance.region_id, "cn-hongkong"]}
    assert {(i["BackupType"], i["BackupMethod"], i["BackupSetScale"]) for i in listed} == {
        ("F", "P", 0)
    }
    assert {(i["Engine"], i["Category"]) for i in listed} == {("mysql", instance.category)}
    body = (await api.copies(iid, NOW - 8 * DAY, NOW)).body
    assert [body["StartTime"], body["EndTime"]] == [format_second(t) for t in (NOW - 8 * DAY, NOW)]
    assert body["TotalRecordCount"] == body["PageRecordCount"] == len(truth)
    sim.inferred.cross_engine_lowercase = False
    assert items(await api.copies(iid, NOW - DAY * 8, NOW))[0]["Engine"] == "MySQL"
    # A copy is kept for the retention, counted from its source's end.
    fleet.set_cross_region(iid, True, region="cn-hongkong", retention_days=7)
    kept = items(await api.copies(iid, NOW - 8 * DAY, NOW))
    assert len(kept) < len(listed) and all(when(i["BackupEndTime"]) > NOW - 7 * DAY for i in kept)


async def test_a_copy_is_listed_once_copied_and_fails_when_told(
    api: Api, fleet: Fleet, clock: Clock
) -> None:
    iid = added(fleet, "PostgreSQL", "cloud_essd")
    fleet.set_cross_region(iid, True, since=NOW - 2 * DAY)
    fleet.stop_backups(iid, NOW - 3 * DAY)
    manual = fleet.add_backup(iid, start=NOW - 5 * HOUR, end=NOW - 4 * HOUR, mode="Manual")
    fleet.add_backup(iid, start=NOW - 3 * HOUR, end=NOW - 2.9 * HOUR, status="Failed")
    (copy,) = fleet.cross_region_copies(iid, NOW - 3 * DAY, NOW, NOW)
    assert copy.source == manual and 600 <= copy.copied_at - manual.end <= 3600
    clock.now = copy.copied_at - 1
    assert items(await api.copies(iid, NOW - 3 * DAY, NOW)) == []
    clock.now = copy.copied_at
    listed = items(await api.copies(iid, NOW - 3 * DAY, NOW))
    assert [i["CrossBackupId"] for i in listed] == [copy.cross_backup_id]
    fleet.fail_cross_region_copies(iid, manual.start)
    (failed,) = items(await api.copies(iid, NOW - 3 * DAY, NOW))
    assert (failed["BackupSetStatus"], failed["CrossBackupSetSize"]) == (1, 0)
    fleet.set_cross_region(iid, False)
    assert items(await api.copies(iid, NOW - 3 * DAY, NOW)) == []


async def test_copy_parameters_paging_and_window_switch(
    api: Api, fleet: Fleet, sim: SimulatedRds
) -> None:
    iid = added(fleet, "SQLServer")
    fleet.set_cross_region(iid, True, retention_days=30)
    for day in range(40):  # more copies than a page holds
        start = NOW - 9 * DAY + day * 3 * HOUR
        fleet.add_backup(iid, start=start, end=start + HOUR)
    truth = fleet.cross_region_copies(iid, NOW - 9 * DAY, NOW, NOW)
    pages = [await api.copies(iid, NOW - 9 * DAY, NOW, PageNumber=str(n)) for n in (1, 2)]
    assert [i["CrossBackupId"] for p in pages for i in items(p)] == [
        c.cross_backup_id for c in truth
    ]
    assert pages[0].body["TotalRecordCount"] == len(truth) > 30 == pages[0].body["PageRecordCount"]
    past = await api.copies(iid, NOW - 9 * DAY, NOW, PageNumber="3")
    assert past.sc == (404, "InvalidPage.notFound")
    by_id = await api.cross(iid, CrossBackupId=str(truth[5].cross_backup_id))
    assert [i["CrossBackupId"] for i in items(by_id)] == [truth[5].cross_backup_id]
    now = format_second(NOW)
    errors = [
        ({"EndTime": now}, (400, "ParameterAbsence")),
        ({"StartTime": now}, (400, "ParameterAbsence")),
        ({"StartTime": "2025-11-28T12:00Z", "EndTime": now}, (400, "InvalidStartTime.Format")),
        ({"StartTime": now, "EndTime": "yesterday"}, (400, "InvalidEndTime.Format")),
        ({"StartTime": now, "EndTime": format_second(NOW - 1)}, (400, "InvalidTime.Format")),
        ({"CrossBackupId": "1", "PageSize": "20"}, (400, "InvalidParameters.Format")),
        ({"CrossBackupId": "1", "PageNumber": "0"}, (400, "InvalidParameters.Format")),
    ]  # fmt: skip
    for params, expected in errors:
        assert (await api.cross(iid, **params)).sc == expected, params
    # A window that holds the end but not the start of one source backup.
    edge = truth[0].source
    low, high = edge.start + 1, edge.end + 1
    assert items(await api.copies(iid, low, high)) == []
    sim.inferred.cross_window_on_end_time = True
    assert [i["CrossBackupId"] for i in items(await api.copies(iid, low, high))] == [
        truth[0].cross_backup_id
    ]


async def test_copies_of_an_unsupported_engine(api: Api, fleet: Fleet) -> None:
    mariadb = added(fleet, "MariaDB", "cloud_essd")
    reply = await api.copies(mariadb, NOW - DAY, NOW)
    assert reply.sc == (403, "CrossBackupNotSupport")


# ----- DescribeAvailableRecoveryTime -------------------------------------------------------


async def test_recovery_window_of_a_copy_and_its_switches(
    api: Api, fleet: Fleet, sim: SimulatedRds, clock: Clock
) -> None:
    iid = added(fleet, "MySQL")
    fleet.set_cross_region(iid, True)
    newest = fleet.cross_region_copies(iid, NOW - 8 * DAY, NOW, NOW)[0]

    def ends(at: float) -> tuple[float, float | None]:
        window = fleet.cross_region_recovery_window(newest.cross_backup_id, at)
        assert isinstance(window, tuple)
        return window[1], fleet.newest_completed_log_end(iid, at)

    # A moment when a log file closed within the delay: the copied logs trail the source's.
    clock.now = next(t for t in (NOW + k * 300.0 for k in range(36)) if len(set(ends(t))) == 2)
    reply = await api.window(newest.cross_backup_id)
    region = fleet.instance(iid).region_id
    window = fleet.cross_region_recovery_window(newest.cross_backup_id, clock.now)
    assert isinstance(window, tuple)
    begin, end = window
    assert reply.body | {"RequestId": ""} == {
        "RequestId": "", "CrossBackupId": newest.cross_backup_id, "RegionId": region,
        "RecoveryBeginTime": format_second(begin), "RecoveryEndTime": format_second(end),
    }  # fmt: skip
    assert begin == newest.consistent and clock.now - 2 * HOUR < end < clock.now - 5 * 60
    source_end = fleet.newest_completed_log_end(iid, clock.now)
    assert source_end is not None and end < source_end
    sim.inferred.dr_begin_at_backup_end = True
    sim.inferred.dr_end_at_source_logs = True
    moved = (await api.window(newest.cross_backup_id, DBInstanceId=iid, RegionId=region)).body
    assert when(moved["RecoveryBeginTime"]) == int(newest.source.end)
    assert when(moved["RecoveryEndTime"]) == int(source_end)
    # A hole in the logs after a copy: its window ends where the hole begins.
    older = fleet.cross_region_copies(iid, NOW - 8 * DAY, NOW, NOW)[1]
    sim.inferred.dr_end_at_source_logs = False
    hole = float(int(older.source.end + HOUR))
    fleet.add_log_gap(iid, hole, hole + 600)
    assert when((await api.window(older.cross_backup_id)).body["RecoveryEndTime"]) == hole


async def test_recovery_window_errors(api: Api, fleet: Fleet, sim: SimulatedRds) -> None:
    mysql, pg = added(fleet, "MySQL"), added(fleet, "PostgreSQL")
    for iid in (mysql, pg):
        fleet.set_cross_region(iid, True, log=iid != mysql)
    (first, second, *_), (pg_copy, *_) = (
        fleet.cross_region_copies(i, NOW - 8 * DAY, NOW, NOW) for i in (mysql, pg)
    )
    fleet.fail_cross_region_copies(mysql, first.source.start)
    missing = await api.call("DescribeAvailableRecoveryTime")
    cases = [
        (missing, (400, "ParameterAbsence")),
        (await api.window(12345), (404, NO_SET)),
        (await api.window(pg_copy.cross_backup_id), (403, "CrossBackupNotSupport")),
        (await api.window(first.cross_backup_id), (400, "NoAvailableDisasterRestoreBakset")),
        (await api.window(second.cross_backup_id), (400, "NoAvailableLogBackup")),
        (await api.window(second.cross_backup_id, DBInstanceId=pg), (404, NO_SET)),
    ]  # fmt: skip
    assert [r.sc for r, _ in cases] == [expected for _, expected in cases]
    sim.inferred.dr_failed_copy_not_found = True
    sim.inferred.dr_log_off_error = False
    failed = await api.window(first.cross_backup_id)
    assert failed.sc == (404, "InvalidBackupSetID.NotFound")
    point = (await api.window(second.cross_backup_id)).body
    assert {point["RecoveryBeginTime"], point["RecoveryEndTime"]} == {
        format_second(second.consistent)
    }


# ----- DescribeResourceUsage ---------------------------------------------------------------


async def test_resource_usage_fields_types_and_ground_truth(
    api: Api, fleet: Fleet, sim: SimulatedRds
) -> None:
    iid = added(fleet, "MySQL")
    body = (await api.usage(iid)).body
    expected = {"DBInstanceId", "Engine", "BackupEcsSnapshotSize", "RequestId", *USAGE_INTS}
    assert set(body) == expected
    assert all(type(body[name]) is int for name in USAGE_INTS)
    assert body["BackupEcsSnapshotSize"] == "0" and body["Engine"] == "MySQL"
    assert body == {**fleet.resource_usage(iid, NOW), "RequestId": body["RequestId"]}
    assert body["BackupSize"] == body["BackupOssDataSize"] + body["BackupOssLogSize"]
    assert body["BackupSize"] != body["BackupDataSize"] + body["BackupLogSize"]
    assert body["DiskUsed"] == body["DataSize"] + body["LogSize"]
    measured = fleet.backup_bytes(iid, NOW)
    logs = fleet.log_files(iid, NOW - 7 * DAY, NOW, NOW)
    assert body["BackupLogSize"] == sum(f.size for f in logs if f.completed(NOW)) > 0
    assert body["BackupDataSize"] == measured.data > 0 and body["PaidBackupSize"] == 0
    sim.inferred.usage_backup_size_oss = False
    sim.inferred.usage_ecs_snapshot_field = False
    switched = (await api.usage(iid)).body
    assert switched["BackupSize"] == body["BackupDataSize"] + body["BackupLogSize"]
    assert "BackupEcsSnapshotSize" not in switched


async def test_resource_usage_no_data_paid_bytes_and_errors(api: Api, fleet: Fleet) -> None:
    new = fleet.add_instance(engine="PostgreSQL", created_at=NOW - HOUR).instance_id
    fresh = (await api.usage(new)).body
    assert fresh["BackupSize"] == -1 and fresh["BackupDataSize"] == 0 and fresh["DataSize"] > 0
    iid = added(fleet, "MySQL")
    fleet.set_storage_gb(iid, 1)
    paid = (await api.usage(iid)).body
    quota = GIB // 2  # 50% of 1 GB on local disks
    assert paid["PaidBackupSize"] == paid["BackupDataSize"] + paid["BackupLogSize"] - quota > 0
    cloud = added(fleet, "MySQL", "cloud_essd")
    fleet.set_storage_gb(cloud, 1)
    used = fleet.backup_bytes(cloud, NOW)
    assert (await api.usage(cloud)).body["PaidBackupSize"] == max(0, used.data + used.log - 2 * GIB)
    fleet.set_paid_backup_bytes(iid, 12345)
    assert (await api.usage(iid)).body["PaidBackupSize"] == 12345
    sqlserver = added(fleet, "SQLServer", "cloud_essd")
    snapshots = (await api.usage(sqlserver)).body["BackupEcsSnapshotSize"]
    assert snapshots.isdigit() and int(snapshots) == fleet.backup_bytes(sqlserver, NOW).snapshot > 0
    no_id = await api.call("DescribeResourceUsage")
    unknown = await api.usage("rm-nothere")
    assert [no_id.sc, unknown.sc] == [(400, "ParameterAbsence"), (400, USAGE_NOT_FOUND)]


async def test_the_new_actions_take_faults_like_the_others(
    api: Api, fleet: Fleet, sim: SimulatedRds
) -> None:
    iid = added(fleet, "MySQL")
    sim.faults.for_instance(iid).outage = True
    assert (await api.usage(iid)).status == 503
    sim.faults.per_instance.clear()
    sim.faults.for_action("DescribeCrossRegionBackups").throttle_rate = 1.0
    assert (await api.copies(iid, NOW - DAY, NOW)).code.startswith("Throttling")
    sim.faults.per_action.clear()
    sim.faults.for_action("DescribeCrossRegionBackups").hostile = "huge_page"
    sim.faults.huge_items = 500
    fleet.set_cross_region(iid, False)  # an empty list: huge_page copies a made-up item
    huge = await api.copies(iid, NOW - DAY, NOW)
    assert len({i["CrossBackupId"] for i in items(huge)}) == 500 == huge.body["TotalRecordCount"]
    assert all(type(i["CrossBackupId"]) is int for i in items(huge))
    sim.faults.per_action.clear()
    sim.faults.transform = lambda action, params, body: {**body, "Engine": action}
    assert (await api.usage(iid)).body["Engine"] == "DescribeResourceUsage"
    # Another account's instance is not there for this key.
    fleet.set_cross_region(iid, True)
    copy = fleet.cross_region_copies(iid, NOW - 8 * DAY, NOW, NOW)[0]
    assert (await api.window(copy.cross_backup_id)).status == 200
    sim.restrict_instance(iid, ["someone-else"])
    region = fleet.instance(iid).region_id  # one of the listing's instances but for the key
    listing = await api.call("DescribeCrossRegionBackupDBInstance", RegionId=region)
    assert iid not in {i["DBInstanceId"] for i in items(listing)}
    hidden = [await api.usage(iid), await api.window(copy.cross_backup_id)]
    assert [r.sc for r in hidden] == [(400, USAGE_NOT_FOUND), (404, NO_SET)]


async def test_answers_use_the_official_sdks_wire_names(api: Api, fleet: Fleet) -> None:
    """The SDK's response models keep only the fields they know (see the recovery tests)."""
    from alibabacloud_rds20140815 import models  # type: ignore[import-untyped]

    iid = added(fleet, "MySQL")
    fleet.set_cross_region(iid, True)
    copy = fleet.cross_region_copies(iid, NOW - 8 * DAY, NOW, NOW)[0]
    region = fleet.instance(iid).region_id
    answers = {
        models.DescribeInstanceCrossBackupPolicyResponseBody: await api.policy(iid),
        models.DescribeCrossRegionBackupDBInstanceResponseBody: await api.call(
            "DescribeCrossRegionBackupDBInstance", RegionId=region
        ),
        models.DescribeCrossRegionBackupsResponseBody: await api.copies(iid, NOW - DAY, NOW),
        models.DescribeAvailableRecoveryTimeResponseBody: await api.window(copy.cross_backup_id),
        models.DescribeResourceUsageResponseBody: await api.usage(iid),
    }
    for model, reply in answers.items():
        assert reply.status == 200, reply.body
        assert model().from_map(reply.body).to_map() == reply.body, model.__name__
    assert all(items(answers[m]) for m in list(answers)[1:3])  # lists with something in them


# ----- the fleet and the demo --------------------------------------------------------------


def test_drawn_cross_region_settings() -> None:
    fleet = Fleet.generate(seed=3, instances=400, now=NOW)
    policies = {i: fleet.cross_region_policy(i) for i in fleet.instances}
    supported = {i: p for i, p in policies.items() if p is not None}
    assert {fleet.instance(i).engine for i in policies if policies[i] is None} >= {"MariaDB"}
    enabled = [p for p in supported.values() if p.enabled]
    assert 0.5 < len(enabled) / len(supported) < 0.7
    assert 0.75 < sum(p.log_enabled for p in enabled) / len(enabled) < 0.95
    assert {p.retention_days for p in enabled} <= set(range(7, 31))
    assert all(p.region != fleet.instance(i).region_id for i, p in supported.items())
    usages = [fleet.resource_usage(i, NOW) for i in list(fleet.instances)[:80]]
    assert all(u["PaidBackupSize"] == 0 for u in usages)  # drawn storage leaves room
    colds = [u["ColdBackupSize"] for u in usages]  # -1: no cold backups
    assert 0 < sum(c != -1 for c in colds) < 20 and all(c == -1 or int(c) > 0 for c in colds)


def test_demo_shows_each_disaster_recovery_and_cost_case() -> None:
    fleet, _, roles = build_demo_fleet(NOW)
    for iid in roles.dr_copies:
        copies = fleet.cross_region_copies(iid, NOW - 7 * DAY, NOW, NOW)
        assert copies and {c.status for c in copies} == {0}, iid
    failing = fleet.cross_region_copies(roles.dr_failing, NOW - 7 * DAY, NOW, NOW)
    recent = {c.status for c in failing if c.source.start >= NOW - 2 * DAY}
    assert recent == {1} and {c.status for c in failing} == {0, 1}
    disabled = fleet.cross_region_policy(roles.dr_disabled)
    assert disabled is not None and not disabled.enabled
    on = {i for i in fleet.instances if (p := fleet.cross_region_policy(i)) and p.enabled}
    assert on == {*roles.dr_copies, roles.dr_failing} and len(roles.dr_copies) >= 3
    for at in (NOW, NOW + DAY, NOW + 3 * DAY):
        paid = {i for i in fleet.instances if fleet.resource_usage(i, at)["PaidBackupSize"]}
        assert paid == set(roles.paid_storage), at
