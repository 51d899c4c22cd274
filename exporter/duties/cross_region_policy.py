"""DescribeInstanceCrossBackupPolicy: whether an instance's backups are copied to another region
(disaster recovery), where to, and for how long. One call per instance per refresh: the
per-region DescribeCrossRegionBackupDBInstance would take fewer calls, but it lists only the
instances that have copies switched on, so "not listed" would have to be read as "off", a
guess the reference marks as inferred; this answer says it for each instance."""

from __future__ import annotations

import logging

from exporter.aliyun.client import RdsClient
from exporter.aliyun.copies import (
    CROSS_BACKUP_NOT_SUPPORTED,
    DESCRIBE_CROSS_BACKUP_POLICY,
    CrossRegionPolicy,
    parse_cross_region_policy,
)
from exporter.aliyun.errors import ApiError
from exporter.duties.base import Duty, DutyLoad
from exporter.state import READ_ONLY, DutyStatus, InstanceState

log = logging.getLogger(__name__)

NOT_SUPPORTED = CrossRegionPolicy(
    enabled=False, log_enabled=False, destination="", retention_days=None
)


def keeps_backups(state: InstanceState) -> bool:
    return state.target.instance_type != READ_ONLY


class CrossRegionPolicyDuty(Duty):
    name = "cross_region_policy"
    action = DESCRIBE_CROSS_BACKUP_POLICY
    failure_text = "cannot read the cross-region backup settings (the last ones read are kept)"
    recovery_text = "cross-region backup settings read again"

    @property
    def refresh(self) -> float:
        return self.polling.cross_region_policy_refresh

    def applies_to(self, state: InstanceState) -> bool:
        # Every engine is asked: those that cannot copy (MariaDB, MySQL on cloud disks) say so
        # (CrossBackupNotSupport), and show as off, which is what an operator must see.
        return keeps_backups(state)

    async def run(self, client: RdsClient, state: InstanceState, status: DutyStatus) -> None:
        target = state.target
        try:
            policy = await client.call(
                self.action,
                {"DBInstanceId": target.instance_id, "RegionId": target.region},
                region=target.region,
                parse=parse_cross_region_policy,
            )
        except ApiError as err:
            if err.code != CROSS_BACKUP_NOT_SUPPORTED:
                raise
            # An answer about the instance: it has no copies elsewhere, and cannot have any.
            if state.cross_region != NOT_SUPPORTED:
                log.info("instance %s: %s", target.instance_id, err.summary())
            policy = NOT_SUPPORTED
        state.cross_region = policy
        return None

    def forget(self, state: InstanceState) -> None:
        state.cross_region = None

    def load(self, instances: int, rate_limit: float) -> DutyLoad:
        return self.refresh_load(instances, "cross-region backup settings")
