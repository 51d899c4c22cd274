"""DescribeResourceUsage: how much backup storage an instance uses, and how much of it is billed
beyond the free quota. Changes slowly: read rarely (hourly by default)."""

from __future__ import annotations

from exporter.aliyun.client import RdsClient
from exporter.aliyun.copies import DESCRIBE_RESOURCE_USAGE, parse_storage_usage
from exporter.duties.base import Duty, DutyLoad
from exporter.state import READ_ONLY, DutyStatus, InstanceState


class BackupStorageDuty(Duty):
    name = "backup_storage"
    action = DESCRIBE_RESOURCE_USAGE
    failure_text = "cannot read backup storage usage (the last figures read are kept)"
    recovery_text = "backup storage usage read again"

    @property
    def refresh(self) -> float:
        return self.polling.backup_storage_refresh

    def applies_to(self, state: InstanceState) -> bool:
        return state.target.instance_type != READ_ONLY  # a read-only replica keeps no backups

    async def run(self, client: RdsClient, state: InstanceState, status: DutyStatus) -> None:
        target = state.target
        state.storage = await client.call(
            self.action,
            {"DBInstanceId": target.instance_id},
            region=target.region,
            parse=parse_storage_usage,
        )
        return None

    def forget(self, state: InstanceState) -> None:
        state.storage = None

    def load(self, instances: int, rate_limit: float) -> DutyLoad:
        return self.refresh_load(instances, "backup storage")
