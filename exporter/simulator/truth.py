"""Ground truth for tests: what the fleet's API answers should say, asked of the fleet directly.

A mixin of :class:`exporter.simulator.fleet.Fleet`, which supplies the hooks declared here.

Whether a success can be restored from is a fact of the fleet (``SimBackup.available``);
whether the API shows it (IsAvail 0) is the simulator's ``unusable_successes`` quirk, which the
fleet does not know. The helpers assume the quirk is on (the default); with it off, pass
``restorable_only=sim.quirks.unusable_successes`` (False).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from exporter.simulator.generator import full_backup_start
from exporter.simulator.jobs import job_of
from exporter.simulator.logbook import LogBook
from exporter.simulator.logchain import Gap
from exporter.simulator.models import SimBackup, SimInstance, SimJob, SimLogFile
from exporter.simulator.restore import LOG_BACKUP_NOT_ENABLED, recovery_window
from exporter.simulator.timefmt import DAY

SNAPSHOT_CHAIN_DAYS = 7  # TotalEcsSnapshotSize: successful snapshots of the last week
JOB_LOOKUP_DAYS = 8  # DescribeBackupTasks by BackupJobId finds jobs that ended this recently
RUNNING_DAYS = 2  # no scheduled backup runs longer than this
INCORRECT_ENGINE = "IncorrectDBInstanceEngine"
READ_ONLY = "ReadDBInstanceNotSupport"


class FleetTruth:
    """Questions about backups, log files, restorable windows and running jobs."""

    seed: int
    _logs: LogBook

    def _require(self, instance_id: str) -> SimInstance:
        raise NotImplementedError

    def _iter_visible(
        self, instance: SimInstance, start: float, end: float, now: float
    ) -> Iterator[SimBackup]:
        raise NotImplementedError

    def _running(self, instance: SimInstance, now: float) -> Iterator[SimBackup]:
        """Backups that started by ``now`` and end after it."""
        raise NotImplementedError

    def stuck_process(self, backup: SimBackup) -> float | None:
        """The Process a stuck backup stays at; None for the others."""
        raise NotImplementedError

    # ----- backups ---------------------------------------------------------------------------

    def _matching(
        self,
        instance_id: str,
        *,
        backup_type: str | None,
        status: str | None,
        since: float,
        now: float,
        restorable_only: bool = False,
        unusable: bool | None = None,
    ) -> Iterable[SimBackup]:
        instance = self._require(instance_id)
        for backup in self._iter_visible(instance, since, now, now):
            if backup_type is not None and backup.backup_type != backup_type:
                continue
            if status is not None and backup.status != status:
                continue
            is_unusable = backup.status == "Success" and not backup.available
            if restorable_only and is_unusable:
                continue
            if unusable is not None and is_unusable != unusable:
                continue
            yield backup

    def newest(
        self,
        instance_id: str,
        backup_type: str | None = "FullBackup",
        *,
        now: float,
        lookback: float = 8 * DAY,
        status: str | None = None,
        restorable_only: bool = True,
    ) -> SimBackup | None:
        """The completed backup with the latest end time among those starting in
        ``[now - lookback, now]``; None when there is none. With ``status="Success"`` and
        ``restorable_only``, successes with IsAvail 0 do not count."""
        found = self._matching(
            instance_id,
            backup_type=backup_type,
            status=status,
            since=now - lookback,
            now=now,
            restorable_only=restorable_only and status == "Success",
        )
        return max(found, key=lambda b: (b.end, b.start, int(b.backup_id)), default=None)

    def newest_success(
        self,
        instance_id: str,
        backup_type: str | None = "FullBackup",
        *,
        now: float,
        lookback: float = 8 * DAY,
        restorable_only: bool = True,
    ) -> SimBackup | None:
        """The newest success that can be restored from (IsAvail 1); with
        ``restorable_only=False``, the newest success of any kind."""
        return self.newest(
            instance_id,
            backup_type,
            now=now,
            lookback=lookback,
            status="Success",
            restorable_only=restorable_only,
        )

    def newest_unusable(
        self,
        instance_id: str,
        backup_type: str | None = "FullBackup",
        *,
        now: float,
        lookback: float = 8 * DAY,
    ) -> SimBackup | None:
        """The newest success that cannot be used to restore (IsAvail 0), or None."""
        found = self._matching(
            instance_id,
            backup_type=backup_type,
            status="Success",
            since=now - lookback,
            now=now,
            unusable=True,
        )
        return max(found, key=lambda b: (b.end, b.start, int(b.backup_id)), default=None)

    def count(
        self,
        instance_id: str,
        *,
        backup_type: str | None = None,
        status: str | None = None,
        since: float,
        now: float,
        unusable: bool | None = None,
    ) -> int:
        """Completed backups starting in ``[since, now]``. ``unusable=True`` counts only
        successes with IsAvail 0, ``False`` everything else, None (default) both."""
        found = self._matching(
            instance_id,
            backup_type=backup_type,
            status=status,
            since=since,
            now=now,
            unusable=unusable,
        )
        return sum(1 for _ in found)

    def next_full_backup(self, instance_id: str, after: float) -> float | None:
        """Start of the first scheduled full backup strictly after ``after`` (PreferredNext-
        BackupTime). Ignores ``stop_backups``: the schedule stays, the backups do not run."""
        instance = self._require(instance_id)
        if not instance.has_backups:
            return None
        first_day = int(max(after, instance.created_at) // DAY)
        for day in range(first_day, first_day + 8):
            start = full_backup_start(self.seed, instance, day)
            if start is not None and start > after and start >= instance.created_at:
                return start
        return None

    def snapshot_chain_bytes(self, instance_id: str, now: float) -> int:
        """TotalEcsSnapshotSize: successful Snapshot backups of the last week, summed."""
        instance = self._require(instance_id)
        recent = self._iter_visible(instance, now - SNAPSHOT_CHAIN_DAYS * DAY, now, now)
        return sum(b.size for b in recent if b.method == "Snapshot" and b.status == "Success")

    # ----- log backups -----------------------------------------------------------------------

    def log_files(self, instance_id: str, start: float, end: float, now: float) -> list[SimLogFile]:
        """What DescribeBinlogFiles or DescribeLogBackupFiles lists: every node's closed files
        whose [begin, end] overlaps (start, end), oldest first."""
        return self._logs.files(self._require(instance_id), start, end, now)

    def log_gaps(self, instance_id: str, since: float, now: float) -> list[Gap]:
        """The holes in the union of [LogBeginTime, LogEndTime] of the files listed between
        ``since`` and ``now`` (every node's), oldest first."""
        return self._logs.holes(self._require(instance_id), since, now)

    def newest_completed_log_end(self, instance_id: str, now: float) -> float | None:
        """LogEndTime of the newest file in backup storage (RemoteStatus Completed)."""
        return self._logs.newest_end(self._require(instance_id), now)

    def recovery_window(
        self,
        instance_id: str,
        now: float,
        *,
        end_at_completed: bool = True,
        begin_at_backup_end: bool = False,
    ) -> tuple[float, float] | str:
        """DescribeLocalAvailableRecoveryTime's (RecoveryBeginTime, RecoveryEndTime), or its
        error code. The keywords follow ``Inferred`` (defaults: the reference's best guess)."""
        instance = self._require(instance_id)
        if instance.engine == "SQLServer":
            return INCORRECT_ENGINE
        if not instance.has_backups:
            return READ_ONLY
        if not instance.policy.log_backup:
            return LOG_BACKUP_NOT_ENABLED
        horizon = max(instance.created_at, now - instance.policy.log_retention_days * DAY)
        fulls = self._matching(
            instance_id,
            backup_type="FullBackup",
            status="Success",
            since=horizon,
            now=now,
            restorable_only=True,
        )
        log_end = self._logs.newest_end(instance, now, completed_only=end_at_completed)
        return recovery_window(
            log_end=log_end,
            gaps=self._logs.gaps_within(instance, horizon, log_end or horizon),
            fulls=fulls,
            horizon=horizon,
            begin_at_backup_end=begin_at_backup_end,
        )

    # ----- running backups -------------------------------------------------------------------

    def running_jobs(self, instance_id: str, now: float) -> list[SimJob]:
        """DescribeBackupTasks' jobs: the backups running at ``now``, oldest first."""
        instance = self._require(instance_id)
        running = sorted(self._running(instance, now), key=lambda b: (b.start, b.backup_id))
        return [job_of(self.seed, b, now, self.stuck_process(b)) for b in running]

    def finished_jobs(self, instance_id: str, since: float, now: float) -> list[SimJob]:
        """Jobs whose backup ended in (since, now], oldest first."""
        instance = self._require(instance_id)
        ended = self._iter_visible(instance, since - RUNNING_DAYS * DAY, now, now)
        found = sorted((b for b in ended if b.end > since), key=lambda b: (b.start, b.backup_id))
        return [job_of(self.seed, b, now, None) for b in found]

    def find_job(self, instance_id: str, job: str, now: float) -> SimJob | None:
        """A job by BackupJobId: running, or finished within the last week or so."""
        recent = self.finished_jobs(instance_id, now - JOB_LOOKUP_DAYS * DAY, now)
        return next(
            (j for j in recent + self.running_jobs(instance_id, now) if j.job_id == job), None
        )
