"""tests/browser.py against a real headless Chromium and a small aiohttp site on loopback.

Every response carries a strict Content-Security-Policy, as a real UI would: scripts only from
the site itself, nothing inline. A missing chromium fails these tests (CI installs it).
"""

from __future__ import annotations

import asyncio
import base64
import pathlib
import shutil
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from tests.browser import Browser, JavaScriptError

# A browser is a real process taking a second or two to start.
pytestmark = [pytest.mark.integration, pytest.mark.slow]

CSP = "default-src 'none'; script-src 'self'; style-src 'self'"

INDEX = """<!doctype html>
<html><head><meta charset="utf-8"><title>driver test</title>
<script src="/app.js"></script></head>
<body><ul><li>alpha</li><li>beta</li></ul>
<input id="name"><p id="echo"></p></body></html>
"""

# Adds #ready only once the DOM exists, so the test has something to wait for, and mirrors
# the input into #echo.
APP_JS = """
document.addEventListener("DOMContentLoaded", () => {
  const name = document.getElementById("name");
  name.addEventListener("input", () => {
    document.getElementById("echo").textContent = "hello " + name.value;
  });
  const ready = document.createElement("p");
  ready.id = "ready";
  ready.textContent = "ready";
  document.body.append(ready);
});
"""

BLOCKED = """<!doctype html>
<html><head><meta charset="utf-8"><title>untouched</title>
<script>document.title = "inline script ran";</script>
<script src="/throws.js"></script></head><body></body></html>
"""

THROWS_JS = 'throw new Error("thrown by throws.js");\n'

USER, PASSWORD = "alice", "s3cret"


def require_chromium() -> None:
    if shutil.which("chromium") is None:
        pytest.fail(
            "chromium is not installed (apt-get install chromium); the browser tests must run",
            pytrace=False,
        )


@web.middleware
async def strict_csp(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    response.headers["Content-Security-Policy"] = CSP
    return response


async def private(request: web.Request) -> web.Response:
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    if request.headers.get("Authorization") != expected:
        raise web.HTTPUnauthorized(headers={"WWW-Authenticate": 'Basic realm="test"'})
    return web.Response(text="<!doctype html><p id=secret>welcome</p>", content_type="text/html")


def page(text: str, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=text, content_type=content_type)

    return handler


@pytest.fixture
async def site() -> AsyncIterator[str]:
    app = web.Application(middlewares=[strict_csp])
    app.router.add_get("/", page(INDEX, "text/html"))
    app.router.add_get("/app.js", page(APP_JS, "text/javascript"))
    app.router.add_get("/blocked", page(BLOCKED, "text/html"))
    app.router.add_get("/throws.js", page(THROWS_JS, "text/javascript"))
    app.router.add_get("/private", private)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    require_chromium()
    async with Browser.start(width=800, height=600) as started:
        yield started


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), data[:16]
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk comes first
    return width, height


async def test_page_runs_its_script_and_takes_input(
    browser: Browser, site: str, tmp_path: pathlib.Path
) -> None:
    await browser.goto(f"{site}/")
    assert await browser.wait_for("document.querySelector('#ready')?.textContent") == "ready"
    items = await browser.evaluate("[...document.querySelectorAll('li')].map(e => e.textContent)")
    assert items == ["alpha", "beta"]

    await browser.evaluate(
        """(() => {
            const input = document.getElementById("name");
            input.value = "world";
            input.dispatchEvent(new Event("input", {bubbles: true}));
        })()"""
    )
    assert await browser.wait_for("document.getElementById('echo').textContent") == "hello world"

    shot = tmp_path / "page.png"
    await browser.screenshot(shot)
    assert png_size(shot.read_bytes()) == (800, 600)  # the viewport size given to start()

    with pytest.raises(JavaScriptError, match="boom"):
        await browser.evaluate("(() => { throw new Error('boom'); })()")
    with pytest.raises(TimeoutError, match="#never"):
        await browser.wait_for("document.querySelector('#never')", timeout=0.2)
    assert browser.console_errors == []

    await browser.set_basic_auth(USER, PASSWORD)
    await browser.goto(f"{site}/private")
    assert await browser.evaluate("document.getElementById('secret').textContent") == "welcome"


async def test_csp_violations_and_exceptions_are_console_errors(
    browser: Browser, site: str
) -> None:
    await browser.goto(f"{site}/blocked")
    assert await browser.evaluate("document.title") == "untouched"  # the inline script was blocked
    # Both reports come before the load event; the poll only guards against reordering.
    deadline = time.monotonic() + 30  # generous: a loaded CI machine
    wanted = ("Content Security Policy directive 'script-src 'self''", "thrown by throws.js")
    while not all(any(w in e for e in browser.console_errors) for w in wanted):
        assert time.monotonic() < deadline, browser.console_errors
        await asyncio.sleep(0.05)
    assert len(browser.console_errors) == 2, browser.console_errors
