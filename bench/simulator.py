"""Quick performance check of the simulator:
``python -m bench.simulator [--instances 10000] [--requests 1000] [--concurrency 20]``.

Measures fleet generation, backup generation for the whole history, and signed
DescribeBackups calls over loopback (one-day windows, as the exporter sends them).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time
from datetime import datetime, timezone

import aiohttp
import yarl

from exporter.aliyun.signing import sign_rpc_v3
from exporter.simulator.fleet import Fleet
from exporter.simulator.server import API_VERSION, SimulatedRds
from exporter.simulator.timefmt import DAY, format_minute

_KEY_ID = "LTAI5tBenchmarkKey000000"
_SECRET = "benchmark-secret"


async def _run_requests(
    sim: SimulatedRds, fleet: Fleet, now: float, requests: int, concurrency: int
) -> tuple[float, list[float]]:
    ids = [i for i, instance in fleet.instances.items() if instance.has_backups]
    nonces = itertools.count()
    latencies: list[float] = []
    limit = asyncio.Semaphore(concurrency)

    async def one(session: aiohttp.ClientSession, base: str, n: int) -> None:
        end = now - (n % 8) * DAY
        params = {
            "DBInstanceId": ids[n % len(ids)],
            "StartTime": format_minute(end - DAY),
            "EndTime": format_minute(end),
            "PageSize": "100",
        }
        signed = sign_rpc_v3(
            method="POST",
            host=yarl.URL(base).host_port_subcomponent or "",
            action="DescribeBackups",
            version=API_VERSION,
            params=params,
            access_key_id=_KEY_ID,
            access_key_secret=_SECRET,
            security_token=None,
            date=datetime.fromtimestamp(now, tz=timezone.utc),
            nonce=f"bench-{concurrency}-{next(nonces)}",
        )
        url = yarl.URL(f"{base}/?{signed.query_string}", encoded=True)
        async with limit:
            started = time.perf_counter()
            async with session.post(url, headers=signed.headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"unexpected answer {response.status}")
            latencies.append(time.perf_counter() - started)

    async with sim.serve() as base, aiohttp.ClientSession() as session:
        started = time.perf_counter()
        await asyncio.gather(*(one(session, base, n) for n in range(requests)))
        return time.perf_counter() - started, latencies


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.simulator")
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    now = float(int(time.time() // 60 * 60))

    started = time.perf_counter()
    fleet = Fleet.generate(seed=1, instances=args.instances, now=now, history_days=8.0)
    generated = time.perf_counter() - started
    print(f"generate {args.instances} instances: {generated:.3f} s")

    started = time.perf_counter()
    count = sum(len(fleet.backups_between(i, now - 8 * DAY, now, now)) for i in fleet.instances)
    first = time.perf_counter() - started
    started = time.perf_counter()
    for instance_id in fleet.instances:
        fleet.backups_between(instance_id, now - DAY, now, now)
    cached = time.perf_counter() - started
    print(f"8 days of backups for all instances ({count} backups): {first:.3f} s")
    print(f"one-day window for every instance, cached: {cached:.3f} s")

    sim = SimulatedRds(fleet, {_KEY_ID: _SECRET}, clock=lambda: now)
    for concurrency in (1, args.concurrency):
        elapsed, latencies = asyncio.run(_run_requests(sim, fleet, now, args.requests, concurrency))
        latencies.sort()
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
        print(
            f"{args.requests} DescribeBackups over loopback, {concurrency} in flight: "
            f"{elapsed:.3f} s ({args.requests / elapsed:.0f} req/s, "
            f"p50 {p50:.2f} ms, p99 {p99:.2f} ms)"
        )


if __name__ == "__main__":
    main()
