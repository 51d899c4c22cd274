"""DescribeBackupTasks: the backups running now. The answer has no times and no paging, so
the exporter keeps when it first saw each job and when its progress last moved. A job that is
no longer listed has finished: the next backups poll reads back to when it started, so a backup
that ran longer than the overlap is not missed."""

from __future__ import annotations

from exporter.aliyun.client import RdsClient
from exporter.aliyun.recovery import DESCRIBE_BACKUP_TASKS
from exporter.duties.base import Duty, DutyLoad
from exporter.recovery_state import summarize_jobs, track_jobs
from exporter.state import READ_ONLY, DutyStatus, InstanceState


class BackupTasksDuty(Duty):
    name = "backup_tasks"
    action = DESCRIBE_BACKUP_TASKS
    failure_text = "cannot list running backups"
    recovery_text = "running backups listed again"

    @property
    def refresh(self) -> float:
        return self.polling.backup_tasks_refresh

    def applies_to(self, state: InstanceState) -> bool:
        return state.target.instance_type != READ_ONLY

    async def run(self, client: RdsClient, state: InstanceState, status: DutyStatus) -> None:
        target = state.target
        listed = await client.describe_backup_tasks(target.instance_id, target.region)
        now = self.clock.time()
        running, finished = track_jobs(state.jobs, listed, now, state.jobs_listed)
        for job in finished:
            # It started after the listing before it was first seen; without one, it may
            # have started anywhere in the lookback.
            started_after = job.seen_after if job.seen_after is not None else 0.0
            if state.read_back_from is None or started_after < state.read_back_from:
                state.read_back_from = started_after
        state.jobs = running
        state.jobs_summary = summarize_jobs(running)
        state.jobs_listed = now
        return None

    def forget(self, state: InstanceState) -> None:
        state.jobs_summary = None  # the jobs stay: when each was first seen still holds

    def load(self, instances: int, rate_limit: float) -> DutyLoad:
        return self.refresh_load(instances, "running backups")
