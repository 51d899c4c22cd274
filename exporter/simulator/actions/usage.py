"""DescribeResourceUsage: one instance's backup storage use and what it pays for beyond the free
quota (every engine)."""

from __future__ import annotations

from exporter.simulator.actions.call import Answer, Call
from exporter.simulator.errors import ApiError, parameter_absence


def describe_resource_usage(call: Call) -> Answer:
    """The fleet's ``resource_usage``: sizes in bytes, -1 where there is no data, and
    BackupEcsSnapshotSize a string."""
    instance_id = call.params.get("DBInstanceId", "")
    if not instance_id:
        raise parameter_absence("DBInstanceId")
    if instance_id not in call.fleet.instances or not call.can_see(instance_id):
        # HTTP 400 here, as this action documents it (DescribeBackups' gateway says 404).
        raise ApiError(
            400,
            "InvalidDBInstanceId.NotFound",
            "The DBInstanceId provided does not exist in records.",
        )
    inferred = call.inferred
    usage = call.fleet.resource_usage(
        instance_id,
        call.now,
        backup_size_oss=inferred.usage_backup_size_oss,
        ecs_snapshot_field=inferred.usage_ecs_snapshot_field,
    )
    return Answer(body=dict(usage))
