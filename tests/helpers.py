"""Shared test tools: clocks that do not wait, and a simulator served on loopback."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from exporter.aliyun.client import RdsClient
from exporter.aliyun.clock import Clock
from exporter.aliyun.credentials import Credentials, StaticCredentialsProvider
from exporter.aliyun.limiter import RequestLimiter
from exporter.simulator import Faults, Fleet, SimulatedRds

KEY_ID = "LTAI5tTestAccessKey0001"
SECRET = "TestSecretValue-0123456789abcdef"
NOW = 1_764_331_200.0  # 2025-11-28T12:00:00Z


class InstantClock:
    """Sleeping moves time forward at once and records the delay; nothing really waits."""

    def __init__(self, start: float = NOW) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


@asynccontextmanager
async def serve_simulator(sim: SimulatedRds) -> AsyncIterator[str]:
    async with sim.serve("127.0.0.1", 0) as url:
        yield url


@asynccontextmanager
async def loopback_client(sim: SimulatedRds, clock: Clock) -> AsyncIterator[RdsClient]:
    """An RdsClient of the test key for ``sim``, served on loopback; its limiter and retries
    wait on ``clock``."""
    async with sim.serve("127.0.0.1", 0) as url, aiohttp.ClientSession() as session:
        yield RdsClient(
            session,
            StaticCredentialsProvider(Credentials(KEY_ID, SECRET)),
            RequestLimiter(1000, 8, clock),
            clock,
            endpoint=url,
            rng=random.Random(1),
        )


def make_simulator(
    clock: Callable[[], float],
    *,
    instances: int = 5,
    seed: int = 1,
    faults: Faults | None = None,
    shuffle: bool = False,
    fleet: Fleet | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> SimulatedRds:
    """A seeded fleet behind a simulator that knows one test key and reads ``clock`` (and
    ``monotonic`` for when requests arrive)."""
    fleet = fleet or Fleet.generate(
        seed=seed, instances=instances, now=clock(), readonly_fraction=0.0
    )
    return SimulatedRds(
        fleet,
        {KEY_ID: SECRET},
        clock=clock,
        monotonic=monotonic,
        faults=faults,
        shuffle_items=shuffle,
    )


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """``app`` served on a free loopback port; yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()
