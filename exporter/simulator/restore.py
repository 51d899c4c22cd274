"""What a point-in-time restore can reach (DescribeLocalAvailableRecoveryTime), from the backups
and the log chain: pure functions, no clock of their own.

A restore starts from a full backup and replays the logs after it, so the window runs from the
oldest usable full backup that the logs still reach without a hole to the end of the newest log
file in backup storage. The reference infers the exact rules; ``Inferred`` switches them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from exporter.simulator.logchain import Gap
from exporter.simulator.models import SimBackup

LOG_BACKUP_NOT_ENABLED = "LogBackupNotEnabled"
BINLOG_NOT_FOUND = "InvalidBinlog.NotFound"
BACKUP_NOT_FOUND = "InvalidBackup.NotFound"


def recovery_window(
    *,
    log_end: float | None,
    gaps: Sequence[Gap],
    fulls: Iterable[SimBackup],
    horizon: float,
    begin_at_backup_end: bool = False,
) -> tuple[float, float] | str:
    """(RecoveryBeginTime, RecoveryEndTime), or the error code that says why there is none.

    ``log_end``: the end of the newest log file that counts (None: there is none); ``gaps``:
    the holes in the chain; ``fulls``: usable full backups; ``horizon``: the oldest time the
    logs are kept for. A backup counts if it starts within the logs' reach and the logs already
    run past its end; a hole after the newest such backup leaves nothing to restore to.
    """
    if log_end is None:
        return BINLOG_NOT_FOUND
    usable = sorted(
        (b for b in fulls if b.start >= horizon and b.end <= log_end), key=lambda b: b.start
    )
    if not usable:
        return BACKUP_NOT_FOUND
    newest = usable[-1]
    if any(end > newest.start and start < log_end for start, end in gaps):
        return BINLOG_NOT_FOUND
    since = max((end for _, end in gaps if end <= newest.start), default=horizon)
    oldest = next(b for b in usable if b.start >= since)
    return (oldest.end if begin_at_backup_end else oldest.start, log_end)
