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


HOSTILE_MODES = (
    "gzip_bomb",  # HTTP 200, Content-Encoding gzip, inflating to Faults.bomb_bytes
    "huge_page",  # HTTP 200, a valid page of Faults.huge_items items
    "redirect",  # HTTP 302 to Faults.redirect_to
    "future_dates",  # the normal answer with every item time in the year 2999
    "giant_code",  # HTTP 400 whose Code and RequestId are 1 MB long
    "random_code",  # HTTP 400 with a fresh Code (Err.<16 hex>) each time
    "echo_secret",  # HTTP 400 whose Code, Message and RequestId carry the caller's secrets
    "deep_json",  # HTTP 200, 100000 nested arrays
    "empty_object",  # HTTP 200, {} (plus RequestId)
    "items_null",  # HTTP 200, "Items": null
    "negative_size",  # the normal answer with every BackupSize (and log FileSize) -1
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
    # One of HOSTILE_MODES, sent instead of every successful answer: per instance for
    # DescribeBackups, per action for that action (huge_page fills the list of any list
    # action), globally for every action. The most specific setting wins.
    hostile: str | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        # Checked on every assignment: tests set it on a live simulator.
        if name == "hostile" and value is not None and value not in HOSTILE_MODES:
            known = ", ".join(HOSTILE_MODES)
            raise ValueError(f"hostile: unknown mode {value!r} (known: {known})")
        super().__setattr__(name, value)


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
    # Sizes and target of the hostile answers (see HOSTILE_MODES).
    bomb_bytes: int = 1 << 30
    huge_items: int = 1_000_000
    redirect_to: str = "http://127.0.0.1:9/steal"

    def for_instance(self, instance_id: str) -> InstanceFaults:
        """The per-instance settings, created on first use so tests can write
        ``faults.for_instance(id).outage = True``."""
        return self.per_instance.setdefault(instance_id, InstanceFaults())

    def for_action(self, action: str) -> InstanceFaults:
        """Faults for one action only: ``faults.for_action("DescribeDBInstances").outage``."""
        return self.per_action.setdefault(action, InstanceFaults())
