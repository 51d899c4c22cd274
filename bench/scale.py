"""Fleet-scale benchmark: API calls, request rate, CPU, memory and /metrics latency.

Not part of the test suite. For each fleet size it starts three processes on loopback: the
simulated RDS API (``bench/scale_sim.py``: eight days of backups, latency injected), the
exporter (``python -m exporter``, real time, static instance list), and, once the first poll is
done, the baseline (``bench/scale_baseline.py``: the same samples in plain prometheus_client
Gauges). This process drives them and measures; see bench/README.md for the method.

    python -m bench.scale [--sizes 1000,10000] [--rate 400] [--latency 0.03] [--interval 60]
                          [--cycles 2] [--out bench/scale-results.json] [--profile DIR]
                          [--exporter-tree DIR]

Run it from the repository root. Phases, for each size:

1. first poll: the exporter starts and reads every instance's newest backups (before the
   newest-first change: the whole lookback); /metrics is scraped all along; ends when /-/ready
   answers 200; then the wait for every duty's first read and the whole lookback;
2. steady state with scrapes: after half an interval to settle, ``--cycles`` intervals during
   which the exporter and the baseline are scraped alternately, back to back;
3. steady state, quiet: ``--cycles`` intervals with no scrapes, for the polling cost alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

# The duties a --duties switch turns on or off; the backup policy keeps its 6h default (read
# once per instance in a run).
from exporter.config.checks import DUTY_REFRESHES
from exporter.schedule import floor_minute
from exporter.simulator.timefmt import parse_minute

REPO = Path(__file__).resolve().parents[1]
KEY_ID, SECRET = "LTAI5tScaleBenchKey00000", "scale-bench-secret-000000"
# What Prometheus 2.x sends: OpenMetrics preferred, gzip accepted.
SCRAPE_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
}
PLAIN_HEADERS = {"Accept": "text/plain", "Accept-Encoding": "identity"}
TICKS = os.sysconf("SC_CLK_TCK")
FLOOR = 8  # lookback / window: 8d / 1d
LOOKBACK = 8 * 86400.0
WINDOW = 86400.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15)


def memory_mib(pid: int, name: str) -> float:
    """VmRSS (resident now) or VmHWM (peak resident) of a process, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Scrapes:
    seconds: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        if not self.seconds:
            return {"n": 0}
        return {
            "n": len(self.seconds),
            "p50_s": statistics.median(self.seconds),
            "p99_s": percentile(self.seconds, 99),
            "max_s": max(self.seconds),
            "bytes": statistics.median(self.sizes),
            "all_s": [round(s, 4) for s in self.seconds],
        }


def write_config(
    path: Path, endpoint: str, regions: dict[str, str], args: argparse.Namespace
) -> None:
    lines = [
        "api:",
        f"  endpoint: {endpoint}",
        f"  rate_limit: {args.rate}",
        f"  concurrency: {args.concurrency}",
        "  timeout: 10s",
        "credentials:",
        f"  access_key_id: {KEY_ID}",
        f"  access_key_secret: {SECRET}",
        "polling:",
        f"  interval: {args.interval}s",
        "  lookback: 8d",
        "  window: 1d",
        # Every other duty at every poll (--duties all), so that each one's floor is one call
        # per instance it applies to per poll; or switched off (--duties backups).
        *(f"  {key}: {args.interval if args.duties == 'all' else 0}s" for key in DUTY_REFRESHES),
        "instances:",
    ]
    lines += [f"  - {{id: {iid}, region: {region}}}" for iid, region in regions.items()]
    path.write_text("\n".join(lines) + "\n")


def first_read_calls(rows: list[list[Any]], spawned: float) -> tuple[dict[str, int], float]:
    """DescribeBackups calls of each instance's first reads of the lookback (its first poll,
    and since the newest-first change the backfill that follows it), and when the last one
    arrived.

    Rows are ``[time, action, instance, StartTime, EndTime, PageNumber, code]``. ``spawned``:
    when the exporter started (epoch seconds). An instance's first poll reads up to the minute
    it begins, after ``spawned``; every first read ends there or earlier (oldest window first
    before the change, newest first after it) and starts a whole window before it or earlier.
    A later poll ends later, or (a poll slot in the same minute) starts after that.
    """
    newest: dict[str, float] = {}
    for row in rows:
        end = parse_minute(row[4]) if row[1] == "DescribeBackups" else None
        if end is not None and end >= floor_minute(spawned):
            newest[row[2]] = min(end, newest.get(row[2], end))
    counts: dict[str, int] = defaultdict(int)
    last = 0.0
    for row in rows:
        if row[1] == "DescribeBackups" and row[2] in newest:
            start, end = parse_minute(row[3]), parse_minute(row[4])
            top = newest[row[2]]
            if start is not None and end is not None and end <= top and start <= top - WINDOW:
                counts[row[2]] += 1
                last = max(last, row[0])
    return dict(counts), last


class Run:
    """One fleet size: the three processes, the measurements and their results."""

    def __init__(self, instances: int, args: argparse.Namespace, tmp: Path) -> None:
        self.instances = instances
        self.args = args
        self.tmp = tmp
        self.result: dict[str, Any] = {"instances": instances}
        self.sim_url = f"http://127.0.0.1:{free_port()}"
        self.exporter_url = f"http://127.0.0.1:{free_port()}"
        self.baseline_url = f"http://127.0.0.1:{free_port()}"
        self.processes: list[asyncio.subprocess.Process] = []
        self.pid = 0
        self.phase = "start"
        self.peak_rss: dict[str, float] = defaultdict(float)
        self.profile = Path(args.profile) / f"exporter-{instances}.prof" if args.profile else None

    async def spawn(
        self, *argv: str, stdout: int | None = None, cwd: Path = REPO
    ) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            sys.executable, *argv, cwd=cwd, stdout=stdout, stderr=asyncio.subprocess.STDOUT
        )
        self.processes.append(process)
        return process

    async def stop(self) -> None:
        for process in reversed(self.processes):
            if process.returncode is None:
                process.terminate()
                await process.wait()

    async def start(self) -> None:
        sim = await self.spawn(
            *("-m", "bench.scale_sim", "--instances", str(self.instances)),
            *("--port", self.sim_url.rsplit(":", 1)[1], "--latency", str(self.args.latency)),
            *("--ids-file", str(self.tmp / "ids.txt")),
            stdout=asyncio.subprocess.PIPE,
        )
        assert sim.stdout is not None
        await sim.stdout.readline()
        listed = [line.split() for line in (self.tmp / "ids.txt").read_text().splitlines()]
        self.regions = {iid: region for iid, region in listed}
        self.ids = list(self.regions)
        config = self.tmp / "config.yaml"
        write_config(config, self.sim_url, self.regions, self.args)
        profiler = ["-m", "cProfile", "-o", str(self.profile)] if self.profile else []
        exporter = await self.spawn(
            *profiler,
            *("-m", "exporter", "--config.file", str(config), "--log.level", "warn"),
            *("--web.listen-address", self.exporter_url.removeprefix("http://")),
            # `python -m exporter` imports the package from the working directory first.
            cwd=Path(self.args.exporter_tree),
        )
        self.pid = exporter.pid
        self.started = time.monotonic()

    async def sample_rss(self) -> None:
        while True:
            rss = memory_mib(self.pid, "VmRSS")
            self.peak_rss[self.phase] = max(self.peak_rss[self.phase], rss)
            await asyncio.sleep(0.2)

    async def scrape(
        self,
        session: aiohttp.ClientSession,
        url: str,
        into: Scrapes,
        headers: dict[str, str] = SCRAPE_HEADERS,
    ) -> None:
        began = time.perf_counter()
        async with session.get(url + "/metrics", headers=headers) as response:
            body = await response.read()  # still compressed: the session does not decompress
            if response.status != 200:
                raise RuntimeError(f"{url}: HTTP {response.status}")
        into.seconds.append(time.perf_counter() - began)
        into.sizes.append(len(body))
        if headers is PLAIN_HEADERS:  # uncompressed text: count the sample lines
            into.samples.append(sum(1 for line in body.splitlines() if not line.startswith(b"#")))

    async def every(
        self, seconds: float, action: Callable[[], Any], until: Callable[[], bool]
    ) -> None:
        while not until():
            began = time.monotonic()
            await action()
            await asyncio.sleep(max(0.0, seconds - (time.monotonic() - began)))

    async def requests(self, session: aiohttp.ClientSession, start: int = 0) -> list[list[Any]]:
        async with session.get(self.sim_url + f"/bench/requests?from={start}") as response:
            rows: list[list[Any]] = await response.json()
        return rows

    async def first_reads_done(
        self, session: aiohttp.ClientSession, deadline: float
    ) -> tuple[float, float]:
        """Waits until the simulator has answered every instance's first read of each duty
        and its DescribeBackups reads reach back the whole lookback (or the deadline passes);
        returns how long after the start each was. The policy, and with every duty on the
        running backups and, last in each poll, backup storage: each instance's duties run one
        after the other, so its first reads of the log files and the copies (several windows
        each) are done by then. Answers that are errors count: they are states too."""
        needed = {"DescribeBackupPolicy"}
        if self.args.duties == "all":
            needed |= {"DescribeBackupTasks", "DescribeResourceUsage"}
        since = floor_minute(self.started + time.time() - time.monotonic())
        seen: dict[str, set[str]] = defaultdict(set)
        newest: dict[str, float] = {}
        oldest: dict[str, float] = {}
        reached: set[str] = set()
        done, mark = 0, 0
        duties_at = lookback_at = last_reached = 0.0
        while time.monotonic() < deadline:
            rows = await self.requests(session, mark)
            mark += len(rows)
            for row in rows:
                actions = seen[row[2]]
                before = needed <= actions
                actions.add(row[1])
                done += not before and needed <= actions
                if row[1] == "DescribeBackups":
                    start, end = parse_minute(row[3]) or 0.0, parse_minute(row[4]) or 0.0
                    if end >= since:  # the first poll's newest window ends first
                        newest[row[2]] = min(end, newest.get(row[2], end))
                    oldest[row[2]] = min(start, oldest.get(row[2], start))
                    top = newest.get(row[2], -math.inf)
                    # Within an hour of the floor (it moves on while the reads go on).
                    if row[2] not in reached and oldest[row[2]] <= top - LOOKBACK + 3600:
                        reached.add(row[2])
                        last_reached = max(last_reached, row[0] - self.started)
            now = time.monotonic() - self.started
            if done >= self.instances and not duties_at:
                duties_at = now
            if len(reached) >= self.instances and not lookback_at:
                lookback_at = last_reached  # when the simulator got the last call it needed
            if duties_at and lookback_at:
                break
            await asyncio.sleep(1.0)
        return duties_at or math.nan, lookback_at or math.nan

    async def answered(self, session: aiohttp.ClientSession, path: str, every: float) -> None:
        """Waits until the exporter answers 200 on ``path`` (asking every ``every`` seconds)."""
        while True:
            try:
                async with session.get(self.exporter_url + path) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(every)

    async def measure(self, session: aiohttp.ClientSession) -> None:
        args, result, pid, interval = self.args, self.result, self.pid, self.args.interval
        await self.answered(session, "/-/healthy", 0.2)
        result["startup_s"] = time.monotonic() - self.started
        sampler = asyncio.create_task(self.sample_rss())

        # Phase 1: the first poll, scraped all along.
        self.phase = "first_poll"
        first, ready = Scrapes(), asyncio.Event()
        scraper = asyncio.create_task(
            self.every(
                args.scrape_every,
                lambda: self.scrape(session, self.exporter_url, first),
                ready.is_set,
            )
        )
        cpu_start = cpu_seconds(pid)
        while True:
            async with session.get(self.exporter_url + "/-/ready") as response:
                if response.status == 200:
                    break
            await asyncio.sleep(0.5)
        ready_at = time.monotonic()
        ready.set()
        await scraper
        result["first_poll"] = {
            "wall_s": ready_at - self.started,
            "cpu_s": cpu_seconds(pid) - cpu_start,
            "scrapes": first.summary(),
        }

        # The baseline gets the same samples, read in the classic text format, once every
        # instance's other duties have had their first read too: the exporter runs them once
        # the whole fleet is ready, and their series are part of what it serves from then on.
        self.phase = "steady"
        # The other duties' first reads and the rest of the lookback: at most 28 calls per
        # instance with every duty on (eight log windows, eight copies windows where copying is
        # on, eight backup windows), paced by the rate limit; allowed four times that (the
        # backfill gets only what the polls leave of the rate), or two intervals.
        reads = 28 if args.duties == "all" else 8
        allowed = max(2 * interval, 4 * reads * self.instances / args.rate)
        result["first_reads_s"], result["lookback_read_s"] = await self.first_reads_done(
            session, ready_at + allowed
        )
        reads_done = time.monotonic()
        async with session.get(self.exporter_url + "/metrics", headers=PLAIN_HEADERS) as r:
            (self.tmp / "samples.txt").write_bytes(await r.read())
        baseline = await self.spawn(
            *("-m", "bench.scale_baseline", "--samples", str(self.tmp / "samples.txt")),
            *("--port", self.baseline_url.rsplit(":", 1)[1]),
            stdout=asyncio.subprocess.PIPE,
        )
        assert baseline.stdout is not None
        result["samples"] = int((await baseline.stdout.readline()).split()[1])
        await asyncio.sleep(max(0.0, reads_done + interval / 2 - time.monotonic()))
        after = Scrapes()  # the exporter's own count, just before phase 2
        await self.scrape(session, self.exporter_url, after, headers=PLAIN_HEADERS)
        result["exporter_samples"] = after.samples[0]

        # Phase 2: steady state, the exporter and the baseline scraped alternately.
        ours, theirs = Scrapes(), Scrapes()
        turn = [0]

        async def both() -> None:
            pair = [(self.exporter_url, ours), (self.baseline_url, theirs)]
            for url, into in pair if turn[0] % 2 == 0 else reversed(pair):
                await self.scrape(session, url, into)
            turn[0] += 1

        cpu_start, wall_start = cpu_seconds(pid), time.monotonic()
        deadline = wall_start + args.cycles * interval
        await self.every(args.scrape_every, both, lambda: time.monotonic() >= deadline)
        scraped_cpu, scraped_wall = cpu_seconds(pid) - cpu_start, time.monotonic() - wall_start
        result["steady_scraped"] = {
            "wall_s": scraped_wall,
            "cpu_s": scraped_cpu,
            "exporter": ours.summary(),
            "baseline": theirs.summary(),
        }

        # Phase 3: steady state, no scrapes: what polling alone costs.
        mark = len(await self.requests(session))
        cpu_start, wall_start = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(args.cycles * interval)
        quiet_cpu, wall_end = cpu_seconds(pid) - cpu_start, time.monotonic()
        quiet_wall = wall_end - wall_start
        sampler.cancel()
        rows = await self.requests(session)
        if args.profile:
            (Path(args.profile) / f"requests-{self.instances}.json").write_text(json.dumps(rows))
        steady_calls = sum(
            1
            for row in rows[mark:]
            if row[1] == "DescribeBackups" and wall_start <= row[0] < wall_end
        )
        # Each duty's steady calls per poll, per instance it applies to (those that ever got
        # one of its calls): its floor is 1.
        applies: dict[str, set[str]] = defaultdict(set)
        for row in rows:
            applies[row[1]].add(row[2])
        quiet = [row for row in rows[mark:] if wall_start <= row[0] < wall_end]
        polls = quiet_wall / interval
        result["steady_by_action"] = {
            action: {
                "instances": len(ids),
                "calls_per_instance_per_poll": sum(1 for row in quiet if row[1] == action)
                / len(ids)
                / polls,
            }
            for action, ids in sorted(applies.items())
            if action not in ("DescribeBackupPolicy", "DescribeDBInstances")
        }
        cycle_cpu = quiet_cpu / quiet_wall * interval
        result["steady_quiet"] = {
            "wall_s": quiet_wall,
            "cpu_s": quiet_cpu,
            "cpu_per_cycle_s": cycle_cpu,
            "core_share_at_5m": cycle_cpu / 300.0,
            "calls_per_instance_per_poll": steady_calls / self.instances / (quiet_wall / interval),
        }
        scrapes = len(ours.seconds)
        result["cpu_per_scrape_s"] = (scraped_cpu - quiet_cpu / quiet_wall * scraped_wall) / scrapes
        result["rss_mib"] = memory_mib(pid, "VmRSS")
        result["peak_rss_mib"] = memory_mib(pid, "VmHWM")
        result["peak_rss_by_phase_mib"] = dict(self.peak_rss)

        spawned = self.started + time.time() - time.monotonic()
        counts, last_first = first_read_calls(rows, spawned)
        first_rows = [row for row in rows if row[0] <= last_first]
        t0 = min(row[0] for row in first_rows)
        achieved = (len(first_rows) - 1) / (last_first - t0)
        result["first_poll"].update(
            {
                "calls_per_instance": sum(counts.values()) / self.instances,
                "instances_polled": len(counts),
                "api_s": last_first - t0,
                "achieved_rate": achieved,
                "rate_ratio": achieved / args.rate,
            }
        )
        policy_calls = sum(1 for row in rows if row[1] == "DescribeBackupPolicy")
        result["policy_calls_per_instance"] = policy_calls / self.instances
        result["errors"] = sum(1 for row in rows if row[6] != "OK")
        # Most are answers, not failures: the restorable window's LogBackupNotEnabled and
        # InvalidBinlog.NotFound say that point-in-time recovery is broken.
        result["errors_by_code"] = dict(Counter(row[6] for row in rows if row[6] != "OK"))


async def run_size(instances: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
        run = Run(instances, args, Path(tmp))
        try:
            await run.start()
            timeout = aiohttp.ClientTimeout(total=120)
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=4), timeout=timeout, auto_decompress=False
            ) as session:
                await run.measure(session)
        finally:
            await run.stop()
    return run.result


def table(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    def row(name: str, get: Callable[[dict[str, Any]], str]) -> str:
        return f"| {name} | " + " | ".join(get(r) for r in results) + " |"

    def latency(r: dict[str, Any], *path: str) -> str:
        found: Any = r
        for key in path:
            found = found[key]
        return f"{found['p50_s']:.3f} / {found['p99_s']:.3f}"

    steady = "steady_scraped"
    peak = "peak_rss_by_phase_mib"
    lines = [
        "| measure | " + " | ".join(f"{r['instances']} instances" for r in results) + " |",
        "|---|" + "---:|" * len(results),
        row("samples per scrape (baseline)", lambda r: str(r["samples"])),
        row(
            "samples per scrape (exporter, as phase 2 starts)",
            lambda r: str(r.get("exporter_samples", "not measured")),
        ),
        row(
            "every duty's first read done (s after start)",
            lambda r: f"{r['first_reads_s']:.0f}" if "first_reads_s" in r else "not measured",
        ),
        row(
            f"first reads: DescribeBackups calls per instance (floor {FLOOR})",
            lambda r: f"{r['first_poll']['calls_per_instance']:.3f}",
        ),
        row(
            "first reads: calls / floor",
            lambda r: f"{r['first_poll']['calls_per_instance'] / FLOOR:.3f}",
        ),
        row(
            "steady: calls per instance per poll (floor 1)",
            lambda r: f"{r['steady_quiet']['calls_per_instance_per_poll']:.3f}",
        ),
        row(
            "DescribeBackupPolicy calls per instance (whole run)",
            lambda r: f"{r['policy_calls_per_instance']:.2f}",
        ),
        row(
            f"first poll: achieved rate / rate_limit ({args.rate:g}/s)",
            lambda r: f"{r['first_poll']['rate_ratio']:.3f}",
        ),
        row(
            "every newest backup known, /-/ready (s after start)",
            lambda r: f"{r['first_poll']['wall_s']:.1f}",
        ),
        row("floor: instances / rate_limit (s)", lambda r: f"{r['instances'] / args.rate:.1f}"),
        row(
            "newest known / floor",
            lambda r: f"{r['first_poll']['wall_s'] / (r['instances'] / args.rate):.2f}",
        ),
        row(
            "whole lookback read (s after start)",
            lambda r: f"{r['lookback_read_s']:.0f}" if "lookback_read_s" in r else "not measured",
        ),
        row("first poll: exporter CPU (s)", lambda r: f"{r['first_poll']['cpu_s']:.1f}"),
        row(
            "steady: CPU per poll cycle, no scrapes (s)",
            lambda r: f"{r['steady_quiet']['cpu_per_cycle_s']:.2f}",
        ),
        row(
            "steady: % of one core at a 5m interval",
            lambda r: f"{100 * r['steady_quiet']['core_share_at_5m']:.2f}",
        ),
        row("CPU per scrape (s)", lambda r: f"{r['cpu_per_scrape_s']:.3f}"),
        row("peak RSS, first poll (MiB)", lambda r: f"{r[peak]['first_poll']:.0f}"),
        row("peak RSS, steady cycles (MiB)", lambda r: f"{r[peak]['steady']:.0f}"),
        row("peak RSS, VmHWM (MiB)", lambda r: f"{r['peak_rss_mib']:.0f}"),
        row(
            "/metrics during first poll: p50 / p99 (s)",
            lambda r: latency(r, "first_poll", "scrapes"),
        ),
        row("/metrics steady, exporter: p50 / p99 (s)", lambda r: latency(r, steady, "exporter")),
        row("/metrics steady, baseline: p50 / p99 (s)", lambda r: latency(r, steady, "baseline")),
        row(
            "exporter p50 / baseline p50",
            lambda r: f"{r[steady]['exporter']['p50_s'] / r[steady]['baseline']['p50_s']:.2f}",
        ),
        row(
            "scrapes measured (exporter, baseline)",
            lambda r: f"{r[steady]['exporter']['n']}, {r[steady]['baseline']['n']}",
        ),
        row(
            "gzip body (MiB, exporter / baseline)",
            lambda r: (
                f"{r[steady]['exporter']['bytes'] / 2**20:.2f} / "
                f"{r[steady]['baseline']['bytes'] / 2**20:.2f}"
            ),
        ),
        row(
            "API error answers (by code)",
            lambda r: (
                f"{r['errors']} ("
                + ", ".join(f"{c} {n}" for c, n in sorted(r.get("errors_by_code", {}).items()))
                + ")"
            ),
        ),
    ]
    actions = sorted({a for r in results for a in r.get("steady_by_action", {})})
    for action in actions:
        lines.append(
            row(
                f"steady: {action} calls per instance it applies to, per poll (floor 1)",
                lambda r, a=action: (  # type: ignore[misc]
                    f"{r['steady_by_action'][a]['calls_per_instance_per_poll']:.3f} "
                    f"({r['steady_by_action'][a]['instances']} instances)"
                    if a in r.get("steady_by_action", {})
                    else "-"
                ),
            )
        )
    return "\n".join(lines)


def commit_of(tree: Path) -> str:
    """The commit checked out in ``tree`` (with ``+dirty`` when it has changes), or ``unknown``."""

    def git(*args: str) -> str:
        run = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True)
        if run.returncode != 0:
            raise OSError(run.stderr)
        return run.stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except OSError:
        return "unknown"
    return head + ("+dirty" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--rate", type=float, default=400.0, help="api.rate_limit (per second)")
    parser.add_argument("--concurrency", type=int, default=32, help="api.concurrency")
    parser.add_argument("--latency", type=float, default=0.03, help="seconds added per answer")
    parser.add_argument("--interval", type=int, default=60, help="polling.interval (seconds)")
    parser.add_argument("--cycles", type=int, default=2, help="intervals per steady phase")
    parser.add_argument("--scrape-every", type=float, default=1.0, help="seconds between scrapes")
    parser.add_argument(
        "--duties",
        choices=["all", "backups"],
        default="all",
        help="every API duty at every poll, or DescribeBackups (and the policy) only",
    )
    parser.add_argument("--out", default="bench/scale-results.json")
    parser.add_argument(
        "--exporter-tree",
        default=str(REPO),
        metavar="DIR",
        help="run the exporter from this checkout (e.g. a git worktree of an older commit, for "
        "before/after figures); the simulator, the baseline and this driver stay the same",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="run the exporter under cProfile; keep its profile and the request log in DIR",
    )
    args = parser.parse_args()
    # The exporter may run in another checkout: paths given to it must not be relative.
    args.exporter_tree = str(Path(args.exporter_tree).resolve())
    if args.profile:
        args.profile = str(Path(args.profile).resolve())
    # The commit measured, not the checkout's path: results are meant to be shared. Read at the
    # start: the checkout may move on during a long run.
    measured = commit_of(Path(args.exporter_tree))
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        began = time.monotonic()
        result = asyncio.run(run_size(size, args))
        result["bench_wall_s"] = time.monotonic() - began
        print(json.dumps({k: v for k, v in result.items()}, indent=1)[:4000], flush=True)
        results.append(result)
    recorded = {**vars(args), "exporter_tree": measured}
    Path(args.out).write_text(json.dumps({"args": recorded, "results": results}, indent=1))
    print(table(results, args))


if __name__ == "__main__":
    main()
