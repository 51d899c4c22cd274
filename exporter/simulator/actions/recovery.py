"""DescribeLocalAvailableRecoveryTime: the times a point-in-time restore of one instance can reach
(MySQL, PostgreSQL, MariaDB), or why there are none; DescribeAvailableRecoveryTime: the same for
one cross-region backup set (MySQL on local disks)."""

from __future__ import annotations

from exporter.simulator.actions.call import Answer, Call
from exporter.simulator.actions.crossregion import not_supported, positive_int
from exporter.simulator.actions.params import visible_instance
from exporter.simulator.drtruth import (
    NO_LOG_BACKUP,
    NO_RESTORABLE_SET,
    NOT_SUPPORTED,
    SET_NOT_FOUND,
)
from exporter.simulator.errors import (
    ApiError,
    db_instance_not_found,
    incorrect_engine,
    parameter_absence,
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


_NO_CROSS_WINDOW = {
    NO_LOG_BACKUP: ApiError(400, NO_LOG_BACKUP, "No available log backup is found."),
    NO_RESTORABLE_SET: ApiError(
        400, NO_RESTORABLE_SET, "No available disaster recovery backup set is found."
    ),
    NOT_SUPPORTED: not_supported(),
}


def _set_not_found() -> ApiError:
    return ApiError(404, SET_NOT_FOUND, "The specified backup set is not found.")


def describe_available_recovery_time(call: Call) -> Answer:
    """The window a restore from one cross-region copy can reach (``yyyy-MM-ddTHH:mm:ssZ``),
    as the fleet's ``cross_region_recovery_window`` computes it, and the source's RegionId.
    DBInstanceId and RegionId are optional; given, they must be the copy's."""
    params = call.params
    if not params.get("CrossBackupId"):
        raise parameter_absence("CrossBackupId")
    cross_backup_id = positive_int(params, "CrossBackupId", None) or 0
    copy = call.fleet.find_cross_region_copy(cross_backup_id, call.now)
    if copy is None or not call.can_see(copy.instance_id):
        raise _set_not_found()
    instance = call.fleet.instance(copy.instance_id)
    if params.get("DBInstanceId", instance.instance_id) != instance.instance_id:
        raise _set_not_found()
    if params.get("RegionId", instance.region_id) != instance.region_id:
        raise _set_not_found()
    inferred = call.inferred
    window = call.fleet.cross_region_recovery_window(
        cross_backup_id,
        call.now,
        begin_at_backup_end=inferred.dr_begin_at_backup_end,
        end_at_source_logs=inferred.dr_end_at_source_logs,
        log_off_error=inferred.dr_log_off_error,
        failed_not_found=inferred.dr_failed_copy_not_found,
    )
    if isinstance(window, str):
        error = _NO_CROSS_WINDOW.get(window) or _set_not_found()
        raise ApiError(error.status, error.code, error.message)
    begin, end = window
    return Answer(
        body={
            "CrossBackupId": cross_backup_id,
            "RegionId": instance.region_id,
            "RecoveryBeginTime": format_second(begin),
            "RecoveryEndTime": format_second(end),
        }
    )
