"""Real-time soak: the exporter process against the simulator with faults, for an hour.

Not part of the test suite. Starts the simulated RDS API in this process (faults switch on and
off on a schedule: throttling, 5xx, HTML error pages, resets, a one-minute outage every ten
minutes), starts the exporter as its own process against it, and every --sample seconds records
the exporter's resident memory, open file descriptors, and whether /metrics answered. Writes a
CSV and prints a summary: memory or descriptors that keep growing would show a leak.

    python bench/soak.py [--duration 3600] [--instances 200] [--interval 15s] [--csv soak.csv]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from exporter.simulator import Faults, Fleet, SimulatedRds

KEY_ID, SECRET = "LTAI5tSoakKey00000000000", "soak-secret-000000000000"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def apply_schedule(faults: Faults, elapsed: float) -> str:
    """Background noise all the time, and a one-minute outage every ten minutes."""
    minute = int(elapsed // 60)
    faults.throttle_rate = 0.1
    faults.error_5xx_rate = 0.05
    faults.html_error_rate = 0.01
    faults.reset_rate = 0.01
    faults.outage = minute % 10 == 9
    return "outage" if faults.outage else "noise"


async def soak(args: argparse.Namespace) -> list[dict[str, object]]:
    fleet = Fleet.generate(seed=5, instances=args.instances, now=time.time())
    faults = Faults()
    sim = SimulatedRds(fleet, {KEY_ID: SECRET}, faults=faults, max_records=1000)
    port = free_port()
    async with sim.serve("127.0.0.1", 0) as url:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "config.yaml"
            instances = "\n".join(
                f"  - id: {iid}\n    region: cn-hangzhou" for iid in fleet.instances
            )
            config.write_text(
                f"api:\n  endpoint: {url}\n  rate_limit: 50\n  timeout: 5s\n"
                f"credentials:\n  access_key_id: {KEY_ID}\n  access_key_secret: {SECRET}\n"
                f"polling:\n  interval: {args.interval}\n  lookback: 8d\n  window: 1d\n"
                f"instances:\n{instances}\n"
            )
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "exporter",
                "--config.file",
                str(config),
                "--web.listen-address",
                f"127.0.0.1:{port}",
                "--log.level",
                "warn",
                stderr=asyncio.subprocess.DEVNULL,
            )
            rows: list[dict[str, object]] = []
            started = time.monotonic()
            try:
                async with aiohttp.ClientSession() as session:
                    while (elapsed := time.monotonic() - started) < args.duration:
                        phase = apply_schedule(faults, elapsed)
                        status = 0
                        try:
                            async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
                                await r.read()
                                status = r.status
                        except aiohttp.ClientError:
                            pass
                        rows.append(
                            {
                                "seconds": round(elapsed),
                                "phase": phase,
                                "rss_kib": rss_kib(process.pid),
                                "open_fds": open_fds(process.pid),
                                "metrics_status": status,
                                "api_requests": len(sim.requests),
                            }
                        )
                        print(rows[-1], flush=True)
                        await asyncio.sleep(args.sample)
            finally:
                process.terminate()
                await process.wait()
    return rows


def report(rows: list[dict[str, object]], args: argparse.Namespace) -> None:
    with open(args.csv, "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    warm = [r for r in rows if int(str(r["seconds"])) >= min(300, args.duration / 2)] or rows
    print(
        f"samples: {len(rows)}; RSS KiB first/after warm-up/last/max: {rows[0]['rss_kib']}/"
        f"{warm[0]['rss_kib']}/{rows[-1]['rss_kib']}/{max(int(str(r['rss_kib'])) for r in rows)}; "
        f"open fds after warm-up/last/max: {warm[0]['open_fds']}/{rows[-1]['open_fds']}/"
        f"{max(int(str(r['open_fds'])) for r in rows)}; "
        f"/metrics failures: {sum(1 for r in rows if r['metrics_status'] != 200)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds (default 3600)")
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--interval", default="15s", help="exporter polling interval")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--csv", default="soak.csv")
    args = parser.parse_args()
    report(asyncio.run(soak(args)), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
