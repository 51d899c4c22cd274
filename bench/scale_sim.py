"""The simulated RDS API as its own process, for ``bench/scale.py``.

Builds a fleet of ``--instances`` instances with eight days of backups (the exporter's default
lookback), injects ``--latency`` seconds into every answer, writes the instance ids to
``--ids-file`` and serves until SIGTERM. ``GET /bench/requests?from=K`` returns the requests
received since the K-th, as rows of ``[monotonic time, action, DBInstanceId, StartTime, EndTime,
PageNumber, code]`` (``time.monotonic`` is system-wide on Linux: the driver compares it with its
own).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from aiohttp import web

from bench.serve import serve_until_signalled
from exporter.simulator import Faults, Fleet, SimulatedRds

KEY_ID, SECRET = "LTAI5tScaleBenchKey00000", "scale-bench-secret-000000"


async def serve(fleet: Fleet, latency: float, port: int) -> None:
    sim = SimulatedRds(fleet, {KEY_ID: SECRET}, faults=Faults(latency=latency))
    app = sim.make_app()

    async def requests(request: web.Request) -> web.Response:
        start = int(request.query.get("from", "0"))
        rows = [
            [
                r.received,
                r.action,
                r.instance_id,
                r.params.get("StartTime", ""),
                r.params.get("EndTime", ""),
                r.params.get("PageNumber", "1"),
                r.code,
            ]
            for r in sim.requests[start:]
        ]
        return web.Response(body=json.dumps(rows).encode(), content_type="application/json")

    app.router.add_get("/bench/requests", requests)
    await serve_until_signalled(app, port, f"ready {len(fleet.instances)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ids-file", required=True)
    parser.add_argument("--latency", type=float, default=0.03)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    fleet = Fleet.generate(
        seed=args.seed,
        instances=args.instances,
        now=time.time(),
        history_days=8.0,
        readonly_fraction=0.0,  # every instance has backups: calls per instance stay comparable
    )
    # Each id with its region: the actions that take a RegionId find it only there.
    lines = [f"{iid} {instance.region_id}" for iid, instance in fleet.instances.items()]
    Path(args.ids_file).write_text("\n".join(lines) + "\n")
    asyncio.run(serve(fleet, args.latency, args.port))


if __name__ == "__main__":
    main()
