"""Wires one running exporter together: HTTP session, limiter, clients, discovery, poller,
registry, app.

``cli`` builds one from the command line; tests build one around a simulator and a manual clock.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import ssl
from collections.abc import Callable, Iterable
from contextlib import AsyncExitStack

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter import __version__
from exporter.aliyun.client import (
    DESCRIBE_BACKUP_POLICY,
    DESCRIBE_DB_INSTANCES,
    RdsClient,
    RetryPolicy,
)
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
from exporter.config import Config, ConfigError, format_duration
from exporter.discovery import DiscoveryLoop, merge_targets
from exporter.exposition import FleetExposition
from exporter.filesafe import run_in_daemon_thread
from exporter.httpserver import GuardedAppRunner, default_limits
from exporter.poller import Poller, PollSettings
from exporter.sharding import Shard
from exporter.state import DiscoveryStatus, FleetState, Target
from exporter.telemetry import Telemetry
from exporter.web import make_app
from exporter.webconfig import WebConfig, middleware

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 5.0
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
            source="static",
            labels=dict(instance.labels),
        )
        for instance in config.instances
        if shard is None or shard.owns(instance.id)
    ]


def poll_settings(config: Config) -> PollSettings:
    polling = config.polling
    return PollSettings(
        interval=polling.interval,
        lookback=polling.lookback,
        window=polling.window,
        overlap=polling.effective_overlap,
        page_size=polling.page_size,
        policy_refresh=polling.policy_refresh,
    )


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
        )
        self._session: aiohttp.ClientSession | None = None
        self._poller: Poller | None = None
        self._static: list[Target] = []
        self._loops: list[DiscoveryLoop] = []
        self._discovery_tasks: list[asyncio.Task[None]] = []
        self._warmer: asyncio.Task[None] | None = None
        self._started = False
        self._carried_loops: list[DiscoveryLoop] = []

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
        # One limiter for the whole process, shared by every account: the documented
        # rate_limit is per process, and RDS throttles per account and per API, so a shared
        # limit can never push any one account over its quota.
        limiter = RequestLimiter(api.rate_limit, api.concurrency, self.clock)
        providers = self._credentials()
        await _warm_up(providers.values())
        clients = {
            account.name: RdsClient(
                self._session,
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
        for account in self.config.accounts:
            log.info(
                "account %s: %d static instance(s), %d discovery entries, credentials: %s",
                account.name,
                len(account.instances),
                len(account.discovery),
                providers[account.name].description,
            )
        if self.config.polling.policy_refresh > 0:
            self.telemetry.expect_action(DESCRIBE_BACKUP_POLICY)
        self._poller = Poller(
            self.state,
            clients,
            poll_settings(self.config),
            self.clock,
            observer=self.telemetry,
            on_gone=self._instance_gone,
        )
        self._static = targets_from_config(self.config, self.shard)
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
        self._update()
        self._discovery_tasks = [
            asyncio.create_task(loop.run(), name=f"discovery {loop.name}") for loop in self._loops
        ]
        self._warmer = asyncio.create_task(self._keep_lines_formatted(), name="format /metrics")
        self._started = True

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

    @property
    def running_tasks(self) -> int:
        """Background tasks still running: instance pollers and discovery loops. When as many
        are asleep on the clock, nothing is in flight (tests wait for that)."""
        polling = self._poller.running_tasks if self._poller is not None else 0
        return polling + sum(1 for task in self._discovery_tasks if not task.done())

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
        )
        await self.start()
        self.telemetry.reloaded(True, self.clock.time())


async def reload_from(exporter: Exporter, load: Callable[[], Config]) -> bool:
    """SIGHUP: reads the configuration again and applies it, or refuses it and keeps the
    running one (each problem logged on its own line, and the reload gauge says so)."""
    refused = "reload refused, keeping the running configuration: %s"
    try:
        # File I/O stays off the event loop, and off its default executor too: asyncio.run
        # waits for that one at exit, so a read that hangs (a dead mount) would stop SIGTERM.
        config = await run_in_daemon_thread(load, "reload")
    except ConfigError as err:
        for problem in err.problems:
            log.error(refused, problem)
        exporter.telemetry.reloaded(False, exporter.clock.time())
        return False
    except Exception as err:  # a loader bug must not leave the gauge saying all is well
        # Only the type: the message of an unexpected error could quote a secret.
        log.error(refused, f"cannot load it ({type(err).__name__})")
        exporter.telemetry.reloaded(False, exporter.clock.time())
        return False
    for warning in config.warnings:
        log.warning("%s", warning)
    running = exporter.config
    try:
        await exporter.reload(config)
    except Exception:
        # The new configuration passed its checks but could not be started: go back to the one
        # that was running rather than stay stopped.
        log.exception("reload failed while starting; going back to the running configuration")
        await exporter.reload(running)
        exporter.telemetry.reloaded(False, exporter.clock.time())
        return False
    log.info("configuration reloaded: %d static instance(s)", len(config.instances))
    return True


async def serve(
    exporter: Exporter,
    host: str | None,
    port: int,
    ssl_context: ssl.SSLContext | None = None,
    load: Callable[[], Config] | None = None,
) -> None:
    """Runs until SIGTERM or SIGINT, then shuts down within a few seconds. With ``load``,
    SIGHUP reloads the configuration through it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    reloads: set[asyncio.Task[bool]] = set()
    lock = asyncio.Lock()

    async def reload_once() -> bool:
        async with lock:  # SIGHUPs in a burst apply one after the other
            if load is None:
                log.warning("SIGHUP ignored: there is no configuration file to reload")
                return False
            return await reload_from(exporter, load)

    def finished(task: asyncio.Task[bool]) -> None:
        reloads.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Retrieved here, so never "Task exception was never retrieved" instead.
            log.error("reload failed: %s", type(task.exception()).__name__)

    def on_hangup() -> None:
        if stop.is_set():  # shutting down: nothing to reload into
            return
        task = asyncio.create_task(reload_once(), name="reload")
        reloads.add(task)
        task.add_done_callback(finished)

    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    # Header and idle timeouts and a connection cap: exporter.httpserver.
    runner = GuardedAppRunner(
        exporter.app,
        default_limits(),
        handle_signals=False,
        access_log=None,
        shutdown_timeout=SHUTDOWN_GRACE,
    )
    async with AsyncExitStack() as stack:
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        await site.start()
        await exporter.start()
        stack.push_async_callback(exporter.stop)
        log.info("listening on %s://%s:%d", "https" if ssl_context else "http", host or "*", port)
        await stop.wait()
        log.info("shutting down")
        # A reload in progress does not hold this up: a load waits on a daemon thread, so
        # cancelling returns at once whatever the file system does.
        for task in list(reloads):
            task.cancel()
        # A reload cut short must be over before the exporter stops for good.
        await asyncio.gather(*reloads, return_exceptions=True)
