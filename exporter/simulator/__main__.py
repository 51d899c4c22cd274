"""``python -m exporter.simulator``: serve a simulated RDS API until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import Sequence

from exporter.simulator.fleet import DEFAULT_REGIONS, Fleet
from exporter.simulator.quirks import Quirks
from exporter.simulator.server import (
    DEMO_ACCESS_KEY_ID,
    DEMO_ACCESS_KEY_SECRET,
    SimulatedRds,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m exporter.simulator",
        description="Serve a simulated Alibaba Cloud RDS API (DescribeBackups, "
        "DescribeBackupPolicy, DescribeDBInstances, DescribeBinlogFiles, "
        "DescribeLogBackupFiles, DescribeLocalAvailableRecoveryTime, DescribeBackupTasks, "
        "DescribeInstanceCrossBackupPolicy, DescribeCrossRegionBackupDBInstance, "
        "DescribeCrossRegionBackups, DescribeAvailableRecoveryTime, DescribeResourceUsage) "
        "with a deterministic fleet.",
        epilog=f"Default credentials: access key id {DEMO_ACCESS_KEY_ID}, "
        f"secret {DEMO_ACCESS_KEY_SECRET} (demo values, accepted only by this simulator).",
    )
    parser.add_argument("--instances", type=int, default=50, help="fleet size (default 50)")
    parser.add_argument("--seed", type=int, default=1, help="fleet seed (default 1)")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=18080, help="listen port (default 18080)")
    parser.add_argument(
        "--history-days", type=float, default=8.0, help="days of backups before now (default 8)"
    )
    parser.add_argument(
        "--regions",
        default=",".join(DEFAULT_REGIONS),
        help=f"comma-separated region ids (default {','.join(DEFAULT_REGIONS)})",
    )
    parser.add_argument(
        "--access-key-id", default=DEMO_ACCESS_KEY_ID, help="the one key accepted (default below)"
    )
    parser.add_argument(
        "--access-key-secret", default=DEMO_ACCESS_KEY_SECRET, help="its secret (default below)"
    )
    parser.add_argument(
        "--shuffle-items", action="store_true", help="shuffle the items of each page"
    )
    parser.add_argument(
        "--no-quirks",
        action="store_true",
        help="answer as a client would naively expect: integer counters, JSON errors, times "
        "with seconds, every success usable, empty pages past the end, no retry-after hints",
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    regions = tuple(region.strip() for region in args.regions.split(",") if region.strip())
    fleet = Fleet.generate(
        seed=args.seed,
        instances=args.instances,
        now=time.time(),
        history_days=args.history_days,
        regions=regions,
    )
    sim = SimulatedRds(
        fleet,
        {args.access_key_id: args.access_key_secret},
        shuffle_items=args.shuffle_items,
        max_records=10_000,
        quirks=Quirks.none() if args.no_quirks else None,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with sim.serve(args.host, args.port) as url:
        # The secret is never printed: it is the one given, or the documented default.
        print(
            f"simulated RDS API at {url} ({len(fleet.instances)} instances, seed {args.seed}); "
            f"access key id {args.access_key_id} (secret: see --help)",
            flush=True,
        )
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.instances < 0:
        print("--instances must not be negative", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(args))
    except OSError as error:
        print(f"cannot listen on {args.host}:{args.port}: {error.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
