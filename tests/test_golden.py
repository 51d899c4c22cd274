"""/metrics of a fixed, hand-built fleet at a fixed time, compared byte for byte with the files in
tests/golden/: any change to what the exporter serves shows up as a diff in review.

After an intended change, write the files again and review their diff:

    UPDATE_GOLDEN=1 pytest tests/test_golden.py

The state is built with the constructors of the plain dataclasses in ``exporter.state``,
``exporter.policy`` and ``exporter.aliyun.models``, and ``exporter.service.Exporter``'s app
serves it over loopback: the files record what a scrape gets, whatever the code in between.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import disable_created_metrics, enable_created_metrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from exporter import __version__
from exporter.aliyun.copies import CrossRegionPolicy, StorageUsage
from exporter.aliyun.models import Backup
from exporter.aliyun.recovery import RecoveryWindow
from exporter.config import parse_config
from exporter.dr_state import CopiesSummary, CopyLedger
from exporter.policy import PolicySummary, Schedule
from exporter.recovery_state import JobsSummary, LogChain, LogSummary, RecoveryStatus
from exporter.service import Exporter
from exporter.state import (
    DiscoveryStatus,
    DutyStatus,
    FleetState,
    InstanceState,
    Target,
    TypeSummary,
)
from tests.clock import ManualClock
from tests.helpers import KEY_ID, NOW, SECRET

README = Path(__file__).resolve().parents[1] / "README.md"
GOLDEN = Path(__file__).resolve().parent / "golden"
FORMATS = {
    "exposition.txt": "text/plain;version=0.0.4",
    "exposition.openmetrics.txt": "application/openmetrics-text;version=1.0.0",
}
# build_info's label changes with every release, not with what is rendered: the files hold this.
VERSION = b'version="VERSION"'
HOUR = 3600.0
DAY = 86400.0


def backup(backup_id: str, instance_id: str, backup_type: str, **fields: Any) -> Backup:
    """A restorable automated backup that ended four hours ago, unless ``fields`` say else."""
    values: dict[str, Any] = {
        "status": "Success",
        "start": NOW - 5 * HOUR,
        "end": NOW - 4 * HOUR,
        "size_bytes": 10 * 2**30,
        "method": "Physical",
        "mode": "Automated",
        "initiator": "System",
        "storage_class": "regular",
        "encrypted": False,
        "available": 1,
        "consistent_time": None,
        "engine": "MySQL",
        "engine_version": "8.0",
    }
    values.update(fields)
    return Backup(backup_id, instance_id, backup_type=backup_type, **values)


def primary() -> InstanceState:
    """Static, labelled, with a policy: every per-type series, failures and skipped records."""
    iid = "rm-golden0primary"
    full = backup("1001", iid, "FullBackup", consistent_time=NOW - 4 * HOUR - 60, encrypted=True)
    failed = backup(
        "1002", iid, "FullBackup", status="Failed", start=NOW - 2 * HOUR, end=NOW - HOUR
    )
    unusable = backup(
        "1003", iid, "FullBackup", start=NOW - 2 * DAY, end=NOW - 2 * DAY + 900, available=0
    )
    manual = backup(
        "1004",
        iid,
        "IncrementalBackup",
        mode="Manual",
        initiator="User",
        storage_class="archive",
        size_bytes=512 * 2**20,
        start=NOW - 30 * 60,
        end=NOW - 20 * 60,
    )
    return InstanceState(
        target=Target(iid, "cn-hangzhou", account="prod", labels={"team": "payments"}),
        summaries={
            "FullBackup": TypeSummary(
                last_success=full,
                last_completed=failed,
                last_failure=failed,
                sets=5,
                failed_sets=1,
                last_unusable=unusable,
                unusable_sets=1,
                last_automated=full,
            ),
            "IncrementalBackup": TypeSummary(
                last_success=manual, last_completed=manual, last_failure=None, sets=3, failed_sets=0
            ),
        },
        failures_total={"FullBackup": 2, "IncrementalBackup": 0},
        baseline_done=True,
        lookback_complete=True,
        snapshot_chain_bytes=123_456_789,
        engine="MySQL",
        engine_version="8.0",
        polled=True,
        collect_success=True,
        last_collect_success=NOW - 30,
        policy=PolicySummary(
            schedule=Schedule(frozenset({0, 2, 4}), window_start=2 * 3600, window_width=3600),
            retention_days=7,
            log_backup_enabled=True,
            next_backup_time=NOW + 14 * HOUR,
            log_retention_days=7,
        ),
        skipped={"1999": NOW - 100, "sha256:5f1e": NOW - 200},
        recovery=RecoveryStatus(window=RecoveryWindow(NOW - 7 * DAY + 3600, NOW - 600)),
        log_chain=LogChain(
            summary=LogSummary(
                newest_end=NOW - 600,
                gap_seconds=1023.0,
                uploading=1,
                oldest_uploading_end=NOW - 300,
                stored_bytes=5 * 2**30,
            )
        ),
        jobs_summary=JobsSummary(
            running=1,
            oldest_first_seen=NOW - 2 * HOUR,
            progress=42.0,
            stalled_since=NOW - HOUR,
            failed=0,
        ),
        # Copied to Shanghai with its logs; the newest copy failed after a good one.
        cross_region=CrossRegionPolicy(
            enabled=True,
            log_enabled=True,
            destination="cn-shanghai",
            retention_days=15,
            enabled_at=NOW - 400 * DAY,
        ),
        copies=CopyLedger(
            summary=CopiesSummary(
                last_success_end=NOW - DAY,
                last_failure_end=NOW - 3 * HOUR,
                sets=8,
                failed_sets=1,
                window=RecoveryWindow(NOW - 8 * DAY, NOW - DAY + 600),
            )
        ),
        # Cold storage unknown (-1: left out), a little billed beyond the free quota.
        storage=StorageUsage(
            bytes_by_kind={
                "total": 53_002_759,
                "data": 94_324_736,
                "log": 45_145_563,
                "oss_data": 8_821_760,
                "oss_log": 44_180_999,
                "archive": 0,
                "ecs_snapshot": 0,
            },
            paid_bytes=1_048_576,
        ),
    )


def retiring() -> InstanceState:
    """Found by discovery, no longer found (kept for its grace period), its engine and an odd
    description from discovery; a backup with no size, start or IsAvail, and a policy whose
    schedule cannot be read."""
    iid = "pgm-golden0retiring"
    only = backup(
        "2001",
        iid,
        "FullBackup",
        start=None,
        size_bytes=None,
        available=None,
        method="Snapshot",
        engine="",
        engine_version="",
    )
    return InstanceState(
        target=Target(
            iid,
            "cn-shanghai",
            source="discovery",
            description='billing "eu" \\ replica\nold, ünïcode',
            engine="PostgreSQL",
            engine_version="16.0",
            instance_type="Primary",
            retiring=True,
            created_at=NOW - 400 * DAY,
        ),
        summaries={
            "FullBackup": TypeSummary(
                last_success=only, last_completed=only, last_failure=None, sets=1, failed_sets=0
            )
        },
        failures_total={"FullBackup": 0, "IncrementalBackup": 0},  # no incremental ever seen
        baseline_done=True,
        covered_from=NOW - 3 * DAY,  # the backfill after a start has five windows left
        polled=True,
        collect_success=True,
        last_collect_success=NOW - 90,
        policy=PolicySummary(
            schedule=None, retention_days=30, log_backup_enabled=False, next_backup_time=None
        ),
        # Log backup off: point-in-time recovery is broken, and a backup job failed.
        recovery=RecoveryStatus(broken="LogBackupNotEnabled"),
        jobs_summary=JobsSummary(
            running=0, oldest_first_seen=None, progress=None, stalled_since=None, failed=1
        ),
        # No copies in another region: no destination, no retention.
        cross_region=CrossRegionPolicy(
            enabled=False, log_enabled=False, destination="", retention_days=None
        ),
    )


def failing() -> InstanceState:
    """Polled fine once, failing since: the last good values stay, collect_success says 0."""
    iid = "rm-golden0failing"
    old = backup("3001", iid, "FullBackup", start=NOW - 3 * DAY, end=NOW - 3 * DAY + 1800)
    return InstanceState(
        target=Target(iid, "cn-hangzhou"),
        summaries={
            "FullBackup": TypeSummary(
                last_success=old,
                last_completed=old,
                last_failure=None,
                sets=2,
                failed_sets=0,
                last_automated=old,
            )
        },
        failures_total={"FullBackup": 0, "IncrementalBackup": 0},
        baseline_done=True,
        lookback_complete=True,
        polled=True,
        collect_success=False,
        last_collect_success=NOW - 2 * DAY,
        last_error="Throttling.User",
        policy=PolicySummary(
            schedule=Schedule(frozenset(range(7)), window_start=22 * 3600, window_width=4 * 3600),
            retention_days=None,
            log_backup_enabled=True,
            next_backup_time=NOW - HOUR,  # passed: the next window counts
            # SQL Server's logs every 30 minutes (its EnableBackupLog says 0 for those).
            log_retention_days=7,
            log_backup_interval=1800.0,
        ),
        # Its newest copy in another region cannot be restored (its logs are copied, but the
        # API has none for it).
        cross_region=CrossRegionPolicy(
            enabled=True, log_enabled=True, destination="cn-beijing", retention_days=7
        ),
        # Its backups and its storage reads fail; its settings were read.
        duties={
            "backups": DutyStatus(error="Throttling.User", failing=True),
            "backup_storage": DutyStatus(error="Forbidden.RAM", failing=True),
            "cross_region_policy": DutyStatus(),
        },
        copies=CopyLedger(
            summary=CopiesSummary(
                last_success_end=NOW - 3 * DAY,
                last_failure_end=None,
                sets=1,
                failed_sets=0,
                broken="NoAvailableLogBackup",
            )
        ),
    )


def fleet() -> FleetState:
    instances = [
        primary(),
        retiring(),
        failing(),
        # Configured, its first poll still running: only its info.
        InstanceState(target=Target("rm-golden0new", "cn-hangzhou")),
        # A read-only replica keeps no backups: no zero series for the standard types.
        InstanceState(
            target=Target(
                "rr-golden0replica",
                "cn-shanghai",
                source="discovery",
                engine="MySQL",
                engine_version="8.0",
                instance_type="Readonly",
            ),
            baseline_done=True,
            lookback_complete=True,
            polled=True,
            collect_success=True,
            last_collect_success=NOW - 60,
        ),
    ]
    discovery = [
        # Two entries for one account and region add up.
        DiscoveryStatus("default", "cn-shanghai", True, True, NOW - 120, 2),
        DiscoveryStatus("default", "cn-shanghai", True, True, NOW - 600, 1),
        DiscoveryStatus("prod", "cn-hangzhou", True, False, NOW - 2 * HOUR, 4),  # failing now
        DiscoveryStatus("prod", "ap-southeast-1"),  # its first refresh still running
    ]
    return FleetState({i.target.instance_id: i for i in instances}, discovery)


@asynccontextmanager
async def exporter_serving(state: FleetState) -> AsyncIterator[str]:
    """The exporter's app, never started (nothing polls), serving ``state`` over loopback."""
    config = parse_config(
        {
            "credentials": {"access_key_id": KEY_ID, "access_key_secret": SECRET},
            "polling": {"interval": "5m"},
            "instances": [{"id": "rm-golden0primary", "region": "cn-hangzhou"}],
        },
        {},
    )
    exporter = Exporter(config, clock=ManualClock(start=NOW))
    exporter.state.instances.update(state.instances)
    exporter.state.discovery.extend(state.discovery)
    telemetry = exporter.telemetry
    telemetry.observe("DescribeBackups", "OK", 0.12)
    telemetry.observe("DescribeBackups", "OK", 0.7)
    telemetry.observe("DescribeBackups", "Throttling.User", 0.05)
    telemetry.observe("DescribeBackupPolicy", "OK", 0.3)
    telemetry.observe("DescribeDBInstances", "InternalError", 12.0)
    telemetry.observe_poll("rm-golden0primary", 1.5)
    # The backups every poll; the policy on its own, longer refresh; the others switched off.
    telemetry.set_refreshes({"backups": 300.0, "policy": 21600.0})
    runner = web.AppRunner(exporter.app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
def no_created_series() -> Iterator[None]:
    """As the command line serves it: no ``*_created`` series (they hold the real time)."""
    disable_created_metrics()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        enable_created_metrics()  # type: ignore[no-untyped-call]


@pytest.fixture
async def scraped(no_created_series: None) -> dict[str, bytes]:
    """The golden file's name -> the body /metrics served in its format."""
    bodies = {}
    async with exporter_serving(fleet()) as url, aiohttp.ClientSession() as session:
        for name, accept in FORMATS.items():
            async with session.get(f"{url}/metrics", headers={"Accept": accept}) as response:
                assert response.status == 200
                assert response.content_type == accept.split(";")[0]
                body = await response.read()
            bodies[name] = body.replace(f'version="{__version__}"'.encode(), VERSION)
    return bodies


@pytest.mark.parametrize("name", FORMATS)
def test_metrics_match_the_golden_file(name: str, scraped: dict[str, bytes]) -> None:
    path = GOLDEN / name
    body = scraped[name]
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(body)
    expected = path.read_bytes() if path.exists() else b""
    if body != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.decode(errors="replace").splitlines(keepends=True),
                body.decode(errors="replace").splitlines(keepends=True),
                f"tests/golden/{name}",
                "served now",
            )
        )
        pytest.fail(
            f"/metrics differs from tests/golden/{name}:\n{diff}\n"
            "If the change is intended, write the files again with\n"
            "    UPDATE_GOLDEN=1 pytest tests/test_golden.py\n"
            "and review their diff.",
            pytrace=False,
        )


def test_the_golden_files_cover_every_documented_metric() -> None:
    """The fixed fleet shows every family the README documents, with samples: a new metric
    gets a place in it."""
    documented = set(re.findall(r"^\| `(aliyun_rds_[a-z_]+)` \|", README.read_text(), re.M))
    assert len(documented) > 30
    parsers = {
        "exposition.txt": text_string_to_metric_families,
        "exposition.openmetrics.txt": openmetrics_families,
    }
    for name, parse in parsers.items():
        shown: set[str] = set()
        for family in parse((GOLDEN / name).read_text(encoding="utf-8")):
            if family.samples:
                shown.add(family.name)
                shown.update(sample.name for sample in family.samples)
        assert documented <= shown, (name, sorted(documented - shown))
