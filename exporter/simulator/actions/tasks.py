"""DescribeBackupTasks: one instance's running backup jobs (all engines; no paging, no times)."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.simulator import render
from exporter.simulator.actions.call import Answer, Call
from exporter.simulator.actions.params import MAX_INT32, is_number, visible_instance
from exporter.simulator.errors import (
    db_instance_not_found,
    invalid_format,
    read_only_not_supported,
)
from exporter.simulator.models import SimJob

JOB_STATUSES = ("NoStart", "Progressing")  # BackupJobStatus: queued or running
JOB_MODES = ("Automated", "Manual")


def _filters(params: Mapping[str, str]) -> tuple[str | None, str, str]:
    """BackupJobId (None when absent), BackupJobStatus and BackupMode ("" when absent)."""
    job = params.get("BackupJobId")
    if job is not None and (not is_number(job) or not 0 < int(job) <= MAX_INT32):
        raise invalid_format("BackupJobId")
    status = params.get("BackupJobStatus", "")
    if status and status not in JOB_STATUSES:
        raise invalid_format("BackupJobStatus")
    mode = params.get("BackupMode", "")
    if mode and mode not in JOB_MODES:
        raise invalid_format("BackupMode")
    return (str(int(job)) if job is not None else None), status, mode


def describe_backup_tasks(call: Call) -> Answer:
    """Backups running now (Process from the time elapsed), oldest first. Finished jobs drop
    out (``Inferred.finished_job_seconds``), except one asked for by BackupJobId, which shows
    its BackupId. No job is ever queued, so ``NoStart`` finds none."""
    job_id, status, mode = _filters(call.params)
    instance = visible_instance(call, db_instance_not_found)
    if not instance.has_backups:
        raise read_only_not_supported()
    iid, now = instance.instance_id, call.now
    jobs: list[SimJob]
    if job_id is not None:
        found = call.fleet.find_job(iid, job_id, now)
        jobs = [found] if found is not None else []
    else:
        jobs = call.fleet.running_jobs(iid, now)
        linger = call.inferred.finished_job_seconds
        if linger > 0:
            jobs = call.fleet.finished_jobs(iid, now - linger, now) + jobs
    if status:
        jobs = [j for j in jobs if status == "Progressing" and not j.finished]
    if mode:
        jobs = [j for j in jobs if j.backup.mode == mode]
    items = [render.job_item(j, asked_by_id=job_id is not None) for j in jobs]
    return Answer(body={"Items": {"BackupJob": items}})
