"""The RDS actions the simulator answers, by name. No I/O; errors are raised as ApiError.

Each action is a function taking a :class:`Call` and returning an :class:`Answer` (the body
without RequestId), in a module per group: ``backups`` (DescribeBackups,
DescribeBackupPolicy), ``instances`` (DescribeDBInstances), ``logs`` (DescribeBinlogFiles,
DescribeLogBackupFiles), ``recovery`` (DescribeLocalAvailableRecoveryTime,
DescribeAvailableRecoveryTime), ``tasks`` (DescribeBackupTasks), ``crossregion``
(DescribeInstanceCrossBackupPolicy, DescribeCrossRegionBackupDBInstance,
DescribeCrossRegionBackups), ``usage`` (DescribeResourceUsage); ``params`` holds the parameter
rules they share. Adding an action: one
function in its group, one entry in ``ACTIONS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from exporter.simulator.actions.backups import describe_backup_policy, describe_backups
from exporter.simulator.actions.call import TAGS_MATCH, Action, Answer, Call
from exporter.simulator.actions.crossregion import (
    describe_cross_region_backup_db_instance,
    describe_cross_region_backups,
    describe_instance_cross_backup_policy,
)
from exporter.simulator.actions.instances import describe_db_instances
from exporter.simulator.actions.logs import describe_binlog_files, describe_log_backup_files
from exporter.simulator.actions.recovery import (
    describe_available_recovery_time,
    describe_local_available_recovery_time,
)
from exporter.simulator.actions.tasks import describe_backup_tasks
from exporter.simulator.actions.usage import describe_resource_usage

ACTIONS: Mapping[str, Action] = MappingProxyType(
    {
        "DescribeBackups": describe_backups,
        "DescribeBackupPolicy": describe_backup_policy,
        "DescribeDBInstances": describe_db_instances,
        "DescribeBinlogFiles": describe_binlog_files,
        "DescribeLogBackupFiles": describe_log_backup_files,
        "DescribeLocalAvailableRecoveryTime": describe_local_available_recovery_time,
        "DescribeBackupTasks": describe_backup_tasks,
        "DescribeInstanceCrossBackupPolicy": describe_instance_cross_backup_policy,
        "DescribeCrossRegionBackupDBInstance": describe_cross_region_backup_db_instance,
        "DescribeCrossRegionBackups": describe_cross_region_backups,
        "DescribeAvailableRecoveryTime": describe_available_recovery_time,
        "DescribeResourceUsage": describe_resource_usage,
    }
)

__all__ = ["ACTIONS", "TAGS_MATCH", "Action", "Answer", "Call"]
