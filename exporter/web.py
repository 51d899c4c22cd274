"""The HTTP side: /metrics, /-/healthy, /-/ready and a landing page."""

from __future__ import annotations

import asyncio
import html
import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

Render = Callable[[str, Sequence[str]], tuple[Iterable[bytes], str]]
# Large enough that each chunk's trip to aiohttp's compression thread is worth it (64 KiB made
# the median scrape 50% slower at 10,000 instances: bench/README.md), small next to the body.
CHUNK_BYTES = 1024 * 1024
# Compression level of /metrics. Measured on 10,000 instances' 30 MB of text: level 1 takes a
# third of the CPU of zlib's default 6 (0.06 s against 0.17 s) for a body 18% larger (1.27
# against 1.08 MB); the CPU is what a scrape waits for, the bytes cross a local network.
COMPRESS_LEVEL = 1


async def _chunks(pieces: Iterable[bytes], size: int) -> AsyncIterator[bytes]:
    """The pieces, joined into chunks of about ``size`` bytes."""
    group: list[bytes] = []
    length = 0
    for piece in pieces:
        group.append(piece)
        length += len(piece)
        if length >= size:
            yield b"".join(group)
            group, length = [], 0
    if group:
        yield b"".join(group)


def content_coding(accept_encoding: str) -> web.ContentCoding:
    """The coding to send for an ``Accept-Encoding`` value, by its q-values (RFC 9110 12.5.3):
    gzip or deflate if acceptable (``q`` above 0, directly or through ``*``), the higher ``q``
    first and gzip on a tie; otherwise none. (aiohttp on its own compresses whenever the name
    appears, ``gzip;q=0`` included.)"""
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, *params = (part.strip() for part in item.split(";"))
        name = name.lower()
        if not name:
            continue
        weight = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0  # a q we cannot read accepts nothing
        if not 0.0 <= weight <= 1.0:  # also NaN
            weight = 0.0
        name = "gzip" if name == "x-gzip" else name  # the same coding (RFC 9110 8.4.1.3)
        weights[name] = weight
    best, best_weight = web.ContentCoding.identity, 0.0
    for coding in (web.ContentCoding.gzip, web.ContentCoding.deflate):
        weight = weights.get(coding.value, weights.get("*", 0.0))
        if weight > best_weight:
            best, best_weight = coding, weight
    return best


async def _compressed(
    chunks: AsyncIterator[bytes], coding: web.ContentCoding
) -> AsyncIterator[bytes]:
    """The chunks gzip- or deflate-compressed at ``COMPRESS_LEVEL``, each in a worker thread."""
    wbits = 31 if coding is web.ContentCoding.gzip else 15  # gzip, or HTTP's zlib "deflate"
    compressor = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, wbits)
    async for chunk in chunks:
        # One chunk at a time: the compressor is never used by two threads at once.
        compressed = await asyncio.to_thread(compressor.compress, chunk)
        if compressed:
            yield compressed
    yield compressor.flush()


def metrics_handler(render: Render) -> Handler:
    """Serves what ``render`` gives, the way the library's aiohttp handler serves a registry:
    the Accept header picks the format, ``name[]`` filters. The body goes out in chunks of
    about ``CHUNK_BYTES``, compressed (gzip or deflate when asked) chunk by chunk in a worker
    thread: the pieces ``render`` gives are neither joined into one copy of a large fleet's
    text nor compressed in one go."""

    async def metrics(request: web.Request) -> web.Response:
        accept = ",".join(request.headers.getall(hdrs.ACCEPT, []))
        pieces, content_type = render(accept, request.query.getall("name[]", []))
        headers = {"Content-Type": content_type, hdrs.VARY: hdrs.ACCEPT_ENCODING}
        body = _chunks(pieces, CHUNK_BYTES)
        coding = content_coding(",".join(request.headers.getall(hdrs.ACCEPT_ENCODING, [])))
        if coding is not web.ContentCoding.identity:
            headers[hdrs.CONTENT_ENCODING] = coding.value
            body = _compressed(body, coding)
        return web.Response(body=body, headers=headers)

    return metrics


def make_app(
    registry: CollectorRegistry,
    *,
    ready: Callable[[], bool],
    telemetry_path: str = "/metrics",
    version: str = "",
    middlewares: Iterable[Middleware] = (),
    render: Render | None = None,
    landing_page: bool = True,
) -> web.Application:
    """Builds the application; the caller decides where and how to serve it.

    ``render(accept, names)`` gives the body and Content-Type of ``/metrics`` for an Accept
    header and ``name[]`` filters; without it the library renders the registry.
    ``landing_page``: a page of links on ``/``; False when the caller puts something else there
    (the exporter's status page, ``exporter.statuspage``).
    """
    app = web.Application(middlewares=list(middlewares))
    # Either way: content negotiation (text or OpenMetrics) and compression as the library does.
    handler = make_aiohttp_handler(registry) if render is None else metrics_handler(render)
    app.router.add_get(telemetry_path, handler)

    async def healthy(request: web.Request) -> web.Response:
        return web.Response(text="OK\n")

    async def ready_handler(request: web.Request) -> web.Response:
        if ready():
            return web.Response(text="Ready\n")
        return web.Response(status=503, text="Not ready: first polls still running\n")

    async def landing(request: web.Request) -> web.Response:
        path = html.escape(telemetry_path)
        body = (
            "<!DOCTYPE html><html><head><title>Alibaba Cloud RDS backup exporter</title></head>"
            f"<body><h1>Alibaba Cloud RDS backup exporter</h1><p>Version {html.escape(version)}"
            f'</p><ul><li><a href="{path}">Metrics</a></li>'
            '<li><a href="/-/healthy">Health</a></li>'
            '<li><a href="/-/ready">Readiness</a></li></ul></body></html>'
        )
        return web.Response(text=body, content_type="text/html")

    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready_handler)
    if landing_page and telemetry_path != "/":
        app.router.add_get("/", landing)
    return app
