"""End to end against the simulator with the real API's quirks on (its default): paging past
the end, minute-precision times, successes that cannot be restored from, manual backups next to
scheduled ones, and records the exporter cannot use. What a production user meets on day one."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pytest

from exporter.simulator import Faults, Fleet
from exporter.simulator.quirks import Quirks
from tests.harness import DAY, INTERVAL, Samples, key, running, success_key
from tests.helpers import NOW

HOUR = 3600.0


def only_backups(fleet: Fleet, iid: str) -> None:
    """No scheduled backups at all for ``iid``: the test adds exactly the ones it wants."""
    fleet.stop_backups(iid, after=fleet.origin - DAY)


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get(name, {}).get(key(**labels))


async def test_a_window_holding_exactly_page_size_backups_polls_and_counts_them_all() -> None:
    """The page after a full last one does not exist (InvalidPageNumbers.Malformed): paging
    stops by the total, or by that error when there is no total, and nothing is lost."""
    holder: dict[str, str] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        iid = next(iter(fleet.instances))
        holder["iid"] = iid
        only_backups(fleet, iid)
        for n in range(30):  # all in the newest one-day window
            start = NOW - 20 * HOUR + n * 600
            fleet.add_backup(iid, start=start, end=start + 300)

    async with running(prepare=prepare, page_size=30) as h:
        iid = holder["iid"]
        samples = await h.scrape()
        assert value(samples, "aliyun_rds_backup_collect_success", instance_id=iid) == 1.0
        assert samples["aliyun_rds_backup_sets"][success_key(iid)] == 30.0
        pages = [
            r for r in h.sim.requests if r.instance_id == iid and r.action == "DescribeBackups"
        ]
        # One call per window: the full page's total said it was the last.
        assert all(r.params["PageNumber"] == "1" for r in pages)

        # Without a total, the next page is asked for, and its error ends the listing.
        def drop_total(action: str, params: Mapping[str, str], body: dict[str, Any]) -> Any:
            body.pop("TotalRecordCount", None)
            return body

        h.sim.faults.transform = drop_total
        h.sim.clear_requests()
        await h.advance(INTERVAL)
        samples = await h.scrape()
        assert value(samples, "aliyun_rds_backup_collect_success", instance_id=iid) == 1.0
        assert samples["aliyun_rds_backup_sets"][success_key(iid)] == 30.0
        codes = [
            (r.params["PageNumber"], r.code)
            for r in h.sim.requests
            if r.instance_id == iid and r.action == "DescribeBackups"
        ]
        assert codes == [("1", "OK"), ("2", "InvalidPageNumbers.Malformed")]


async def test_every_request_asks_for_json() -> None:
    async with running(instances=2) as h:
        await h.advance(INTERVAL)
        assert h.sim.requests
        assert {r.accept for r in h.sim.requests} == {"application/json"}


async def test_minute_precision_times_give_the_same_values_as_seconds() -> None:
    """The same fleet, its times listed without seconds or with them: the same metrics."""
    results: dict[bool, Samples] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        fleet.add_instance(engine="MySQL", minute_precision=True)
        fleet.add_instance(engine="SQLServer", minute_precision=True)

    for minute_times in (True, False):
        async with running(prepare=prepare, quirks=Quirks(minute_times=minute_times)) as h:
            minute = [i.instance_id for i in h.fleet.instances.values() if i.minute_precision]
            assert len(minute) >= 2
            samples = await h.scrape()
            results[minute_times] = {
                name: series
                for name, series in samples.items()
                if name.startswith("aliyun_rds_backup_last")
            }
            for iid in minute:
                assert value(samples, "aliyun_rds_backup_collect_success", instance_id=iid) == 1.0
    assert results[True] == results[False]
    assert len(results[True]["aliyun_rds_backup_last_success_timestamp_seconds"]) >= 6


async def test_a_success_that_cannot_be_restored_from_is_never_the_restore_point() -> None:
    holder: dict[str, Any] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        iid = next(iter(fleet.instances))
        holder["iid"] = iid
        # The newest full backup succeeded but is unusable.
        holder["bad"] = fleet.add_backup(iid, start=NOW - 2 * HOUR, end=NOW - HOUR, available=False)

    async with running(prepare=prepare) as h:
        iid, bad = holder["iid"], holder["bad"]
        samples = await h.scrape()
        now = h.clock.time()
        for instance_id in h.fleet.instances:
            truth = h.fleet.newest_success(instance_id, now=now)
            got = samples["aliyun_rds_backup_last_success_timestamp_seconds"].get(
                success_key(instance_id)
            )
            assert truth is not None and got == truth.end, instance_id
        assert (
            samples["aliyun_rds_backup_last_success_timestamp_seconds"].get(success_key(iid))
            != bad.end
        )
        assert (
            samples["aliyun_rds_backup_last_unusable_timestamp_seconds"].get(success_key(iid))
            == bad.end
        )
        unusable = h.fleet.count(
            iid, backup_type="FullBackup", unusable=True, since=now - 8 * DAY, now=now
        )
        assert samples["aliyun_rds_backup_unusable_sets"][success_key(iid)] == unusable >= 1
        # Every success that RDS says cannot be used is counted, and none is a restore point.
        ages = samples["aliyun_rds_backup_last_success_age_seconds"]
        assert ages[success_key(iid)] > now - bad.start


async def test_a_manual_backup_freshens_the_restore_point_but_not_the_schedule() -> None:
    holder: dict[str, Any] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        iid = next(iter(fleet.instances))
        holder["iid"] = iid
        fleet.stop_backups(iid, after=NOW - 3 * DAY)  # the schedule broke three days ago
        holder["manual"] = fleet.add_backup(
            iid, start=NOW - 2 * HOUR, end=NOW - HOUR, mode="Manual"
        )

    async with running(prepare=prepare) as h:
        iid, manual = holder["iid"], holder["manual"]
        samples = await h.scrape()
        now = h.clock.time()
        scheduled = max(
            (
                b
                for b in h.fleet.backups_between(iid, now - 8 * DAY, now, now)
                if b.mode == "Automated" and b.backup_type == "FullBackup" and b.is_avail
            ),
            key=lambda b: b.end,
        )
        last = samples["aliyun_rds_backup_last_success_timestamp_seconds"][success_key(iid)]
        automated = samples["aliyun_rds_backup_last_automated_success_timestamp_seconds"]
        assert last == manual.end
        assert automated[success_key(iid)] == scheduled.end < now - 3 * DAY + DAY
        info = samples["aliyun_rds_backup_last_success_info"]
        assert any(
            dict(labels).get("instance_id") == iid and dict(labels).get("backup_mode") == "Manual"
            for labels in info
        )


async def test_an_unreadable_record_is_skipped_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Today one odd record would blind the instance for the whole lookback."""
    holder: dict[str, Any] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        iid = next(iter(fleet.instances))
        holder["iid"] = iid
        holder["odd"] = fleet.add_backup(iid, start=NOW - 5 * HOUR, end=NOW - 4 * HOUR)

        def break_one(action: str, params: Mapping[str, str], body: dict[str, Any]) -> Any:
            for item in body.get("Items", {}).get("Backup", []):
                if item["BackupId"] == holder["odd"].backup_id:
                    item["BackupStartTime"] = "sometime"
            return body

        faults.transform = break_one

    caplog.set_level(logging.WARNING, logger="exporter")
    async with running(prepare=prepare) as h:
        iid, odd = holder["iid"], holder["odd"]
        for _ in range(3):
            await h.advance(INTERVAL)
        samples = await h.scrape()
        now = h.clock.time()
        assert value(samples, "aliyun_rds_backup_collect_success", instance_id=iid) == 1.0
        assert value(samples, "aliyun_rds_backup_skipped_records", instance_id=iid) == 1.0
        truth = h.fleet.count(iid, since=now - 8 * DAY, now=now)
        assert (
            sum(
                v for k, v in samples["aliyun_rds_backup_sets"].items() if ("instance_id", iid) in k
            )
            == truth - 1
        )
        others = [i for i in h.fleet.instances if i != iid]
        assert all(
            value(samples, "aliyun_rds_backup_skipped_records", instance_id=i) == 0.0
            for i in others
        )
    lines = [r.getMessage() for r in caplog.records if odd.backup_id in r.getMessage()]
    assert len(lines) == 1, lines
    assert "BackupStartTime missing or not a time" in lines[0]


async def test_records_dated_in_the_future_are_skipped_not_fresh_for_ever() -> None:
    """A backup "from the year 2999" would have age 0 until a restart: the stale alert would
    never fire again for that instance."""
    holder: dict[str, Any] = {}

    def prepare(fleet: Fleet, faults: Faults) -> None:
        iid = next(iter(fleet.instances))
        holder["iid"] = iid
        holder["truth"] = fleet.newest_success(iid, now=NOW)

        def far_future(action: str, params: Mapping[str, str], body: dict[str, Any]) -> Any:
            if params.get("DBInstanceId") == iid:
                items = body.get("Items", {}).get("Backup", [])
                if items:
                    items.append(
                        dict(
                            items[0],
                            BackupId="999",
                            BackupStartTime="2999-01-01T00:00:00Z",
                            BackupEndTime="2999-01-01T01:00:00Z",
                            BackupStatus="Success",
                        )
                    )
            return body

        faults.transform = far_future

    async with running(prepare=prepare) as h:
        iid = holder["iid"]
        samples = await h.scrape()
        assert (
            samples["aliyun_rds_backup_last_success_timestamp_seconds"][success_key(iid)]
            == holder["truth"].end
        )
        assert value(samples, "aliyun_rds_backup_skipped_records", instance_id=iid) == 1.0
        assert value(samples, "aliyun_rds_backup_collect_success", instance_id=iid) == 1.0


async def test_a_record_wrong_for_good_costs_one_call_per_window_per_hour() -> None:
    """Skipped records are read again in case they were damaged on the way, but a record that
    stays wrong must not multiply the instance's calls."""

    def prepare(fleet: Fleet, faults: Faults) -> None:
        faults.for_instance(next(iter(fleet.instances))).hostile = "future_dates"

    async with running(instances=2, prepare=prepare) as h:
        odd, normal = list(h.fleet.instances)
        h.sim.clear_requests()
        hours = 3
        await h.advance(hours * HOUR)

        def calls(iid: str) -> int:
            return sum(
                1 for r in h.sim.requests if r.instance_id == iid and r.action == "DescribeBackups"
            )

        windows = 8  # lookback / window: every window holds skipped records
        assert calls(normal) == hours * HOUR / INTERVAL
        assert calls(odd) <= calls(normal) + (hours + 1) * windows
        samples = await h.scrape()
        assert value(samples, "aliyun_rds_backup_collect_success", instance_id=odd) == 1.0
        assert value(samples, "aliyun_rds_backup_skipped_records", instance_id=odd)


async def test_endless_odd_records_are_logged_a_few_per_poll(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counter = iter(range(10**9))

    def prepare(fleet: Fleet, faults: Faults) -> None:
        iid = next(iter(fleet.instances))

        def fresh_odd_records(action: str, params: Mapping[str, str], body: dict[str, Any]) -> Any:
            if action == "DescribeBackups" and params.get("DBInstanceId") == iid:
                items = body["Items"]["Backup"]
                items += [{"BackupId": f"odd-{next(counter)}"} for _ in range(40)]
                body["TotalRecordCount"] = str(len(items))
            return body

        faults.transform = fresh_odd_records

    caplog.set_level(logging.WARNING, logger="exporter")
    async with running(instances=2, prepare=prepare) as h:
        iid = next(iter(h.fleet.instances))
        polls = 4
        await h.advance(polls * INTERVAL)
        samples = await h.scrape()
    lines = [r.getMessage() for r in caplog.records if iid in r.getMessage()]
    # Five records by name and one line for the rest, per poll (the first poll included) and
    # for the backfill of the rest of the lookback.
    assert len(lines) <= (polls + 2) * 6
    assert any("more backup records skipped in this poll" in line for line in lines)
    assert samples["aliyun_rds_backup_skipped_records"][key(instance_id=iid)] > 100
