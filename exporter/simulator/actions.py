"""The three RDS actions: parameter rules, filtering and paging. No I/O; errors are raised.

Each action takes a :class:`Call` and returns an :class:`Answer` (the body without RequestId).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from exporter.simulator import render
from exporter.simulator.errors import ApiError, instance_not_found, missing_parameter
from exporter.simulator.fleet import Fleet
from exporter.simulator.models import SimInstance
from exporter.simulator.quirks import Quirks
from exporter.simulator.timefmt import parse_minute

BACKUP_PAGE_SIZES = ("30", "50", "100")
DEFAULT_PAGE_SIZE = 30
MAX_TAGS = 5
TAGS_MATCH = ("any", "all")  # Call.tags_match
_MAX_INT = 2**31 - 1
_TOKEN_RE = re.compile(r"[0-9a-f]{1,32}")


@dataclass(frozen=True)
class Call:
    fleet: Fleet
    params: Mapping[str, str]
    now: float  # the simulator's clock
    can_see: Callable[[str], bool]  # may the caller's access key see this instance?
    shuffle_seed: int | None = None  # shuffle each DescribeBackups page deterministically
    quirks: Quirks = field(default_factory=Quirks)  # how DescribeBackups departs from the docs
    # DescribeDBInstances Tags: "any" pair matches (as the API documents it) or "all" must.
    tags_match: str = "any"


@dataclass(frozen=True)
class Answer:
    body: dict[str, object]
    window_seconds: float = 0.0  # StartTime..EndTime span asked for (inf when open-ended)


def _instance(call: Call) -> SimInstance:
    instance_id = call.params.get("DBInstanceId", "")
    if not instance_id:
        raise missing_parameter("DBInstanceId")
    instance = call.fleet.instances.get(instance_id)
    # Another account's instance is simply not there for this key.
    if instance is None or not call.can_see(instance_id):
        raise instance_not_found()
    return instance


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _page_number(params: Mapping[str, str]) -> int:
    text = params.get("PageNumber")
    if text is None:
        return 1
    if not _is_number(text) or not 0 < int(text) <= _MAX_INT:
        raise ApiError(400, "InvalidPageNumbers.Malformed", "Specified page number is not valid.")
    return int(text)


def _page_size_error(status: int) -> ApiError:
    return ApiError(
        status, "InvalidMaxRecordsPerPage.Malformed", "Specified record number is not valid."
    )


def _time_param(params: Mapping[str, str], name: str) -> float | None:
    text = params.get(name)
    if text is None:
        return None
    value = parse_minute(text)
    if value is None:
        raise ApiError(400, f"Invalid{name}.Format", f"Specified {name} is not valid.")
    return value


def describe_backups(call: Call) -> Answer:
    """Backups whose START time is in [StartTime, EndTime] (both inclusive) and that have
    finished by ``now``; newest first; paged."""
    params = call.params
    if not params.get("DBInstanceId"):
        raise missing_parameter("DBInstanceId")
    start = _time_param(params, "StartTime")
    end = _time_param(params, "EndTime")
    size_text = params.get("PageSize", str(DEFAULT_PAGE_SIZE))
    if size_text not in BACKUP_PAGE_SIZES:
        raise _page_size_error(403)
    page_size = int(size_text)
    page = _page_number(params)
    if start is not None and end is not None and end <= start:
        raise ApiError(
            400, "InvalidParameterCombination", "The end time must be greater than the start time"
        )
    instance = _instance(call)
    low = start if start is not None else float("-inf")
    high = end if end is not None else float("inf")
    backups = call.fleet.backups_between(instance.instance_id, low, high, call.now)
    wanted = {
        "BackupId": "backup_id",
        "BackupStatus": "status",
        "BackupMode": "mode",
        "BackupType": "backup_type",
    }
    for param, attribute in wanted.items():
        value = params.get(param)
        if value:
            backups = [b for b in backups if getattr(b, attribute) == value]
    quirks = call.quirks
    if quirks.page_past_end_error and page > 1 and (page - 1) * page_size >= len(backups):
        # The real API refuses a page past the end (even one just past a full last page).
        raise ApiError(400, "InvalidPageNumbers.Malformed", "Specified page number is not valid.")
    chosen = backups[(page - 1) * page_size : page * page_size]
    items = [
        render.backup_item(
            backup,
            minute_times=quirks.minute_times and instance.minute_precision,
            unusable_successes=quirks.unusable_successes,
        )
        for backup in chosen
    ]
    if call.shuffle_seed is not None:
        key = f"{call.shuffle_seed}|{instance.instance_id}|{low}|{high}|{page}|{page_size}"
        random.Random(key).shuffle(items)
    snapshots = instance.policy.method == "Snapshot"
    counter = str if quirks.string_counters else int  # the documented type is string
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
        window_seconds=high - low,
    )


def describe_backup_policy(call: Call) -> Answer:
    instance = _instance(call)
    if not instance.has_backups:
        # Replicas have no backup settings of their own.
        raise ApiError(
            403,
            "IncorrectDBInstanceType",
            "Current DB instance type does not support this operation.",
        )
    next_backup = call.fleet.next_full_backup(instance.instance_id, call.now)
    return Answer(body=render.policy_body(instance, next_backup))


def _tags(params: Mapping[str, str]) -> dict[str, str]:
    text = params.get("Tags")
    if not text:
        return {}
    error = ApiError(400, "InvalidTags.Malformed", "Specified parameter Tags is not valid.")
    try:
        tags = json.loads(text)
    except ValueError:
        raise error from None
    if not isinstance(tags, dict) or len(tags) > MAX_TAGS:
        raise error
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise error
    return tags


def _matches(
    instance: SimInstance, params: Mapping[str, str], tags: Mapping[str, str], tags_match: str
) -> bool:
    if instance.region_id != params["RegionId"]:
        return False
    engine = params.get("Engine")
    if engine and instance.engine.lower() != engine.lower():
        return False
    exact = {
        "EngineVersion": instance.engine_version,
        "DBInstanceStatus": instance.status,
        "DBInstanceType": instance.instance_type,
        "ResourceGroupId": instance.resource_group_id,
    }
    if any(params.get(name) and params[name] != value for name, value in exact.items()):
        return False
    ids = params.get("DBInstanceId")
    if ids and instance.instance_id not in {i.strip() for i in ids.split(",")}:
        return False
    if not tags:
        return True
    combine = all if tags_match == "all" else any
    return combine(instance.tags.get(key) == value for key, value in tags.items())


def _bounded_int(params: Mapping[str, str], name: str, default: int, error: ApiError) -> int:
    text = params.get(name)
    if text is None:
        return default
    if not _is_number(text) or not 1 <= int(text) <= 100:
        raise error
    return int(text)


def describe_db_instances(call: Call) -> Answer:
    """Instances of one region that pass every filter (Tags: see Call.tags_match), in creation
    order. Paged either by PageSize/PageNumber or by MaxResults/NextToken (the token is the
    next offset)."""
    params = call.params
    if not params.get("RegionId"):
        raise missing_parameter("RegionId")
    page_size = _bounded_int(params, "PageSize", DEFAULT_PAGE_SIZE, _page_size_error(400))
    page = _page_number(params)
    max_results_error = ApiError(
        400, "InvalidMaxResults.Malformed", "Specified MaxResults is not valid."
    )
    token_mode = "MaxResults" in params or "NextToken" in params
    max_results = _bounded_int(params, "MaxResults", DEFAULT_PAGE_SIZE, max_results_error)
    tags = _tags(params)
    found = [
        instance
        for instance in call.fleet.instances.values()
        if _matches(instance, params, tags, call.tags_match) and call.can_see(instance.instance_id)
    ]
    next_token = ""
    if token_mode:
        token = params.get("NextToken") or "0"
        if not _TOKEN_RE.fullmatch(token):
            raise ApiError(400, "InvalidNextToken.Malformed", "Specified NextToken is not valid.")
        offset = int(token, 16)
        chosen = found[offset : offset + max_results]
        if offset + max_results < len(found):
            next_token = f"{offset + max_results:032x}"
        page = 1
    else:
        chosen = found[(page - 1) * page_size : page * page_size]
    items = [render.instance_item(i, call.fleet.replicas_of(i.instance_id)) for i in chosen]
    return Answer(
        body={
            "Items": {"DBInstance": items},
            "PageNumber": page,
            "PageRecordCount": len(items),
            "TotalRecordCount": len(found),
            "NextToken": next_token,
        }
    )


ACTIONS: Mapping[str, Callable[[Call], Answer]] = MappingProxyType(
    {
        "DescribeBackups": describe_backups,
        "DescribeBackupPolicy": describe_backup_policy,
        "DescribeDBInstances": describe_db_instances,
    }
)
