"""The status page on ``/`` and its data on ``/status.json``.

The page is one self-contained HTML document: its style and script are inline, and the
Content-Security-Policy allows exactly those two (by their SHA-256) and requests to this
origin, nothing else. The script draws the table from ``/status.json``, whose shape
docs/status.md describes; the rows come from ``exporter.status`` and cost no API call.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import time
from collections.abc import Callable, Mapping
from importlib import resources

from aiohttp import hdrs, web

from exporter.web import content_coding

StatusDocument = Callable[[], Mapping[str, object]]

_COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def render_page(telemetry_path: str, version: str) -> tuple[str, str]:
    """The page, and the Content-Security-Policy that lets it run."""
    style, script = _read("status.css"), _read("status.js")
    # Inline, they must not be able to end their element early.
    assert "</style" not in style.lower() and "</script" not in script.lower()
    page = (
        _read("page.html")
        .replace("{{metrics_path}}", html.escape(telemetry_path))
        .replace("{{version}}", html.escape(version))
        .replace("{{style}}", style)
        .replace("{{script}}", script)
    )
    policy = (
        f"default-src 'none'; script-src {_hash(script)}; style-src {_hash(style)}; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return page, policy


class SharedDocument:
    """The encoded document, built at most once per ``ttl`` seconds of ``clock`` and shared by
    the requests meanwhile: at 10,000 instances a build costs a few tenths of a second of the
    event loop, and ten open tabs refreshing together must cost one build, not ten."""

    def __init__(
        self, document: StatusDocument, clock: Callable[[], float], ttl: float = 2.0
    ) -> None:
        self._document = document
        self._clock = clock
        self._ttl = ttl
        self._body: bytes | None = None
        self._built = 0.0
        self._building: asyncio.Future[bytes] | None = None

    async def body(self) -> bytes:
        if self._body is not None and self._clock() - self._built < self._ttl:
            return self._body
        if self._building is None:
            self._building = asyncio.ensure_future(self._build())
        # A client that goes away must not cancel the build the others wait for.
        return await asyncio.shield(self._building)

    async def _build(self) -> bytes:
        try:
            started = self._clock()
            data = self._document()  # on the loop: it reads the state the poller writes
            # The encoding (megabytes at 10,000 instances) in a thread, off the event loop.
            body = await asyncio.to_thread(_encode, data)
            self._body, self._built = body, started
            return body
        finally:
            self._building = None


def add_routes(
    app: web.Application,
    document: StatusDocument,
    *,
    telemetry_path: str,
    version: str,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """``/`` (unless /metrics is there) and ``/status.json``; ``clock`` (monotonic) times how
    long one build of the document is served."""
    page, policy = render_page(telemetry_path, version)
    page_headers = {**_COMMON_HEADERS, "Content-Security-Policy": policy}
    shared = SharedDocument(document, clock)

    async def status_page(request: web.Request) -> web.Response:
        response = web.Response(text=page, content_type="text/html", headers=page_headers)
        return _compressed(request, response)

    async def status_json(request: web.Request) -> web.Response:
        body = await shared.body()
        response = web.Response(body=body, content_type="application/json", headers=_COMMON_HEADERS)
        return _compressed(request, response)

    if telemetry_path != "/":
        app.router.add_get("/", status_page)
    app.router.add_get("/status.json", status_json)


def _compressed(request: web.Request, response: web.Response) -> web.Response:
    """Compressed as the client accepts (the page is some 16 KB, the document megabytes)."""
    coding = content_coding(",".join(request.headers.getall(hdrs.ACCEPT_ENCODING, [])))
    if coding is not web.ContentCoding.identity:
        response.enable_compression(coding)
    return response


def _encode(data: Mapping[str, object]) -> bytes:
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()
