"""DescribeLocalAvailableRecoveryTime: the times a point-in-time restore of one instance can reach
(MySQL, PostgreSQL, MariaDB), or why there are none."""

from __future__ import annotations

from exporter.simulator.actions.call import Answer, Call
from exporter.simulator.actions.params import visible_instance
from exporter.simulator.errors import (
    ApiError,
    db_instance_not_found,
    incorrect_engine,
    read_only_not_supported,
)
from exporter.simulator.restore import (
    BACKUP_NOT_FOUND,
    BINLOG_NOT_FOUND,
    LOG_BACKUP_NOT_ENABLED,
)
from exporter.simulator.timefmt import format_second

_BROKEN = {
    LOG_BACKUP_NOT_ENABLED: ApiError(
        400, LOG_BACKUP_NOT_ENABLED, "Log backup is not enabled for this instance."
    ),
    BINLOG_NOT_FOUND: ApiError(404, BINLOG_NOT_FOUND, "No available binlog is found."),
    BACKUP_NOT_FOUND: ApiError(404, BACKUP_NOT_FOUND, "No available backup set is found."),
}


def describe_local_available_recovery_time(call: Call) -> Answer:
    """RecoveryBeginTime and RecoveryEndTime (``yyyy-MM-ddTHH:mm:ssZ``) as the fleet's
    ``recovery_window`` computes them. The optional region parameter is ``Region``; a
    ``RegionId`` is ignored or refused (``Inferred.refuse_region_id``)."""
    if call.inferred.refuse_region_id and "RegionId" in call.params:
        raise ApiError(400, "InvalidParameter", "The specified parameter RegionId is not valid.")
    instance = visible_instance(call, db_instance_not_found)
    if instance.engine == "SQLServer":
        raise incorrect_engine()
    if not instance.has_backups:
        # Not documented for this action: taken to answer as its siblings do.
        raise read_only_not_supported()
    window = call.fleet.recovery_window(
        instance.instance_id,
        call.now,
        end_at_completed=call.inferred.recovery_end_completed_only,
        begin_at_backup_end=call.inferred.recovery_begin_at_backup_end,
    )
    if isinstance(window, str):
        error = _BROKEN[window]
        raise ApiError(error.status, error.code, error.message)
    begin, end = window
    return Answer(
        body={
            "DBInstanceId": instance.instance_id,
            "RecoveryBeginTime": format_second(begin),
            "RecoveryEndTime": format_second(end),
        }
    )
