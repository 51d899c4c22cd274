"""The baseline for ``bench/scale.py``: the straightforward implementation a user would write.

Reads a scrape of the exporter (Prometheus text format), holds every one of its samples in a
plain ``prometheus_client`` Gauge (one per sample name, with the same labels), and serves them
on ``/metrics`` with the library's own aiohttp handler, so both sides of the comparison answer
the same request over the same HTTP stack. Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.parser import text_string_to_metric_families

from bench.serve import serve_until_signalled


def build_registry(text: str) -> tuple[CollectorRegistry, int]:
    registry = CollectorRegistry(auto_describe=True)
    gauges: dict[str, Gauge] = {}
    count = 0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            gauge = gauges.get(sample.name)
            if gauge is None:
                gauge = Gauge(
                    sample.name,
                    family.documentation,
                    sorted(sample.labels),
                    registry=registry,
                )
                gauges[sample.name] = gauge
            if sample.labels:
                gauge.labels(**sample.labels).set(sample.value)
            else:
                gauge.set(sample.value)
            count += 1
    return registry, count


async def serve(registry: CollectorRegistry, count: int, port: int) -> None:
    app = web.Application()
    app.router.add_get("/metrics", make_aiohttp_handler(registry))
    await serve_until_signalled(app, port, f"ready {count}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", required=True, help="a scrape in Prometheus text format")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    registry, count = build_registry(Path(args.samples).read_text())
    asyncio.run(serve(registry, count, args.port))


if __name__ == "__main__":
    main()
