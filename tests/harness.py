"""The harness for end-to-end tests: the real exporter against the simulated RDS API over
loopback, driven by a manual clock, scraped over HTTP and parsed with client_python's parser."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import parse_config
from exporter.service import Exporter
from exporter.simulator import Faults, Fleet, SimulatedRds
from exporter.simulator.inferred import Inferred
from exporter.simulator.quirks import Quirks
from tests.clock import ManualClock
from tests.helpers import KEY_ID, NOW, SECRET

DAY = 86400.0
INTERVAL = 300.0
Samples = dict[str, dict[frozenset[tuple[str, str]], float]]


async def scrape(session: aiohttp.ClientSession, url: str) -> Samples:
    """Every sample of an exporter's /metrics at ``url``, by name and then by label set."""
    async with session.get(url + "/metrics") as response:
        assert response.status == 200
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return samples


def key(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset(labels.items())


@dataclass
class Harness:
    clock: ManualClock
    sim: SimulatedRds
    exporter: Exporter
    url: str
    session: aiohttp.ClientSession

    @property
    def fleet(self) -> Fleet:
        return self.sim.fleet

    async def scrape(self) -> Samples:
        return await scrape(self.session, self.url)

    async def advance(self, seconds: float) -> None:
        await self.clock.advance(seconds)

    async def ready(self) -> int:
        async with self.session.get(self.url + "/-/ready") as response:
            return response.status


def build_config(
    endpoint: str,
    instance_ids: list[str],
    api: dict[str, Any] | None = None,
    regions: dict[str, str] | None = None,
    **polling: Any,
) -> dict[str, Any]:
    """Each instance in its own region (``regions``; cn-hangzhou for ids the fleet lacks): the
    actions that take a RegionId do not find an instance asked for in another one."""
    return {
        "api": {
            "endpoint": endpoint,
            "rate_limit": 1000,
            "concurrency": 64,  # above the instance count: no poll waits for a slot
            "retries": 3,
            "timeout": "5s",
            **(api or {}),
        },
        "credentials": {"access_key_id": KEY_ID, "access_key_secret": SECRET},
        "polling": {"interval": "5m", "lookback": "8d", "window": "1d", **polling},
        "instances": [
            {"id": iid, "region": (regions or {}).get(iid, "cn-hangzhou")} for iid in instance_ids
        ],
    }


@asynccontextmanager
async def running(
    *,
    instances: int = 4,
    extra_ids: tuple[str, ...] = (),
    shuffle: bool = True,
    prepare: Callable[[Fleet, Faults], None] | None = None,
    api: dict[str, Any] | None = None,
    quirks: Quirks | None = None,
    inferred: Inferred | None = None,
    **polling: Any,
) -> AsyncIterator[Harness]:
    """The exporter against a fresh simulator, after its first polls. ``quirks``: the
    simulator's real-API quirks (all on by default, as in the real API)."""
    state_holder: list[Exporter] = []

    def quiet() -> bool:
        # No API call is on the network: every task waits on the clock, or on one that does.
        return bool(state_holder) and state_holder[0].calls_in_flight == 0 and clock.sleeping > 0

    clock = ManualClock(start=NOW, quiet_when=quiet)
    fleet = Fleet.generate(seed=11, instances=instances, now=NOW, readonly_fraction=0.0)
    faults = Faults()
    if prepare is not None:
        prepare(fleet, faults)
    sim = SimulatedRds(
        fleet,
        {KEY_ID: SECRET},
        clock=clock.time,
        faults=faults,
        shuffle_items=shuffle,
        quirks=quirks,
        inferred=inferred,
    )
    async with sim.serve("127.0.0.1", 0) as sim_url:
        ids = [*fleet.instances, *extra_ids]
        regions = {iid: instance.region_id for iid, instance in fleet.instances.items()}
        config = parse_config(build_config(sim_url, ids, api, regions, **polling), {})
        exporter = Exporter(config, clock=clock, rng=random.Random(5))
        runner = web.AppRunner(exporter.app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        await exporter.start()
        state_holder.append(exporter)
        try:
            async with aiohttp.ClientSession() as session:
                harness = Harness(clock, sim, exporter, f"http://127.0.0.1:{port}", session)
                # One virtual second: the rate limiter spaces the first polls' calls 1 ms apart.
                await clock.advance(1.0)
                yield harness
        finally:
            await exporter.stop()
            await runner.cleanup()


def success_key(iid: str, backup_type: str = "FullBackup") -> frozenset[tuple[str, str]]:
    return key(instance_id=iid, backup_type=backup_type)
