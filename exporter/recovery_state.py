"""What the exporter knows of an instance's recoverability: plain data folded from the
recoverability duties, and pure functions over it. No I/O.

- The restorable window, or the code with which the API says point-in-time recovery is broken.
- The log chain: the log backup files within the lookback, by file, and what they say: the newest
  file in backup storage, the time no file covers (gaps), files still uploading, bytes.
- Running backups: DescribeBackupTasks has no times, so the exporter keeps when it first saw each
  job and when its progress last moved.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from exporter.aliyun.recovery import BackupJob, LogFile, RecoveryWindow

# Codes of DescribeLocalAvailableRecoveryTime that are answers, not failures: recovery is broken.
RECOVERY_BROKEN_CODES = frozenset(
    {"LogBackupNotEnabled", "InvalidBinlog.NotFound", "InvalidBackup.NotFound"}
)


@dataclass(frozen=True)
class RecoveryStatus:
    """The last answer of DescribeLocalAvailableRecoveryTime: a window, or why there is none."""

    window: RecoveryWindow | None = None
    broken: str | None = None  # one of RECOVERY_BROKEN_CODES


@dataclass(frozen=True)
class LogSummary:
    """What the log chain within the lookback says (recomputed after each read)."""

    newest_end: float | None
    """LogEndTime of the newest file in backup storage."""
    gap_seconds: float
    """Time between the first file and the newest that no file covers."""
    uploading: int
    """Files not yet in backup storage."""
    oldest_uploading_end: float | None
    """When the oldest of them closed: its upload started then."""
    stored_bytes: int
    """FileSize of the files in backup storage, summed."""


@dataclass
class LogChain:
    files: dict[tuple[str, str, float, float], LogFile] = field(default_factory=dict)
    watermark: float | None = None
    """End of the last fully successful read (epoch seconds)."""
    summary: LogSummary | None = None

    def merge(self, files: Iterable[LogFile], cutoff: float) -> None:
        """Folds in files that end at or after ``cutoff``; a file read again replaces the
        stored one (its upload may have completed since)."""
        for file in files:
            if file.end >= cutoff:
                self.files[file.key] = file

    def prune(self, cutoff: float) -> None:
        for key in [key for key, file in self.files.items() if file.end < cutoff]:
            del self.files[key]

    def oldest_uploading_begin(self) -> float | None:
        """Where a read must start to see whether the files still uploading are done."""
        return min((f.begin for f in self.files.values() if not f.completed), default=None)


def summarize_log_chain(files: Iterable[LogFile], tolerance: float) -> LogSummary:
    """The chain's newest stored end, its gaps, its uploads and its bytes.

    Coverage is the union of [LogBeginTime, LogEndTime] over the files of every node: a time
    that any node's backed-up log covers can be restored to, whichever node was primary then
    (the standby's copies cover the same times). Files still uploading count as coverage too:
    they are reported as uploading, not as a gap. ``tolerance``: how far apart two files may
    be and still be contiguous (SQL Server lists whole minutes).
    """
    ordered = sorted(files, key=lambda f: (f.begin, f.end))
    gap = 0.0
    reach: float | None = None
    for file in ordered:
        if reach is not None and file.begin > reach + tolerance:
            gap += file.begin - reach
        reach = file.end if reach is None else max(reach, file.end)
    stored = [f for f in ordered if f.completed]
    uploading = [f for f in ordered if not f.completed]
    return LogSummary(
        newest_end=max((f.end for f in stored), default=None),
        gap_seconds=gap,
        uploading=len(uploading),
        oldest_uploading_end=min((f.end for f in uploading), default=None),
        stored_bytes=sum(f.size_bytes or 0 for f in stored),
    )


@dataclass(frozen=True)
class RunningJob:
    job_id: str
    first_seen: float
    """Wall time the exporter first saw it (the API gives no start time)."""
    progress: float | None
    progress_since: float
    """Wall time its progress last moved (or it was first seen)."""
    status: str
    mode: str
    seen_after: float | None
    """When the listing before the one that first showed it was taken: the job started
    after that (None when it was already there at the exporter's first listing)."""


@dataclass(frozen=True)
class JobsSummary:
    """The running backups after the last DescribeBackupTasks: the one that has run longest."""

    running: int
    oldest_first_seen: float | None
    progress: float | None  # of the one running longest
    stalled_since: float | None  # the earliest time a running job's progress last moved
    failed: int  # jobs the API lists as Failed


def track_jobs(
    known: dict[str, RunningJob],
    listed: Iterable[BackupJob],
    now: float,
    previous_listing: float | None,
) -> tuple[dict[str, RunningJob], list[RunningJob]]:
    """The jobs now running, with when each was first seen and its progress last moved, and
    the jobs that are no longer listed (finished, or failed and gone)."""
    running: dict[str, RunningJob] = {}
    for job in listed:
        before = known.get(job.job_id)
        if before is None:
            running[job.job_id] = RunningJob(
                job.job_id, now, job.progress, now, job.status, job.mode, previous_listing
            )
            continue
        moved = job.progress != before.progress
        running[job.job_id] = RunningJob(
            job.job_id,
            before.first_seen,
            job.progress,
            now if moved else before.progress_since,
            job.status,
            job.mode,
            before.seen_after,
        )
    gone = [job for job_id, job in known.items() if job_id not in running]
    return running, gone


def summarize_jobs(jobs: dict[str, RunningJob]) -> JobsSummary:
    active = [job for job in jobs.values() if job.status != "Failed"]
    oldest = min(active, key=lambda job: (job.first_seen, job.job_id), default=None)
    return JobsSummary(
        running=len(active),
        oldest_first_seen=oldest.first_seen if oldest is not None else None,
        progress=oldest.progress if oldest is not None else None,
        stalled_since=min((job.progress_since for job in active), default=None),
        failed=len(jobs) - len(active),
    )
