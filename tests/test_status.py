"""The status rows: the shipped alerts' rules, applied to one instance's state at a time."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path

import aiohttp
import jsonschema
from aiohttp import web

from exporter import statuspage
from exporter.aliyun.copies import CrossRegionPolicy
from exporter.aliyun.models import Backup
from exporter.dr_state import CopiesSummary
from exporter.policy import PolicySummary, Schedule
from exporter.recovery_state import LogSummary, RecoveryStatus
from exporter.state import FleetState, InstanceState, Target
from exporter.status import STALE_FALLBACK, Health, document, fleet_rows, instance_row
from tests.harness import running
from tests.helpers import serving

NOW = 1_800_000_000.0
MONO = 5_000.0
HOUR = 3600.0
DAY = 24 * HOUR
SCHEMA = json.loads((Path(__file__).parents[1] / "docs" / "status.schema.json").read_text())


def backup(
    backup_id: str,
    end: float,
    *,
    status: str = "Success",
    kind: str = "FullBackup",
    mode: str = "Automated",
    available: int = 1,
) -> Backup:
    return Backup(
        backup_id=backup_id,
        instance_id="rm-1",
        status=status,
        backup_type=kind,
        start=end - 600,
        end=end,
        size_bytes=1024,
        method="Physical",
        mode=mode,
        initiator="System",
        storage_class="0",
        encrypted=False,
        available=available,
        consistent_time=None,
        engine="MySQL",
        engine_version="8.0",
    )


def polled(
    *backups: Backup, instance_id: str = "rm-1", complete: bool = True, kind: str = ""
) -> InstanceState:
    """An instance (``kind``: its DBInstanceType) whose first poll found ``backups``."""
    target = Target(instance_id, "cn-hangzhou", description="orders", instance_type=kind)
    state = InstanceState(target=target)
    state.baseline_done = True
    state.lookback_complete = complete
    state.polled = True
    state.collect_success = True
    state.merge(backups, NOW - 8 * DAY)
    state.refresh_summaries()
    return state


def daily_policy() -> PolicySummary:
    schedule = Schedule(weekdays=frozenset(range(7)), window_start=0, window_width=3600)
    return PolicySummary(
        schedule=schedule, retention_days=7, log_backup_enabled=True, next_backup_time=None
    )


def codes(state: InstanceState) -> list[str]:
    return [problem.code for problem in instance_row(state, NOW, MONO, 60.0).problems]


def test_a_recent_full_backup_is_ok_with_its_age_and_next_poll() -> None:
    state = polled(backup("b1", NOW - 2 * HOUR))
    state.next_poll = MONO + 45
    row = instance_row(state, NOW, MONO, 60.0)
    assert row.health is Health.OK and not row.problems
    assert row.full_age == 2 * HOUR
    assert row.next_poll == NOW + 45
    assert row.last_status == "success" and row.failed_sets == 0


def test_stale_uses_the_policy_interval_and_else_the_alerts_fallback() -> None:
    # 40 h old: within the 60 h fallback, stale for a daily policy (1.5 x 25 h = 37.5 h).
    state = polled(backup("b1", NOW - 40 * HOUR))
    assert codes(state) == []  # no policy: the 60 h fallback
    state.policy = daily_policy()
    row = instance_row(state, NOW, MONO, 60.0)
    assert [p.code for p in row.problems] == ["stale"]
    assert row.stale_after == 1.5 * 25 * HOUR
    assert "1d13h30m" in row.problems[0].text  # the limit, as a person reads it
    old = polled(backup("b1", NOW - STALE_FALLBACK - 60))
    assert codes(old) == ["stale"]


def test_none_in_lookback_waits_for_the_whole_lookback_and_spares_replicas() -> None:
    state = polled(complete=False)
    assert codes(state) == []  # the backfill may still find one
    state.lookback_complete = True
    assert codes(state) == ["none_in_lookback"]
    replica = polled(kind="Readonly")  # no backup_sets{FullBackup} series, so no alert
    assert codes(replica) == []
    # ... unless it has a full backup record (one still running): the alert's series is there.
    running = replace(backup("b1", NOW - HOUR), status="Running", end=None)
    assert codes(polled(running, kind="Readonly")) == ["none_in_lookback"]


def test_a_failed_last_backup_and_a_broken_recovery_are_trouble() -> None:
    state = polled(backup("b1", NOW - 5 * HOUR), backup("b2", NOW - HOUR, status="Failed"))
    state.recovery = RecoveryStatus(broken="LogBackupNotEnabled")
    row = instance_row(state, NOW, MONO, 60.0)
    assert row.health is Health.TROUBLE
    assert [p.code for p in row.problems] == ["last_failed", "recovery_broken"]
    assert row.last_status == "failed" and row.failed_sets == 1


def test_collection_failures_name_a_missing_instance_apart() -> None:
    state = polled(backup("b1", NOW - HOUR))
    state.collect_success = False
    state.last_error = "Throttling.User"
    state.last_error_message = "DescribeBackups: Throttling.User: Request was denied"
    assert codes(state) == ["collection_failed"]
    state.last_error = "InvalidDBInstanceId.NotFound"
    assert codes(state) == ["missing"]


def test_stale_data_log_gaps_stuck_uploads_and_failed_copies_are_trouble() -> None:
    state = polled(backup("b1", NOW - HOUR))
    state.last_collect_success = NOW - 1700
    assert codes(state) == []
    state.last_collect_success = NOW - 1900  # AliyunRdsBackupExporterDataStale: > 30 min
    assert codes(state) == ["data_stale"]
    state.last_collect_success = NOW
    logs = LogSummary(
        newest_end=NOW - 600,
        gap_seconds=0.0,
        uploading=1,
        oldest_uploading_end=NOW - 3000,
        stored_bytes=1,
    )
    state.log_chain.summary = logs
    assert codes(state) == []
    # No restorable window (SQL Server): the lag is the newest log backup's age, as the alert's.
    assert instance_row(state, NOW, MONO, 60.0).recovery_lag == 600
    state.log_chain.summary = replace(logs, gap_seconds=900.0, oldest_uploading_end=NOW - 3700)
    assert codes(state) == ["log_gap", "log_stuck_uploading"]
    state.log_chain.summary = logs
    state.copies.summary = CopiesSummary(
        last_success_end=NOW - DAY, last_failure_end=NOW - HOUR, sets=2, failed_sets=1
    )
    assert codes(state) == ["copy_failed"]
    state.cross_region = CrossRegionPolicy(
        enabled=False, log_enabled=False, destination="", retention_days=None
    )
    assert codes(state) == []  # copying is off now: AliyunRdsCrossRegionBackupFailing is quiet
    state.cross_region = replace(state.cross_region, enabled=True)
    state.copies.summary = CopiesSummary(
        last_success_end=NOW - HOUR, last_failure_end=NOW - DAY, sets=2, failed_sets=1
    )
    assert codes(state) == []  # an older failure, a newer good copy


def test_stopped_schedules_and_unusable_backups_are_trouble_as_their_alerts_say() -> None:
    # Manual backups keep the restore point fresh; the schedule's newest is 70 h old (> 60 h).
    state = polled(backup("auto", NOW - 70 * HOUR), backup("manual", NOW - HOUR, mode="Manual"))
    assert codes(state) == ["schedule_stopped"]
    # A newer manual one without an end time: the schedule's is still judged.
    no_end = replace(backup("manual", NOW - HOUR, mode="Manual"), end=None)
    assert codes(polled(backup("auto", NOW - 70 * HOUR), no_end, complete=False)) == [
        "schedule_stopped"
    ]
    manual_only = polled(backup("manual", NOW - HOUR, mode="Manual"), complete=False)
    assert codes(manual_only) == []  # the backfill may still find a scheduled one
    manual_only.lookback_complete = True
    assert codes(manual_only) == ["schedule_stopped"]
    # The newest success cannot be restored from: trouble while it is newer than a good one.
    state = polled(backup("good", NOW - 30 * HOUR), backup("bad", NOW - HOUR, available=0))
    assert codes(state) == ["unusable"]
    older = polled(backup("bad", NOW - 30 * HOUR, available=0), backup("good", NOW - HOUR))
    assert codes(older) == []


def test_throttling_warns_for_two_intervals() -> None:
    state = polled(backup("b1", NOW - HOUR))
    state.throttled_at = NOW - 100
    row = instance_row(state, NOW, MONO, 60.0)
    assert row.health is Health.WARNING and [p.code for p in row.problems] == ["throttled"]
    state.throttled_at = NOW - 121
    assert instance_row(state, NOW, MONO, 60.0).health is Health.OK


def test_not_polled_yet_is_pending_without_counts() -> None:
    state = InstanceState(target=Target("rm-2", "cn-hangzhou"))
    row = instance_row(state, NOW, MONO, 60.0)
    assert row.health is Health.PENDING
    assert row.failed_sets is None and row.full_end is None and row.collection == "pending"


def test_rows_put_trouble_first_and_the_document_matches_its_schema() -> None:
    fleet = FleetState()
    fleet.instances["rm-a"] = polled(backup("a", NOW - HOUR), instance_id="rm-a")
    fleet.instances["rm-b"] = polled(backup("b", NOW - HOUR, status="Failed"), instance_id="rm-b")
    fleet.instances["rm-c"] = InstanceState(target=Target("rm-c", "cn-hangzhou"))
    rows = fleet_rows(fleet, NOW, MONO, 60.0)
    assert [row.instance_id for row in rows] == ["rm-b", "rm-c", "rm-a"]
    doc = document(rows, now=NOW, version="1.2.3", ready=False)
    jsonschema.validate(json.loads(json.dumps(doc)), SCHEMA)
    assert doc["counts"] == {"trouble": 1, "warning": 0, "pending": 1, "ok": 1}


async def test_status_json_matches_the_simulator_and_ages_with_the_clock() -> None:
    async with running(instances=4) as h:
        async with h.session.get(h.url + "/status.json") as response:
            assert response.status == 200
            assert response.headers["Content-Encoding"] == "gzip"  # the session asked for it
            doc = await response.json()
        jsonschema.validate(doc, SCHEMA)
        assert doc["ready"] is True and doc["generated_at"] == h.clock.time()
        rows = {row["instance_id"]: row for row in doc["instances"]}
        assert set(rows) == set(h.fleet.instances)
        for iid, row in rows.items():
            newest = h.fleet.newest_success(iid, "FullBackup", now=h.clock.time())
            assert newest is not None
            assert row["full"] == {"end": newest.end, "age_seconds": h.clock.time() - newest.end}
            assert h.clock.time() < row["next_poll"] <= h.clock.time() + 300  # the 5m interval
        await h.advance(60)
        async with h.session.get(h.url + "/status.json") as response:
            later = {row["instance_id"]: row for row in (await response.json())["instances"]}
        for iid, row in rows.items():
            if later[iid]["full"]["end"] == row["full"]["end"]:  # no newer backup meanwhile
                assert later[iid]["full"]["age_seconds"] == row["full"]["age_seconds"] + 60


async def test_the_page_is_self_contained_and_its_csp_allows_exactly_its_inline_code() -> None:
    async with running(instances=1) as h, h.session.get(h.url + "/") as response:
        page = await response.text()
        policy = response.headers["Content-Security-Policy"]
        assert response.headers["Content-Encoding"] == "gzip"  # the session asked for it
    assert response.headers["Content-Type"].startswith("text/html")
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.DOTALL)
    styles = re.findall(r"<style>(.*?)</style>", page, flags=re.DOTALL)
    assert len(scripts) == len(styles) == 1
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|https?://", page)  # nothing fetched
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == sha256_source(scripts[0])
    assert directives["style-src"] == sha256_source(styles[0])
    assert directives["connect-src"] == "'self'"  # status.json, and nothing else


def sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


async def test_requests_within_two_seconds_share_one_build_of_the_document() -> None:
    """Open tabs refreshing together cost one build; a request after two seconds gets a new one."""
    builds: list[float] = []
    monotonic = [100.0]

    def document() -> dict[str, object]:
        builds.append(monotonic[0])
        return {"build": len(builds)}

    app = web.Application()
    statuspage.add_routes(
        app, document, telemetry_path="/metrics", version="t", clock=lambda: monotonic[0]
    )
    async with serving(app) as base, aiohttp.ClientSession() as session:
        url = base + "/status.json"

        async def build() -> object:
            async with session.get(url) as response:
                return (await response.json())["build"]

        assert await asyncio.gather(*(build() for _ in range(8))) == [1] * 8
        monotonic[0] = 101.9
        assert await build() == 1
        monotonic[0] = 102.0
        assert await build() == 2
    assert builds == [100.0, 102.0]
