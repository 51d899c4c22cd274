"""The status page at fleet scale: what `/status.json` and `/` cost the server, next to a
`/metrics` scrape, and how long the browser takes to draw the page.

Not part of the test suite. Starts the simulated RDS API and the exporter on loopback as
``bench/scale.py`` does (static instance list, the backups duties only), waits for /-/ready,
then, in one run, alternates ``--rounds`` requests of each endpoint (gzip accepted, as a
browser and Prometheus ask) and records each one's wall time, the exporter's CPU time meanwhile
(from /proc) and the size; rounds are over two seconds apart, so that each /status.json
measured is a build of its own, not one shared with the request before. Then Debian's headless
Chromium (tests/browser.py) loads the page ``--loads`` times; the page marks
``status-drawn`` when its first table page is on screen, and that mark's time since the
navigation began is the figure. See bench/README.md for the method and the figures.

    python -m bench.status_page [--instances 10000] [--rounds 20] [--loads 5] [--out F]
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.scale import REPO, Run, commit_of, cpu_seconds
from tests.browser import Browser

GZIP = {"Accept-Encoding": "gzip"}
SHARED_FOR = 2.0  # seconds one build of /status.json serves (exporter/statuspage)


Sample = tuple[float, float, int, int]


async def fetch(session: aiohttp.ClientSession, url: str, pid: int) -> Sample:
    """Seconds until the whole body is in, the exporter's CPU seconds meanwhile, the body's
    size as sent and decompressed."""
    cpu = cpu_seconds(pid)
    began = time.perf_counter()
    async with session.get(url, headers=GZIP) as response:
        sent = await response.read()
        assert response.status == 200, (url, response.status)
        encoded = response.headers.get("Content-Encoding", "")
    took = time.perf_counter() - began
    used = cpu_seconds(pid) - cpu
    size = len(sent)
    plain = len(gzip.decompress(sent)) if encoded == "gzip" else size
    return took, used, size, plain


def summary(samples: list[Sample]) -> dict[str, float]:
    seconds = [s for s, _, _, _ in samples]
    cpu = [c for _, c, _, _ in samples]
    return {
        "p50_s": statistics.median(seconds),
        "max_s": max(seconds),
        "cpu_p50_s": statistics.median(cpu),
        "bytes_sent": samples[-1][2],
        "bytes_plain": samples[-1][3],
    }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    scale_args = argparse.Namespace(
        latency=0.0,
        rate=400.0,
        concurrency=32,
        interval=300,
        duties="backups",
        exporter_tree=str(REPO),
        profile=None,
    )
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(args.instances, scale_args, Path(tmp))
        await run.start()
        try:
            # Bodies as sent: their size, and the time, without decompressing on our side.
            async with aiohttp.ClientSession(auto_decompress=False) as session:
                began = time.monotonic()
                await run.answered(session, "/-/ready", 0.5)
                ready_s = time.monotonic() - began
                timings: dict[str, list[Sample]] = {"/metrics": [], "/status.json": [], "/": []}
                for _ in range(args.rounds):  # alternated: the same moments for each
                    for path, into in timings.items():
                        into.append(await fetch(session, run.exporter_url + path, run.pid))
                    # Past the two seconds one build of status.json is shared: each request
                    # measured is a build of its own.
                    await asyncio.sleep(SHARED_FOR + 0.1)
            drawn = []
            async with Browser.start(width=1600, height=1000) as browser:
                for _ in range(args.loads):
                    await browser.goto(run.exporter_url + "/")
                    await browser.wait_for("document.body.dataset.loaded === 'true'", timeout=60)
                    mark = await browser.evaluate(
                        "performance.getEntriesByName('status-drawn')[0].startTime"
                    )
                    rows = await browser.evaluate("document.querySelectorAll('#rows tr').length")
                    assert isinstance(mark, (int, float)) and rows == min(100, args.instances)
                    drawn.append(mark / 1000)
        finally:
            await run.stop()
    figures = {path: summary(samples) for path, samples in timings.items()}
    return {
        "instances": args.instances,
        "ready_s": ready_s,
        "endpoints": figures,
        "status_json_over_metrics_p50": figures["/status.json"]["p50_s"]
        / figures["/metrics"]["p50_s"],
        "status_json_over_metrics_cpu_p50": figures["/status.json"]["cpu_p50_s"]
        / figures["/metrics"]["cpu_p50_s"],
        "browser_drawn_s": {"p50": statistics.median(drawn), "max": max(drawn), "all": drawn},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--out", default="bench/status-page-results.json")
    args = parser.parse_args()
    result = asyncio.run(measure(args))
    result["commit"] = commit_of(REPO)
    Path(args.out).write_text(json.dumps(result, indent=1))
    rows = [("endpoint", "p50 (s)", "max (s)", "CPU p50 (s)", "sent (bytes)", "plain (bytes)")]
    for path, f in result["endpoints"].items():
        rows.append(
            (
                path,
                f"{f['p50_s']:.3f}",
                f"{f['max_s']:.3f}",
                f"{f['cpu_p50_s']:.3f}",
                f"{f['bytes_sent']}",
                f"{f['bytes_plain']}",
            )
        )
    for row in rows:
        print("  ".join(cell.ljust(14) for cell in row))
    print(f"/status.json p50 / /metrics p50: {result['status_json_over_metrics_p50']:.2f}")
    print(f"... CPU: {result['status_json_over_metrics_cpu_p50']:.2f}")
    drawn = result["browser_drawn_s"]
    print(f"browser: first table page drawn after {drawn['p50']:.3f} s (max {drawn['max']:.3f})")


if __name__ == "__main__":
    main()
