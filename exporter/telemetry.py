"""The exporter's own metrics about its work: API calls and poll durations."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from exporter import metrics as m
from exporter.aliyun.client import DESCRIBE_BACKUPS
from exporter.aliyun.errors import code_label
from exporter.metrics import MetricDef
from exporter.sharding import Shard

_API_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_POLL_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class Telemetry:
    """Receives every API attempt (from the client) and every poll (from the poller)."""

    def __init__(self, registry: CollectorRegistry, shard: Shard | None = None) -> None:
        def spec(metric: MetricDef) -> dict[str, Any]:
            return {
                "name": metric.full_name,
                "documentation": metric.help_text({}),
                "labelnames": metric.labels,
                "registry": registry,
            }

        self.api_requests = Counter(**spec(m.API_REQUESTS))
        self.api_duration = Histogram(**spec(m.API_REQUEST_DURATION), buckets=_API_BUCKETS)
        self.reload_success = Gauge(**spec(m.RELOAD_SUCCESS))
        self.reload_timestamp = Gauge(**spec(m.RELOAD_TIMESTAMP))
        self.reload_success.set(1)
        self.collect_duration = Histogram(**spec(m.COLLECT_DURATION), buckets=_POLL_BUCKETS)
        shard = shard or Shard()
        Gauge(**spec(m.SHARD_INDEX)).set(shard.index)
        Gauge(**spec(m.SHARDS)).set(shard.total)
        self.duty_refresh = Gauge(**spec(m.DUTY_REFRESH))
        # Series exist at zero from the start, so rate() and increase() see the first event.
        self.expect_action(DESCRIBE_BACKUPS)

    def reloaded(self, success: bool, when: float) -> None:
        """The outcome of a configuration reload (SIGHUP)."""
        self.reload_success.set(1 if success else 0)
        if success:
            self.reload_timestamp.set(when)

    def set_refreshes(self, refreshes: dict[str, float]) -> None:
        """How often each enabled duty reads an instance (by duty name); a reload replaces
        them, and a duty switched off loses its series."""
        self.duty_refresh.clear()
        for duty, seconds in sorted(refreshes.items()):
            self.duty_refresh.labels(duty).set(seconds)

    def expect_action(self, action: str) -> None:
        """Creates the action's ``OK`` and latency series at zero, before its first call."""
        self.api_requests.labels(action, "OK")
        self.api_duration.labels(action)

    def observe(self, action: str, code: str, seconds: float) -> None:
        # A peer chooses the code: only known codes become label values (bounded cardinality).
        self.api_requests.labels(action, code_label(code)).inc()
        self.api_duration.labels(action).observe(seconds)

    def observe_poll(self, instance_id: str, seconds: float) -> None:
        self.collect_duration.observe(seconds)
