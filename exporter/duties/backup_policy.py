"""DescribeBackupPolicy: an instance's backup schedule, read every ``polling.policy_refresh``.

It runs right after a successful backups poll (when DescribeBackups fails, this call would too,
and only add noise), never for read-only replicas (they have no backup policy). A policy that
cannot be fetched keeps the last one read and never marks the backup collection failed: a
throttling, server or network error is retried at the next poll, anything else after the refresh.
"""

from __future__ import annotations

import logging

from exporter.aliyun.client import DESCRIBE_BACKUP_POLICY, RdsClient
from exporter.duties.base import Duty, DutyLoad
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

    async def run(self, client: RdsClient, state: InstanceState, status: DutyStatus) -> str | None:
        target = state.target
        policy = await client.describe_backup_policy(target.instance_id, target.region)
        summary = summarize_policy(policy, state.known_engine)
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

    @property
    def refresh(self) -> float:
        return self.polling.policy_refresh

    def load(self, instances: int, rate_limit: float) -> DutyLoad:
        return self.refresh_load(instances, "backup policy")
