"""Backups as DescribeBackupTasks sees them: a job per backup, running from its start to its end,
then finished (and, as the reference infers, gone from the default listing)."""

from __future__ import annotations

from exporter.simulator.logchain import hash_words
from exporter.simulator.models import SimBackup, SimJob

_JOB_IDS = (1_000_000, 2**31 - 1)  # BackupJobId is an int32 in requests


def job_id(seed: int, backup: SimBackup) -> str:
    """A backup's BackupJobId: stable, and within the int32 range requests accept."""
    word = hash_words(seed, "job", backup.instance_id, backup.backup_id)[0]
    return str(_JOB_IDS[0] + word % (_JOB_IDS[1] - _JOB_IDS[0]))


def job_of(seed: int, backup: SimBackup, now: float, stuck_at: float | None) -> SimJob:
    """The job of a backup at ``now``: running (Process from the time elapsed, or fixed at
    ``stuck_at``), or finished once its end has passed."""
    if backup.end <= now:
        return SimJob(job_id(seed, backup), backup, 100, finished=True)
    if stuck_at is not None:
        process = int(stuck_at)
    else:
        elapsed = (now - backup.start) / max(1.0, backup.end - backup.start)
        process = min(99, max(0, int(100 * elapsed)))
    return SimJob(job_id(seed, backup), backup, process)
