"""The whole exporter against the simulated RDS API over loopback, driven by a manual clock.

Each test runs the real poller, client and aiohttp app, scrapes /metrics over HTTP, parses it with
client_python's parser and compares it with the simulator's ground truth. Days pass in
milliseconds: the clock only moves when the test says so.
"""

from __future__ import annotations

import itertools
import logging

import pytest

from exporter.simulator import Faults, Fleet, RequestRecord
from exporter.simulator.timefmt import parse_minute
from tests.harness import DAY, INTERVAL, Harness, key, running, success_key
from tests.helpers import NOW


def backup_calls(h: Harness) -> list[RequestRecord]:
    """The DescribeBackups requests the simulator saw (the policy refresh makes others)."""
    return [r for r in h.sim.requests if r.action == "DescribeBackups"]


async def test_first_poll_matches_ground_truth_per_backup_type() -> None:
    async with running(instances=5) as h:
        assert await h.ready() == 200
        samples = await h.scrape()
        now = h.clock.time()
        checked = 0
        for iid in h.fleet.instances:
            for backup_type in ("FullBackup", "IncrementalBackup"):
                k = success_key(iid, backup_type)
                since = now - 8 * DAY
                assert samples["aliyun_rds_backup_sets"].get(k, 0) == h.fleet.count(
                    iid, backup_type=backup_type, since=since, now=now
                )
                assert samples["aliyun_rds_backup_failed_sets"].get(k, 0) == h.fleet.count(
                    iid, backup_type=backup_type, status="Failed", since=since, now=now
                )
                newest = h.fleet.newest_success(iid, backup_type, now=now)
                got = samples.get("aliyun_rds_backup_last_success_timestamp_seconds", {}).get(k)
                if newest is None:
                    assert got is None
                    continue
                checked += 1
                assert got == newest.end
                assert samples["aliyun_rds_backup_last_success_size_bytes"][k] == newest.size
                assert samples["aliyun_rds_backup_last_success_duration_seconds"][k] == (
                    newest.end - newest.start
                )
                assert samples["aliyun_rds_backup_last_success_age_seconds"][k] == now - newest.end
            assert samples["aliyun_rds_backup_collect_success"][key(instance_id=iid)] == 1
            assert samples["aliyun_rds_backup_failures_total"][success_key(iid)] == 0
        assert checked >= 5


async def test_newest_success_found_on_a_later_page_among_unordered_items() -> None:
    target: list[str] = []

    def prepare(fleet: Fleet, faults: Faults) -> None:
        iid = next(iter(fleet.instances))
        target.append(iid)
        day_start = NOW - DAY
        for n in range(45):  # more than a page of short manual backups in the last day
            fleet.add_backup(iid, start=day_start + 600 + n * 60, end=day_start + 630 + n * 60)
        # Started first (so listed last), finished last: the newest success by end time.
        fleet.add_backup(iid, start=day_start + 60, end=NOW - 120, size=777)

    async with running(instances=2, prepare=prepare, page_size=30) as h:
        (iid,) = target
        samples = await h.scrape()
        k = success_key(iid)
        assert samples["aliyun_rds_backup_last_success_timestamp_seconds"][k] == NOW - 120
        assert samples["aliyun_rds_backup_last_success_size_bytes"][k] == 777
        pages = [r.params["PageNumber"] for r in backup_calls(h) if r.instance_id == iid]
        assert "2" in pages


async def test_every_call_uses_a_narrow_minute_precision_window() -> None:
    async with running(instances=3) as h:
        await h.advance(INTERVAL * 3)
        calls = [r for r in h.sim.requests if r.action == "DescribeBackups"]
        assert calls
        for record in calls:
            start = parse_minute(record.params["StartTime"])
            end = parse_minute(record.params["EndTime"])
            assert start is not None and end is not None, record.params
            assert 0 < end - start <= DAY
            assert record.code == "OK"


async def test_steady_state_is_one_call_per_instance_per_interval() -> None:
    # Seven instances: phases of 300/7 s do not add up exactly in floating point.
    async with running(instances=7) as h:
        first = len(backup_calls(h))
        assert first == 7 * 8  # lookback / window windows, one page each
        h.sim.clear_requests()
        await h.advance(INTERVAL * 10)
        per_instance = {iid: 0 for iid in h.fleet.instances}
        for record in backup_calls(h):
            per_instance[record.instance_id] += 1
        assert set(per_instance.values()) == {10}


async def test_new_backup_and_new_failure_show_up_within_one_interval() -> None:
    async with running(instances=3) as h:
        iid = next(iter(h.fleet.instances))
        before = await h.scrape()
        now = h.clock.time()
        h.fleet.add_backup(iid, start=now + 10, end=now + 100, size=4242)
        h.fleet.add_backup(iid, start=now + 20, end=now + 200, status="Failed")
        await h.advance(INTERVAL)
        after = await h.scrape()
        k = success_key(iid)
        assert after["aliyun_rds_backup_last_success_timestamp_seconds"][k] == now + 100
        assert after["aliyun_rds_backup_last_success_size_bytes"][k] == 4242
        assert after["aliyun_rds_backup_last_status"][k] == 0
        assert after["aliyun_rds_backup_last_failure_timestamp_seconds"][k] == now + 200
        assert (
            after["aliyun_rds_backup_failures_total"][k]
            == before["aliyun_rds_backup_failures_total"][k] + 1
        )


async def test_backup_running_at_one_poll_is_caught_by_the_overlap() -> None:
    async with running(instances=2) as h:
        iid = next(iter(h.fleet.instances))
        now = h.clock.time()
        # Starts now, ends in two hours: invisible (still running) for the next polls.
        h.fleet.add_backup(iid, start=now - 60, end=now + 2 * 3600, status="Failed")
        await h.advance(3 * 3600)
        samples = await h.scrape()
        k = success_key(iid)
        assert samples["aliyun_rds_backup_failures_total"][k] == 1
        assert samples["aliyun_rds_backup_last_failure_timestamp_seconds"][k] == now + 2 * 3600


async def test_outage_loses_nothing_and_counts_a_failure_exactly_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="exporter.poller")
    async with running(instances=3) as h:
        iid = next(iter(h.fleet.instances))
        k = success_key(iid)
        before = (await h.scrape())["aliyun_rds_backup_failures_total"][k]
        h.sim.faults.outage = True
        now = h.clock.time()
        h.fleet.add_backup(iid, start=now + 600, end=now + 900, status="Failed")
        await h.advance(INTERVAL * 6)
        during = await h.scrape()
        assert during["aliyun_rds_backup_collect_success"][key(instance_id=iid)] == 0
        assert during["aliyun_rds_backup_failures_total"][k] == before
        assert h.exporter.state.instances[iid].last_error == "ServiceUnavailable"
        # Six failed polls, one warning per instance: logged once per change of error.
        warnings = [r for r in caplog.records if iid in r.getMessage()]
        assert len([r for r in warnings if r.levelno == logging.WARNING]) == 1
        h.sim.faults.outage = False
        await h.advance(INTERVAL * 3)
        after = await h.scrape()
        assert after["aliyun_rds_backup_collect_success"][key(instance_id=iid)] == 1
        assert after["aliyun_rds_backup_failures_total"][k] == before + 1
        assert after["aliyun_rds_backup_last_failure_timestamp_seconds"][k] == now + 900
        assert (
            after["aliyun_rds_backup_collect_last_success_timestamp_seconds"][key(instance_id=iid)]
            > now + INTERVAL * 6
        )
        recovered = [
            r for r in caplog.records if iid in r.getMessage() and "recovered" in r.getMessage()
        ]
        assert len(recovered) == 1


async def test_throttling_is_retried_and_visible_in_api_metrics() -> None:
    def prepare(fleet: Fleet, faults: Faults) -> None:
        faults.throttle_rate = 0.3

    async with running(instances=3, prepare=prepare) as h:
        await h.advance(30)  # throttled answers may ask for a wait of a few seconds
        samples = await h.scrape()
        requests = samples["aliyun_rds_api_requests_total"]
        throttled = requests[key(action="DescribeBackups", code="Throttling.User")]
        calls = backup_calls(h)
        assert throttled == sum(1 for r in calls if r.code == "Throttling.User") > 0
        assert requests[key(action="DescribeBackups", code="OK")] == sum(
            1 for r in calls if r.code == "OK"
        )
        for iid in h.fleet.instances:
            assert samples["aliyun_rds_backup_collect_success"][key(instance_id=iid)] == 1


async def test_unknown_instance_fails_alone() -> None:
    async with running(instances=3, extra_ids=("rm-doesnotexist00",)) as h:
        assert await h.ready() == 200  # every instance finished its first poll
        samples = await h.scrape()
        success = samples["aliyun_rds_backup_collect_success"]
        assert success[key(instance_id="rm-doesnotexist00")] == 0
        assert "rm-doesnotexist00" not in {
            dict(k)["instance_id"]
            for k in samples.get("aliyun_rds_backup_last_success_timestamp_seconds", {})
        }
        for iid in h.fleet.instances:
            assert success[key(instance_id=iid)] == 1
        notfound = [r for r in h.sim.requests if r.instance_id == "rm-doesnotexist00"]
        assert len(notfound) == 1  # permanent: not retried


@pytest.mark.slow
async def test_multi_day_run_prunes_at_lookback_and_counters_stay_monotonic() -> None:
    async with running(instances=3, interval="1h") as h:
        iid = next(iter(h.fleet.instances))
        k = success_key(iid)
        h.fleet.set_failure_rate(iid, 0.5, since=NOW)
        previous: dict[frozenset[tuple[str, str]], float] = {}
        for _ in range(12):  # 12 days, one scrape a day
            await h.advance(DAY)
            samples = await h.scrape()
            for series, value in samples["aliyun_rds_backup_failures_total"].items():
                assert value >= previous.get(series, 0)
            previous = samples["aliyun_rds_backup_failures_total"]
            now = h.clock.time()
            assert samples["aliyun_rds_backup_sets"][k] == h.fleet.count(
                iid, backup_type="FullBackup", since=now - 8 * DAY, now=now
            )
            stored = h.exporter.state.instances[iid].backups.values()
            assert all(b.start is not None and b.start >= now - 8 * DAY for b in stored)
        # Failures since the baseline, counted once each, equal the simulator's count.
        assert previous[k] == h.fleet.count(
            iid, backup_type="FullBackup", status="Failed", since=NOW, now=h.clock.time()
        )


@pytest.mark.slow
async def test_watermark_after_long_outage_reads_back_without_gaps() -> None:
    async with running(instances=2) as h:
        iid = next(iter(h.fleet.instances))
        state = h.exporter.state.instances[iid]
        before_outage = state.watermark
        assert before_outage is not None
        h.sim.faults.outage = True
        await h.advance(3 * DAY)
        assert state.watermark == before_outage  # failed polls never move it
        h.sim.clear_requests()
        h.sim.faults.outage = False
        await h.advance(INTERVAL)
        windows = [
            (parse_minute(r.params["StartTime"]), parse_minute(r.params["EndTime"]))
            for r in backup_calls(h)
            if r.instance_id == iid and r.code == "OK"
        ]
        # The first poll after the outage reads the whole gap, a day at a time, back to back.
        catch_up = windows[:4]
        assert catch_up[0][0] == before_outage - (DAY - INTERVAL)
        for (_, end), (start, _) in itertools.pairwise(catch_up):
            assert start == end
        assert all(e - s <= DAY for s, e in windows)  # type: ignore[operator]
        assert state.watermark == windows[-1][1]
        assert state.watermark is not None and state.watermark > before_outage + 3 * DAY
        samples = await h.scrape()
        now = h.clock.time()
        newest = h.fleet.newest_success(iid, "FullBackup", now=now)
        assert newest is not None
        assert samples["aliyun_rds_backup_last_success_timestamp_seconds"][success_key(iid)] == (
            newest.end
        )


async def test_instances_leaving_the_configuration_lose_their_series() -> None:
    async with running(instances=3) as h:
        ids = list(h.fleet.instances)
        targets = [t for t in (s.target for s in h.exporter.state.instances.values())]
        h.exporter._poller.set_targets(targets[1:])  # type: ignore[union-attr]
        samples = await h.scrape()
        seen = {dict(k).get("instance_id") for fam in samples.values() for k in fam}
        assert ids[0] not in seen
        assert ids[1] in seen
        assert samples["aliyun_rds_exporter_instances"][key(source="static")] == 2


@pytest.mark.parametrize("accept", ["text/plain", "application/openmetrics-text"])
async def test_both_exposition_formats_parse(accept: str) -> None:
    async with running(instances=2) as h:
        async with h.session.get(h.url + "/metrics", headers={"Accept": accept}) as response:
            assert response.status == 200
            body = await response.text()
        assert accept.split("/")[1].split("-")[0] in response.headers["Content-Type"]
        assert "aliyun_rds_backup_last_success_timestamp_seconds{" in body
        async with h.session.get(h.url + "/") as response:
            assert "/metrics" in await response.text()
        async with h.session.get(h.url + "/-/healthy") as response:
            assert response.status == 200
