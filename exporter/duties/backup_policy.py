"""DescribeBackupPolicy: an instance's backup schedule, read every ``polling.policy_refresh``.

It runs right after a successful backups poll (when DescribeBackups fails, this call would too,
and only add noise), never for read-only replicas (they have no backup policy). A policy that
cannot be fetched keeps the last one read and never marks the backup collection failed: a
throttling, server or network error is retried at the next poll, anything else after the refresh.
"""

from __future__ import annotations

import logging

from exporter.aliyun.client import DESCRIBE_BACKUP_POLICY, RdsClient
from exporter.config import format_duration
from exporter.duties.base import Duty, DutyLoad
from exporter.failures import Failure
from exporter.policy import summarize_policy
from exporter.state import READ_ONLY, DutyStatus, InstanceState

log = logging.getLogger(__name__)

UNREADABLE = "Unreadable"  # the call worked but the schedule in it cannot be read


class BackupPolicyDuty(Duty):
    name = "policy"
    action = DESCRIBE_BACKUP_POLICY
    failure_text = "cannot read the backup policy (a policy read before is kept)"
    recovery_text = "backup policy read again"

    def applies_to(self, state: InstanceState) -> bool:
        return state.target.instance_type != READ_ONLY

    def is_due(self, state: InstanceState, status: DutyStatus, now: float) -> bool:
        return bool(state.collect_success) and now >= status.due

    async def run(self, client: RdsClient, state: InstanceState, status: DutyStatus) -> str | None:
        target = state.target
        policy = await client.describe_backup_policy(target.instance_id, target.region)
        summary = summarize_policy(policy)
        state.policy = summary
        if summary.schedule is not None:
            return None
        if status.error != UNREADABLE:
            log.warning(
                "instance %s: cannot read the backup schedule (PreferredBackupPeriod %r, "
                "PreferredBackupTime %r); the stale-backup alert uses its fallback",
                target.instance_id,
                policy.preferred_backup_period,
                policy.preferred_backup_time,
            )
        return UNREADABLE

    def next_due(self, failure: Failure | None, now: float) -> float:
        retry_in = 0.0 if failure is not None and failure.retryable else self.polling.policy_refresh
        # Due at the poll nearest to ``retry_in`` from now (polls come every interval).
        return now + max(0.0, retry_in - self.polling.interval / 2)

    def load(self, instances: int, rate_limit: float) -> DutyLoad:
        every = max(self.polling.policy_refresh, self.polling.interval)
        line = (
            f"backup policy: one DescribeBackupPolicy call per instance every "
            f"{format_duration(every)} ({instances} calls for the static instances, "
            f"{instances / every:.3f}/s)"
        )
        return DutyLoad(1, 1 / every, (line,))
