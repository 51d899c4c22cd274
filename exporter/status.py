"""The fleet at a glance: one row per instance, judged by the rules of the shipped alerts.

Read by the status page, ``/status.json`` and the ``report`` command; computed from the state
the poller left (no API call), at the injected clock's time. The rules are the alerts' own
conditions without their ``for:`` durations: a row turns red as soon as Prometheus would start
counting, not minutes later. The shape of :meth:`Row.as_json` is documented in docs/status.md.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from exporter.config import format_duration
from exporter.duties.backups import INSTANCE_GONE_CODES
from exporter.state import DiscoveryStatus, FleetState, InstanceState, TypeSummary

# As the alert rules: a full backup is stale past 1.5 x the policy's interval, or 60 h when
# the policy is not known (prometheus/rules.yml, AliyunRdsBackupStale).
STALE_FACTOR = 1.5
STALE_FALLBACK = 60 * 3600.0
FULL = "FullBackup"
INCREMENTAL = "IncrementalBackup"
# A throttled answer this recent (in polling intervals) still marks the row.
THROTTLED_FOR_INTERVALS = 2.0
# AliyunRdsBackupExporterDataStale: no successful poll for this long.
DATA_STALE_AFTER = 1800.0
# AliyunRdsLogBackupStuckUploading: a closed log file still uploading after this long.
UPLOADING_TOO_LONG = 3600.0


class Health(str, enum.Enum):
    """A row's verdict, worst first (the page and the report sort by it)."""

    TROUBLE = "trouble"  # a shipped alert's condition holds
    WARNING = "warning"  # worth a look, no alert: throttled, a first read still going back
    PENDING = "pending"  # not polled yet
    OK = "ok"

    @property
    def rank(self) -> int:
        return list(Health).index(self)


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a row is not OK: a stable code for scripts, a line for people."""

    code: str
    text: str
    trouble: bool = True  # False: a warning


@dataclass(frozen=True, slots=True)
class Row:
    instance_id: str
    description: str
    account: str
    region: str
    engine: str
    health: Health
    problems: tuple[Problem, ...]
    full_end: float | None
    """When the newest restorable full backup ended (epoch seconds)."""
    full_age: float | None
    incremental_end: float | None
    incremental_age: float | None
    expected_interval: float | None
    """The backup policy's interval between full backups, when known."""
    stale_after: float
    """The age from which the newest full backup is stale."""
    last_status: str | None
    """``success`` or ``failed``: the newest completed backup of any type."""
    failed_sets: int | None
    """Failed backup sets within the lookback (None before the first poll)."""
    lookback_complete: bool
    collection: str
    """``ok``, ``failing`` or ``pending``: the last DescribeBackups poll."""
    error_code: str | None
    error_message: str | None
    """One line, redacted like the log."""
    next_poll: float | None
    """When its next poll is due (epoch seconds)."""
    recovery_lag: float | None
    """Seconds from the latest point it can be restored to, to now."""
    copy_age: float | None
    """Age of the newest successful cross-region copy."""

    @property
    def sort_key(self) -> tuple[int, str]:
        return (self.health.rank, self.instance_id)

    def as_json(self) -> dict[str, object]:
        return {
            "instance_id": self.instance_id,
            "description": self.description,
            "account": self.account,
            "region": self.region,
            "engine": self.engine,
            "health": self.health.value,
            "problems": [
                {"code": p.code, "text": p.text, "severity": "trouble" if p.trouble else "warning"}
                for p in self.problems
            ],
            "full": _newest(self.full_end, self.full_age),
            "incremental": _newest(self.incremental_end, self.incremental_age),
            "expected_interval_seconds": self.expected_interval,
            "stale_after_seconds": self.stale_after,
            "last_status": self.last_status,
            "failed_sets": self.failed_sets,
            "lookback_complete": self.lookback_complete,
            "collection": {
                "state": self.collection,
                "error_code": self.error_code,
                "error_message": self.error_message,
            },
            "next_poll": self.next_poll,
            "recovery_lag_seconds": self.recovery_lag,
            "cross_region_copy_age_seconds": self.copy_age,
        }


def _newest(end: float | None, age: float | None) -> dict[str, float] | None:
    return None if end is None or age is None else {"end": end, "age_seconds": age}


def fleet_rows(state: FleetState, now: float, monotonic: float, interval: float) -> list[Row]:
    """Every instance's row, trouble first. ``now`` is wall time, ``monotonic`` the same
    instant on the monotonic clock (the poll schedule's), ``interval`` the polling interval."""
    rows = [instance_row(i, now, monotonic, interval) for i in list(state.instances.values())]
    rows.sort(key=lambda row: row.sort_key)
    return rows


def instance_row(instance: InstanceState, now: float, monotonic: float, interval: float) -> Row:
    target = instance.target
    summaries = instance.summaries if instance.baseline_done else {}
    full, incremental = summaries.get(FULL), summaries.get(INCREMENTAL)
    full_end = _success_end(full)
    incremental_end = _success_end(incremental)
    policy = instance.policy
    expected = None
    if policy is not None and policy.schedule is not None and policy.schedule.expected_interval > 0:
        expected = policy.schedule.expected_interval
    stale_after = expected * STALE_FACTOR if expected is not None else STALE_FALLBACK
    problems = list(_problems(instance, now, interval, full_end, stale_after))
    if any(problem.trouble for problem in problems):
        health = Health.TROUBLE
    elif problems:
        health = Health.WARNING
    elif not instance.polled:
        health = Health.PENDING
    else:
        health = Health.OK
    completed = [s.last_completed for s in summaries.values() if s.last_completed is not None]
    newest = max(completed, key=lambda b: (b.end or b.start or 0.0, b.backup_id), default=None)
    copies = instance.copies.summary
    return Row(
        instance_id=target.instance_id,
        description=target.description,
        account=target.account,
        region=target.region,
        engine=instance.known_engine,
        health=health,
        problems=tuple(problems),
        full_end=full_end,
        full_age=_age(now, full_end),
        incremental_end=incremental_end,
        incremental_age=_age(now, incremental_end),
        expected_interval=expected,
        stale_after=stale_after,
        last_status=None if newest is None else ("success" if newest.succeeded else "failed"),
        failed_sets=sum(s.failed_sets for s in summaries.values())
        if instance.baseline_done
        else None,
        lookback_complete=instance.lookback_complete,
        collection=(
            "pending"
            if instance.collect_success is None
            else ("ok" if instance.collect_success else "failing")
        ),
        error_code=instance.last_error,
        error_message=instance.last_error_message,
        next_poll=None if instance.next_poll is None else now + instance.next_poll - monotonic,
        recovery_lag=_recovery_lag(instance, now),
        copy_age=None if copies is None else _age(now, copies.last_success_end),
    )


def _problems(
    instance: InstanceState, now: float, interval: float, full_end: float | None, limit: float
) -> Iterable[Problem]:
    """The alerts' conditions that hold for the instance, then the warnings."""
    if instance.collect_success is False:
        code = instance.last_error or "unknown"
        if code in INSTANCE_GONE_CODES:
            yield Problem("missing", f"the API does not know this instance ({code})")
        else:
            yield Problem("collection_failed", f"cannot read its backups: {code}")
    if full_end is not None and now - full_end > limit:
        yield Problem(
            "stale",
            f"newest restorable full backup is {_duration(now - full_end)} old "
            f"(limit {_duration(limit)})",
        )
    # Where the collector exports backup_sets{FullBackup}, which the alert needs: not for a
    # read-only replica that has never had a full backup record.
    full_sets = FULL in instance.summaries or FULL in instance.failures_total
    if instance.baseline_done and instance.lookback_complete and full_end is None and full_sets:
        yield Problem("none_in_lookback", "no restorable full backup within the lookback")
    for backup_type, summary in sorted(instance.summaries.items()):
        last = summary.last_completed
        if instance.baseline_done and last is not None and last.failed:
            yield Problem("last_failed", f"the last {backup_type} failed")
    if instance.baseline_done:
        yield from _unrestorable(instance, now, limit)
    last_good = instance.last_collect_success
    if last_good is not None and now - last_good > DATA_STALE_AFTER:
        yield Problem("data_stale", f"no successful poll for {_duration(now - last_good)}")
    recovery = instance.recovery
    if recovery is not None and recovery.broken is not None:
        yield Problem("recovery_broken", f"point-in-time recovery is broken ({recovery.broken})")
    logs = instance.log_chain.summary
    if logs is not None and logs.gap_seconds > 0:
        yield Problem(
            "log_gap", f"log backups leave {_duration(logs.gap_seconds)} uncovered in the lookback"
        )
    if (
        logs is not None
        and logs.oldest_uploading_end is not None
        and now - logs.oldest_uploading_end > UPLOADING_TOO_LONG
    ):
        stuck = _duration(now - logs.oldest_uploading_end)
        yield Problem("log_stuck_uploading", f"a log file has been uploading for {stuck}")
    copies = instance.copies.summary
    copying_off = instance.cross_region is not None and not instance.cross_region.enabled
    if (
        copies is not None
        and copies.last_failure_end is not None
        and (copies.last_success_end is None or copies.last_failure_end > copies.last_success_end)
        and not copying_off
    ):
        yield Problem("copy_failed", "the newest cross-region copy failed")
    throttled = instance.throttled_at
    if throttled is not None and now - throttled <= THROTTLED_FOR_INTERVALS * interval:
        yield Problem("throttled", "the API throttled its calls in the last polls", trouble=False)


def _unrestorable(instance: InstanceState, now: float, limit: float) -> Iterable[Problem]:
    """AliyunRdsBackupScheduleStopped and AliyunRdsBackupUnusable, on the same times as
    their series (each backup's end)."""
    complete = instance.lookback_complete
    full = instance.summaries.get(FULL)
    if full is not None and full.last_success is not None:
        automated = full.last_automated.end if full.last_automated is not None else None
        # Not when the scheduled one is the newest: `stale` says it then (both alerts fire).
        if automated is not None and automated != _success_end(full) and now - automated > limit:
            yield Problem(
                "schedule_stopped",
                f"the newest scheduled full backup is {_duration(now - automated)} old "
                f"(limit {_duration(limit)})",
            )
        elif automated is None and complete:
            yield Problem(
                "schedule_stopped", "no scheduled full backup within the lookback, only manual"
            )
    for backup_type, summary in sorted(instance.summaries.items()):
        unusable = summary.last_unusable.end if summary.last_unusable is not None else None
        if unusable is None:
            continue
        restorable = _success_end(summary)
        if (restorable is None and complete) or (restorable is not None and unusable > restorable):
            yield Problem(
                "unusable", f"the newest successful {backup_type} cannot be restored from"
            )


def _recovery_lag(instance: InstanceState, now: float) -> float | None:
    """As the alerts read it: to the restorable window's end, else to the newest log backup's
    end (engines without a window, SQL Server)."""
    recovery = instance.recovery
    if recovery is not None and recovery.window is not None:
        return _age(now, recovery.window.end)
    logs = instance.log_chain.summary
    return None if logs is None else _age(now, logs.newest_end)


def _success_end(summary: TypeSummary | None) -> float | None:
    if summary is None or summary.last_success is None:
        return None
    return summary.last_success.end


def _age(now: float, end: float | None) -> float | None:
    return None if end is None else max(0.0, now - end)


def _duration(seconds: float) -> str:
    """Like ``2d3h5m``: to the minute, enough for a glance."""
    return format_duration(round(seconds / 60) * 60 if seconds >= 60 else round(seconds))


def discovery_problems(statuses: Iterable[DiscoveryStatus]) -> list[str]:
    """A line per discovery entry whose last refresh failed: its instances may be missing."""
    return [
        f"discovery {d.account}/{d.region}: cannot list instances: {d.last_error or 'unknown'}"
        for d in statuses
        if d.success is False
    ]


def document(
    rows: list[Row],
    discovery: Iterable[DiscoveryStatus] = (),
    *,
    now: float,
    version: str,
    ready: bool,
) -> dict[str, object]:
    """What ``/status.json`` serves and ``report --output json`` prints (docs/status.md)."""
    counts = dict.fromkeys((health.value for health in Health), 0)
    for row in rows:
        counts[row.health.value] += 1
    return {
        "version": version,
        "generated_at": now,
        "ready": ready,
        "counts": counts,
        "discovery": [
            {
                "account": d.account,
                "region": d.region,
                "state": "pending" if d.success is None else ("ok" if d.success else "failing"),
                "error_code": d.last_error,
                "instances": d.instances,
            }
            for d in discovery
        ],
        "instances": [row.as_json() for row in rows],
    }
