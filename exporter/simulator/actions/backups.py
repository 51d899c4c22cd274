"""DescribeBackups and DescribeBackupPolicy: one instance's backups and backup settings."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from exporter.simulator import render
from exporter.simulator.actions.call import Answer, Call
from exporter.simulator.actions.params import (
    DEFAULT_PAGE_SIZE,
    page_number,
    page_number_error,
    page_size_error,
    time_param,
    visible_instance,
)
from exporter.simulator.errors import ApiError, missing_parameter
from exporter.simulator.models import SimBackup, SimInstance

BACKUP_PAGE_SIZES = ("30", "50", "100")
# Filter parameter -> SimBackup attribute it must equal (when given and not empty).
_FILTERS = {
    "BackupId": "backup_id",
    "BackupStatus": "status",
    "BackupMode": "mode",
    "BackupType": "backup_type",
}

# BackupPolicyMode -> which fields it answers with (see Inferred.policy_mode_filters).
_POLICY_MODES: Mapping[str, Callable[[str], bool]] = {
    "DataBackupPolicy": lambda name: name not in render.LOG_POLICY_FIELDS,
    "LogBackupPolicy": lambda name: name in render.LOG_POLICY_FIELDS,
}


@dataclass(frozen=True)
class _Query:
    low: float  # StartTime, -inf when absent
    high: float  # EndTime, inf when absent
    page: int
    page_size: int

    @property
    def page_slice(self) -> slice:
        return slice((self.page - 1) * self.page_size, self.page * self.page_size)


def _query(params: Mapping[str, str]) -> _Query:
    """The window and page asked for; raises in the order the real API checks."""
    if not params.get("DBInstanceId"):
        raise missing_parameter("DBInstanceId")
    start = time_param(params, "StartTime")
    end = time_param(params, "EndTime")
    size_text = params.get("PageSize", str(DEFAULT_PAGE_SIZE))
    if size_text not in BACKUP_PAGE_SIZES:
        raise page_size_error(403)
    page = page_number(params)
    if start is not None and end is not None and end <= start:
        raise ApiError(
            400, "InvalidParameterCombination", "The end time must be greater than the start time"
        )
    low = start if start is not None else float("-inf")
    high = end if end is not None else float("inf")
    return _Query(low, high, page, int(size_text))


def _filtered(backups: list[SimBackup], params: Mapping[str, str]) -> list[SimBackup]:
    for param, attribute in _FILTERS.items():
        value = params.get(param)
        if value:
            backups = [b for b in backups if getattr(b, attribute) == value]
    return backups


def _page_items(
    call: Call, instance: SimInstance, chosen: Sequence[SimBackup], query: _Query
) -> list[dict[str, object]]:
    quirks = call.quirks
    items = [
        render.backup_item(
            backup,
            minute_times=quirks.minute_times and instance.minute_precision,
            unusable_successes=quirks.unusable_successes,
        )
        for backup in chosen
    ]
    if call.shuffle_seed is not None:
        key = (
            f"{call.shuffle_seed}|{instance.instance_id}|{query.low}|{query.high}"
            f"|{query.page}|{query.page_size}"
        )
        random.Random(key).shuffle(items)
    return items


def describe_backups(call: Call) -> Answer:
    """Backups whose START time is in [StartTime, EndTime] (both inclusive) and that have
    finished by ``now``; newest first; paged."""
    query = _query(call.params)
    instance = visible_instance(call)
    found = call.fleet.backups_between(instance.instance_id, query.low, query.high, call.now)
    backups = _filtered(found, call.params)
    page, page_size = query.page, query.page_size
    if call.quirks.page_past_end_error and page > 1 and (page - 1) * page_size >= len(backups):
        # The real API refuses a page past the end (even one just past a full last page).
        raise page_number_error()
    items = _page_items(call, instance, backups[query.page_slice], query)
    snapshots = instance.policy.method == "Snapshot"
    counter = str if call.quirks.string_counters else int  # the documented type is string
    return Answer(
        body={
            "Items": {"Backup": items},
            "PageNumber": counter(page),
            "PageRecordCount": counter(len(items)),
            "TotalRecordCount": counter(len(backups)),
            "TotalEcsSnapshotSize": (
                call.fleet.snapshot_chain_bytes(instance.instance_id, call.now) if snapshots else 0
            ),
        },
        window_seconds=query.high - query.low,
    )


def describe_backup_policy(call: Call) -> Answer:
    instance = visible_instance(call)
    if not instance.has_backups:
        # Replicas have no backup settings of their own.
        raise ApiError(
            403,
            "IncorrectDBInstanceType",
            "Current DB instance type does not support this operation.",
        )
    next_backup = call.fleet.next_full_backup(instance.instance_id, call.now)
    inferred = call.inferred
    body = render.policy_body(
        instance,
        next_backup,
        five_minute_frequency=inferred.sqlserver_five_minute_frequency,
        data_cycle_frequency=inferred.sqlserver_data_cycle_frequency,
    )
    mode = call.params.get("BackupPolicyMode", "")
    if inferred.policy_mode_filters and mode in _POLICY_MODES:
        # Only the fields of the mode asked for (BackupInterval belongs to both).
        wanted = _POLICY_MODES[mode]
        body = {k: v for k, v in body.items() if k == "BackupInterval" or wanted(k)}
    return Answer(body=body)
