"""What the exporter knows about each instance: plain data, folded from polls, no I/O.

The poller writes here; the collector reads the summaries at scrape time. Backups are kept by
BackupId within the lookback, so memory is bounded by the number of instances, not by time.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from exporter.aliyun.copies import CrossRegionPolicy, StorageUsage
from exporter.aliyun.models import Backup, SkippedRecord
from exporter.dr_state import CopyLedger
from exporter.policy import PolicySummary
from exporter.recovery_state import JobsSummary, LogChain, RecoveryStatus, RunningJob
from exporter.schedule import floor_minute

# Series for these types exist from the first successful poll on, so a counter's first
# increment is visible to increase() instead of appearing already at 1.
STANDARD_BACKUP_TYPES = ("FullBackup", "IncrementalBackup")
# DBInstanceType of a read-only replica: it keeps no backups (and no backup policy) of its own.
READ_ONLY = "Readonly"
# A record dated further ahead of our clock than this cannot be true (clocks disagree by
# seconds, not minutes): folded in, a backup "from the year 2999" would look fresh for ever.
CLOCK_SKEW = 600.0
# No RDS backup is older than this (2010-01-01, before the service existed).
EARLIEST_BACKUP = 1_262_304_000.0
# Skipped records remembered per instance; beyond this the oldest are forgotten, so a peer
# that sends endless odd records cannot grow the memory.
MAX_SKIPPED = 1000


class Source(str, enum.Enum):
    """Where a target comes from: the configuration's static list, or discovery."""

    STATIC = "static"
    DISCOVERY = "discovery"


@dataclass(frozen=True, slots=True)
class Target:
    """One instance to poll, and the labels it carries on the info metric."""

    instance_id: str
    region: str
    account: str = "default"
    source: Source = Source.STATIC
    labels: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    engine: str = ""  # from discovery; backups tell the poller too
    engine_version: str = ""
    instance_type: str = ""  # DBInstanceType from discovery: Primary, Readonly, ...
    created_at: float | None = None  # CreateTime from discovery: no backup can be older
    retiring: bool = False
    """Discovery no longer finds it; kept (and polled) until its grace period ends."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", Source(self.source))  # "static" works too


@dataclass(frozen=True, slots=True)
class TypeSummary:
    """The newest backups of one backup type, as the collector renders them."""

    last_success: Backup | None
    """The newest *restorable* backup: Success, and IsAvail not 0."""
    last_completed: Backup | None
    last_failure: Backup | None
    sets: int
    failed_sets: int
    last_unusable: Backup | None = None
    """The newest Success with IsAvail 0: finished, but cannot be restored from."""
    unusable_sets: int = 0
    last_automated: Backup | None = None
    """The newest restorable backup taken by the schedule (BackupMode not Manual)."""


def backup_time(backup: Backup) -> float:
    """When a backup finished, or started if the end is unknown; orders 'newest'."""
    if backup.end is not None:
        return backup.end
    return backup.start if backup.start is not None else 0.0


def started_at(backup: Backup) -> float:
    """When a backup started (else ended): the time the lookback and the API's filter use."""
    if backup.start is not None:
        return backup.start
    return backup.end if backup.end is not None else 0.0


def summarize_backups(backups: Iterable[Backup]) -> dict[str, TypeSummary]:
    grouped: dict[str, list[Backup]] = {}
    for backup in backups:
        grouped.setdefault(backup.backup_type, []).append(backup)
    summaries: dict[str, TypeSummary] = {}
    for backup_type, items in grouped.items():
        completed = [b for b in items if b.succeeded or b.failed]
        restorable = [b for b in completed if b.restorable]
        unusable = [b for b in completed if b.unusable]
        failures = [b for b in completed if b.failed]
        summaries[backup_type] = TypeSummary(
            last_success=max(restorable, key=_newest_key, default=None),
            last_completed=max(completed, key=_newest_key, default=None),
            last_failure=max(failures, key=_newest_key, default=None),
            sets=len(completed),
            failed_sets=len(failures),
            last_unusable=max(unusable, key=_newest_key, default=None),
            unusable_sets=len(unusable),
            last_automated=max(
                (b for b in restorable if b.automated), key=_newest_key, default=None
            ),
        )
    return summaries


def implausible(backup: Backup, now: float, not_before: float) -> str | None:
    """Why a readable record still cannot be true, or None: dated in the future beyond the
    clock-skew allowance, or before the instance (or RDS) could have made it."""
    if any(t is not None and t > now + CLOCK_SKEW for t in (backup.start, backup.end)):
        return "dated in the future"
    if backup.start is not None and backup.start < not_before:
        return "dated before the instance existed"
    return None


def _newest_key(backup: Backup) -> tuple[float, str]:
    # The id breaks ties so the choice does not depend on the order the API listed them in.
    return (backup_time(backup), backup.backup_id)


@dataclass(slots=True)
class DutyStatus:
    """How one API duty (exporter.duties) is doing for one instance."""

    due: float = 0.0
    """Monotonic time it is next due (duties that run at every poll ignore it)."""
    ran: bool = False
    """It finished once, successfully or not."""
    error: str | None = None
    """The code of its last failure; None after a success. Errors are logged once per change."""
    succeeded: float | None = None
    """Monotonic time of its last run that did not fail."""
    failing: bool = False
    """Its last run failed (``error`` may also hold a code that is not a failure)."""


@dataclass(slots=True)
class InstanceState:
    target: Target
    backups: dict[str, Backup] = field(default_factory=dict)
    summaries: dict[str, TypeSummary] = field(default_factory=dict)
    failures_total: dict[str, int] = field(default_factory=dict)
    baseline_done: bool = False
    """True once the newest-first search of a first poll has ended (the newest backups are
    known): its series appear, and failures first seen after that by a poll are counted."""
    watermark: float | None = None
    """End of the last fully successful poll (epoch seconds, minute-aligned)."""
    covered_from: float | None = None
    """Start of the oldest window read: the backups from here to the watermark are known. The
    first poll moves it back until the newest backups are found, the backfill to the lookback."""
    lookback_complete: bool = False
    """The reads reach back the whole lookback: counts of sets and failures are whole."""
    reread: dict[tuple[float, float], None] = field(default_factory=dict)
    """Windows (start, end) whose records had to be skipped: read again, at most every
    ``REREAD_EVERY``, until they can be read or leave the lookback (a record damaged on the
    way is not lost)."""
    reread_after: float = 0.0
    """Wall time from which those windows are due to be read again."""
    snapshot_chain_bytes: int | None = None
    engine: str = ""
    engine_version: str = ""
    sql_server_by_answer: bool | None = None
    """With no engine known (a static instance without backups in the lookback): whether
    DescribeLocalAvailableRecoveryTime said it is SQL Server (IncorrectDBInstanceEngine)."""
    polled: bool = False
    """True once a poll finished, successfully or not (readiness)."""
    collect_success: bool | None = None
    last_collect_success: float | None = None
    last_error: str | None = None
    last_error_message: str | None = None
    """The last poll's failure in one line, redacted (as logged); None after a success."""
    next_poll: float | None = None
    """Monotonic time its next poll is due (the status page shows it)."""
    throttled_at: float | None = None
    """Wall time the API last throttled a call about it, retried or not."""
    policy: PolicySummary | None = None
    """The last DescribeBackupPolicy answer that could be read; kept when a refresh fails."""
    recovery: RecoveryStatus | None = None
    """The last answer of DescribeLocalAvailableRecoveryTime (a window, or why there is none)."""
    log_chain: LogChain = field(default_factory=LogChain)
    jobs: dict[str, RunningJob] = field(default_factory=dict)
    """Running backups by BackupJobId (DescribeBackupTasks), with when they were first seen."""
    jobs_summary: JobsSummary | None = None
    jobs_listed: float | None = None
    """Wall time of the last successful DescribeBackupTasks."""
    read_back_from: float | None = None
    """A backup that ran long has finished: the next backups poll reads back to here."""
    cross_region: CrossRegionPolicy | None = None
    """The last DescribeInstanceCrossBackupPolicy answer (disabled too when not supported)."""
    copies: CopyLedger = field(default_factory=CopyLedger)
    """Its copies in another region (DescribeCrossRegionBackups)."""
    storage: StorageUsage | None = None
    """The last DescribeResourceUsage answer."""
    duties: dict[str, DutyStatus] = field(default_factory=dict)
    """Each API duty's schedule and last outcome, by duty name."""
    skipped: dict[str, float] = field(default_factory=dict)
    """Records that could not be folded in, by key, with the wall time they were last read."""

    @property
    def known_engine(self) -> str:
        """The engine, from its backups or from discovery; "" until one of them said."""
        return self.engine or self.target.engine

    @property
    def is_sql_server(self) -> bool | None:
        """From its engine, else from the API's answers; None while neither says."""
        engine = self.known_engine
        if engine:
            return engine.lower() == "sqlserver"
        return self.sql_server_by_answer

    def duty(self, name: str) -> DutyStatus:
        """The status of a duty, created at its first run."""
        status = self.duties.get(name)
        if status is None:
            status = self.duties[name] = DutyStatus()
        return status

    @property
    def not_before(self) -> float:
        """The earliest time a backup of this instance can have started."""
        created = self.target.created_at
        if created is None:
            return EARLIEST_BACKUP
        return max(EARLIEST_BACKUP, created - CLOCK_SKEW)

    def note_skipped(self, record: SkippedRecord, now: float) -> bool:
        """Remembers a skipped record; True the first time it is seen (log it then)."""
        new = record.key not in self.skipped
        if new and len(self.skipped) >= MAX_SKIPPED:
            del self.skipped[min(self.skipped, key=self.skipped.__getitem__)]
        self.skipped[record.key] = now
        return new

    def merge(self, backups: Iterable[Backup], cutoff: float, *, older: bool = False) -> int:
        """Folds in backups that started at or after ``cutoff``; returns how many were new.

        A backup read again (overlapping windows, a redone poll) replaces the stored record, so
        a field the API got wrong once is corrected by the next read, but it never counts again:
        a failure first seen after the baseline poll counts exactly once. ``older``: read from
        before the first poll's newest window (the search going back, the backfill), so were
        there before the exporter looked: never counted.
        """
        added = 0
        for backup in backups:
            if started_at(backup) < cutoff:
                continue
            previous = self.backups.get(backup.backup_id)
            self.backups[backup.backup_id] = backup
            if backup.engine:
                self.engine = backup.engine
                self.engine_version = backup.engine_version or self.engine_version
            if previous is None:
                added += 1
            elif previous.failed or not backup.failed:
                continue
            # New, or first seen without its status (a bad answer) and now known to have failed.
            if backup.failed and self.baseline_done and not older:
                self.failures_total[backup.backup_type] = (
                    self.failures_total.get(backup.backup_type, 0) + 1
                )
        return added

    def prune(self, cutoff: float) -> None:
        """Forgets backups that started before the lookback, and skipped records not read
        since then."""
        stale = [bid for bid, b in self.backups.items() if started_at(b) < cutoff]
        for backup_id in stale:
            del self.backups[backup_id]
        for key in [key for key, seen in self.skipped.items() if seen < cutoff]:
            del self.skipped[key]

    def lookback_floor(self, now: float, lookback: float) -> float:
        """How far back reads must go at ``now``: the lookback, or the instance's creation."""
        return max(floor_minute(now - lookback), floor_minute(self.not_before))

    def refresh_summaries(self) -> None:
        self.summaries = summarize_backups(self.backups.values())
        if self.baseline_done:
            # A replica gets no zero series for types it never has: "no backup in lookback"
            # would otherwise page for every replica that discovery includes.
            standard = () if self.target.instance_type == READ_ONLY else STANDARD_BACKUP_TYPES
            for backup_type in (*standard, *self.summaries):
                self.failures_total.setdefault(backup_type, 0)


@dataclass
class DiscoveryStatus:
    """One discovery entry's last refresh (DescribeDBInstances for one account and region)."""

    account: str
    region: str
    refreshed: bool = False
    """True once a refresh finished, successfully or not (readiness)."""
    success: bool | None = None
    last_success: float | None = None
    """Wall time of the last successful refresh."""
    instances: int | None = None
    """Instances the last successful refresh found (after filtering)."""
    last_error: str | None = None


@dataclass
class FleetState:
    """Every polled instance by id, and how discovery is doing. The poller and the discovery
    loops write; the collector only reads."""

    instances: dict[str, InstanceState] = field(default_factory=dict)
    discovery: list[DiscoveryStatus] = field(default_factory=list)

    def sync_targets(self, targets: Iterable[Target]) -> list[str]:
        """Makes the instance set match ``targets``; returns the ids that were removed."""
        wanted = {t.instance_id: t for t in targets}
        removed = [iid for iid in self.instances if iid not in wanted]
        for instance_id in removed:
            del self.instances[instance_id]
        for instance_id, target in wanted.items():
            current = self.instances.get(instance_id)
            if current is None:
                self.instances[instance_id] = InstanceState(target=target)
            else:
                current.target = target
        return removed

    @property
    def ready(self) -> bool:
        """Every discovery entry has finished its first refresh and every instance its first
        poll, successfully or not."""
        return all(status.refreshed for status in self.discovery) and all(
            state.polled for state in self.instances.values()
        )
