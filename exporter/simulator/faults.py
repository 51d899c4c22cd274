"""Fault injection settings. Plain mutable records: tests change them while a client runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Transform = Callable[[str, Mapping[str, str], dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class ForcedError:
    """An API error to answer with instead of the real result."""

    status: int
    code: str
    message: str = "The request was rejected by the simulator's fault injection."


INCORRECT_STATE = ForcedError(
    403, "IncorrectDBInstanceState", "Current DB instance state does not support this operation."
)
FORBIDDEN_RAM = ForcedError(
    403, "Forbidden.RAM", "User not authorized to operate on the specified resource."
)


@dataclass
class InstanceFaults:
    """Faults for requests naming one DBInstanceId (or, in :class:`Faults`, for all requests).

    Rates are probabilities in 0..1, drawn from the simulator's own seeded generator.
    """

    throttle_rate: float = 0.0  # HTTP 400 Throttling.User
    error_5xx_rate: float = 0.0  # HTTP 503 ServiceUnavailable or 500 InternalError, half each
    html_error_rate: float = 0.0  # HTTP 502 with an HTML page instead of JSON
    latency: float = 0.0  # seconds added to every response
    outage: bool = False  # every request: HTTP 503 ServiceUnavailable
    forced_error: ForcedError | None = None  # answer every request with this error
    reset_rate: float = 0.0  # the connection is dropped without an answer
    truncate_rate: float = 0.0  # a successful answer is cut off halfway (invalid JSON, HTTP 200)


@dataclass
class Faults(InstanceFaults):
    """Global faults, plus per-instance ones in ``per_instance`` and per-action ones in
    ``per_action`` (all that match apply)."""

    per_instance: dict[str, InstanceFaults] = field(default_factory=dict)
    per_action: dict[str, InstanceFaults] = field(default_factory=dict)
    # When set, throttled answers carry ``x-acs-retry-after`` (milliseconds), as the current
    # SDK expects; None leaves the header out, as older gateways do.
    retry_after_ms: int | None = None
    # Real per-user flow control: more requests than this from one access key in any one
    # second are throttled. None: no limit.
    max_requests_per_second: float | None = None
    # Rewrites successful answers before they are sent: (action, params, body) -> body. Tests
    # use it for wrong field types, missing fields, duplicates across pages, changing totals.
    transform: Transform | None = None

    def for_instance(self, instance_id: str) -> InstanceFaults:
        """The per-instance settings, created on first use so tests can write
        ``faults.for_instance(id).outage = True``."""
        return self.per_instance.setdefault(instance_id, InstanceFaults())

    def for_action(self, action: str) -> InstanceFaults:
        """Faults for one action only: ``faults.for_action("DescribeDBInstances").outage``."""
        return self.per_action.setdefault(action, InstanceFaults())
