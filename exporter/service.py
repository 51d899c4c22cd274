"""Wires one running exporter together: HTTP session, limiter, clients, discovery, poller,
registry, app.

``cli`` builds one from the command line; tests build one around a simulator and a manual clock.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable, Mapping

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter import __version__, status, statuspage
from exporter.aliyun.client import DESCRIBE_DB_INSTANCES, RdsClient, RetryPolicy
from exporter.aliyun.credentials import (
    Credentials,
    CredentialsError,
    CredentialsProvider,
    DefaultChainCredentialsProvider,
    StaticCredentialsProvider,
)
from exporter.aliyun.limiter import RequestLimiter
from exporter.clock import Clock, SystemClock
from exporter.collector import BackupCollector
from exporter.config import Config, format_duration
from exporter.discovery import DiscoveryLoop, discovery_line, merge_targets
from exporter.duties import disabled_lines, duties_for, switched_off
from exporter.exposition import FleetExposition
from exporter.poller import Poller, plan_load
from exporter.sharding import Shard
from exporter.state import DiscoveryStatus, FleetState, Source, Target
from exporter.status import fleet_rows
from exporter.telemetry import Telemetry
from exporter.web import make_app
from exporter.webconfig import WebConfig, middleware

log = logging.getLogger(__name__)

BACKFILL_WORKERS = 16  # backfills at once: at a second per call, more than the default 10 calls/s

# Between scrapes, the /metrics lines of instances that changed are formatted ahead, at most
# this many (about 0.1 ms each) every this many seconds.
FORMAT_EVERY = 2.0
FORMAT_BATCH = 1000


async def _warm_up(providers: Iterable[CredentialsProvider]) -> None:
    """Loads the default chain and fetches once before any poll starts, so no poll pays for the
    import and the polls of a large fleet find the credentials already cached."""
    for provider in {id(p): p for p in providers}.values():
        if isinstance(provider, DefaultChainCredentialsProvider):
            await asyncio.to_thread(provider.load)
            try:
                await provider.get()
            except CredentialsError as err:
                log.error("%s", err)


def targets_from_config(config: Config, shard: Shard | None = None) -> list[Target]:
    """The configured instances this replica polls (all of them unless sharded)."""
    return [
        Target(
            instance_id=instance.id,
            region=instance.region,
            account=instance.account,
            source=Source.STATIC,
            labels=dict(instance.labels),
        )
        for instance in config.instances
        if shard is None or shard.owns(instance.id)
    ]


def load_plan(config: Config, shard: Shard | None = None) -> list[str]:
    """What ``--check-config`` prints: the load this config puts on the API (this replica's
    share of it when sharded), from the same duties and schedule the poller runs."""
    polling = config.polling
    instances = sum(1 for i in config.instances if shard is None or shard.owns(i.id))
    discovery = config.discovery
    lines = [f"accounts: {len(config.accounts)}"]
    if shard is not None and shard.sharded:
        lines.append(
            f"shard: {shard.index} of {shard.total} (indexes 0..{shard.total - 1}): "
            f"{instances} of the {len(config.instances)} static instances, and about "
            f"1/{shard.total} of those discovery finds"
        )
    lines.append(
        f"instances: {instances} static"
        + (
            f", discovery entries: {len(discovery)} (each instance found adds the same load "
            "as a static one)"
            if discovery
            else ""
        )
    )
    lines.append(
        f"polling: every {format_duration(polling.interval)}, lookback "
        f"{format_duration(polling.lookback)}, window {format_duration(polling.window)}, "
        f"overlap {format_duration(polling.effective_overlap)}"
    )
    duties = duties_for(polling, SystemClock())
    costs = plan_load(duties, instances, polling, config.api.rate_limit)
    notes = [line for line in costs if line.startswith(("note:", "warning:"))]
    lines += [line for line in costs if line not in notes]
    lines += [discovery_line(entry) for entry in discovery]
    lines += disabled_lines(polling)
    lines += notes
    lines += [f"warning: {warning}" for warning in config.warnings]
    return lines


class Exporter:
    """Everything between the config and /metrics, started and stopped as one."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        telemetry_path: str = "/metrics",
        web_config: WebConfig | None = None,
        shard: Shard | None = None,
    ) -> None:
        """``shard``: poll only this replica's share of the static and discovered instances."""
        self.config = config
        self.shard = shard or Shard()
        self.clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self.registry = CollectorRegistry(auto_describe=True)
        # The exporter's own metrics first, in a registry of their own, so that /metrics can
        # render them with the library and the fleet's series from cached lines.
        own = CollectorRegistry(auto_describe=True)
        self.registry.register(own)
        self.state = FleetState()
        self.telemetry = Telemetry(own, self.shard)
        self._collector = BackupCollector(
            self.state,
            self.clock,
            interval_text=format_duration(config.polling.interval),
            version=__version__,
            policy_refresh_text=format_duration(config.polling.policy_refresh),
            polling=config.polling,
        )
        self.registry.register(self._collector)
        self._exposition = FleetExposition(
            self.registry, [own], self._collector, self.state, self.clock
        )
        self.telemetry.reloaded(True, self.clock.time())
        self.app: web.Application = make_app(
            self.registry,
            render=self._exposition.render,
            # Not ready before start() has set the targets (it may wait for credentials).
            ready=lambda: self._started and self.state.ready,
            telemetry_path=telemetry_path,
            version=__version__,
            middlewares=[middleware(web_config)] if web_config is not None else [],
            landing_page=False,
        )
        statuspage.add_routes(
            self.app,
            self.status_document,
            telemetry_path=telemetry_path,
            version=__version__,
            clock=self.clock.monotonic,
        )
        self._session: aiohttp.ClientSession | None = None
        self._poller: Poller | None = None
        self._limiter: RequestLimiter | None = None
        self._static: list[Target] = []
        self._loops: list[DiscoveryLoop] = []
        self._discovery_tasks: list[asyncio.Task[None]] = []
        self._warmer: asyncio.Task[None] | None = None
        self._started = False
        self._carried_loops: list[DiscoveryLoop] = []

    def status_document(self) -> dict[str, object]:
        """The status page's data (``/status.json``): every instance's row, trouble first."""
        now = self.clock.time()
        rows = fleet_rows(self.state, now, self.clock.monotonic(), self.config.polling.interval)
        return status.document(
            rows,
            self.state.discovery,
            now=now,
            version=__version__,
            ready=self._started and self.state.ready,
        )

    def _credentials(self) -> dict[str, CredentialsProvider]:
        chain: CredentialsProvider | None = None
        providers: dict[str, CredentialsProvider] = {}
        for account in self.config.accounts:
            if account.credentials is not None:
                keys = account.credentials
                providers[account.name] = StaticCredentialsProvider(
                    Credentials(
                        access_key_id=keys.access_key_id,
                        access_key_secret=keys.access_key_secret,
                        security_token=keys.security_token,
                    )
                )
            else:
                chain = chain or DefaultChainCredentialsProvider()
                providers[account.name] = chain
        return providers

    async def start(self) -> None:
        api = self.config.api
        # One session: its connection pool is shared by every account and action.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max(api.concurrency * 2, 10))
        )
        providers = self._credentials()
        await _warm_up(providers.values())
        clients = self._make_clients(self._session, providers)
        polling = self.config.polling
        duties = duties_for(polling, self.clock, self.telemetry)
        for duty in duties:
            for action in duty.actions:
                self.telemetry.expect_action(action)
        self.telemetry.set_refreshes(
            {duty.name: max(duty.refresh, polling.interval) for duty in duties}
        )
        for duty in switched_off(polling, self.clock):
            for state in self.state.instances.values():
                duty.forget(state)  # a reload switched it off: its series go
                state.duties.pop(duty.name, None)  # and it no longer counts as failing
        self._poller = Poller(
            self.state,
            clients,
            self.config.polling,
            self.clock,
            duties,
            on_gone=self._instance_gone,
            # Half the slots at most, so a call in the foreground never waits long for one; and
            # few: the backfill only fills spare starts, which a few calls at a time keep busy.
            backfill_workers=max(1, min(BACKFILL_WORKERS, self.config.api.concurrency // 2)),
        )
        self._static = targets_from_config(self.config, self.shard)
        self._start_discovery(clients)
        self._update()
        self._discovery_tasks = [
            asyncio.create_task(loop.run(), name=f"discovery {loop.name}") for loop in self._loops
        ]
        self._warmer = asyncio.create_task(self._keep_lines_formatted(), name="format /metrics")
        self._started = True

    def _make_clients(
        self, session: aiohttp.ClientSession, providers: Mapping[str, CredentialsProvider]
    ) -> dict[str, RdsClient]:
        """One client per account, all sharing the session and one limiter."""
        api = self.config.api
        # One limiter for the whole process, shared by every account: the documented
        # rate_limit is per process, and RDS throttles per account and per API, so a shared
        # limit can never push any one account over its quota.
        limiter = self._limiter = RequestLimiter(api.rate_limit, api.concurrency, self.clock)
        for account in self.config.accounts:
            log.info(
                "account %s: %d static instance(s), %d discovery entries, credentials: %s",
                account.name,
                len(account.instances),
                len(account.discovery),
                providers[account.name].description,
            )
        return {
            account.name: RdsClient(
                session,
                providers[account.name],
                limiter,
                self.clock,
                endpoint=account.endpoint or api.endpoint,
                timeout=api.timeout,
                retry=RetryPolicy(retries=api.retries),
                observer=self.telemetry,
                rng=self._rng,
                max_response_bytes=api.max_response_bytes,
            )
            for account in self.config.accounts
        }

    def _start_discovery(self, clients: Mapping[str, RdsClient]) -> None:
        """A loop per discovery entry; an entry a reload kept keeps what it found."""
        carried = {loop.entry: loop for loop in self._carried_loops}
        self._carried_loops = []
        for entry in self.config.discovery:
            previous = carried.get(entry)
            # An entry a reload kept keeps what it found, so its instances stay polled.
            status = (
                previous.status
                if previous is not None
                else DiscoveryStatus(account=entry.account, region=entry.region)
            )
            self.state.discovery.append(status)
            loop = DiscoveryLoop(
                entry,
                clients[entry.account],
                self.clock,
                status,
                self._update,
                owns=self.shard.owns if self.shard.sharded else None,
            )
            if previous is not None:
                loop.adopt(previous)
            self._loops.append(loop)
        if self._loops:
            self.telemetry.expect_action(DESCRIBE_DB_INSTANCES)

    async def _keep_lines_formatted(self) -> None:
        """Formats the /metrics lines of instances that changed, a batch at a time, between
        scrapes. A chore on the event loop's own clock, not a schedule: it changes nothing a
        scrape would not (only when the work is done), so it stays off the injected clock."""
        while True:
            await asyncio.sleep(FORMAT_EVERY)
            try:
                self._exposition.warm(FORMAT_BATCH)
            except Exception:  # a scrape formats what is left; keep the chore alive
                log.exception("cannot format /metrics lines ahead of the scrape")

    def _update(self) -> None:
        """Polls exactly the merged static and discovered targets (static wins)."""
        if self._poller is not None:
            merged = merge_targets(self._static, (loop.targets() for loop in self._loops))
            self._poller.set_targets(merged)

    def _instance_gone(self, instance_id: str) -> None:
        """A retiring discovered instance no longer exists: drop it now, not after grace.
        (Its task has ended; were it still wanted, the update would start a new one.)"""
        for loop in self._loops:
            loop.forget(instance_id)
        self._update()

    def first_reads(self) -> tuple[int, int, bool]:
        """Instances whose every duty has run once, all instances, and whether every
        discovery entry has answered once (the report polls until all of them have)."""
        total = len(self.state.instances)
        return total - len(self.unread()), total, all(d.refreshed for d in self.state.discovery)

    def unread(self) -> list[str]:
        """The instances ``first_reads`` does not count as done yet, by id."""
        poller = self._poller
        return sorted(
            iid
            for iid, i in self.state.instances.items()
            if not (i.polled and poller and poller.read_all(i))
        )

    @property
    def calls_in_flight(self) -> int:
        """API calls on the network now. None while every task waits on the clock or on a
        task that does (tests wait for that before moving a manual clock)."""
        return self._limiter.in_flight if self._limiter is not None else 0

    async def stop(self) -> None:
        tasks = [*self._discovery_tasks, *([self._warmer] if self._warmer else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._warmer = None
        if self._poller is not None:
            await self._poller.stop()
        if self._session is not None:
            await self._session.close()
        self._discovery_tasks, self._loops, self._poller, self._session = [], [], None, None
        self.state.discovery.clear()

    async def reload(self, config: Config) -> None:
        """Applies a new configuration: polling restarts with it, and what the exporter knows
        carries over. Instances in both configurations keep their backups, watermarks and
        counters (so no backfill and no counter reset); the others gain or lose their series."""
        loops = list(self._loops)
        await self.stop()
        self._carried_loops = loops
        self.config = config
        self._collector.set_intervals(
            format_duration(config.polling.interval),
            format_duration(config.polling.policy_refresh),
            config.polling,
        )
        await self.start()
        self.telemetry.reloaded(True, self.clock.time())
