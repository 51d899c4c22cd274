"""API calls per instance for the first poll and in steady state, from the simulator's log.

Runs the real exporter (poller, client, signing, HTTP over loopback) against the simulated RDS API
with a manual clock, so hours of polling take seconds, and counts the DescribeBackups calls the
simulator received per instance.

    python -m bench.api_calls [--instances 200] [--intervals 12]
"""

from __future__ import annotations

import argparse
import asyncio
import random
from collections import Counter

from exporter.config import parse_config
from exporter.service import Exporter
from exporter.simulator import Fleet, SimulatedRds
from tests.clock import ManualClock

KEY_ID, SECRET = "LTAI5tBenchKey000000000", "bench-secret-0000000000"
START = 1_764_331_200.0


async def measure(instances: int, intervals: int) -> None:
    holder: list[Exporter] = []
    clock = ManualClock(START, quiet_when=lambda: bool(holder) and clock.sleeping >= instances)
    fleet = Fleet.generate(seed=1, instances=instances, now=START, readonly_fraction=0.0)
    sim = SimulatedRds(fleet, {KEY_ID: SECRET}, clock=clock.time)
    async with sim.serve("127.0.0.1", 0) as url:
        config = parse_config(
            {
                "api": {"endpoint": url, "rate_limit": 10_000, "concurrency": instances + 1},
                "credentials": {"access_key_id": KEY_ID, "access_key_secret": SECRET},
                "polling": {"interval": "5m", "lookback": "8d", "window": "1d"},
                "instances": [{"id": iid, "region": "cn-hangzhou"} for iid in fleet.instances],
            },
            {},
        )
        exporter = Exporter(config, clock=clock, rng=random.Random(1))
        await exporter.start()
        holder.append(exporter)
        # Long enough for every first poll at this rate, shorter than the first phase offset.
        await clock.advance(1.0)
        # DescribeBackups only: the backup policy read after the first poll is another action.
        first = Counter(r.instance_id for r in sim.requests if r.action == "DescribeBackups")
        backups = sum(len(s.backups) for s in exporter.state.instances.values())
        sim.clear_requests()
        await clock.advance(intervals * config.polling.interval)
        steady = Counter(r.instance_id for r in sim.requests if r.action == "DescribeBackups")
        await exporter.stop()
    floor = config.polling.lookback / config.polling.window
    print(f"instances: {instances}; backups held after the first poll: {backups}")
    print(f"first poll: {sum(first.values()) / instances:.2f} calls per instance (floor {floor:g})")
    print(
        f"steady state: {sum(steady.values()) / instances / intervals:.3f} calls per instance "
        f"per poll over {intervals} intervals (floor 1)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--intervals", type=int, default=12)
    args = parser.parse_args()
    asyncio.run(measure(args.instances, args.intervals))


if __name__ == "__main__":
    main()
