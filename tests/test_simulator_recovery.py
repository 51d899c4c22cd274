"""The simulated recoverability actions (DescribeBinlogFiles, DescribeLogBackupFiles,
DescribeLocalAvailableRecoveryTime, DescribeBackupTasks) and DescribeBackupPolicy's log fields,
over real loopback HTTP with signed requests, against the fleet's ground truth; the simulator's
clock is moved by hand."""

from __future__ import annotations

import calendar
import dataclasses
import hashlib
import itertools
import re
import statistics
from collections.abc import AsyncIterator, Iterable
from typing import Any

import aiohttp
import pytest

from exporter.demo import MARKUP_DESCRIPTION, build_demo_fleet
from exporter.simulator import (
    FORBIDDEN_RAM,
    Fleet,
    Quirks,
    SimulatedRds,
)
from exporter.simulator.timefmt import format_minute, format_second, parse_minute, parse_second
from tests.helpers import KEY_ID, NOW, SECRET
from tests.signed_api import Reply, SetClock, SignedApi

DAY = 86400.0
HOUR = 3600.0
MINUTE = 60.0
SECOND_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
MINUTE_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ")
BINLOG_FIELDS = {
    "LogFileName": str,
    "LogBeginTime": str,
    "LogEndTime": str,
    "FileSize": int,
    "HostInstanceID": str,
    "RemoteStatus": str,
    "Checksum": str,
    "DownloadLink": str,
    "IntranetDownloadLink": str,
    "LinkExpiredTime": str,
}
SQLSERVER_FIELDS = {
    "LogBeginTime": str,
    "LogEndTime": str,
    "FileSize": int,
    "DownloadLink": str,
    "IntranetDownloadLink": str,
    "LinkExpiredTime": str,
}
JOB_FIELDS = {
    "BackupJobId",
    "BackupStatus",
    "BackupProgressStatus",
    "Process",
    "JobMode",
    "TaskAction",
    "BackupId",
}


Clock = SetClock


class Api(SignedApi):
    async def binlogs(self, iid: str, start: float, end: float, **params: str) -> Reply:
        times = {"StartTime": format_second(start), "EndTime": format_second(end)}
        return await self.call("DescribeBinlogFiles", DBInstanceId=iid, **times, **params)

    async def sqlserver_logs(self, iid: str, start: float, end: float, **params: str) -> Reply:
        times = {"StartTime": format_minute(start), "EndTime": format_minute(end)}
        return await self.call("DescribeLogBackupFiles", DBInstanceId=iid, **times, **params)

    async def window(self, iid: str, **params: str) -> Reply:
        return await self.call("DescribeLocalAvailableRecoveryTime", DBInstanceId=iid, **params)

    async def tasks(self, iid: str, **params: str) -> Reply:
        return await self.call("DescribeBackupTasks", DBInstanceId=iid, **params)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fleet() -> Fleet:
    return Fleet.generate(seed=11, instances=12, now=NOW)


@pytest.fixture
def sim(fleet: Fleet, clock: Clock) -> SimulatedRds:
    return SimulatedRds(fleet, {KEY_ID: SECRET}, clock=clock, wide_window_delay=0.0)


@pytest.fixture
async def api(sim: SimulatedRds, clock: Clock) -> AsyncIterator[Api]:
    async with sim.serve() as base_url, aiohttp.ClientSession() as session:
        yield Api(session, base_url, clock)


def added(fleet: Fleet, engine: str, *, ha: bool = True, log_backup: bool = True) -> str:
    """A new primary of ``engine`` with log backup as asked and no drawn gap."""
    for _ in range(50):
        instance = fleet.add_instance(engine=engine)
        if (len(instance.host_ids) == 2) == ha:
            fleet.set_log_backup(instance.instance_id, log_backup)
            fleet.clear_log_gaps(instance.instance_id)
            return instance.instance_id
        fleet.remove_instance(instance.instance_id)
    raise LookupError(engine)


def items(reply: Reply) -> list[dict[str, Any]]:
    assert reply.status == 200, reply.body
    listed: list[dict[str, Any]] = reply.body["Items"]["BinLogFile"]
    return listed


def span(item: dict[str, Any]) -> tuple[float, float]:
    parse = parse_second if SECOND_RE.fullmatch(item["LogBeginTime"]) else parse_minute
    begin, end = parse(item["LogBeginTime"]), parse(item["LogEndTime"])
    assert begin is not None and end is not None
    return begin, end


def union_holes(spans: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    holes, reach = [], None
    for begin, end in sorted(spans):
        if reach is not None and begin > reach:
            holes.append((reach, begin))
        reach = end if reach is None else max(reach, end)
    return holes


# ----- DescribeBinlogFiles -----------------------------------------------------------------


async def test_binlog_files_carry_every_documented_field_with_its_type(
    api: Api, fleet: Fleet
) -> None:
    iid = added(fleet, "MySQL")
    reply = await api.binlogs(iid, NOW - 6 * HOUR, NOW, PageSize="1000")
    listed = items(reply)
    assert listed and all(set(item) == set(BINLOG_FIELDS) for item in listed)
    for item in listed:
        assert all(isinstance(item[name], kind) for name, kind in BINLOG_FIELDS.items())
        assert SECOND_RE.fullmatch(item["LogBeginTime"]) and SECOND_RE.fullmatch(
            item["LinkExpiredTime"]
        )
        assert re.fullmatch(r"mysql-bin\.\d{6}", item["LogFileName"])
        assert item["HostInstanceID"] in fleet.instance(iid).host_ids
        assert item["Checksum"].isdigit() and item["RemoteStatus"] in ("Completed", "Uploading")
        assert (item["DownloadLink"] != "") == (item["RemoteStatus"] == "Completed")
    body = reply.body
    assert [type(body[n]) for n in ("PageNumber", "PageRecordCount", "TotalRecordCount")] == [
        int
    ] * 3
    assert body["TotalRecordCount"] == len(listed) == body["PageRecordCount"]
    assert body["TotalFileSize"] == sum(item["FileSize"] for item in listed)
    truth = fleet.log_files(iid, NOW - 6 * HOUR, NOW, NOW)
    assert [(f.name, f.host, f.begin, f.end, f.size) for f in truth] == [
        (i["LogFileName"], i["HostInstanceID"], *span(i), i["FileSize"]) for i in listed
    ]


async def test_postgresql_lists_wal_segments(api: Api, fleet: Fleet) -> None:
    iid = added(fleet, "PostgreSQL")
    listed = items(await api.binlogs(iid, NOW - 2 * HOUR, NOW, PageSize="100"))
    assert listed and all(re.fullmatch(r"[0-9A-F]{24}", i["LogFileName"]) for i in listed)
    steps = [span(i)[1] - span(i)[0] for i in listed]
    assert all(4 * MINUTE < step < 16 * MINUTE for step in steps)


async def test_a_file_is_listed_when_it_overlaps_the_window_and_not_when_it_only_touches_it(
    api: Api, fleet: Fleet
) -> None:
    iid = added(fleet, "MySQL", ha=False)
    (file, *_) = [f for f in fleet.log_files(iid, NOW - 6 * HOUR, NOW, NOW) if f.primary][1:]
    names = {
        (start, end): {i["LogFileName"] for i in items(await api.binlogs(iid, start, end))}
        for start, end in [
            (file.end, file.end + HOUR),  # ends exactly at StartTime: not after it
            (file.end - 1, file.end + HOUR),
            (file.begin - HOUR, file.begin),  # begins exactly at EndTime: not before it
            (file.begin - HOUR, file.begin + 1),
            (file.begin + 1, file.end - 1),  # inside it: it straddles both edges
        ]
    }
    inside = list(names.values())
    assert file.name not in inside[0] and file.name not in inside[2]
    assert all(file.name in found for found in (inside[1], inside[3], inside[4]))


async def test_both_nodes_list_the_same_times_under_their_own_names(api: Api, fleet: Fleet) -> None:
    iid = added(fleet, "MariaDB")
    listed = items(await api.binlogs(iid, NOW - 4 * HOUR, NOW - HOUR, PageSize="100"))
    by_host: dict[str, list[dict[str, Any]]] = {}
    for item in listed:
        by_host.setdefault(item["HostInstanceID"], []).append(item)
    assert set(by_host) == set(fleet.instance(iid).host_ids)
    first, second = by_host.values()
    assert [span(i) for i in first] == [span(i) for i in second]
    assert {i["LogFileName"] for i in first}.isdisjoint(i["LogFileName"] for i in second)
    writers = {f.host for f in fleet.log_files(iid, NOW - 4 * HOUR, NOW - HOUR, NOW) if f.primary}
    assert len(writers) == 1  # one node writes at a time


async def test_a_gap_of_known_length_is_missing_from_the_union(api: Api, fleet: Fleet) -> None:
    iid = added(fleet, "MySQL")
    short = (NOW - 2 * DAY + 123, NOW - 2 * DAY + 123 + 17 * MINUTE + 3)
    long = (NOW - 2 * DAY + 3 * HOUR, NOW - 2 * DAY + 5 * HOUR)  # swallows a few files
    for start, end in (short, long):
        fleet.add_log_gap(iid, start, end)
    window = (short[0] - 3 * HOUR, long[1] + 3 * HOUR)
    listed = items(await api.binlogs(iid, *window, PageSize="1000"))
    assert union_holes(span(i) for i in listed) == [short, long]
    assert fleet.log_gaps(iid, NOW - 8 * DAY, NOW) == [short, long]
    # The file a gap starts in closes there; the next opens where it ends, numbered on.
    for host in fleet.instance(iid).host_ids:
        numbers = [int(i["LogFileName"][10:]) for i in listed if i["HostInstanceID"] == host]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))


async def test_files_are_listed_once_closed_and_complete_a_few_minutes_later(
    api: Api, fleet: Fleet, clock: Clock
) -> None:
    iid = added(fleet, "MySQL", ha=False)
    (upcoming, *_) = [f for f in fleet.log_files(iid, NOW, NOW + DAY, NOW + DAY)]
    clock.now = upcoming.end - 1
    assert upcoming.name not in {
        i["LogFileName"] for i in items(await api.binlogs(iid, NOW, NOW + DAY))
    }
    clock.now = upcoming.end
    (item,) = [
        i
        for i in items(await api.binlogs(iid, NOW, NOW + DAY))
        if i["LogFileName"] == upcoming.name
    ]
    assert (item["RemoteStatus"], item["DownloadLink"]) == ("Uploading", "")
    clock.now = upcoming.end + 5 * MINUTE
    (item,) = [
        i
        for i in items(await api.binlogs(iid, NOW, NOW + DAY))
        if i["LogFileName"] == upcoming.name
    ]
    assert item["RemoteStatus"] == "Completed" and item["DownloadLink"].startswith("http")
    assert fleet.newest_completed_log_end(iid, clock.now) == upcoming.end


async def test_a_stuck_upload_stays_uploading(api: Api, fleet: Fleet, clock: Clock) -> None:
    iid = added(fleet, "PostgreSQL")
    fleet.stick_log_upload(iid, NOW - 3 * HOUR)
    clock.now = NOW + DAY
    listed = items(await api.binlogs(iid, NOW - 4 * HOUR, NOW, PageSize="1000"))
    late = [i for i in listed if span(i)[1] > NOW - 3 * HOUR]
    assert late and all(i["RemoteStatus"] == "Uploading" for i in late)
    assert all(i["RemoteStatus"] == "Completed" for i in listed if i not in late)
    newest = fleet.newest_completed_log_end(iid, clock.now)
    assert newest is not None and NOW - 3 * HOUR - 16 * MINUTE < newest <= NOW - 3 * HOUR
    fleet.stick_log_upload(iid, None)
    unstuck = fleet.newest_completed_log_end(iid, clock.now)
    assert unstuck is not None and unstuck > clock.now - HOUR


async def test_binlog_pages_split_the_result_and_a_page_past_the_end_is_empty(
    api: Api, fleet: Fleet, sim: SimulatedRds
) -> None:
    iid = added(fleet, "PostgreSQL")
    whole = items(await api.binlogs(iid, NOW - DAY, NOW, PageSize="1000"))
    pages = []
    for number in itertools.count(1):
        reply = await api.binlogs(iid, NOW - DAY, NOW, PageSize="30", PageNumber=str(number))
        pages.append(reply)
        if number * 30 >= len(whole):
            break
    assert [i for page in pages for i in items(page)] == whole
    assert all(p.body["TotalRecordCount"] == len(whole) for p in pages)
    assert [p.body["PageRecordCount"] for p in pages][:-1] == [30] * (len(pages) - 1)
    total = sum(i["FileSize"] for i in whole)
    assert all(p.body["TotalFileSize"] == total for p in pages)  # the whole result's
    # The documented end of a listing: an empty page, whatever DescribeBackups' quirk says.
    past_end = {"PageSize": "30", "PageNumber": str(len(pages) + 1)}
    past = await api.binlogs(iid, NOW - DAY, NOW, **past_end)
    assert items(past) == []
    assert (past.body["PageRecordCount"], past.body["TotalRecordCount"]) == (0, len(whole))
    assert past.body["PageNumber"] == len(pages) + 1
    sim.inferred.log_page_past_end_error = True  # the other reading, as DescribeBackups does
    past = await api.binlogs(iid, NOW - DAY, NOW, **past_end)
    assert (past.status, past.code) == (400, "InvalidPageNumbers.Malformed")
    last = await api.binlogs(iid, NOW - DAY, NOW, PageSize="30", PageNumber=str(len(pages)))
    assert items(last) == items(pages[-1])  # only a page past the end is refused
    sim.inferred.log_page_past_end_error = False
    sim.inferred.total_file_size_whole_result = False
    first = await api.binlogs(iid, NOW - DAY, NOW, PageSize="30")
    assert first.body["TotalFileSize"] == sum(i["FileSize"] for i in items(first)) < total


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"StartTime": "2025-11-27T00:00Z"}, 400, "InvalidStartTime.Format"),
        ({"EndTime": "2025-11-28 12:00:00"}, 400, "InvalidEndTime.Format"),
        ({"EndTime": "2025-11-27T00:00:00Z"}, 400, "InvalidParameterCombination"),
        (
            {"StartTime": "2025-11-27T00:00:00Z", "EndTime": "2025-11-27T00:00:00Z"},
            400,
            "InvalidParameterCombination",
        ),
        ({"PageSize": "29"}, 400, "InvalidParameters.Format"),
        ({"PageSize": "1001"}, 400, "InvalidParameters.Format"),
        ({"PageNumber": "0"}, 400, "InvalidPageNumbers.Malformed"),
        ({"DBInstanceId": "rm-doesnotexist000"}, 404, "InvalidDBInstance.NotFound"),
        ({"StartTime": None}, 400, "ParameterAbsence"),
        ({"EndTime": None}, 400, "ParameterAbsence"),
    ],
)
async def test_binlog_parameter_errors(
    api: Api, fleet: Fleet, params: dict[str, str | None], status: int, code: str
) -> None:
    iid = added(fleet, "MySQL")
    base = {
        "DBInstanceId": iid,
        "StartTime": "2025-11-27T12:00:00Z",
        "EndTime": "2025-11-28T12:00:00Z",
    }
    sent = {k: v for k, v in {**base, **params}.items() if v is not None}
    reply = await api.call("DescribeBinlogFiles", **sent)
    assert (reply.status, reply.code) == (status, code)


async def test_each_engine_and_type_refuses_the_actions_it_lacks(api: Api, fleet: Fleet) -> None:
    sql_server, mysql = added(fleet, "SQLServer"), added(fleet, "MySQL")
    replica = fleet.add_instance(
        engine="MySQL", instance_type="Readonly", master_instance_id=mysql
    ).instance_id
    refusals = {
        "binlogs of SQL Server": await api.binlogs(sql_server, NOW - HOUR, NOW),
        "SQL Server logs of MySQL": await api.sqlserver_logs(mysql, NOW - HOUR, NOW),
        "window of SQL Server": await api.window(sql_server),
        "binlogs of a replica": await api.binlogs(replica, NOW - HOUR, NOW),
        "tasks of a replica": await api.tasks(replica),
        "window of a replica": await api.window(replica),
    }
    assert {what: (r.status, r.code) for what, r in refusals.items()} == {
        "binlogs of SQL Server": (403, "IncorrectDBInstanceEngine"),
        "SQL Server logs of MySQL": (403, "IncorrectDBInstanceEngine"),
        "window of SQL Server": (403, "IncorrectDBInstanceEngine"),
        "binlogs of a replica": (400, "ReadDBInstanceNotSupport"),
        "tasks of a replica": (400, "ReadDBInstanceNotSupport"),
        "window of a replica": (400, "ReadDBInstanceNotSupport"),
    }
    for engine in ("MySQL", "PostgreSQL", "MariaDB", "SQLServer"):
        assert (await api.tasks(added(fleet, engine))).status == 200


# ----- DescribeLogBackupFiles --------------------------------------------------------------


async def test_sql_server_log_backups_are_whole_minutes_without_names(
    api: Api, fleet: Fleet
) -> None:
    iid = added(fleet, "SQLServer")
    fleet.set_policy(iid, dataclasses.replace(fleet.instance(iid).policy, log_interval_minutes=30))
    reply = await api.sqlserver_logs(iid, NOW - 6 * HOUR, NOW, PageSize="100")
    listed = items(reply)
    assert listed and all(set(i) == set(SQLSERVER_FIELDS) for i in listed)
    for item in listed:
        assert all(isinstance(item[name], kind) for name, kind in SQLSERVER_FIELDS.items())
        assert MINUTE_RE.fullmatch(item["LogBeginTime"]) and MINUTE_RE.fullmatch(item["LogEndTime"])
        assert SECOND_RE.fullmatch(item["LinkExpiredTime"])
        assert span(item)[1] - span(item)[0] == 30 * MINUTE
    assert reply.body["TotalFileSize"] == sum(i["FileSize"] for i in listed)
    assert union_holes(span(i) for i in listed) == []
    seconds = await api.call(
        "DescribeLogBackupFiles",
        DBInstanceId=iid,
        StartTime=format_second(NOW - HOUR),
        EndTime=format_minute(NOW),
    )
    assert (seconds.status, seconds.code) == (400, "InvalidStartTime.Format")
    fleet.set_policy(iid, dataclasses.replace(fleet.instance(iid).policy, log_interval_minutes=5))
    five = items(await api.sqlserver_logs(iid, NOW - HOUR, NOW, PageSize="100"))
    assert {span(i)[1] - span(i)[0] for i in five} == {5 * MINUTE}


@pytest.mark.parametrize("absent", ["StartTime", "EndTime"])
async def test_sql_server_log_backups_need_both_times(api: Api, fleet: Fleet, absent: str) -> None:
    iid = added(fleet, "SQLServer")
    times = {"StartTime": format_minute(NOW - HOUR), "EndTime": format_minute(NOW)}
    del times[absent]
    reply = await api.call("DescribeLogBackupFiles", DBInstanceId=iid, **times)
    assert (reply.status, reply.code) == (400, "ParameterAbsence")


async def test_sql_server_log_backups_past_the_last_page_are_an_empty_page(
    api: Api, fleet: Fleet, sim: SimulatedRds
) -> None:
    iid = added(fleet, "SQLServer")
    fleet.set_policy(iid, dataclasses.replace(fleet.instance(iid).policy, log_interval_minutes=5))
    whole = items(await api.sqlserver_logs(iid, NOW - DAY, NOW, PageSize="1000"))
    assert len(whole) > 30
    after_last = str(-(-len(whole) // 30) + 1)
    past = await api.sqlserver_logs(iid, NOW - DAY, NOW, PageSize="30", PageNumber=after_last)
    assert items(past) == []
    assert (past.body["PageRecordCount"], past.body["TotalRecordCount"]) == (0, len(whole))
    sim.inferred.log_page_past_end_error = True
    past = await api.sqlserver_logs(iid, NOW - DAY, NOW, PageSize="30", PageNumber=after_last)
    assert (past.status, past.code) == (400, "InvalidPageNumbers.Malformed")


async def test_sql_server_stuck_log_backups_are_not_listed(api: Api, fleet: Fleet) -> None:
    iid = added(fleet, "SQLServer")
    fleet.stick_log_upload(iid, NOW - 2 * HOUR)
    listed = items(await api.sqlserver_logs(iid, NOW - 4 * HOUR, NOW, PageSize="100"))
    assert listed and max(span(i)[1] for i in listed) <= NOW - 2 * HOUR


# ----- DescribeLocalAvailableRecoveryTime ---------------------------------------------------


async def test_the_window_runs_from_a_full_backup_to_the_newest_stored_log(
    api: Api, fleet: Fleet, sim: SimulatedRds
) -> None:
    iid = added(fleet, "MySQL")
    reply = await api.window(iid, Region=fleet.instance(iid).region_id, RegionId="cn-nowhere")
    assert reply.status == 200 and set(reply.body) == {
        "RequestId",
        "DBInstanceId",
        "RecoveryBeginTime",
        "RecoveryEndTime",
    }
    begin = parse_second(reply.body["RecoveryBeginTime"])
    end = parse_second(reply.body["RecoveryEndTime"])
    assert (begin, end) == fleet.recovery_window(iid, NOW)
    assert end == fleet.newest_completed_log_end(iid, NOW)
    fulls = fleet.backups_between(iid, NOW - 7 * DAY, NOW, NOW)
    usable = [b for b in fulls if b.backup_type == "FullBackup" and b.is_avail]
    assert begin == min(b.start for b in usable if b.start >= NOW - 7 * DAY)
    sim.inferred.refuse_region_id = True
    refused = await api.window(iid, RegionId=fleet.instance(iid).region_id)
    assert (refused.status, refused.code) == (400, "InvalidParameter")


async def test_the_window_after_a_gap_starts_at_the_first_backup_after_it(
    api: Api, fleet: Fleet
) -> None:
    iid = added(fleet, "PostgreSQL")
    daily = dataclasses.replace(fleet.instance(iid).policy, weekdays=frozenset(range(7)))
    fleet.set_policy(iid, daily)
    fleet.add_log_gap(iid, NOW - 4 * DAY, NOW - 4 * DAY + 600)
    window = fleet.recovery_window(iid, NOW)
    assert isinstance(window, tuple)
    starts = [b.start for b in fleet.backups_between(iid, NOW - 4 * DAY, NOW, NOW) if b.is_avail]
    assert window[0] == min(s for s in starts if s >= NOW - 4 * DAY + 600)
    reply = await api.window(iid)
    assert parse_second(reply.body["RecoveryBeginTime"]) == window[0]


async def test_each_reason_the_window_is_gone(api: Api, fleet: Fleet) -> None:
    off = added(fleet, "MySQL", log_backup=False)
    gap = added(fleet, "MariaDB")
    daily = dataclasses.replace(fleet.instance(gap).policy, weekdays=frozenset(range(7)))
    fleet.set_policy(gap, daily)
    fleet.set_failure_rate(gap, 0.0)
    fleet.stop_backups(gap, after=NOW - 2 * DAY)  # the newest full backup is before the gap
    fleet.add_log_gap(gap, NOW - DAY, NOW - DAY + 60)
    no_backup = added(fleet, "PostgreSQL")
    fleet.set_failure_rate(no_backup, 1.0)
    replies = {iid: await api.window(iid) for iid in (off, gap, no_backup)}
    assert {iid: (r.status, r.code) for iid, r in replies.items()} == {
        off: (400, "LogBackupNotEnabled"),
        gap: (404, "InvalidBinlog.NotFound"),
        no_backup: (404, "InvalidBackup.NotFound"),
    }
    assert {iid: fleet.recovery_window(iid, NOW) for iid in replies} == {
        iid: r.code for iid, r in replies.items()
    }


# ----- DescribeBackupTasks -----------------------------------------------------------------


async def test_a_stuck_backup_runs_at_constant_progress_until_it_ends(
    api: Api, fleet: Fleet, clock: Clock
) -> None:
    iid = added(fleet, "MySQL")
    fleet.stop_backups(iid, after=NOW - 3 * DAY)
    stuck = fleet.stick_backup(iid, NOW - 30 * HOUR, 42)
    seen = []
    for hours in (0, 5, 20):
        clock.now = NOW + hours * HOUR
        (job,) = (await api.tasks(iid)).body["Items"]["BackupJob"]
        seen.append(job)
    assert all(job == seen[0] for job in seen) and set(seen[0]) == JOB_FIELDS
    job = seen[0]
    assert job["Process"] == "42" and job["BackupId"] == "" and job["BackupJobId"].isdigit()
    assert (job["BackupStatus"], job["JobMode"], job["TaskAction"]) == (
        "Uploading",
        "Automated",
        "NormalBackupTask",
    )
    listed = await api.call("DescribeBackups", DBInstanceId=iid)
    assert stuck.backup_id not in {b["BackupId"] for b in listed.body["Items"]["Backup"]}
    fleet.unstick_backup(iid, clock.now - MINUTE)
    assert (await api.tasks(iid)).body["Items"]["BackupJob"] == []
    listed = await api.call("DescribeBackups", DBInstanceId=iid)
    assert stuck.backup_id in {b["BackupId"] for b in listed.body["Items"]["Backup"]}
    (done,) = (await api.tasks(iid, BackupJobId=job["BackupJobId"])).body["Items"]["BackupJob"]
    assert (done["BackupStatus"], done["BackupId"]) == ("Finished", stuck.backup_id)


async def test_a_scheduled_backup_is_a_job_while_it_runs(
    api: Api, fleet: Fleet, clock: Clock, sim: SimulatedRds
) -> None:
    iid = added(fleet, "MySQL")
    backup = fleet.backups_between(iid, NOW - 2 * DAY, NOW, NOW)[0]
    progress = []
    for share in (0.1, 0.5, 0.9):
        clock.now = backup.start + share * (backup.end - backup.start)
        truth = fleet.running_jobs(iid, clock.now)
        (mine,) = [j.job_id for j in truth if j.backup.backup_id == backup.backup_id]
        jobs = (await api.tasks(iid, BackupJobStatus="Progressing")).body["Items"]["BackupJob"]
        assert [j["BackupJobId"] for j in jobs] == [j.job_id for j in truth]
        progress += [int(j["Process"]) for j in jobs if j["BackupJobId"] == mine]
    assert progress == sorted(progress) and progress[0] < progress[-1]
    assert (await api.tasks(iid, BackupJobStatus="NoStart")).body["Items"]["BackupJob"] == []
    clock.now = backup.end
    assert backup.backup_id not in {j.backup.backup_id for j in fleet.running_jobs(iid, clock.now)}
    sim.inferred.finished_job_seconds = HOUR
    jobs = (await api.tasks(iid)).body["Items"]["BackupJob"]
    finished = [j for j in jobs if j["BackupStatus"] in ("Finished", "Failed")]
    assert finished and all(j["BackupId"] == "" for j in finished)  # shown only when asked by id


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"BackupJobId": "x1"}, "InvalidParameters.Format"),
        ({"BackupJobId": str(2**31)}, "InvalidParameters.Format"),
        ({"BackupJobStatus": "Running"}, "InvalidParameters.Format"),
        ({"BackupMode": "Scheduled"}, "InvalidParameters.Format"),
    ],
)
async def test_backup_task_parameter_errors(
    api: Api, fleet: Fleet, params: dict[str, str], code: str
) -> None:
    reply = await api.tasks(added(fleet, "PostgreSQL"), **params)
    assert (reply.status, reply.code) == (400, code)
    missing = await api.tasks("rm-doesnotexist000")
    assert (missing.status, missing.code) == (404, "InvalidDBInstance.NotFound")


# ----- DescribeBackupPolicy ----------------------------------------------------------------


async def test_policy_log_fields_and_the_sql_server_caveat(
    api: Api, fleet: Fleet, sim: SimulatedRds
) -> None:
    def with_logs(iid: str, on: bool, minutes: int) -> str:
        policy = fleet.instance(iid).policy
        fleet.set_policy(
            iid, dataclasses.replace(policy, log_backup=on, log_interval_minutes=minutes)
        )
        return iid

    mysql = added(fleet, "MySQL")
    cases = {
        "mysql": mysql,
        "every 30": with_logs(added(fleet, "SQLServer"), True, 30),
        "every 5": with_logs(added(fleet, "SQLServer"), True, 5),
        "with data": with_logs(added(fleet, "SQLServer"), False, 30),
    }
    names = ("EnableBackupLog", "BackupLog", "LogBackupFrequency", "BackupInterval")
    seen = {}
    for case, iid in cases.items():
        body = (await api.call("DescribeBackupPolicy", DBInstanceId=iid)).body
        seen[case] = tuple(body[name] for name in names)
        assert isinstance(body["LocalLogRetentionHours"], int)
        assert isinstance(body["LogBackupLocalRetentionNumber"], int)
        assert body["LocalLogRetentionSpace"].isdigit()
        assert body["HighSpaceUsageProtection"] in ("Enable", "Disable")
        assert isinstance(body["LogBackupRetentionPeriod"], int)
    assert seen == {
        "mysql": ("1", "Enable", "LogInterval", "-1"),
        "every 30": ("0", "Disabled", "LogInterval", "30"),  # backed up all the same
        "every 5": ("1", "Enable", "LogInterval", "5"),
        "with data": ("0", "Disabled", "", "-1"),
    }
    files = fleet.log_files(cases["every 30"], NOW - HOUR, NOW, NOW)
    assert files and fleet.log_files(cases["with data"], NOW - 8 * DAY, NOW, NOW)
    # The mode asked for is ignored unless switched on.
    data = await api.call(
        "DescribeBackupPolicy", DBInstanceId=mysql, BackupPolicyMode="DataBackupPolicy"
    )
    assert "EnableBackupLog" in data.body and "PreferredBackupPeriod" in data.body
    sim.inferred.policy_mode_filters = True
    data = await api.call(
        "DescribeBackupPolicy", DBInstanceId=mysql, BackupPolicyMode="DataBackupPolicy"
    )
    logs = await api.call(
        "DescribeBackupPolicy", DBInstanceId=mysql, BackupPolicyMode="LogBackupPolicy"
    )
    assert "EnableBackupLog" not in data.body and "PreferredBackupPeriod" in data.body
    assert "EnableBackupLog" in logs.body and "PreferredBackupPeriod" not in logs.body


# ----- the rest of the simulator applies ---------------------------------------------------


async def test_new_actions_are_recorded_faulted_and_hostile_like_the_others(
    api: Api, fleet: Fleet, sim: SimulatedRds
) -> None:
    iid = added(fleet, "MySQL")
    sim.faults.for_instance(iid).forced_error = FORBIDDEN_RAM
    refused = await api.window(iid)
    assert (refused.status, refused.code) == (403, "Forbidden.RAM")
    sim.faults.for_instance(iid).forced_error = None
    sim.faults.for_action("DescribeBinlogFiles").hostile = "huge_page"
    sim.faults.huge_items = 700
    huge = await api.binlogs(iid, NOW - HOUR, NOW)
    assert len({i["LogFileName"] for i in items(huge)}) == 700
    assert huge.body["PageRecordCount"] == huge.body["TotalRecordCount"] == 700
    empty = await api.binlogs(iid, NOW - 30 * DAY, NOW - 29 * DAY)  # lists nothing normally
    assert len(items(empty)) == 700
    sim.faults.for_action("DescribeBackupTasks").hostile = "huge_page"
    jobs = (await api.tasks(iid)).body["Items"]["BackupJob"]
    assert len({j["BackupJobId"] for j in jobs}) == 700
    sim.faults.per_action.clear()
    sim.faults.hostile = "negative_size"
    assert {i["FileSize"] for i in items(await api.binlogs(iid, NOW - HOUR, NOW))} == {-1}
    sim.faults.hostile = None
    assert [(r.action, r.code) for r in sim.requests] == [
        ("DescribeLocalAvailableRecoveryTime", "Forbidden.RAM"),
        ("DescribeBinlogFiles", "HUGE_PAGE"),
        ("DescribeBinlogFiles", "HUGE_PAGE"),
        ("DescribeBackupTasks", "HUGE_PAGE"),
        ("DescribeBinlogFiles", "NEGATIVE_SIZE"),
    ]
    assert {r.instance_id for r in sim.requests} == {iid}


async def test_new_actions_answer_as_documented_with_every_quirk_off(
    api: Api, fleet: Fleet, sim: SimulatedRds
) -> None:
    sim.quirks = Quirks.none()
    iid = added(fleet, "MySQL")
    assert (await api.binlogs(iid, NOW - HOUR, NOW)).body["PageNumber"] == 1
    assert (await api.window(iid)).status == 200


# ----- the fleet ---------------------------------------------------------------------------


@pytest.mark.slow  # days of simulated polling
def test_log_backups_follow_their_drawn_cadence_gaps_and_failovers() -> None:
    fleet = Fleet.generate(seed=3, instances=300, now=NOW, readonly_fraction=0.0)
    minutes: dict[str, list[float]] = {}
    gapped, failed_over, ha = 0, 0, 0
    for iid, instance in fleet.instances.items():
        files = [f for f in fleet.log_files(iid, NOW - 8 * DAY, NOW, NOW) if f.primary]
        if not instance.policy.log_backup or not files:
            continue
        gaps = fleet.log_gaps(iid, NOW - 8 * DAY, NOW)
        gapped += bool(gaps)
        if not gaps:  # a gap shortens the files around it
            steps = [(f.end - f.begin) / 60 for f in files[1:-1]]
            minutes.setdefault(instance.engine, []).extend(steps)
        if len(instance.host_ids) == 2 and instance.engine != "SQLServer":
            ha += 1
            failed_over += len({f.host for f in files}) > 1
    logged = sum(1 for i in fleet.instances.values() if i.policy.log_backup)
    assert 0.02 < gapped / logged < 0.09
    assert 0 < failed_over < ha / 3  # rare, but it happens
    mysql = minutes["MySQL"] + minutes["MariaDB"]
    assert min(mysql) >= 20 and max(mysql) <= 60 and 30 < statistics.mean(mysql) < 45
    assert min(minutes["PostgreSQL"]) >= 5 and max(minutes["PostgreSQL"]) <= 16
    assert set(minutes["SQLServer"]) <= {5.0, 30.0}


DIGEST_NOW = float(calendar.timegm((2025, 3, 12, 6, 30, 0)))  # as in test_simulator_quirks
INSTANCE_FIELDS = (
    "instance_id", "serial", "engine", "engine_version", "region_id", "zone_id", "description",
    "instance_type", "status", "resource_group_id", "tags", "created_at", "storage_type",
    "category", "instance_class", "master_instance_id", "base_size_bytes", "daily_growth",
    "throughput_bytes_per_second", "encryption", "archive", "host_ids", "databases", "vpc_id",
    "vswitch_id", "minute_precision",
)  # fmt: skip
BACKUP_FIELDS = (
    "backup_id", "instance_id", "start", "end", "status", "backup_type", "mode", "method",
    "initiator", "size", "engine", "engine_version", "region_id", "host_instance_id",
    "consistent_time", "storage_class", "encryption", "checksum", "meta_status", "databases",
    "download_url", "intranet_download_url", "available",
)  # fmt: skip
SCHEDULE_FIELDS = ("weekdays", "window_start_hour", "method", "category", "incremental")
POLICY_FIELDS = (
    "weekdays", "window_start_hour", "retention_days", "log_backup", "log_retention_days",
    "method", "category", "incremental",
)  # fmt: skip


def fleet_digest(fleet: Fleet, ids: Iterable[str], policy_fields: Iterable[str]) -> str:
    rows = []
    for iid in ids:
        instance = fleet.instance(iid)
        values = [getattr(instance, name) for name in INSTANCE_FIELDS]
        values[INSTANCE_FIELDS.index("tags")] = sorted(instance.tags.items())
        rows.append(repr(values))
        policy = [getattr(instance.policy, name) for name in policy_fields]
        rows.append(repr([sorted(v) if isinstance(v, frozenset) else v for v in policy]))
        later = DIGEST_NOW + HOUR
        for backup in fleet.backups_between(iid, 0, later, later):
            rows.append(repr([getattr(backup, name) for name in BACKUP_FIELDS]))
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]


@pytest.mark.parametrize(
    ("seed", "instances", "readonly", "digest"),
    [(7, 40, 0.08, "44115d9fca038269"), (3, 300, 0.2, "bc93a0d04b75dc3e")],
)
def test_the_new_draws_leave_every_existing_fleet_unchanged(
    seed: int, instances: int, readonly: float, digest: str
) -> None:
    """What the code before log backups made: every instance field, the policy fields that
    existed, every backup. The recoverability draws use hashes of their own."""
    fleet = Fleet.generate(
        seed=seed, instances=instances, now=DIGEST_NOW, readonly_fraction=readonly
    )
    assert fleet_digest(fleet, fleet.instances, POLICY_FIELDS) == digest


def test_the_demo_keeps_its_instances_and_backups() -> None:
    """The demo's first eleven instances as before (their log settings aside: log backup on,
    two weeks of logs for the weekly one); the recoverability roles are new instances."""
    fleet, _, roles = build_demo_fleet(DIGEST_NOW)
    original = list(fleet.instances)[:11]
    # One description is markup now (the status page's case); everything else as it was.
    markup = fleet.instances[roles.markup]
    assert markup.description == MARKUP_DESCRIPTION
    fleet.instances[roles.markup] = dataclasses.replace(
        markup, description=f"demo {markup.engine.lower()} 6"
    )
    assert fleet_digest(fleet, original, SCHEDULE_FIELDS) == "7c149c72c6c931f5"
    new = (
        roles.log_backup_off,
        roles.log_gap,
        roles.stuck_upload,
        roles.stuck_backup,
        roles.sqlserver_logs,
    )
    assert list(fleet.instances)[11:16] == list(new)
    # Then the disaster-recovery and cost roles' own instances.
    assert list(fleet.instances)[16:] == [roles.dr_failing, roles.dr_disabled, *roles.paid_storage]


@pytest.mark.parametrize("days", [0.0, 0.37, 2.9, 4.5])
def test_each_demo_role_shows_its_failure_and_the_others_stay_recoverable(days: float) -> None:
    now = NOW + days * DAY
    fleet, _, roles = build_demo_fleet(now)
    others = (*roles.healthy, *roles.failing, roles.stale, roles.throttled)
    for iid in others:
        instance = fleet.instance(iid)
        assert fleet.log_gaps(iid, now - 8 * DAY, now) == [], iid
        newest = fleet.newest_completed_log_end(iid, now)
        assert newest is not None and now - newest < 2 * HOUR, iid
        if instance.engine != "SQLServer":
            assert isinstance(fleet.recovery_window(iid, now), tuple), iid
    assert fleet.recovery_window(roles.log_backup_off, now) == "LogBackupNotEnabled"
    assert fleet.recovery_window(roles.log_gap, now) == "InvalidBinlog.NotFound"
    gaps = fleet.log_gaps(roles.log_gap, now - 8 * DAY, now)
    assert [end - start for start, end in gaps] == [17 * MINUTE]
    assert now - 2 * DAY - 1 <= gaps[0][0] <= now - 2 * DAY
    files = fleet.log_files(roles.stuck_upload, now - 4 * HOUR, now, now)
    uploading = [f for f in files if not f.completed(now)]
    assert uploading and now - 3 * HOUR < min(f.end for f in uploading) < now - 2.5 * HOUR
    (job,) = [j for j in fleet.running_jobs(roles.stuck_backup, now) if j.process == 42]
    assert job.backup.start == now - 30 * HOUR
    sql_server = fleet.log_files(roles.sqlserver_logs, now - 3 * HOUR, now, now)
    assert sql_server and {f.end - f.begin for f in sql_server} == {30 * MINUTE}
    assert fleet.instance(roles.sqlserver_logs).policy.log_interval_minutes == 30


async def test_every_new_action_says_not_found_for_an_unknown_instance(api: Api) -> None:
    unknown = "rm-doesnotexist000"
    replies = [
        await api.binlogs(unknown, NOW - HOUR, NOW),
        await api.sqlserver_logs(unknown, NOW - HOUR, NOW),
        await api.window(unknown),
        await api.tasks(unknown),
    ]
    assert {(r.status, r.code) for r in replies} == {(404, "InvalidDBInstance.NotFound")}


async def test_answers_use_the_official_sdks_wire_names(api: Api, fleet: Fleet) -> None:
    """The official SDK's response models keep only the fields they know: an answer that
    survives a round trip through them names nothing the SDK does not."""
    from alibabacloud_rds20140815 import models  # type: ignore[import-untyped]

    mysql, sql_server = added(fleet, "MySQL"), added(fleet, "SQLServer")
    fleet.stick_backup(mysql, NOW - HOUR, 10)
    answers = {
        models.DescribeBinlogFilesResponseBody: await api.binlogs(mysql, NOW - HOUR, NOW),
        models.DescribeLogBackupFilesResponseBody: await api.sqlserver_logs(
            sql_server, NOW - HOUR, NOW
        ),
        models.DescribeLocalAvailableRecoveryTimeResponseBody: await api.window(mysql),
        models.DescribeBackupTasksResponseBody: await api.tasks(mysql),
        models.DescribeBackupPolicyResponseBody: await api.call(
            "DescribeBackupPolicy", DBInstanceId=sql_server
        ),
    }
    for model, reply in answers.items():
        assert reply.status == 200, reply.body
        assert model().from_map(reply.body).to_map() == reply.body, model.__name__
