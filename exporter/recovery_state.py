"""What the exporter knows of an instance's recoverability: plain data folded from the
recoverability duties, and pure functions over it. No I/O.

- The restorable window, or the code with which the API says point-in-time recovery is broken.
- The log chain: the log backup files within the lookback, by file, and what they say: the newest
  file in backup storage, the time no file covers (gaps), files still uploading, bytes.
- Running backups: DescribeBackupTasks has no times, so the exporter keeps when it first saw each
  job and when its progress last moved.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field

from exporter.aliyun.recovery import BackupJob, LogFile, RecoveryWindow

# Codes of DescribeLocalAvailableRecoveryTime that are answers, not failures: recovery is broken.
RECOVERY_BROKEN_CODES = frozenset(
    {"LogBackupNotEnabled", "InvalidBinlog.NotFound", "InvalidBackup.NotFound"}
)


# DescribeBackupTasks lists a job as Finished for a while after it ends (inferred).
FINISHED = "Finished"


@dataclass(frozen=True, slots=True)
class RecoveryStatus:
    """The last answer of DescribeLocalAvailableRecoveryTime: a window, or why there is none."""

    window: RecoveryWindow | None = None
    broken: str | None = None  # one of RECOVERY_BROKEN_CODES


@dataclass(frozen=True, slots=True)
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


HOUR = 3600.0


@dataclass(slots=True)
class HourlyBytes:
    """Bytes of log files by the hour their file ended: a sum that drops its oldest hours as
    they leave the lookback. Eight bytes an hour, rather than a record per file."""

    first_hour: int = 0
    # Four bytes an hour while every hour's sum fits (4 GiB of logs an hour), eight after.
    totals: array[int] = field(default_factory=lambda: array("I"))

    def add(self, end: float, size: int) -> None:
        hour = int(end // HOUR)
        totals = self.totals
        if not totals:
            self.first_hour = hour
        if hour < self.first_hour:  # folded out of order: rare, and bounded by the lookback
            totals[0:0] = array(totals.typecode, bytes(totals.itemsize * (self.first_hour - hour)))
            self.first_hour = hour
        index = hour - self.first_hour
        if index >= len(totals):
            missing = index + 1 - len(totals)
            totals.extend(array(totals.typecode, bytes(totals.itemsize * missing)))
        total = totals[index] + size
        if totals.typecode != "q" and not 0 <= total <= 0xFFFFFFFF:
            totals = self.totals = array("q", totals)
        totals[index] = total

    def prune(self, cutoff: float) -> None:
        """Drops the hours that end at or before ``cutoff``."""
        drop = min(len(self.totals), int(cutoff // HOUR) - self.first_hour)
        if drop > 0:
            del self.totals[:drop]
            self.first_hour += drop

    def total(self) -> int:
        return sum(self.totals)


@dataclass(slots=True)
class LogChain:
    """The log backup files within the lookback, kept compact: a record only for each file a
    later read may list again (it ends at or after ``folded_until``, or is still uploading:
    reads start at the oldest of those to see them complete); the older ones folded into the
    time they cover, their newest end and their bytes. The log files of 10,000 instances over
    eight days are millions; their records would be gigabytes."""

    files: dict[tuple[str, str, float, float], LogFile] = field(default_factory=dict)
    folded_until: float | None = None
    """Files in backup storage ending before this are in the fields below; listed again,
    they are ignored."""
    coverage: list[tuple[float, float]] = field(default_factory=list)
    """The times the folded files cover: disjoint intervals, in order."""
    folded_newest_end: float | None = None
    folded_bytes: HourlyBytes = field(default_factory=HourlyBytes)
    watermark: float | None = None
    """End of the last fully successful read (epoch seconds)."""
    summary: LogSummary | None = None

    def merge(
        self,
        files: Iterable[LogFile],
        cutoff: float,
        latest: float,
        listed: set[tuple[str, str, float, float]] | None = None,
    ) -> int:
        """Takes in files that end at or after ``cutoff``; a file read again replaces its
        record (its upload may have completed since), one already folded is left alone.
        Files ending after ``latest`` (in the future) cannot be true: they are left out and
        counted (returned). The keys of the files taken go into ``listed``."""
        implausible = 0
        for file in files:
            key = file.key
            if file.end > latest:
                implausible += 1
            elif file.end >= cutoff and (
                key in self.files or self.folded_until is None or file.end >= self.folded_until
            ):
                self.files[key] = file
                if listed is not None:
                    listed.add(key)
        return implausible

    def uploading_keys(self) -> set[tuple[str, str, float, float]]:
        return {key for key, file in self.files.items() if not file.completed}

    def drop(self, keys: Iterable[tuple[str, str, float, float]]) -> None:
        for key in keys:
            self.files.pop(key, None)

    def fold(self, horizon: float, tolerance: float) -> None:
        """Folds the stored files that no later read will list (those in backup storage that
        end before ``horizon``) into the coverage, the newest end and the bytes."""
        done = [f for f in self.files.values() if f.completed and f.end < horizon]
        for file in sorted(done, key=lambda f: (f.begin, f.end)):
            del self.files[file.key]
            self.coverage = add_interval(self.coverage, file.begin, file.end, tolerance)
            self.folded_bytes.add(file.end, file.size_bytes or 0)
            if self.folded_newest_end is None or file.end > self.folded_newest_end:
                self.folded_newest_end = file.end
        if self.folded_until is None or horizon > self.folded_until:
            self.folded_until = horizon

    def prune(self, cutoff: float) -> None:
        # A new dict, not deletions: a dict never shrinks, and the one that held a whole
        # window's files during a first read would keep that table (a few KB) for ever.
        self.files = {key: file for key, file in self.files.items() if file.end >= cutoff}
        self.coverage = [(begin, end) for begin, end in self.coverage if end >= cutoff]
        self.folded_bytes.prune(cutoff)

    def oldest_uploading_begin(self) -> float | None:
        """Where a read must start to see whether the files still uploading are done."""
        return min((f.begin for f in self.files.values() if not f.completed), default=None)

    def summarize(self, tolerance: float) -> LogSummary:
        folded = LogSummary(
            newest_end=self.folded_newest_end,
            gap_seconds=0.0,
            uploading=0,
            oldest_uploading_end=None,
            stored_bytes=self.folded_bytes.total(),
        )
        return summarize_log_chain(self.files.values(), tolerance, self.coverage, folded)


def add_interval(
    intervals: list[tuple[float, float]], begin: float, end: float, tolerance: float
) -> list[tuple[float, float]]:
    """``intervals`` (disjoint, in order) with [begin, end] added; intervals closer than
    ``tolerance`` join. Files are folded in time order, so this is nearly always an append."""
    if intervals and begin >= intervals[-1][0]:
        last_begin, last_end = intervals[-1]
        if begin <= last_end + tolerance:
            intervals[-1] = (last_begin, max(last_end, end))
        else:
            intervals.append((begin, end))
        return intervals
    merged: list[tuple[float, float]] = []
    for b, e in sorted([*intervals, (begin, end)]):
        if merged and b <= merged[-1][1] + tolerance:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((b, e))
    return merged


def summarize_log_chain(
    files: Iterable[LogFile],
    tolerance: float,
    coverage: Iterable[tuple[float, float]] = (),
    folded: LogSummary | None = None,
) -> LogSummary:
    """The chain's newest stored end, its gaps, its uploads and its bytes: of ``files``, plus
    what was folded before (``coverage``, and ``folded``'s newest end and bytes).

    Coverage is the union of [LogBeginTime, LogEndTime] over the files of every node: a time
    that any node's backed-up log covers can be restored to, whichever node was primary then
    (the standby's copies cover the same times). Files still uploading count as coverage too:
    they are reported as uploading, not as a gap. ``tolerance``: how far apart two files may
    be and still be contiguous (SQL Server lists whole minutes).
    """
    files = list(files)
    spans = sorted([*coverage, *((f.begin, f.end) for f in files)])
    gap = 0.0
    reach: float | None = None
    for begin, end in spans:
        if reach is not None and begin > reach + tolerance:
            gap += begin - reach
        reach = end if reach is None else max(reach, end)
    stored = [f for f in files if f.completed]
    uploading = [f for f in files if not f.completed]
    ends = [f.end for f in stored]
    if folded is not None and folded.newest_end is not None:
        ends.append(folded.newest_end)
    return LogSummary(
        newest_end=max(ends, default=None),
        gap_seconds=gap,
        uploading=len(uploading),
        oldest_uploading_end=min((f.end for f in uploading), default=None),
        stored_bytes=sum(f.size_bytes or 0 for f in stored)
        + (folded.stored_bytes if folded is not None else 0),
    )


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
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
    the jobs that are no longer running (listed as Finished, no longer listed, or failed and
    gone)."""
    running: dict[str, RunningJob] = {}
    for job in listed:
        before = known.get(job.job_id)
        if job.status == FINISHED:
            continue  # if it was running, it is gone below; if not, it ended unseen
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
