"""``--demo``: the exporter against the built-in simulated RDS API, no account needed.

The fleet is small and seeded, so every run shows the same story: healthy instances of all four
engines, some whose backups fail, one whose backups stopped days ago, one the API throttles, and
one configured id that does not exist (collection fails for it, the others carry on).

Instances are found by discovery (one entry per region); the failing ones and the missing id are
also listed statically, with labels, so the demo shows both and how they merge. Backup policies
are set so the policy-aware stale alert has something to show: the stale instance backs up
daily (its three-day-old backup is far past 1.5 x 25h), and one healthy instance only once a
week (its backup may be six days old without being stale).

The simulated API keeps the real API's quirks on. On purpose, the first healthy instance's
newest full backup (finished ten minutes before the demo starts) succeeded but cannot be used to
restore (``IsAvail`` 0), so its last usable backup is an older one; any other success may be
unusable too, about one in thirty, as the generator decides. The third instance (MySQL) lists
its backup times to the minute (``yyyy-MM-ddTHH:mmZ``), as the API documents them.

Recoverability: every instance above backs its logs up without a hole, and five more instances
show one way each that point-in-time recovery breaks (``DemoRoles``): log backup off, 17
minutes of logs missing two days ago (after the newest full backup, so there is no restorable
window), log files stuck uploading for three hours, a full backup stuck at 42% for 30 hours,
and a SQL Server instance whose 30-minute log backups its policy reports as off.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass, replace
from typing import Any

from exporter.config import Config, parse_config
from exporter.service import Exporter
from exporter.serving import serve
from exporter.simulator import (
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    Faults,
    Fleet,
    SimulatedRds,
)
from exporter.webconfig import WebConfig

log = logging.getLogger(__name__)

DAY = 86400.0
HOUR = 3600.0
DEMO_SEED = 7
MISSING_INSTANCE_ID = "rm-demo0missing00"
# A description as an API may return it, markup and quotes included: the status page and the
# labels must show it as text.
MARKUP_DESCRIPTION = "demo <script>alert(\"markup\")</script> & 'quotes'"
MARKUP_INDEX = 6  # in DEMO_ENGINES: a healthy SQL Server instance
DEMO_ENGINES = (
    "MySQL",
    "MySQL",
    "MySQL",
    "PostgreSQL",
    "PostgreSQL",
    "PostgreSQL",
    "SQLServer",
    "SQLServer",
    "MariaDB",
    "MariaDB",
    "MySQL",
)


@dataclass(frozen=True)
class DemoRoles:
    """Which demo instance plays which part (the alert tests look for these)."""

    healthy: tuple[str, ...]
    failing: tuple[str, ...]
    stale: str
    throttled: str
    missing: str
    markup: str  # healthy, its description full of markup
    # Recoverability, one instance per failure mode (each healthy otherwise):
    log_backup_off: str  # DescribeLocalAvailableRecoveryTime: LogBackupNotEnabled
    log_gap: str  # 17 minutes of logs missing two days ago, after its newest full backup
    stuck_upload: str  # its log files closed in the last 3 hours are all still Uploading
    stuck_backup: str  # a full backup running for 30 hours, Process stuck at 42
    sqlserver_logs: str  # SQL Server, log backups every 30 minutes (EnableBackupLog "0")
    # Cross-region backup (off on every other instance) and backup storage:
    dr_copies: tuple[str, ...]  # healthy, their full backups copied to another region
    dr_failing: str  # MySQL on local disks: its copies of the last two days failed
    dr_disabled: str  # cross-region backup off (the demo config says it is required)
    paid_storage: tuple[str, ...]  # backups beyond the free quota: PaidBackupSize > 0


def build_demo_fleet(now: float) -> tuple[Fleet, Faults, DemoRoles]:
    # No random failures: only the instances chosen to fail do, whatever the day.
    fleet = Fleet(
        seed=DEMO_SEED, now=now, history_days=8.0, readonly_fraction=0.0, failure_rate=0.0
    )
    ids = [
        fleet.add_instance(
            engine=engine,
            description=(
                MARKUP_DESCRIPTION if index == MARKUP_INDEX else f"demo {engine.lower()} {index}"
            ),
            minute_precision=True if index == 2 else None,  # a healthy MySQL, to the minute
        ).instance_id
        for index, engine in enumerate(DEMO_ENGINES)
    ]
    failing = (ids[1], ids[4])
    stale, throttled = ids[7], ids[9]
    for instance_id in failing:
        # Every backup of the last two days failed, and whatever their schedules, a manual
        # backup failed three hours ago: last status 0 and failures in lookback, every day.
        fleet.set_failure_rate(instance_id, 1.0, since=now - 2 * DAY)
        fleet.add_backup(
            instance_id, start=now - 3 * HOUR, end=now - 2.5 * HOUR, status="Failed", mode="Manual"
        )
    fleet.stop_backups(stale, after=now - 3 * DAY)
    # Schedules for the policy-aware stale alert (set before any backup is generated).
    daily, weekly, twice_weekly = frozenset(range(7)), frozenset({6}), frozenset({0, 3})
    for instance_id, days in ((stale, daily), (ids[3], weekly), (ids[5], twice_weekly)):
        policy = fleet.instance(instance_id).policy
        fleet.set_policy(instance_id, replace(policy, weekdays=days))
    faults = Faults()
    faults.for_instance(throttled).throttle_rate = 0.3
    healthy = tuple(i for i in ids if i not in (*failing, stale, throttled))
    # The newest full backup of a healthy instance: it succeeded, but restoring from it would
    # fail (IsAvail 0); its schedule's earlier backups stay usable. Finished ten minutes
    # before the start (or just after the schedule's latest), so the first poll sees it.
    latest = fleet.newest(healthy[0], now=now)
    end = max(now - 10 * 60, latest.end + 60 if latest else 0.0)
    fleet.add_backup(healthy[0], start=end - 30 * 60, end=end, available=False)
    _whole_log_chains(fleet, ids)
    recoverability = _recoverability_roles(fleet, now)
    # Added after every other instance, so that theirs keep their draws.
    dr_failing, dr_disabled = _dr_roles(fleet, now)
    paid_storage = _paid_storage_roles(fleet, now)
    roles = DemoRoles(
        healthy=healthy,
        failing=failing,
        stale=stale,
        throttled=throttled,
        missing=MISSING_INSTANCE_ID,
        markup=ids[MARKUP_INDEX],
        **recoverability,
        dr_copies=_dr_copies(fleet, healthy, dr_failing),
        dr_failing=dr_failing,
        dr_disabled=dr_disabled,
        paid_storage=paid_storage,
    )
    return fleet, faults, roles


def _whole_log_chains(fleet: Fleet, ids: list[str]) -> None:
    """Log backups on and without holes, so that the backup roles tell only their own story.
    The weekly instance keeps its logs (and backups) two weeks: with seven days, the restorable
    window would break for a while each week, just before its next backup."""
    for instance_id in ids:
        fleet.set_log_backup(instance_id, True)
        fleet.clear_log_gaps(instance_id)
        policy = fleet.instance(instance_id).policy
        if len(policy.weekdays) == 1:
            fleet.set_policy(instance_id, replace(policy, retention_days=14, log_retention_days=14))


def _recoverability_roles(fleet: Fleet, now: float) -> dict[str, str]:
    """Five new instances (the others keep their draws), one per way recovery can break."""
    roles = {
        role: fleet.add_instance(engine=engine, description=f"demo {role.replace('_', ' ')}")
        for role, engine in (
            ("log_backup_off", "MySQL"),
            ("log_gap", "MySQL"),
            ("stuck_upload", "PostgreSQL"),
            ("stuck_backup", "MySQL"),
            ("sqlserver_logs", "SQLServer"),
        )
    }
    ids = {role: instance.instance_id for role, instance in roles.items()}
    _whole_log_chains(fleet, list(ids.values()))
    fleet.set_log_backup(ids["log_backup_off"], False)
    # The gap follows the newest full backup: a weekly schedule (so two days without a backup
    # is not stale), one usable backup made by hand before the gap, and none after it.
    gap_id, gap_start = ids["log_gap"], float(int(now - 2 * DAY))
    policy = fleet.instance(gap_id).policy
    before = int((gap_start - DAY) // DAY)
    fleet.set_policy(gap_id, replace(policy, weekdays=frozenset({(before + 3) % 7})))
    fleet.add_backup(gap_id, start=gap_start - 6 * HOUR, end=gap_start - 5 * HOUR)
    fleet.stop_backups(gap_id, after=gap_start)
    fleet.add_log_gap(gap_id, gap_start, gap_start + 17 * 60)
    fleet.stick_log_upload(ids["stuck_upload"], now - 3 * HOUR)
    fleet.stick_backup(ids["stuck_backup"], now - 30 * HOUR, 42)
    sql_server = fleet.instance(ids["sqlserver_logs"]).policy
    fleet.set_policy(ids["sqlserver_logs"], replace(sql_server, log_interval_minutes=30))
    return ids


def _new_healthy(fleet: Fleet, engine: str, role: str, storage: str | None = None) -> str:
    """A new instance (the others keep their draws) whose backups and logs tell no story of
    their own, on ``storage`` (default: drawn)."""
    description = f"demo {role.replace('_', ' ')}"
    instance = fleet.add_instance(engine=engine, description=description, storage_type=storage)
    _whole_log_chains(fleet, [instance.instance_id])
    return instance.instance_id


def _dr_roles(fleet: Fleet, now: float) -> tuple[str, str]:
    """The instance whose cross-region copies fail and the one with cross-region backup off.
    The first is MySQL on local disks, so DescribeAvailableRecoveryTime covers it too, and
    backs up daily, so its last two days hold failed copies whatever the day."""
    failing = _new_healthy(fleet, "MySQL", "dr_failing", "local_ssd")
    disabled = _new_healthy(fleet, "PostgreSQL", "dr_disabled")
    policy = fleet.instance(failing).policy
    fleet.set_policy(failing, replace(policy, weekdays=frozenset(range(7))))
    fleet.set_cross_region(failing, True)
    fleet.fail_cross_region_copies(failing, now - 2 * DAY)
    fleet.set_cross_region(disabled, False)
    return failing, disabled


def _dr_copies(fleet: Fleet, healthy: tuple[str, ...], dr_failing: str) -> tuple[str, ...]:
    """Cross-region backup on, logs too, for the healthy instances that support it and back
    up at least twice a week (a weekly copy would be days old by design), and for
    ``dr_failing``; off everywhere else, so that only the roles tell a story."""
    copying = tuple(
        instance_id
        for instance_id in healthy
        if fleet.cross_region_policy(instance_id) is not None
        and len(fleet.instance(instance_id).policy.weekdays) >= 2
    )
    for instance_id in fleet.instances:
        if instance_id in (*copying, dr_failing):
            fleet.set_cross_region(instance_id, True)
        elif fleet.cross_region_policy(instance_id) is not None:
            fleet.set_cross_region(instance_id, False)
    return copying


def _paid_storage_roles(fleet: Fleet, now: float) -> tuple[str, ...]:
    """Two new instances whose purchased storage is so small that their backups overrun the
    free quota (50% of it on local disks, 200% on cloud disks) by about 40%."""
    paid = tuple(_new_healthy(fleet, engine, "paid_storage") for engine in ("MySQL", "PostgreSQL"))
    for instance_id in paid:
        used = fleet.backup_bytes(instance_id, now)
        quota_share = 0.5 if fleet.instance(instance_id).storage_type == "local_ssd" else 2.0
        gigabytes = 0.6 * (used.data + used.log) / quota_share / (1 << 30)
        fleet.set_storage_gb(instance_id, max(1, int(gigabytes)))
    return paid


def build_demo_config(endpoint: str, roles: DemoRoles, fleet: Fleet) -> Config:
    # Static entries win over discovery: they keep these labels and take the description.
    instances: list[dict[str, Any]] = [
        {
            "id": instance_id,
            "region": fleet.instance(instance_id).region_id,
            "labels": {"team": "demo"},
        }
        for instance_id in roles.failing
    ]
    instances.append({"id": roles.missing, "region": "cn-hangzhou", "labels": {"team": "demo"}})
    # Must have copies in another region, and has none (AliyunRdsCrossRegionBackupDisabled).
    instances.append(
        {
            "id": roles.dr_disabled,
            "region": fleet.instance(roles.dr_disabled).region_id,
            "labels": {"team": "demo", "dr": "required"},
        }
    )
    regions = sorted({instance.region_id for instance in fleet.instances.values()})
    discovery = [{"region": region, "refresh": "1m", "grace": "5m"} for region in regions]
    raw = {
        "api": {
            "endpoint": endpoint,
            "timeout": "5s",
            "rate_limit": 20,
            "concurrency": 4,
            "retries": 4,
        },
        "credentials": {
            "access_key_id": DEMO_ACCESS_KEY_ID,
            "access_key_secret": DEMO_ACCESS_KEY_SECRET,
        },
        "polling": {
            "interval": "30s",
            "lookback": "8d",
            "window": "1d",
            "policy_refresh": "10m",
            # The recoverability duties, often enough that the demo shows each case at once.
            "recovery_window_refresh": "2m",
            "log_backup_refresh": "1m",
            "backup_tasks_refresh": "1m",
            "cross_region_policy_refresh": "2m",
            "cross_region_backup_refresh": "2m",
            "backup_storage_refresh": "2m",
        },
        "instances": instances,
        "discovery": discovery,
    }
    return parse_config(raw, {}, source="demo")


async def _run(
    host: str | None,
    port: int,
    telemetry_path: str,
    web_config: WebConfig | None,
    ssl_context: ssl.SSLContext | None,
) -> None:
    fleet, faults, roles = build_demo_fleet(time.time())
    # The request log is for tests; a long demo run keeps only the latest entries.
    simulator = SimulatedRds(fleet, faults=faults, rng_seed=DEMO_SEED, max_records=10_000)
    async with simulator.serve("127.0.0.1", 0) as url:
        log.info(
            "demo mode: simulated RDS API at %s with %d instances (failing: %s; stale: %s; "
            "throttled: %s; missing: %s; cross-region copies failing: %s; cross-region backup "
            "off though required: %s; paying for backup storage: %s)",
            url,
            len(fleet.instances),
            ",".join(roles.failing),
            roles.stale,
            roles.throttled,
            roles.missing,
            roles.dr_failing,
            roles.dr_disabled,
            ",".join(roles.paid_storage),
        )
        config = build_demo_config(url, roles, fleet)
        exporter = Exporter(config, telemetry_path=telemetry_path, web_config=web_config)
        scheme = "https" if ssl_context is not None else "http"
        shown = host if host and host not in ("0.0.0.0", "::") else "localhost"
        shown = f"[{shown}]" if ":" in shown else shown
        log.info("status page: %s://%s:%d/ (metrics: %s)", scheme, shown, port, telemetry_path)
        await serve(exporter, host, port, ssl_context)


def run_demo(
    host: str | None,
    port: int,
    telemetry_path: str,
    web_config: WebConfig | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> int:
    try:
        asyncio.run(_run(host, port, telemetry_path, web_config, ssl_context))
    except OSError as err:
        log.error("cannot serve on port %d: %s", port, err.strerror or err)
        return 1
    return 0
