"""What the simulator sends for a request (:class:`Reply`) and what it remembers of it
(:class:`RequestRecord`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

# RequestRecord.code values for answers that carry no API Code:
HTML_CODE = "HTML"  # the non-JSON 502 page
RESET_CODE = "RESET"  # a connection dropped without an answer
TRUNCATED_CODE = "TRUNCATED"  # a successful answer cut off halfway


@dataclass(frozen=True)
class RequestRecord:
    """One request as the simulator saw it and answered it."""

    received: float  # monotonic clock when it arrived
    clock: float  # the simulator's (possibly fake) wall clock at that moment
    method: str
    action: str
    version: str
    params: dict[str, str]  # decoded query parameters
    query_string: str  # raw, exactly as received
    access_key_id: str  # from the Authorization header, even when unknown or wrong
    status: int
    code: str  # "OK", the error Code, or HTML_CODE
    instance_id: str  # DBInstanceId parameter, "" when absent
    answered: float = 0.0  # monotonic clock when the answer was ready
    accept: str = ""  # the Accept header, as sent


@dataclass
class Reply:
    """An answer about to be sent; ``code`` is what its RequestRecord shows."""

    status: int
    code: str
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before sending
    access_key_id: str = ""


@dataclass(frozen=True)
class Arrival:
    """What the simulator notes about a request before answering it."""

    request: web.Request
    params: dict[str, str]  # decoded query parameters
    instance_id: str  # DBInstanceId parameter, "" when absent
    received: float  # monotonic clock when it arrived
    now: float  # the simulator's wall clock, once any injected latency has passed


def record_of(arrival: Arrival, reply: Reply, answered: float) -> RequestRecord:
    request = arrival.request
    return RequestRecord(
        received=arrival.received,
        clock=arrival.now,
        method=request.method,
        action=request.headers.get("x-acs-action", ""),
        version=request.headers.get("x-acs-version", ""),
        params=arrival.params,
        query_string=request.rel_url.raw_query_string,
        access_key_id=reply.access_key_id,
        status=reply.status,
        code=reply.code,
        instance_id=arrival.instance_id,
        answered=answered,
        accept=request.headers.get("Accept", ""),
    )


def keep_recent(records: list[RequestRecord], max_records: int | None) -> None:
    """Bounds ``records`` to about the ``max_records`` most recent (None: keeps them all)."""
    if max_records is not None and len(records) > 2 * max_records:
        # Trimmed in batches so that the cost per request stays constant.
        del records[: len(records) - max_records]
