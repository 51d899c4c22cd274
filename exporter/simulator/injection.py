"""Which injected faults hit a request: seeded rolls against the rates in :class:`Faults`, and
per-key flow control. Decides only; the server turns each decision into an answer."""

from __future__ import annotations

import collections
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from exporter.simulator.errors import ApiError
from exporter.simulator.faults import Faults, InstanceFaults
from exporter.simulator.quirks import Quirks


@dataclass(frozen=True)
class Layers:
    """The fault settings that apply to one request: global, then per instance, then per
    action (all of them count), and the hostile mode the most specific one picks."""

    all: list[InstanceFaults]
    hostile: str | None

    @classmethod
    def of(cls, faults: Faults, instance_id: str, headers: Mapping[str, str]) -> Layers:
        layers: list[InstanceFaults] = [faults]
        scoped = faults.per_instance.get(instance_id) if instance_id else None
        if scoped is not None:
            layers.append(scoped)
        by_action = faults.per_action.get(headers.get("x-acs-action", ""))
        if by_action is not None:
            layers.append(by_action)
        return cls(layers, _hostile_mode(faults, scoped, by_action, headers))

    @property
    def latency(self) -> float:
        return sum(layer.latency for layer in self.all)

    @property
    def outage(self) -> bool:
        return any(layer.outage for layer in self.all)


def unavailable() -> ApiError:
    return ApiError(
        503,
        "ServiceUnavailable",
        "The request has failed due to a temporary failure of the server.",
    )


class FaultInjector:
    """Seeded fault decisions. Draws only for active faults: with none, no randomness is
    consumed, and the same seed and requests give the same faults."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        # Quirks draw from their own stream: switching them on or off leaves every seeded
        # fault decision as it was.
        self._quirk_rng = random.Random(f"{seed}|quirks")
        self._recent: dict[str, collections.deque[float]] = {}

    def _roll(self, rate: float) -> bool:
        return rate > 0 and self._rng.random() < rate

    def _any(self, rates: Iterable[float]) -> bool:
        # Stops at the first hit, so later layers draw nothing for this request.
        return any(self._roll(rate) for rate in rates)

    def reset(self, layers: Layers) -> bool:
        """Drop the connection without an answer?"""
        return self._any(layer.reset_rate for layer in layers.all)

    def html_error(self, layers: Layers) -> bool:
        """Answer with the gateway's HTML 502 page?"""
        return self._any(layer.html_error_rate for layer in layers.all)

    def truncate(self, layers: Layers) -> bool:
        """Cut a successful answer off halfway?"""
        return self._any(layer.truncate_rate for layer in layers.all)

    def check_throttle(
        self, key_id: str, layers: Layers, received: float, limit: float | None
    ) -> None:
        """Raises Throttling.User past ``limit`` requests per second from one key (monotonic
        ``received``), or on a throttle roll."""
        over_limit = False
        if limit is not None:
            recent = self._recent.setdefault(key_id, collections.deque())
            while recent and recent[0] <= received - 1.0:
                recent.popleft()
            over_limit = len(recent) >= limit
            if not over_limit:
                recent.append(received)
        if over_limit or self._any(layer.throttle_rate for layer in layers.all):
            raise ApiError(400, "Throttling.User", "Request was denied due to user flow control.")

    def inject_errors(self, layers: Layers) -> None:
        """Raises a rolled 5xx, else the first forced error, else nothing."""
        for layer in layers.all:
            if self._roll(layer.error_5xx_rate):
                if self._rng.random() < 0.5:
                    raise unavailable()
                raise ApiError(
                    500,
                    "InternalError",
                    "The request processing has failed due to some unknown error.",
                )
        for layer in layers.all:
            if layer.forced_error is not None:
                forced = layer.forced_error
                raise ApiError(forced.status, forced.code, forced.message)

    def retry_after_ms(self, faults: Faults, quirks: Quirks) -> int | None:
        """The x-acs-retry-after hint for a throttled answer, or None to leave it out."""
        # A fixed value set by a test wins; the quirk hints on about half, as gateways vary.
        if faults.retry_after_ms is not None:
            return faults.retry_after_ms
        if quirks.retry_after_on_throttle and self._quirk_rng.random() < 0.5:
            return self._quirk_rng.randint(1000, 5000)
        return None


def _hostile_mode(
    faults: Faults,
    scoped: InstanceFaults | None,
    by_action: InstanceFaults | None,
    headers: Mapping[str, str],
) -> str | None:
    """The hostile mode for a request: per action, else per instance (DescribeBackups
    only), else global."""
    if by_action is not None and by_action.hostile is not None:
        return by_action.hostile
    backups = headers.get("x-acs-action") == "DescribeBackups"
    if backups and scoped is not None and scoped.hostile is not None:
        return scoped.hostile
    return faults.hostile
