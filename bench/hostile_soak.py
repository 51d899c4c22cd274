"""Hostile-peer soak: the exporter between a hostile API and hostile HTTP clients, in real time.

Not part of the test suite; loopback only. The simulated RDS API runs in this process and, for
every instance in turn, sends each of its hostile answers (a gzip bomb, a page of a million
records, a redirect, dates in the year 2999, 1 MB and random error codes, echoed secrets, JSON
nested 100,000 deep, `{}`, `Items: null`, negative sizes), switching every minute, while normal
instances are polled beside them. The exporter runs as its own process. Meanwhile 50 clients
scrape /metrics back to back, and 200 connections are held open sending half a request header
(slowloris), reopened whenever the exporter closes them.

The clients run in a process of their own (this script with --load), so that building the
hostile answers in the simulator's process does not slow the clients and inflate the latencies
they measure. Every second it records the exporter's resident memory and open descriptors; at
the end it
prints peak RSS, scrape latency percentiles, how many scrapes failed, the bytes the exporter
logged, the number of series it serves (and of `aliyun_rds_api_requests_total` series), and how
long the half-open connections were kept, next to the bounds they must stay under.

    python bench/hostile_soak.py [--duration 600] [--instances 40] [--scrapers 50] [--idle 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from exporter.simulator import Faults, Fleet, SimulatedRds
from exporter.simulator.faults import HOSTILE_MODES

KEY_ID, SECRET = "LTAI5tHostileSoakKey0000", "hostile-soak-secret-00000000"
# The bounds the figures must stay under (bench/README.md says why these).
BOUNDS = {
    "peak_rss_mib": 300.0,
    "p99_scrape_seconds": 1.0,
    "log_bytes_per_minute": 200_000.0,
    "api_request_series": 150.0,
}


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


@dataclass
class Figures:
    rss: list[int] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)
    scrapes: list[float] = field(default_factory=list)
    scrape_failures: int = 0
    idle_opened: int = 0
    idle_lifetimes: list[float] = field(default_factory=list)


def rotate(faults: Faults, hostile: list[str], minute: int) -> None:
    """Each hostile instance gets the next mode every minute, so every mode is live at once."""
    for index, instance_id in enumerate(hostile):
        faults.for_instance(instance_id).hostile = HOSTILE_MODES[
            (index + minute) % len(HOSTILE_MODES)
        ]


async def scraper(url: str, figures: Figures, stop: asyncio.Event) -> None:
    headers = {"Accept": "application/openmetrics-text;version=1.0.0", "Accept-Encoding": "gzip"}
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            started = time.monotonic()
            try:
                async with session.get(url + "/metrics", headers=headers) as response:
                    await response.read()
                    ok = response.status == 200
            except (aiohttp.ClientError, asyncio.TimeoutError):
                ok = False
            if ok:
                figures.scrapes.append(time.monotonic() - started)
            else:
                figures.scrape_failures += 1
                await asyncio.sleep(0.1)


async def slowloris(port: int, figures: Figures, stop: asyncio.Event) -> None:
    """One connection that sends half a request header, a byte now and then, for ever;
    reopened when the exporter closes it."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(1)
            continue
        figures.idle_opened += 1
        opened = time.monotonic()
        try:
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            while not stop.is_set():
                await writer.drain()
                try:
                    data = await asyncio.wait_for(reader.read(1024), timeout=10)
                except asyncio.TimeoutError:
                    writer.write(b"X")  # one more byte of a header that never ends
                    continue
                if not data:
                    break  # closed by the exporter
        except OSError:
            pass
        finally:
            figures.idle_lifetimes.append(time.monotonic() - opened)
            writer.close()


async def load(args: argparse.Namespace) -> Figures:
    """The clients' process: scrapers and half-open connections until --duration is up."""
    figures = Figures()
    stop = asyncio.Event()
    url = f"http://127.0.0.1:{args.port}"
    tasks = [asyncio.create_task(scraper(url, figures, stop)) for _ in range(args.scrapers)]
    tasks += [asyncio.create_task(slowloris(args.port, figures, stop)) for _ in range(args.idle)]
    await asyncio.sleep(args.duration)
    stop.set()
    await asyncio.wait(tasks, timeout=20)
    for task in tasks:
        task.cancel()
    return figures


async def soak(args: argparse.Namespace) -> dict[str, object]:
    fleet = Fleet.generate(seed=5, instances=args.instances, now=time.time())
    ids = list(fleet.instances)
    hostile = ids[: len(ids) // 2]
    faults = Faults()
    sim = SimulatedRds(fleet, {KEY_ID: SECRET}, faults=faults, max_records=1000)
    port = free_port()
    figures = Figures()
    async with sim.serve("127.0.0.1", 0) as api_url:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "config.yaml"
            log_path = Path(tmp) / "exporter.log"
            listed = "\n".join(f"  - id: {iid}\n    region: cn-hangzhou" for iid in ids)
            config.write_text(
                f"api:\n  endpoint: {api_url}\n  rate_limit: 50\n  timeout: 10s\n"
                f"credentials:\n  access_key_id: {KEY_ID}\n  access_key_secret: {SECRET}\n"
                f"polling:\n  interval: {args.interval}\n  lookback: 8d\n  window: 1d\n"
                f"instances:\n{listed}\n"
            )
            rotate(faults, hostile, 0)
            with log_path.open("wb") as log:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "exporter",
                    "--config.file",
                    str(config),
                    "--web.listen-address",
                    f"127.0.0.1:{port}",
                    "--log.level",
                    "info",
                    stderr=log,
                )
            url = f"http://127.0.0.1:{port}"
            clients: asyncio.subprocess.Process | None = None
            load_out = Path(tmp) / "load.json"
            started = time.monotonic()
            try:
                async with aiohttp.ClientSession() as session:
                    while time.monotonic() - started < 30:
                        try:
                            async with session.get(url + "/-/healthy") as response:
                                if response.status == 200:
                                    break
                        except aiohttp.ClientError:
                            await asyncio.sleep(0.2)
                clients = await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--load",
                    "--port",
                    str(port),
                    "--duration",
                    str(args.duration),
                    "--scrapers",
                    str(args.scrapers),
                    "--idle",
                    str(args.idle),
                    "--out",
                    str(load_out),
                )
                started = time.monotonic()
                while (elapsed := time.monotonic() - started) < args.duration:
                    rotate(faults, hostile, int(elapsed // 60))
                    figures.rss.append(rss_kib(process.pid))
                    figures.fds.append(open_fds(process.pid))
                    await asyncio.sleep(1)
                await clients.wait()
                loaded = json.loads(load_out.read_text())
                figures.scrapes = loaded["scrapes"]
                figures.scrape_failures = loaded["scrape_failures"]
                figures.idle_opened = loaded["idle_opened"]
                figures.idle_lifetimes = loaded["idle_lifetimes"]
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(url + "/metrics") as response,
                ):
                    text = await response.text()
            finally:
                if clients is not None and clients.returncode is None:
                    clients.terminate()
                process.terminate()
                await process.wait()
            log_bytes = log_path.stat().st_size
            logged = log_path.read_text(errors="replace")
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    api_series = [line for line in samples if line.startswith("aliyun_rds_api_requests_total")]
    scrapes = sorted(figures.scrapes)
    minutes = args.duration / 60
    result: dict[str, object] = {
        "duration_seconds": args.duration,
        "instances": args.instances,
        "hostile_instances": len(hostile),
        "api_requests_served": len(sim.requests),
        "peak_rss_mib": round(max(figures.rss) / 1024, 1),
        "peak_open_fds": max(figures.fds),
        "scrapes": len(scrapes),
        "scrape_failures": figures.scrape_failures,
        "p50_scrape_seconds": round(statistics.median(scrapes), 4),
        "p99_scrape_seconds": round(scrapes[int(0.99 * (len(scrapes) - 1))], 4),
        "max_scrape_seconds": round(scrapes[-1], 4),
        "log_bytes": log_bytes,
        "log_bytes_per_minute": round(log_bytes / minutes),
        "longest_log_line": max((len(line) for line in logged.splitlines()), default=0),
        "secret_in_log": SECRET in logged,
        "series": len(samples),
        "api_request_series": len(api_series),
        "half_open_connections_opened": figures.idle_opened,
        "longest_half_open_seconds": round(max(figures.idle_lifetimes, default=0.0), 1),
    }
    result["within_bounds"] = {
        name: float(str(result[name])) <= bound for name, bound in BOUNDS.items()
    }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument("--instances", type=int, default=40)
    parser.add_argument("--interval", default="30s", help="exporter polling interval")
    parser.add_argument("--scrapers", type=int, default=50)
    parser.add_argument("--idle", type=int, default=200, help="half-open connections")
    parser.add_argument("--out", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:  # the clients' process: its figures go to --out
        figures = asyncio.run(load(args))
        loaded = {
            "scrapes": figures.scrapes,
            "scrape_failures": figures.scrape_failures,
            "idle_opened": figures.idle_opened,
            "idle_lifetimes": figures.idle_lifetimes,
        }
        Path(args.out).write_text(json.dumps(loaded))
        return 0
    result = asyncio.run(soak(args))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0 if all(result["within_bounds"].values()) else 1  # type: ignore[union-attr]


if __name__ == "__main__":
    raise SystemExit(main())
