"""DescribeDBInstances: the instances of one region that pass every filter."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from exporter.simulator import render
from exporter.simulator.actions.call import Answer, Call
from exporter.simulator.actions.params import (
    DEFAULT_PAGE_SIZE,
    bounded_int,
    page_number,
    page_size_error,
)
from exporter.simulator.errors import ApiError, missing_parameter
from exporter.simulator.models import SimInstance

MAX_TAGS = 5
_TOKEN_RE = re.compile(r"[0-9a-f]{1,32}")


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


def _token_page(
    found: Sequence[SimInstance], token: str, max_results: int
) -> tuple[Sequence[SimInstance], str]:
    """One page by NextToken (the next offset, in hex) and the token of the page after it
    ("" at the end)."""
    if not _TOKEN_RE.fullmatch(token):
        raise ApiError(400, "InvalidNextToken.Malformed", "Specified NextToken is not valid.")
    offset = int(token, 16)
    chosen = found[offset : offset + max_results]
    next_token = f"{offset + max_results:032x}" if offset + max_results < len(found) else ""
    return chosen, next_token


def describe_db_instances(call: Call) -> Answer:
    """Instances of one region that pass every filter (Tags: see Call.tags_match), in creation
    order. Paged either by PageSize/PageNumber or by MaxResults/NextToken (the token is the
    next offset)."""
    params = call.params
    if not params.get("RegionId"):
        raise missing_parameter("RegionId")
    page_size = bounded_int(params, "PageSize", DEFAULT_PAGE_SIZE, page_size_error(400))
    page = page_number(params)
    max_results_error = ApiError(
        400, "InvalidMaxResults.Malformed", "Specified MaxResults is not valid."
    )
    token_mode = "MaxResults" in params or "NextToken" in params
    max_results = bounded_int(params, "MaxResults", DEFAULT_PAGE_SIZE, max_results_error)
    tags = _tags(params)
    found = [
        instance
        for instance in call.fleet.instances.values()
        if _matches(instance, params, tags, call.tags_match) and call.can_see(instance.instance_id)
    ]
    next_token = ""
    if token_mode:
        chosen, next_token = _token_page(found, params.get("NextToken") or "0", max_results)
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
