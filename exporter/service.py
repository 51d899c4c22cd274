"""Wires one running exporter together: HTTP session, limiter, clients, poller, registry, app.

``cli`` builds one from the command line; tests build one around a simulator and a manual clock.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
import ssl
from contextlib import AsyncExitStack

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter import __version__
from exporter.aliyun.client import RdsClient, RetryPolicy
from exporter.aliyun.credentials import (
    Credentials,
    CredentialsProvider,
    DefaultChainCredentialsProvider,
    StaticCredentialsProvider,
)
from exporter.aliyun.limiter import RequestLimiter
from exporter.clock import Clock, SystemClock
from exporter.collector import BackupCollector
from exporter.config import Config, format_duration
from exporter.poller import Poller, PollSettings
from exporter.state import FleetState, Target
from exporter.telemetry import Telemetry
from exporter.web import make_app
from exporter.webconfig import WebConfig, middleware

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 5.0


def targets_from_config(config: Config) -> list[Target]:
    return [
        Target(
            instance_id=instance.id,
            region=instance.region,
            account=instance.account,
            source="static",
            labels=dict(instance.labels),
        )
        for instance in config.instances
    ]


def poll_settings(config: Config) -> PollSettings:
    polling = config.polling
    return PollSettings(
        interval=polling.interval,
        lookback=polling.lookback,
        window=polling.window,
        overlap=polling.effective_overlap,
        page_size=polling.page_size,
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
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self.registry = CollectorRegistry(auto_describe=True)
        self.state = FleetState()
        self.telemetry = Telemetry(self.registry)
        self.registry.register(
            BackupCollector(
                self.state,
                self.clock,
                interval_text=format_duration(config.polling.interval),
                version=__version__,
            )
        )
        self.app: web.Application = make_app(
            self.registry,
            ready=lambda: self.state.ready,
            telemetry_path=telemetry_path,
            version=__version__,
            middlewares=[middleware(web_config)] if web_config is not None else [],
        )
        self._session: aiohttp.ClientSession | None = None
        self._poller: Poller | None = None

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
        # One limiter for the whole process: the documented rate_limit is per process.
        limiter = RequestLimiter(api.rate_limit, api.concurrency, self.clock)
        providers = self._credentials()
        clients = {
            name: RdsClient(
                self._session,
                provider,
                limiter,
                self.clock,
                endpoint=api.endpoint,
                timeout=api.timeout,
                retry=RetryPolicy(retries=api.retries),
                observer=self.telemetry,
                rng=self._rng,
            )
            for name, provider in providers.items()
        }
        for account in self.config.accounts:
            log.info(
                "account %s: %d instance(s), credentials: %s",
                account.name,
                len(account.instances),
                providers[account.name].description,
            )
            if account.discovery:
                log.warning(
                    "account %s: discovery is not supported by this version yet; "
                    "only the instances listed in the config are polled",
                    account.name,
                )
        self._poller = Poller(
            self.state, clients, poll_settings(self.config), self.clock, observer=self.telemetry
        )
        self._poller.set_targets(targets_from_config(self.config))

    async def stop(self) -> None:
        if self._poller is not None:
            await self._poller.stop()
        if self._session is not None:
            await self._session.close()


async def serve(
    exporter: Exporter,
    host: str | None,
    port: int,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Runs until SIGTERM or SIGINT, then shuts down within a few seconds."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(exporter.app, handle_signals=False, access_log=None)
    async with AsyncExitStack() as stack:
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(
            runner, host, port, shutdown_timeout=SHUTDOWN_GRACE, ssl_context=ssl_context
        )
        await site.start()
        await exporter.start()
        stack.push_async_callback(exporter.stop)
        log.info("listening on %s://%s:%d", "https" if ssl_context else "http", host or "*", port)
        await stop.wait()
        log.info("shutting down")
