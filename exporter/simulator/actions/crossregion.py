"""Cross-region (disaster-recovery) backup: DescribeInstanceCrossBackupPolicy (one instance's
settings), DescribeCrossRegionBackupDBInstance (a region's instances that copy their backups)
and DescribeCrossRegionBackups (one instance's copies). MySQL on local disks, PostgreSQL and SQL
Server; the others answer 403 CrossBackupNotSupport."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass

from exporter.simulator import render
from exporter.simulator.actions.call import Answer, Call
from exporter.simulator.actions.params import (
    DEFAULT_PAGE_SIZE,
    MAX_INT32,
    is_number,
    time_param,
    visible_instance,
)
from exporter.simulator.drcopies import CrossCopy, CrossPolicy
from exporter.simulator.errors import (
    ApiError,
    db_instance_not_found,
    invalid_format,
    missing_parameter,
    parameter_absence,
)
from exporter.simulator.models import SimInstance
from exporter.simulator.timefmt import parse_second

MAX_IDS = 30  # DescribeCrossRegionBackupDBInstance's DBInstanceId: up to 30, comma-separated
# DescribeCrossRegionBackups' PageSize. Another value answers InvalidParameters.Format: the
# action documents no code for it, and its sibling documents this one for bad parameters.
COPY_PAGE_SIZES = ("30", "50", "100")
_REGION_RE = re.compile(r"[a-z]{2,}(-[a-z0-9]+)+")


def not_supported() -> ApiError:
    return ApiError(
        403, "CrossBackupNotSupport", "The instance does not support cross-region backup."
    )


def _page_not_found() -> ApiError:
    return ApiError(404, "InvalidPage.notFound", "The specified page is not found.")


def region_param(params: Mapping[str, str]) -> str:
    region = params.get("RegionId", "")
    if not region:
        raise missing_parameter("RegionId")
    if not _REGION_RE.fullmatch(region):
        raise ApiError(400, "InvalidRegion.Format", "Specified parameter RegionId is not valid.")
    return region


def positive_int(params: Mapping[str, str], name: str, default: int | None) -> int | None:
    """An int32 parameter above 0, ``default`` when absent."""
    text = params.get(name)
    if text is None:
        return default
    if not is_number(text) or not 0 < int(text) <= MAX_INT32:
        raise invalid_format(name)
    return int(text)


def _paging(params: Mapping[str, str], sizes: tuple[str, ...] | None) -> tuple[int, int]:
    """PageNumber and PageSize; ``sizes``: the only PageSize values allowed (None: any)."""
    if sizes is not None and params.get("PageSize", sizes[0]) not in sizes:
        raise invalid_format("PageSize")
    size = positive_int(params, "PageSize", DEFAULT_PAGE_SIZE) or DEFAULT_PAGE_SIZE
    return positive_int(params, "PageNumber", 1) or 1, size


def _check_page(call: Call, page: int, size: int, total: int) -> None:
    if call.inferred.cross_page_past_end_error and page > 1 and (page - 1) * size >= total:
        raise _page_not_found()


def cross_instance(call: Call, region: str) -> tuple[SimInstance, CrossPolicy]:
    """The instance named by DBInstanceId, in RegionId and visible to the caller, and its
    cross-region settings."""
    instance = visible_instance(call, db_instance_not_found)
    if instance.region_id != region:
        raise db_instance_not_found()  # the instance lives in another region
    policy = call.fleet.cross_region_policy(instance.instance_id)
    if policy is None:
        raise not_supported()
    return instance, policy


def describe_instance_cross_backup_policy(call: Call) -> Answer:
    """One instance's cross-region settings, flat, with the RegionId asked about."""
    if not call.params.get("DBInstanceId"):
        raise missing_parameter("DBInstanceId")
    region = region_param(call.params)
    instance, policy = cross_instance(call, region)
    blank = call.inferred.cross_policy_disabled_blank
    fields = render.cross_policy_fields(instance, policy, blank_when_off=blank)
    return Answer(body={**fields, "RegionId": region})


def describe_cross_region_backup_db_instance(call: Call) -> Answer:
    """The region's instances with cross-region backup on (``Inferred``: or every one that
    supports it), in creation order, paged. Naming an instance that cannot have it: 403."""
    params = call.params
    region = region_param(params)
    wanted = {i.strip() for i in params.get("DBInstanceId", "").split(",") if i.strip()}
    if len(wanted) > MAX_IDS:
        raise invalid_format("DBInstanceId")
    page, size = _paging(params, None)
    listed: list[tuple[SimInstance, CrossPolicy]] = []
    for instance in call.fleet.instances.values():
        iid = instance.instance_id
        if instance.region_id != region or not call.can_see(iid) or (wanted and iid not in wanted):
            continue
        policy = call.fleet.cross_region_policy(iid)
        if policy is None:
            if wanted:
                raise not_supported()
            continue
        if policy.enabled or call.inferred.cross_list_disabled_instances:
            listed.append((instance, policy))
    _check_page(call, page, size, len(listed))
    blank = call.inferred.cross_policy_disabled_blank
    items = [
        render.cross_policy_fields(instance, policy, blank_when_off=blank)
        for instance, policy in listed[(page - 1) * size : page * size]
    ]
    return Answer(
        body={
            "RegionId": region,
            "PageNumber": page,
            "PageSize": size,
            "TotalRecords": len(listed),  # sic: not TotalRecordCount
            "ItemsNumbers": len(items),
            "Items": {"Item": items},
        }
    )


@dataclass(frozen=True)
class _Window:
    region: str
    start: float | None
    end: float | None
    cross_backup_id: int | None
    page: int
    page_size: int


def _copy_window(params: Mapping[str, str]) -> _Window:
    """What DescribeCrossRegionBackups is asked, in the order it checks: CrossBackupId, or
    StartTime and EndTime (``yyyy-MM-ddTHH:mm:ssZ``), must be given."""
    if not params.get("DBInstanceId"):
        raise missing_parameter("DBInstanceId")
    region = region_param(params)
    start = time_param(params, "StartTime", parse_second)
    end = time_param(params, "EndTime", parse_second)
    cross_backup_id = positive_int(params, "CrossBackupId", None)
    if cross_backup_id is None and (start is None or end is None):
        raise parameter_absence("StartTime" if start is None else "EndTime")
    if start is not None and end is not None and end < start:
        raise ApiError(400, "InvalidTime.Format", "The end time must not be before the start time.")
    page, size = _paging(params, COPY_PAGE_SIZES)
    return _Window(region, start, end, cross_backup_id, page, size)


def _filtered(
    copies: list[CrossCopy], window: _Window, params: Mapping[str, str]
) -> list[CrossCopy]:
    if window.cross_backup_id is not None:
        copies = [c for c in copies if c.cross_backup_id == window.cross_backup_id]
    if params.get("CrossBackupRegion"):
        copies = [c for c in copies if c.region == params["CrossBackupRegion"]]
    if params.get("BackupId"):
        copies = [c for c in copies if c.source.backup_id == params["BackupId"]]
    return copies


def describe_cross_region_backups(call: Call) -> Answer:
    """The instance's copies whose source started (``Inferred``: ended) in the window, newest
    first, paged; the window's times echoed as sent ("" when absent)."""
    window = _copy_window(call.params)
    instance, _ = cross_instance(call, window.region)
    low = window.start if window.start is not None else float("-inf")
    high = window.end if window.end is not None else float("inf")
    on_end = call.inferred.cross_window_on_end_time
    found = call.fleet.cross_region_copies(instance.instance_id, low, high, call.now, on_end=on_end)
    copies = _filtered(found, window, call.params)
    page, size = window.page, window.page_size
    _check_page(call, page, size, len(copies))
    lowercase = call.inferred.cross_engine_lowercase
    items = [
        render.cross_copy_item(instance, copy, lowercase_engine=lowercase)
        for copy in copies[(page - 1) * size : page * size]
    ]
    if call.shuffle_seed is not None:
        key = f"{call.shuffle_seed}|cross|{instance.instance_id}|{window}"
        random.Random(key).shuffle(items)
    return Answer(
        body={
            "RegionId": window.region,
            "StartTime": call.params.get("StartTime", ""),
            "EndTime": call.params.get("EndTime", ""),
            "PageNumber": page,
            "PageRecordCount": len(items),
            "TotalRecordCount": len(copies),
            "Items": {"Item": items},
        }
    )
