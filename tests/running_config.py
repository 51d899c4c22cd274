"""The end-to-end harness for any configuration: discovery, several accounts, several simulators.

Like ``tests.harness.running``, but the test writes the whole config (given the simulators'
URLs) and the fleets. The manual clock moves on once every background task (instance pollers
and discovery loops) is asleep on it, so no HTTP call is still in flight.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from exporter.config import Config, parse_config
from exporter.service import Exporter
from exporter.simulator import Fleet, SimulatedRds
from tests.clock import ManualClock
from tests.harness import Harness
from tests.helpers import KEY_ID, NOW, SECRET

ConfigFactory = Callable[[Sequence[str]], "dict[str, Any] | Config"]


@dataclass
class MultiHarness(Harness):
    sims: list[SimulatedRds] = field(default_factory=list)


@asynccontextmanager
async def running_config(
    make_config: ConfigFactory,
    *fleets: Fleet,
    credentials: Mapping[str, str] | None = None,
    settle: float = 1.0,
    prepare: Callable[[SimulatedRds], None] | None = None,
) -> AsyncIterator[MultiHarness]:
    """Serves each fleet on its own simulator (all knowing ``credentials``), builds the config
    from their URLs, runs the exporter and yields a harness for the first simulator.
    ``prepare`` sets up that simulator before the exporter starts."""
    holder: list[Exporter] = []

    def quiet() -> bool:
        return bool(holder) and holder[0].calls_in_flight == 0 and clock.sleeping > 0

    clock = ManualClock(start=NOW, quiet_when=quiet)
    keys = dict(credentials or {KEY_ID: SECRET})
    sims = [
        SimulatedRds(fleet, keys, clock=clock.time, shuffle_items=True, rng_seed=n)
        for n, fleet in enumerate(fleets)
    ]
    if prepare is not None:
        prepare(sims[0])
    async with AsyncExitStack() as stack:
        urls = [await stack.enter_async_context(sim.serve("127.0.0.1", 0)) for sim in sims]
        made = make_config(urls)
        config = made if isinstance(made, Config) else parse_config(made, {})
        exporter = Exporter(config, clock=clock, rng=random.Random(5))
        runner = web.AppRunner(exporter.app)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        await exporter.start()
        stack.push_async_callback(exporter.stop)
        holder.append(exporter)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        url = f"http://127.0.0.1:{port}"
        harness = MultiHarness(clock, sims[0], exporter, url, session, sims)
        await clock.advance(settle)
        yield harness


def api_section(url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "endpoint": url,
        "rate_limit": 1000,
        "concurrency": 64,
        "retries": 2,
        "timeout": "5s",
        **overrides,
    }
