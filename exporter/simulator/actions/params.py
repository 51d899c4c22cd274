"""Parameter rules that several actions share: the instance asked about, paging, times.
Each raises the ApiError the real API answers with."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from exporter.simulator.actions.call import Call
from exporter.simulator.errors import ApiError, instance_not_found, missing_parameter
from exporter.simulator.models import SimInstance
from exporter.simulator.timefmt import parse_minute

MAX_INT32 = 2**31 - 1

DEFAULT_PAGE_SIZE = 30


def visible_instance(
    call: Call, not_found: Callable[[], ApiError] = instance_not_found
) -> SimInstance:
    """The instance named by DBInstanceId, if the caller's key may see it; else the action's
    ``not_found`` error."""
    instance_id = call.params.get("DBInstanceId", "")
    if not instance_id:
        raise missing_parameter("DBInstanceId")
    instance = call.fleet.instances.get(instance_id)
    # Another account's instance is simply not there for this key.
    if instance is None or not call.can_see(instance_id):
        raise not_found()
    return instance


def is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def page_number_error() -> ApiError:
    return ApiError(400, "InvalidPageNumbers.Malformed", "Specified page number is not valid.")


def page_number(params: Mapping[str, str]) -> int:
    text = params.get("PageNumber")
    if text is None:
        return 1
    if not is_number(text) or not 0 < int(text) <= MAX_INT32:
        raise page_number_error()
    return int(text)


def page_size_error(status: int) -> ApiError:
    return ApiError(
        status, "InvalidMaxRecordsPerPage.Malformed", "Specified record number is not valid."
    )


def bounded_int(params: Mapping[str, str], name: str, default: int, error: ApiError) -> int:
    """An integer parameter in 1..100, ``default`` when absent."""
    text = params.get(name)
    if text is None:
        return default
    if not is_number(text) or not 1 <= int(text) <= 100:
        raise error
    return int(text)


def time_param(
    params: Mapping[str, str],
    name: str,
    parse: Callable[[str], float | None] = parse_minute,
) -> float | None:
    """A ``yyyy-MM-ddTHH:mmZ`` parameter (or another form ``parse`` reads) as epoch seconds,
    None when absent."""
    text = params.get(name)
    if text is None:
        return None
    value = parse(text)
    if value is None:
        raise ApiError(400, f"Invalid{name}.Format", f"Specified {name} is not valid.")
    return value
