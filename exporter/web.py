"""The HTTP side: /metrics, /-/healthy, /-/ready and a landing page."""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler


def make_app(
    registry: CollectorRegistry,
    *,
    ready: Callable[[], bool],
    telemetry_path: str = "/metrics",
    version: str = "",
    middlewares: Iterable[Middleware] = (),
) -> web.Application:
    """Builds the application; the caller decides where and how to serve it."""
    app = web.Application(middlewares=list(middlewares))
    # The library's handler does content negotiation (text or OpenMetrics) and compression.
    app.router.add_get(telemetry_path, make_aiohttp_handler(registry))

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
    if telemetry_path != "/":
        app.router.add_get("/", landing)
    return app
