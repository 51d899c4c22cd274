"""End to end: real Prometheus scrapes the exporter in --demo mode, evaluates the shipped rules and
answers every dashboard query.

Prometheus (the Debian package) runs on loopback with a 1s scrape and evaluation interval and a copy
of prometheus/rules.yml whose `for:` durations are set to 0s, so alerts show within seconds. Which
alerts must show is worked out from the simulator's ground truth: the test rebuilds the demo fleet
(it is seeded) and applies the documented alert semantics to it, so the assertions do not depend
on the day of the week the test runs on. On failure the exporter's and Prometheus's logs are
printed with the report.

The recoverability alerts follow the same ground truth: the restorable window, the log chain and
the running backups the fleet reports, at the times the exporter's readings may date from. So do
disaster recovery and cost: the cross-region settings and copies, and the backup storage, the
fleet reports; the instances the demo's config marks dr="required".
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.demo import DemoRoles, build_demo_config, build_demo_fleet
from exporter.simulator import Fleet

from .conftest import REPO, Process, free_port, http_get, require_tool, unregister_log, wait_until

JOB = "aliyun-rds-backup-exporter"
DAY = 86400.0
LOOKBACK = 8 * DAY  # the demo's polling.lookback
BACKUP_TYPES = ("FullBackup", "IncrementalBackup")
# Policy-less instances: the fallback limit in rules.yml (checked against Prometheus below).
FALLBACK_SECONDS = 216000.0
POLICY_MARGIN = 1.5
# Ages this close to an instance's limit may land on either side while the test runs.
BOUNDARY_SLACK = 300.0
# Recoverability: what the API answers that means recovery is broken (not a failure to ask).
BROKEN_CODES = {"LogBackupNotEnabled", "InvalidBinlog.NotFound", "InvalidBackup.NotFound"}
WINDOW_ENGINES = {"MySQL", "PostgreSQL", "MariaDB"}  # DescribeLocalAvailableRecoveryTime
# How old the exporter's recoverability readings may be: the demo reads the restorable window
# every 2m and the log files every 1m, at polls every 30s.
READING_AGE = 180.0
# rules.yml: a log file uploading longer than this; no backup counts as running long sooner.
UPLOAD_LIMIT = 3600.0
RUNNING_FLOOR = 3600.0
LAG_DEFAULT = 7200.0
LAG_MARGIN = 3.0
# The demo's refreshes, as aliyun_rds_exporter_refresh_seconds says them: the lag limit adds the
# one of the duty the lag came from.
REFRESHES = {"recovery_window": 120.0, "log_backups": 60.0, "cross_region_backups": 120.0}
# rules.yml: a cross-region copy may be as old as the full backup's stale limit, plus this for
# the copy to be made, plus the refresh of the copies; storage may grow this much in 24h.
COPY_ALLOWANCE = 7200.0
GROWTH_BYTES = 10 * 2**30
GROWTH_RATIO = 0.2
SQLSERVER_TOLERANCE = 60.0  # its log files list whole minutes
STALE_RECORD = "instance_id:aliyun_rds_backup_full_stale_threshold_seconds:policy_or_fallback"
LAG_RECORD = "instance_id:aliyun_rds_recovery_point_lag_threshold_seconds:policy_or_fallback"
PROMISED_RECORD = "instance_id:aliyun_rds_recovery_window_promised_seconds:retention_less_slack"
COPY_RECORD = (
    "instance_id:aliyun_rds_cross_region_backup_stale_threshold_seconds:policy_or_fallback"
)
DASHBOARD = REPO / "grafana" / "dashboards" / "aliyun-rds-backups.json"
# Values the dashboard's variables take here: "All" for the filters, a plausible Grafana interval.
DASHBOARD_VARIABLES = {
    "account": ".*",
    "region": ".*",
    "engine": ".*",
    "instance": ".*",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "5m",
}
# Metrics the rules and dashboard may use before the exporter serves them (a later issue adds the
# backup policy); the rules fall back when they are absent.
NOT_YET_EXPORTED: set[str] = set()  # metrics the rules may use before the exporter has them

AlertKey = tuple[str, str, str]  # (alertname, instance_id or exporter instance, backup_type)


@dataclass
class Stack:
    started: float
    exporter: Process
    exporter_url: str
    prometheus: Process
    prometheus_url: str

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self._api("/api/v1/query", params)["result"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": str(step)}
        return self._api("/api/v1/query_range", params)["result"]

    def series(self, match: str) -> list[dict[str, str]]:
        return self._api("/api/v1/series", {"match[]": match})

    def alerts(self) -> list[dict[str, Any]]:
        return self._api("/api/v1/alerts", {})["alerts"]

    def _api(self, path: str, params: dict[str, str]) -> Any:
        url = f"{self.prometheus_url}{path}?{urllib.parse.urlencode(params)}"
        status, body = http_get(url, timeout=10)
        payload = json.loads(body)
        assert status == 200 and payload.get("status") == "success", (
            f"{path} {params}: HTTP {status}: {payload.get('errorType')}: {payload.get('error')}"
        )
        return payload["data"]


def fast_rules(source: Path) -> dict[str, Any]:
    """rules.yml with every alert's `for:` at 0s: the test cannot wait 15 minutes."""
    rules = yaml.safe_load(source.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["for"] = "0s"
    return rules


def check_alive(*processes: Process) -> None:
    for process in processes:
        if not process.alive():
            pytest.fail(
                f"{process.name} exited early with code {process.proc.returncode}:\n"
                f"{process.log()[-5000:]}",
                pytrace=False,
            )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus_bin = require_tool("prometheus", "Debian package prometheus; .ci/run installs it")
    tmp = tmp_path_factory.mktemp("prometheus-e2e")
    exporter_port, prometheus_port = free_port(), free_port()
    (tmp / "rules.yml").write_text(yaml.safe_dump(fast_rules(REPO / "prometheus" / "rules.yml")))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules.yml"],
        "scrape_configs": [
            {
                "job_name": JOB,
                "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}],
            }
        ],
    }
    (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
    started = time.time()
    processes: list[Process] = []
    try:
        exporter = Process(
            "exporter",
            [
                sys.executable,
                "-m",
                "exporter",
                "--demo",
                "--web.listen-address",
                f"127.0.0.1:{exporter_port}",
            ],
            tmp,
            cwd=REPO,
        )
        processes.append(exporter)
        prometheus = Process(
            "prometheus",
            [
                prometheus_bin,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
                "--log.level=info",
            ],
            tmp,
            cwd=tmp,
        )
        processes.append(prometheus)
        exporter_url = f"http://127.0.0.1:{exporter_port}"
        prometheus_url = f"http://127.0.0.1:{prometheus_port}"

        def ready(url: str) -> bool:
            check_alive(exporter, prometheus)
            return http_get(url + "/-/ready", timeout=2)[0] == 200

        # /-/ready turns 200 once every instance has finished its first poll.
        wait_until(lambda: ready(exporter_url), timeout=60, what="the exporter's first polls")
        wait_until(lambda: ready(prometheus_url), timeout=30, what="Prometheus to start")
        yield Stack(started, exporter, exporter_url, prometheus, prometheus_url)
    finally:
        for process in reversed(processes):
            process.stop()
            unregister_log(process.name)


@pytest.fixture(scope="module")
def scraped(stack: Stack) -> Stack:
    """Waits until Prometheus holds the exporter's series for every demo instance."""
    fleet, _, _ = build_demo_fleet(stack.started)
    instances = len(fleet.instances) + 1  # plus the configured id that does not exist

    def ingested() -> bool:
        check_alive(stack.exporter, stack.prometheus)
        up = stack.query(f'up{{job="{JOB}"}}')
        count = stack.query("count(aliyun_rds_instance_info)")
        # The recording rules have run once the join target exists for every instance.
        joined = stack.query("count(instance_id:aliyun_rds_instance_info:max)")
        return (
            bool(up)
            and up[0]["value"][1] == "1"
            and bool(count)
            and int(count[0]["value"][1]) == instances
            and bool(joined)
            and int(joined[0]["value"][1]) == instances
        )

    wait_until(ingested, timeout=30, what="Prometheus to ingest the exporter's series")
    return stack


# ----- what the alerts should say, from the simulator's ground truth ------------------------


@dataclass
class Expectation:
    must: set[AlertKey]  # pending or firing, or the test fails
    may: set[AlertKey]  # allowed: too close to a boundary, or changing while the test runs
    clean: set[str]  # instances that must have no alert at all


@dataclass(frozen=True)
class Limits:
    """Per instance, the limits the recording rules worked out from the exporter's policies."""

    stale: dict[str, float]
    lag: dict[str, float]
    promised: dict[str, float]  # how far back the restorable window must reach
    copies: dict[str, float]  # how old the newest good cross-region copy may be


def expected_alerts(
    fleet: Fleet, roles: DemoRoles, limits: Limits, started: float, now: float
) -> Expectation:
    must: set[AlertKey] = set()
    may: set[AlertKey] = set()
    missing, throttled = roles.missing, roles.throttled
    required = dr_required(fleet, roles)
    for instance_id in fleet.instances:
        expect_recoverability(fleet, instance_id, limits, started, now, must, may)
        expect_disaster_recovery(
            fleet, instance_id, instance_id in required, limits, now, must, may
        )
        expect_storage_cost(fleet, instance_id, started, now, must, may)
        backups = fleet.backups_between(instance_id, now - LOOKBACK, now, now)
        newest_full = fleet.newest_success(instance_id, "FullBackup", now=now, lookback=LOOKBACK)
        if newest_full is None:
            must.add(("AliyunRdsBackupNoneInLookback", instance_id, ""))
        else:
            age = now - newest_full.end
            limit = limits.stale[instance_id]
            if age > limit + BOUNDARY_SLACK:
                must.add(("AliyunRdsBackupStale", instance_id, ""))
            elif age > limit - BOUNDARY_SLACK:
                may.add(("AliyunRdsBackupStale", instance_id, ""))
            # The schedule is judged on automated backups only.
            automated = [
                b
                for b in backups
                if b.backup_type == "FullBackup" and b.is_avail and b.mode == "Automated"
            ]
            stopped = ("AliyunRdsBackupScheduleStopped", instance_id, "")
            if not automated:
                must.add(stopped)
            else:
                automated_age = now - max(b.end for b in automated)
                if automated_age > limit + BOUNDARY_SLACK:
                    must.add(stopped)
                elif automated_age > limit - BOUNDARY_SLACK:
                    may.add(stopped)
        for backup_type in BACKUP_TYPES:
            of_type = [b for b in backups if b.backup_type == backup_type]
            # Backups that completed since the exporter started may or may not be polled yet.
            changing = any(b.end >= started - 120 for b in of_type)
            newest = fleet.newest(instance_id, backup_type, now=now, lookback=LOOKBACK)
            key = ("AliyunRdsBackupLastFailed", instance_id, backup_type)
            if newest is not None and newest.status != "Success" and not changing:
                must.add(key)
            elif changing:
                may.add(key)
            if any(b.status != "Success" and b.end >= started - 120 for b in of_type):
                may.add(("AliyunRdsBackupNewFailures", instance_id, backup_type))
            # The newest success of the type cannot be restored from (IsAvail 0).
            any_success = fleet.newest_success(
                instance_id, backup_type, now=now, lookback=LOOKBACK, restorable_only=False
            )
            unusable = ("AliyunRdsBackupUnusable", instance_id, backup_type)
            if any_success is not None and not any_success.is_avail and not changing:
                must.add(unusable)
            elif changing:
                may.add(unusable)
    must.add(("AliyunRdsBackupCollectionFailing", missing, ""))
    # 30% of the throttled instance's calls fail; all five tries of one call rarely do.
    may.add(("AliyunRdsBackupCollectionFailing", throttled, ""))
    touched = {key[1] for key in must | may}
    clean = {instance_id for instance_id in fleet.instances if instance_id not in touched}
    return Expectation(must, may, clean)


def expect_recoverability(
    fleet: Fleet,
    instance_id: str,
    limits: Limits,
    started: float,
    now: float,
    must: set[AlertKey],
    may: set[AlertKey],
) -> None:
    """The recoverability alerts of one instance. The exporter's readings date from some time
    in ``[now - READING_AGE, now]``: an alert is a must when the fleet says so at both ends."""
    engine = fleet.instance(instance_id).engine
    readings = (now - READING_AGE, now)

    def classify(name: str, values: list[float | None], over: float | None) -> None:
        """Fires when a value is over ``over`` (None: no limit known, no alert)."""
        seen = [v for v in values if v is not None]
        if over is None or not seen:
            return
        if len(seen) == len(values) and min(seen) > over + BOUNDARY_SLACK:
            must.add((name, instance_id, ""))
        elif max(seen) > over - BOUNDARY_SLACK:
            may.add((name, instance_id, ""))

    windows = [
        fleet.recovery_window(instance_id, t) if engine in WINDOW_ENGINES else None
        for t in readings
    ]
    broken = [isinstance(w, str) and w in BROKEN_CODES for w in windows]
    if all(broken):
        must.add(("AliyunRdsRecoveryBroken", instance_id, ""))
    elif any(broken):
        may.add(("AliyunRdsRecoveryBroken", instance_id, ""))

    # The lag: to the window's end, else to the newest stored log file's end (SQL Server).
    def restorable_to(window: tuple[float, float] | str | None, at: float) -> float | None:
        if isinstance(window, tuple):
            return window[1]
        return fleet.newest_completed_log_end(instance_id, at)

    lags = [
        None if (end := restorable_to(w, t)) is None else now - end
        for w, t in zip(windows, readings, strict=True)
    ]
    classify("AliyunRdsRecoveryPointLagHigh", lags, limits.lag.get(instance_id))

    # The window's reach falls short of the promise (short: the negated reach is over it).
    reaches = [-(now - w[0]) if isinstance(w, tuple) else None for w in windows]
    promised = limits.promised.get(instance_id)
    classify("AliyunRdsRecoveryWindowShort", reaches, None if promised is None else -promised)

    # Gaps within the lookback; one near its start may leave it while the test runs.
    tolerance = SQLSERVER_TOLERANCE if engine == "SQLServer" else 0.0
    gaps = [g for g in fleet.log_gaps(instance_id, now - LOOKBACK, now) if g[1] - g[0] > tolerance]
    if any(start > now - LOOKBACK + BOUNDARY_SLACK for start, _ in gaps):
        must.add(("AliyunRdsLogBackupGap", instance_id, ""))
    elif gaps:
        may.add(("AliyunRdsLogBackupGap", instance_id, ""))

    def oldest_uploading(at: float) -> float | None:
        files = fleet.log_files(instance_id, at - LOOKBACK, at, at)
        ends = [f.end for f in files if not f.completed(at)]
        return now - min(ends) if ends else None

    classify(
        "AliyunRdsLogBackupStuckUploading", [oldest_uploading(t) for t in readings], UPLOAD_LIMIT
    )

    # A backup's running time counts from when the exporter first saw it, after its start
    # and after the test began; no backup counts as running long within its first hour.
    jobs = fleet.running_jobs(instance_id, now)
    if (
        jobs
        and now - max(started, min(job.backup.start for job in jobs))
        > RUNNING_FLOOR - BOUNDARY_SLACK
    ):
        may.add(("AliyunRdsBackupRunningLong", instance_id, ""))


def dr_required(fleet: Fleet, roles: DemoRoles) -> set[str]:
    """The instances the demo's config labels dr="required" (the selector in rules.yml)."""
    config = build_demo_config("http://127.0.0.1:1", roles, fleet)
    return {i.id for i in config.instances if i.labels.get("dr") == "required"}


def expect_disaster_recovery(
    fleet: Fleet,
    instance_id: str,
    required: bool,
    limits: Limits,
    now: float,
    must: set[AlertKey],
    may: set[AlertKey],
) -> None:
    """The cross-region alerts of one instance, from the copies the fleet lists at the times the
    exporter's reading may date from (a copy is listed 10 to 60 minutes after its backup ends,
    so one may arrive while the test runs)."""
    policy = fleet.cross_region_policy(instance_id)
    if policy is None or not policy.enabled:
        if required:
            must.add(("AliyunRdsCrossRegionBackupDisabled", instance_id, ""))
        return
    readings = (now - READING_AGE, now)
    listed = [
        fleet.cross_region_copies(instance_id, now - LOOKBACK, t, t, on_end=True) for t in readings
    ]
    good = [max((c.source.end for c in copies if not c.failed), default=None) for copies in listed]
    bad = [max((c.source.end for c in copies if c.failed), default=None) for copies in listed]
    # Newest good copy too old. With none at all, the rule counts from when copying was switched
    # on (BackupEnabledTime).
    limit = limits.copies.get(instance_id)
    ages = [now - (end if end is not None else policy.enabled_at) for end in good]
    stale = ("AliyunRdsCrossRegionBackupStale", instance_id, "")
    if limit is not None and len(ages) == len(readings) and min(ages) > limit + BOUNDARY_SLACK:
        must.add(stale)
    elif limit is not None and ages and max(ages) > limit - BOUNDARY_SLACK:
        may.add(stale)
    # The newest copy failed: a later backup than the newest good copy's, or no good copy.
    failing = [b is not None and (g is None or b > g) for g, b in zip(good, bad, strict=True)]
    key = ("AliyunRdsCrossRegionBackupFailing", instance_id, "")
    if all(failing):
        must.add(key)
    elif any(failing):
        may.add(key)


def expect_storage_cost(
    fleet: Fleet,
    instance_id: str,
    started: float,
    now: float,
    must: set[AlertKey],
    may: set[AlertKey],
) -> None:
    """Paid backup storage where the fleet says so; fast growth only where it grew that much
    since the test began (Prometheus has no older data)."""
    readings = (now - READING_AGE, now)
    paid = [int(fleet.resource_usage(instance_id, t)["PaidBackupSize"]) > 0 for t in readings]
    key = ("AliyunRdsBackupStoragePaid", instance_id, "")
    if all(paid):
        must.add(key)
    elif any(paid):
        may.add(key)
    before, after = (fleet.resource_usage(instance_id, t) for t in (started - READING_AGE, now))
    sizes = [
        int(usage["BackupSize"])
        if int(usage["BackupSize"]) >= 0
        else int(usage["BackupDataSize"]) + int(usage["BackupLogSize"])
        for usage in (before, after)
    ]
    grown = sizes[1] - sizes[0]
    if grown >= GROWTH_BYTES * 0.9 and grown > GROWTH_RATIO * 0.9 * sizes[0]:
        may.add(("AliyunRdsBackupStorageGrowingFast", instance_id, ""))


def alert_key(alert: dict[str, Any]) -> AlertKey:
    labels = alert["labels"]
    subject = labels.get("instance_id") or labels.get("instance", "")
    return (labels["alertname"], subject, labels.get("backup_type", ""))


def recorded(stack: Stack, record: str, at: float | None = None) -> dict[str, float]:
    return {
        item["metric"]["instance_id"]: float(item["value"][1]) for item in stack.query(record, at)
    }


def stale_limits(stack: Stack, at: float | None = None) -> dict[str, float]:
    return recorded(stack, STALE_RECORD, at)


def read_limits(stack: Stack, at: float | None = None) -> Limits:
    return Limits(
        stale=stale_limits(stack, at),
        lag=recorded(stack, LAG_RECORD, at),
        promised=recorded(stack, PROMISED_RECORD, at),
        copies=recorded(stack, COPY_RECORD, at),
    )


def by_instance(stack: Stack, expr: str, at: float | None = None) -> dict[str, float]:
    """``max by (instance_id) (expr)`` as a mapping."""
    return recorded(stack, f"max by (instance_id) ({expr})", at)


# ----- tests -------------------------------------------------------------------------------


def test_demo_roles_match_the_running_exporter(scraped: Stack) -> None:
    """The test's rebuilt fleet is the exporter's: same ids in the same roles."""
    _, _, roles = build_demo_fleet(scraped.started)
    log = scraped.exporter.log()
    match = re.search(
        r"failing: ([^;]*); stale: ([^;]*); throttled: ([^;]*); missing: ([^;)]*)[;)]", log
    )
    assert match, f"no demo roles line in the exporter's log:\n{log[:2000]}"
    assert tuple(match.group(1).split(",")) == roles.failing
    assert (match.group(2), match.group(3), match.group(4)) == (
        roles.stale,
        roles.throttled,
        roles.missing,
    )


def test_stale_limit_uses_policy_or_fallback(scraped: Stack) -> None:
    fleet, _, roles = build_demo_fleet(scraped.started)
    state: dict[str, Any] = {}

    def consistent() -> bool:
        # Policies arrive with the polls; the recording rule follows within an evaluation.
        at = time.time() - 1
        limits = stale_limits(scraped, at)
        policies = {
            item["metric"]["instance_id"]: float(item["value"][1])
            for item in scraped.query(
                "max by (instance_id) (aliyun_rds_backup_policy_expected_interval_seconds)", at
            )
        }
        wrong = {}
        for instance_id, limit in limits.items():
            policy = policies.get(instance_id, 0.0)
            expected = policy * POLICY_MARGIN if policy > 0 else FALLBACK_SECONDS
            if limit != pytest.approx(expected):
                wrong[instance_id] = (limit, expected)
        state.update(limits=limits, wrong=wrong)
        return set(limits) == instances and not wrong

    instances = {*fleet.instances, roles.missing}
    try:
        wait_until(consistent, timeout=15, interval=0.5, what="limits that follow the policies")
    finally:
        print(f"limits: {state.get('limits')}; wrong (limit, expected): {state.get('wrong')}")


def test_alerts_follow_the_demo_fleet(scraped: Stack) -> None:
    fleet, _, roles = build_demo_fleet(scraped.started)
    # Everything but throttling, which depends on which calls the simulator throttles.
    exporter_level = {"AliyunRdsApiThrottled"}
    state: dict[str, Any] = {}

    def alerts_match_ground_truth() -> bool:
        check_alive(scraped.exporter, scraped.prometheus)
        # Limits change when a policy arrives: use a snapshot they did not change during.
        limits = read_limits(scraped)
        alerts = scraped.alerts()
        active = {alert_key(a): a["state"] for a in alerts}
        if read_limits(scraped) != limits:
            return False
        expectation = expected_alerts(fleet, roles, limits, scraped.started, time.time())
        unexpected = {
            key
            for key in active
            if key not in expectation.must
            and key not in expectation.may
            and key[0] not in exporter_level
        }
        missing = expectation.must - set(active)
        state.update(
            expectation=expectation,
            alerts=alerts,
            active=active,
            missing=missing,
            unexpected=unexpected,
        )
        return not missing and not unexpected

    try:
        wait_until(alerts_match_ground_truth, timeout=60, interval=1, what="the demo's alerts")
    finally:
        print(f"alerts: {sorted(state.get('active', {}).items())}")
        print(f"missing: {sorted(state.get('missing', []))}")
        print(f"unexpected: {sorted(state.get('unexpected', []))}")
    expectation: Expectation = state["expectation"]
    active: dict[AlertKey, str] = state["active"]
    assert set(active.values()) <= {"pending", "firing"}

    # The demo's roles, as the issue states them.
    assert ("AliyunRdsBackupStale", roles.stale, "") in active, sorted(active)
    # The failing instances' newest backup failed (the demo adds a failed one three hours ago).
    alerting = {k[1] for k in active if k[0] == "AliyunRdsBackupLastFailed"}
    assert set(roles.failing) <= alerting, sorted(active)
    assert ("AliyunRdsBackupCollectionFailing", roles.missing, "") in active

    # The stale instance's schedule stopped too.
    assert ("AliyunRdsBackupScheduleStopped", roles.stale, "") in active, sorted(active)
    # The demo makes one healthy instance's newest full backup unusable (IsAvail 0).
    unusable = {k[1] for k in active if k[0] == "AliyunRdsBackupUnusable"}
    assert unusable & set(roles.healthy), sorted(active)

    # Healthy instances stay silent but for that: the demo has no random failures, and every
    # healthy instance has a policy that its backups keep. (A key may only be in `may` when a
    # backup of its type completed around the start: then either answer is right.)
    allowed = expectation.must | expectation.may
    noisy = {key for key in active if key[1] in roles.healthy and key not in allowed}
    assert not noisy, f"healthy instances alerting: {sorted(noisy)}"
    for instance_id in roles.healthy:
        wanted = {key for key in expectation.must if key[1] == instance_id}
        assert {key[0] for key in wanted} <= {"AliyunRdsBackupUnusable"}, sorted(wanted)

    check_recoverability_roles(scraped, roles, state["alerts"])
    check_disaster_recovery_roles(scraped, roles, state["alerts"])


def check_recoverability_roles(
    stack: Stack, roles: DemoRoles, alerts: list[dict[str, Any]]
) -> None:
    """Each of the demo's recoverability roles shows its failure, as the issue states them."""
    found = {alert_key(a): a for a in alerts}

    def alert(name: str, instance_id: str) -> dict[str, Any]:
        key = (name, instance_id, "")
        assert key in found, f"{key} not active: {sorted(found)}"
        return found[key]

    # Log backup off: broken recovery, not a failed collection.
    off = alert("AliyunRdsRecoveryBroken", roles.log_backup_off)
    assert off["labels"]["reason"] == "LogBackupNotEnabled"
    assert ("AliyunRdsBackupCollectionFailing", roles.log_backup_off, "") not in found
    # 17 minutes of logs missing, after the newest full backup: a gap of 1020s, to the second,
    # and no restorable window after it.
    assert float(alert("AliyunRdsLogBackupGap", roles.log_gap)["value"]) == 17 * 60
    gap = alert("AliyunRdsRecoveryBroken", roles.log_gap)
    assert gap["labels"]["reason"] == "InvalidBinlog.NotFound"
    # Logs stuck uploading for three hours: stuck, and the recovery point lags that far.
    stuck = alert("AliyunRdsLogBackupStuckUploading", roles.stuck_upload)
    assert float(stuck["value"]) > 2.5 * 3600
    assert float(alert("AliyunRdsRecoveryPointLagHigh", roles.stuck_upload)["value"]) > 2.5 * 3600
    # The stuck backup is seen running at 42%. It has run for 30 hours, but the API gives no
    # start time: the exporter counts from when it first saw it, so no alert yet.
    progress = by_instance(stack, "aliyun_rds_backup_running_job_progress_ratio")
    assert progress.get(roles.stuck_backup) == pytest.approx(0.42)
    assert by_instance(stack, "aliyun_rds_backup_running_jobs").get(roles.stuck_backup, 0) >= 1
    assert ("AliyunRdsBackupRunningLong", roles.stuck_backup, "") not in found
    # SQL Server's 30-minute log backups, which its policy calls "off": on, every 1800s, and
    # the recovery point keeps within 3 x that.
    sql = roles.sqlserver_logs
    assert by_instance(stack, "aliyun_rds_backup_policy_log_backup_enabled").get(sql) == 1
    assert (
        by_instance(stack, "aliyun_rds_backup_policy_log_backup_interval_seconds").get(sql) == 1800
    )
    assert sql in by_instance(stack, "aliyun_rds_log_backup_last_end_age_seconds")
    assert not {key for key in found if key[1] == sql}, sorted(found)


def check_disaster_recovery_roles(
    stack: Stack, roles: DemoRoles, alerts: list[dict[str, Any]]
) -> None:
    """The demo's disaster-recovery and cost roles show their story, as the issue states them."""
    found = {alert_key(a): a for a in alerts}
    # Copies failing for two days: the newest copy failed, and the newest good one is of a
    # backup more than two days old.
    assert ("AliyunRdsCrossRegionBackupFailing", roles.dr_failing, "") in found, sorted(found)
    copy_ages = by_instance(stack, "aliyun_rds_cross_region_backup_last_success_age_seconds")
    assert copy_ages.get(roles.dr_failing, 0) > 2 * DAY - 6 * 3600
    assert by_instance(stack, "aliyun_rds_cross_region_backup_failed_sets").get(roles.dr_failing)
    # Off where the config requires it.
    assert ("AliyunRdsCrossRegionBackupDisabled", roles.dr_disabled, "") in found, sorted(found)
    assert by_instance(stack, "aliyun_rds_cross_region_backup_enabled").get(roles.dr_disabled) == 0
    # Working copies: on, with a destination, fresh, and no disaster-recovery alert.
    destinations = {
        item["metric"]["instance_id"]: item["metric"]["destination_region"]
        for item in stack.query("aliyun_rds_cross_region_backup_info")
    }
    assert roles.dr_copies and set(roles.dr_copies) <= set(destinations), destinations
    for instance_id in roles.dr_copies:
        assert instance_id in copy_ages, instance_id
        assert not {k for k in found if k[1] == instance_id and "CrossRegion" in k[0]}, instance_id
    # Backups beyond the free quota: billed bytes, and the alert.
    paid = by_instance(stack, "aliyun_rds_backup_storage_paid_bytes")
    for instance_id in roles.paid_storage:
        assert paid.get(instance_id, 0) > 0, instance_id
        assert ("AliyunRdsBackupStoragePaid", instance_id, "") in found, sorted(found)


def test_copy_limit_adds_the_allowance_and_the_refresh(scraped: Stack) -> None:
    """The cross-region copies' limit: the full backup's stale limit, plus 2h, plus the demo's
    refresh of the copies; for every instance whose cross-region settings were read (the roles'
    at least: the exporter spreads its first reads over the refresh)."""
    _, _, roles = build_demo_fleet(scraped.started)
    wanted = {*roles.dr_copies, roles.dr_failing, roles.dr_disabled}
    state: dict[str, Any] = {}

    def consistent() -> bool:
        at = time.time() - 1
        limits = recorded(scraped, COPY_RECORD, at)
        stale = stale_limits(scraped, at)
        read = by_instance(scraped, "aliyun_rds_cross_region_backup_enabled", at)
        expected = {
            i: stale[i] + COPY_ALLOWANCE + REFRESHES["cross_region_backups"]
            for i in read
            if i in stale
        }
        state.update(limits=limits, expected=expected)
        return wanted <= set(read) and limits == pytest.approx(expected)

    try:
        wait_until(consistent, timeout=60, interval=0.5, what="copy limits from the stale limits")
    finally:
        print(f"limits: {state.get('limits')}; expected: {state.get('expected')}")


def test_lag_limit_uses_the_log_backup_interval_or_default(scraped: Stack) -> None:
    """3 x the log backup interval where the policy gives one (SQL Server, as the fleet sets
    it), else 2h; the other engines' policies give none. Plus the refresh of the duty the lag
    came from: the restorable window's where the exporter reads one, else the log files'; none
    where there is no lag (the missing instance)."""
    fleet, _, roles = build_demo_fleet(scraped.started)
    state: dict[str, Any] = {}
    refreshes = {
        item["metric"]["duty"]: float(item["value"][1])
        for item in scraped.query("aliyun_rds_exporter_refresh_seconds")
    }
    assert {duty: refreshes.get(duty) for duty in REFRESHES} == REFRESHES

    def consistent() -> bool:
        at = time.time() - 1
        limits = recorded(scraped, LAG_RECORD, at)
        intervals = by_instance(scraped, "aliyun_rds_backup_policy_log_backup_interval_seconds", at)
        policies = by_instance(scraped, "aliyun_rds_backup_policy_expected_interval_seconds", at)
        window_lags = by_instance(scraped, "aliyun_rds_recovery_point_lag_seconds", at)
        log_ages = by_instance(scraped, "aliyun_rds_log_backup_last_end_age_seconds", at)
        wrong: dict[str, tuple[float | None, float | None]] = {}
        for instance_id, limit in limits.items():
            interval = intervals.get(instance_id, 0.0)
            expected = interval * LAG_MARGIN if interval > 0 else LAG_DEFAULT
            if instance_id in window_lags:
                expected += REFRESHES["recovery_window"]
            elif instance_id in log_ages:
                expected += REFRESHES["log_backups"]
            if limit != pytest.approx(expected):
                wrong[instance_id] = (limit, expected)
        for instance_id, instance in fleet.instances.items():
            if instance.engine != "SQLServer":
                truth = None
            elif instance.policy.log_backup:
                truth = instance.policy.log_interval_minutes * 60.0
            else:  # with each data backup
                truth = policies.get(instance_id)
            if intervals.get(instance_id) != truth:
                wrong[instance_id] = (intervals.get(instance_id), truth)
        state.update(limits=limits, wrong=wrong)
        return set(limits) == instances and set(policies) == set(fleet.instances) and not wrong

    instances = {*fleet.instances, roles.missing}
    try:
        wait_until(consistent, timeout=15, interval=0.5, what="lag limits that follow the policies")
    finally:
        print(f"limits: {state.get('limits')}; wrong (found, expected): {state.get('wrong')}")
    assert state["limits"][roles.sqlserver_logs] == 3 * 1800 + REFRESHES["log_backups"]


def test_exporter_health_alerts_stay_silent(scraped: Stack) -> None:
    names = {alert["labels"]["alertname"] for alert in scraped.alerts()}
    assert not names & {
        "AliyunRdsBackupExporterDown",
        "AliyunRdsBackupExporterAbsent",
        "AliyunRdsBackupExporterDataStale",
    }


# ----- the dashboard ------------------------------------------------------------------------


def dashboard_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from dashboard_panels(panel.get("panels", []))


def dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = []
    for panel in dashboard_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            queries.append((f"{panel['title']} / {target['refId']}", target["expr"]))
    return queries


def substitute(expr: str) -> str:
    for name in sorted(DASHBOARD_VARIABLES, key=len, reverse=True):
        value = DASHBOARD_VARIABLES[name]
        expr = expr.replace("${" + name + "}", value).replace("$" + name, value)
    assert "$" not in expr, f"unknown Grafana variable left in {expr!r}"
    return expr


FALLBACK_ZERO = re.compile(r"\s*or\s+vector\(0\)\s*$")


def has_finite_value(result: list[dict[str, Any]]) -> bool:
    values = [item["value"][1] for item in result if "value" in item]
    values += [v[1] for item in result for v in item.get("values", [])]
    return any(math.isfinite(float(v)) for v in values)


@pytest.fixture(scope="module")
def polled_twice(scraped: Stack) -> Stack:
    """rate() over the poll and API histograms needs a poll Prometheus saw happen."""

    def new_polls() -> bool:
        check_alive(scraped.exporter, scraped.prometheus)
        result = scraped.query(
            "sum(increase(aliyun_rds_backup_collect_duration_seconds_count[1m]))"
        )
        return bool(result) and float(result[0]["value"][1]) > 0

    wait_until(new_polls, timeout=75, interval=1, what="a poll after Prometheus started scraping")
    return scraped


@pytest.mark.parametrize(
    ("panel", "expr"), dashboard_queries(), ids=[name for name, _ in dashboard_queries()]
)
def test_dashboard_query_returns_data(polled_twice: Stack, panel: str, expr: str) -> None:
    query = substitute(expr)
    core = FALLBACK_ZERO.sub("", query)
    # A stat's "or vector(0)" must not be what makes it return data: check the query without it.
    for variant in {query, core}:
        result = polled_twice.query(variant)
        assert result, f"{panel}: no data for {variant}"
        assert has_finite_value(result), f"{panel}: only NaN/Inf for {variant}: {result}"
    end = time.time()
    series = polled_twice.query_range(core, end - 30, end, 5)
    assert series, f"{panel}: no data over the last 30s for {core}"


def test_dashboard_variables_have_values(scraped: Stack) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    pattern = re.compile(r"^label_values\((?P<match>.+),\s*(?P<label>\w+)\)$", re.DOTALL)
    checked = 0
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        definition = variable["query"]["query"]
        found = pattern.match(definition)
        assert found, f"{variable['name']}: unsupported variable query {definition!r}"
        series = scraped.series(substitute(found.group("match")))
        values = {s[found.group("label")] for s in series if s.get(found.group("label"))}
        assert values, f"{variable['name']}: no values for {definition}"
        checked += 1
    assert checked == 4


def test_rules_and_dashboard_use_only_exported_metrics(scraped: Stack) -> None:
    exported = set(scraped._api("/api/v1/label/__name__/values", {}))
    texts = [(REPO / "prometheus" / "rules.yml").read_text(), DASHBOARD.read_text()]
    used = {
        name
        for text in texts
        for name in re.findall(r"(?<![:\w])(aliyun_rds_[a-z_]+)(?![\w:])", text)
    }
    assert used, "no metric names found"
    assert used - exported - NOT_YET_EXPORTED == set()
    # Every metric family the exporter serves has a use somewhere, or is deliberately left out.
    histograms = {
        "aliyun_rds_api_request_duration_seconds",
        "aliyun_rds_backup_collect_duration_seconds",
    }
    assert {h + "_bucket" for h in histograms} <= used
