"""What the exporter knows of an instance's disaster-recovery copies: the copies of its backups
in another region within the lookback (DescribeCrossRegionBackups), read behind a watermark
like the backups, and what they sum up to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from exporter.aliyun.copies import CrossCopy
from exporter.aliyun.recovery import RecoveryWindow


@dataclass(frozen=True, slots=True)
class CopiesSummary:
    """The copies within the lookback."""

    last_success_end: float | None  # BackupEndTime of the newest copy that succeeded
    last_failure_end: float | None  # ... and of the newest that failed
    sets: int
    failed_sets: int
    window: RecoveryWindow | None = None
    """The times a restore from the newest good copy can reach (MySQL on local disks)."""
    broken: str | None = None
    """Why the newest good copy cannot be restored, as the API says it."""


@dataclass(slots=True)
class CopyLedger:
    """Copies by CrossBackupId (a few per day at most: one per full backup)."""

    copies: dict[str, CrossCopy] = field(default_factory=dict)
    watermark: float | None = None
    """End of the last read that listed every window."""
    summary: CopiesSummary | None = None
    window_supported: bool | None = None
    """Whether the API gives a copy's restorable window for this instance (learned once)."""
    not_supported: bool = False
    """The listing answered CrossBackupNotSupport (logged once, until it lists again)."""
    window_error: str | None = None
    """The code of the last failure to ask for that window (logged once per change)."""

    def merge(self, copies: Iterable[CrossCopy], cutoff: float) -> None:
        """Takes in copies of backups that ended at or after ``cutoff``; one listed again
        replaces its record (a copy may fail or succeed after a retry)."""
        for copy in copies:
            if copy.end >= cutoff:
                self.copies[copy.copy_id] = copy

    def prune(self, cutoff: float) -> None:
        self.copies = {key: c for key, c in self.copies.items() if c.end >= cutoff}

    def newest_good(self) -> CrossCopy | None:
        good = [c for c in self.copies.values() if c.succeeded]
        return max(good, key=lambda c: (c.end, c.copy_id), default=None)

    def summarize(
        self, window: RecoveryWindow | None = None, broken: str | None = None
    ) -> CopiesSummary:
        good = [c.end for c in self.copies.values() if c.succeeded]
        bad = [c.end for c in self.copies.values() if not c.succeeded]
        return CopiesSummary(
            last_success_end=max(good, default=None),
            last_failure_end=max(bad, default=None),
            sets=len(self.copies),
            failed_sets=len(bad),
            window=window,
            broken=broken,
        )
