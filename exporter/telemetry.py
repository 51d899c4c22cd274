"""The exporter's own metrics about its work: API calls and poll durations."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from exporter.aliyun.client import DESCRIBE_BACKUPS
from exporter.aliyun.errors import code_label
from exporter.poller import CollectObserver
from exporter.sharding import Shard

_API_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_POLL_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class Telemetry(CollectObserver):
    """Receives every API attempt (from the client) and every poll (from the poller)."""

    def __init__(self, registry: CollectorRegistry, shard: Shard | None = None) -> None:
        self.api_requests = Counter(
            "aliyun_rds_api_requests",
            "RDS API calls (each HTTP attempt, retries included) by action and outcome; "
            "code is OK, the API's error Code when it is a known one, or other.",
            ["action", "code"],
            registry=registry,
        )
        self.api_duration = Histogram(
            "aliyun_rds_api_request_duration_seconds",
            "Latency of RDS API calls (each HTTP attempt), after waiting for the rate limiter.",
            ["action"],
            buckets=_API_BUCKETS,
            registry=registry,
        )
        self.reload_success = Gauge(
            "aliyun_rds_exporter_config_last_reload_successful",
            "1 if the last configuration reload (SIGHUP) succeeded, 0 if the new file was "
            "refused and the previous configuration kept.",
            registry=registry,
        )
        self.reload_timestamp = Gauge(
            "aliyun_rds_exporter_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully (start-up or SIGHUP).",
            registry=registry,
        )
        self.reload_success.set(1)
        self.collect_duration = Histogram(
            "aliyun_rds_backup_collect_duration_seconds",
            "How long one instance's poll took, all windows, pages and retries included.",
            buckets=_POLL_BUCKETS,
            registry=registry,
        )
        shard = shard or Shard()
        Gauge(
            "aliyun_rds_exporter_shard_index",
            "This replica's shard (--shard.index): it polls the instances whose id hashes to it.",
            registry=registry,
        ).set(shard.index)
        Gauge(
            "aliyun_rds_exporter_shards",
            "How many shards the fleet is split into (--shard.total); 1 = not sharded.",
            registry=registry,
        ).set(shard.total)
        # Series exist at zero from the start, so rate() and increase() see the first event.
        self.expect_action(DESCRIBE_BACKUPS)

    def reloaded(self, success: bool, when: float) -> None:
        """The outcome of a configuration reload (SIGHUP)."""
        self.reload_success.set(1 if success else 0)
        if success:
            self.reload_timestamp.set(when)

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
