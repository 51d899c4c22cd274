"""A headless Chromium for tests, driven over the Chrome DevTools Protocol (CDP).

Tests serve a page on loopback, open it here and inspect it: run JavaScript, wait for the DOM to
change, take a screenshot and check that the page logged no errors (a Content-Security-Policy
violation, an uncaught exception, a ``console.error``).

Only aiohttp's websocket client talks to the browser, so the tests need no browser-automation
package: just Debian's ``chromium`` on PATH. Everything runs on the event loop without blocking
it: waits are short polls, the only file access is a few tiny reads, and the removal of the
profile directory and the writing of a screenshot run in a thread.

    async with Browser.start() as browser:
        await browser.goto(url)
        await browser.wait_for("document.querySelector('#ready')")
        assert browser.console_errors == []
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import math
import os
import pathlib
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from typing import IO, Any

import aiohttp

JSON = dict[str, Any]

STARTUP_TIMEOUT = 30.0
# How long a polite SIGTERM gets before the whole process group is killed.
SHUTDOWN_GRACE = 5.0
POLL_INTERVAL = 0.05


class CDPError(RuntimeError):
    """The browser answered a DevTools command with an error."""


class JavaScriptError(RuntimeError):
    """An expression given to :meth:`Browser.evaluate` threw (or its promise rejected)."""


def find_chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        raise RuntimeError(
            "chromium is not on PATH: the browser tests need Debian's headless Chromium "
            "(apt-get install chromium)"
        )
    return found


def _chromium_args(executable: str, profile: pathlib.Path, width: int, height: int) -> list[str]:
    return [
        executable,
        "--headless=new",
        # Containers and CI runners usually lack the user namespaces the sandbox needs.
        "--no-sandbox",
        "--disable-gpu",
        # /dev/shm is often tiny in containers; Chromium crashes when it fills up.
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        # Keep the tests on loopback: no update checks, sync or telemetry, and every host but
        # localhost and 127.0.0.1 fails to resolve (the rules apply to IP literals too).
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-domain-reliability",
        "--no-proxy-server",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
        f"--user-data-dir={profile}",
        # Port 0: the browser picks a free port and writes it to DevToolsActivePort.
        "--remote-debugging-port=0",
        f"--window-size={width},{height}",
        "about:blank",
    ]


def _open_log(path: pathlib.Path) -> IO[bytes]:
    return path.open("wb")


def _log_tail(path: pathlib.Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _read_port(profile: pathlib.Path) -> int | None:
    """The DevTools port, once Chromium has written all of DevToolsActivePort."""
    try:
        first, _, rest = (profile / "DevToolsActivePort").read_text().partition("\n")
    except FileNotFoundError:
        return None
    # The file is written in place: wait for the second line (the browser target's path).
    if not rest.strip() or not first.strip().isdigit():
        return None
    return int(first)


def _js_value(remote: JSON) -> object:
    """The Python value of a CDP RemoteObject fetched with returnByValue."""
    special = remote.get("unserializableValue")
    if isinstance(special, str):
        # NaN, Infinity, -Infinity and -0 have no JSON form; BigInts come as "123n".
        if special.endswith("n"):
            return int(special[:-1])
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(special, -0.0)
    # undefined has no "value" key: None, like null.
    return remote.get("value")


def _exception_text(details: JSON) -> str:
    """The message of a CDP ExceptionDetails, stack included when the page gave one."""
    exception = details.get("exception") or {}
    text = exception.get("description") or exception.get("value") or details.get("text")
    return str(text)


class Browser:
    """One headless Chromium process with one page, controlled over its DevTools websocket.

    Always close it (:meth:`close`, or use :meth:`start`): that kills the whole process group and
    removes the temporary profile, also when the test failed.
    """

    def __init__(
        self, process: asyncio.subprocess.Process, workdir: pathlib.Path, log: pathlib.Path
    ) -> None:
        self._process = process
        self._workdir = workdir
        self._log = log
        self._session: aiohttp.ClientSession | None = None
        # [bool]: what ws_connect() is typed to return under Python 3.10 (mypy's target here).
        self._ws: aiohttp.ClientWebSocketResponse[bool] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[JSON]] = {}
        self._handlers: dict[str, list[Callable[[JSON], None]]] = {}
        self._waiters: dict[str, list[asyncio.Future[JSON]]] = {}
        self._closed = False
        #: Errors the page reported since launch: uncaught exceptions, ``console.error`` calls
        #: and browser log entries of level "error" (CSP violations, failed loads). Tests may
        #: clear it between steps.
        self.console_errors: list[str] = []

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    async def launch(cls, *, width: int = 1400, height: int = 900) -> Browser:
        """Starts Chromium on about:blank and connects to its page. The caller must close()."""
        executable = find_chromium()
        workdir = pathlib.Path(tempfile.mkdtemp(prefix="test-chromium-"))
        profile = workdir / "profile"
        log = workdir / "chromium.log"
        log_file = _open_log(log)
        try:
            process = await asyncio.create_subprocess_exec(
                *_chromium_args(executable, profile, width, height),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                # Chromium keeps its singleton socket and shared memory files in TMPDIR and
                # leaves them behind when killed: inside workdir, close() removes them too.
                env={**os.environ, "TMPDIR": str(workdir)},
                # Its own process group, so close() can kill the renderers and the zygote too.
                start_new_session=True,
            )
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        finally:
            # The child holds its own copy of the descriptor.
            log_file.close()
        browser = cls(process, workdir, log)
        try:
            await browser._connect(profile, width, height)
        except BaseException:
            await browser.close()
            raise
        return browser

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls, *, width: int = 1400, height: int = 900) -> AsyncIterator[Browser]:
        """``async with Browser.start() as browser:``: launch() and a guaranteed close()."""
        browser = await cls.launch(width=width, height=height)
        try:
            yield browser
        finally:
            await browser.close()

    async def _connect(self, profile: pathlib.Path, width: int, height: int) -> None:
        port = await self._wait_for_port(profile)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        base = f"http://127.0.0.1:{port}"
        async with self._session.get(f"{base}/json/list") as response:
            response.raise_for_status()
            targets = await response.json()
        pages = [t for t in targets if t.get("type") == "page"]
        if not pages:
            # No initial tab (it can close on its own): ask for one.
            async with self._session.put(f"{base}/json/new?about:blank") as response:
                response.raise_for_status()
                pages = [await response.json()]
        # max_msg_size=0: a screenshot arrives as one large base64 message.
        self._ws = await self._session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        self._reader = asyncio.create_task(self._read_messages(), name="chromium-cdp-reader")
        self._on("Runtime.exceptionThrown", self._exception_thrown)
        self._on("Runtime.consoleAPICalled", self._console_api_called)
        self._on("Log.entryAdded", self._log_entry_added)
        for domain in ("Page", "Runtime", "Log"):
            await self.send(f"{domain}.enable")
        # --headless=new draws an invisible tab strip and toolbar inside the window, so the page
        # would get less than width x height; fix the viewport itself to the size asked for.
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    async def _wait_for_port(self, profile: pathlib.Path) -> int:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            port = _read_port(profile)
            if port is not None:
                return port
            if self._process.returncode is not None:
                raise RuntimeError(
                    f"chromium exited with status {self._process.returncode} before opening "
                    f"its DevTools port; the end of its output:\n{_log_tail(self._log)}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"chromium wrote no DevToolsActivePort within {STARTUP_TIMEOUT:.0f}s; "
                    f"the end of its output:\n{_log_tail(self._log)}"
                )
            await asyncio.sleep(POLL_INTERVAL)

    async def close(self) -> None:
        """Kills the browser and everything it started, and removes the profile. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._reader is not None:
                self._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._reader
            if self._ws is not None:
                await self._ws.close()
            if self._session is not None:
                await self._session.close()
        finally:
            # Whatever failed above, the processes must go.
            await self._kill()
            self._fail_pending(ConnectionError("the browser was closed"))
            await asyncio.to_thread(shutil.rmtree, self._workdir, ignore_errors=True)

    async def _kill(self) -> None:
        pgid = self._process.pid  # start_new_session made it the group leader
        try:
            if self._process.returncode is None:
                # SIGTERM first: Chromium then stops its helpers itself, quickly and tidily.
                with contextlib.suppress(ProcessLookupError):
                    self._process.send_signal(signal.SIGTERM)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._process.wait(), SHUTDOWN_GRACE)
        finally:
            # Then anything left in the group (a hung browser, an orphaned renderer) dies for
            # sure, also when the wait above was cancelled.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        await self._process.wait()

    # -- the protocol ----------------------------------------------------------------------

    async def send(self, method: str, params: JSON | None = None, *, timeout: float = 30) -> JSON:
        """One DevTools command on the page's session; its result, or CDPError."""
        if self._closed or self._ws is None or self._ws.closed:
            raise ConnectionError(f"{method}: the browser connection is closed")
        message_id = next(self._ids)
        future: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        try:
            await self._ws.send_str(
                json.dumps({"id": message_id, "method": method, "params": params or {}})
            )
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"{method}: no answer within {timeout}s") from None
        finally:
            self._pending.pop(message_id, None)

    def _on(self, method: str, handler: Callable[[JSON], None]) -> None:
        self._handlers.setdefault(method, []).append(handler)

    def _next_event(self, method: str) -> asyncio.Future[JSON]:
        """A future for the params of the next ``method`` event; create it before the cause."""
        future: asyncio.Future[JSON] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(method, []).append(future)
        return future

    async def _read_messages(self) -> None:
        assert self._ws is not None
        error: BaseException = ConnectionError("chromium closed the DevTools connection")
        try:
            async for message in self._ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                self._dispatch(json.loads(message.data))
        except Exception as err:  # a broken connection: fail the callers, don't hang them
            error = err
        self._fail_pending(error)

    def _dispatch(self, data: JSON) -> None:
        if "id" in data:
            future = self._pending.get(data["id"])
            if future is None or future.done():
                return  # its caller timed out
            if "error" in data:
                err = data["error"]
                future.set_exception(CDPError(f"{err.get('message')} ({err.get('code')})"))
            else:
                future.set_result(data.get("result", {}))
            return
        method = data.get("method", "")
        params = data.get("params", {})
        for waiter in self._waiters.pop(method, []):
            if not waiter.done():
                waiter.set_result(params)
        for handler in self._handlers.get(method, []):
            handler(params)

    def _fail_pending(self, error: BaseException) -> None:
        futures = [*self._pending.values()]
        for waiters in self._waiters.values():
            futures.extend(waiters)
        self._waiters.clear()
        for future in futures:
            if not future.done():
                future.set_exception(error)

    def _exception_thrown(self, params: JSON) -> None:
        self.console_errors.append(_exception_text(params.get("exceptionDetails", {})))

    def _console_api_called(self, params: JSON) -> None:
        if params.get("type") == "error":
            args = params.get("args", [])
            self.console_errors.append(
                " ".join(str(a.get("value", a.get("description", ""))) for a in args)
            )

    def _log_entry_added(self, params: JSON) -> None:
        entry = params.get("entry", {})
        if entry.get("level") == "error":
            url = entry.get("url")
            self.console_errors.append(entry.get("text", "") + (f" ({url})" if url else ""))

    # -- what tests use --------------------------------------------------------------------

    async def goto(self, url: str, *, timeout: float = 30) -> None:
        """Navigates and returns after the page's load event (scripts run, images loaded).

        Only for loading a document: a change of the URL's fragment alone fires no load event.
        """
        loaded = self._next_event("Page.loadEventFired")
        try:
            result = await self.send("Page.navigate", {"url": url}, timeout=timeout)
            if result.get("errorText"):
                raise CDPError(f"navigation to {url} failed: {result['errorText']}")
            await asyncio.wait_for(loaded, timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"{url} fired no load event within {timeout}s") from None
        finally:
            loaded.cancel()

    async def evaluate(self, expression: str, *, timeout: float = 30) -> object:
        """The JSON value of a JavaScript expression in the page (a promise is awaited).

        Raises JavaScriptError with the exception's message and stack when it throws.
        """
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        details = result.get("exceptionDetails")
        if details is not None:
            raise JavaScriptError(f"{expression!r} threw: {_exception_text(details)}")
        return _js_value(result.get("result", {}))

    async def wait_for(self, expression: str, *, timeout: float = 30) -> object:
        """Evaluates ``expression`` every 50 ms until it is truthy; returns that value.

        A throwing expression counts as not yet true (the element it reads may not exist yet);
        the last error is in the TimeoutError.
        """
        deadline = time.monotonic() + timeout
        last: str = "never evaluated"
        while True:
            remaining = deadline - time.monotonic()
            try:
                value = await self.evaluate(expression, timeout=max(remaining, POLL_INTERVAL))
            except TimeoutError:  # a promise that never settled
                raise TimeoutError(f"{expression!r} did not settle within {timeout}s") from None
            except (JavaScriptError, CDPError) as err:
                last = f"last error: {err}"
            else:
                if value:
                    return value
                last = f"last value: {value!r}"
            if time.monotonic() + POLL_INTERVAL > deadline:
                raise TimeoutError(f"{expression!r} was not truthy within {timeout}s ({last})")
            await asyncio.sleep(POLL_INTERVAL)

    async def screenshot(self, path: pathlib.Path, *, full_page: bool = False) -> None:
        """Saves a PNG of the viewport, or of the whole scrollable page."""
        params: JSON = {"format": "png"}
        if full_page:
            metrics = await self.send("Page.getLayoutMetrics")
            size = metrics["cssContentSize"]
            params["captureBeyondViewport"] = True
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": size["width"],
                "height": size["height"],
                "scale": 1,
            }
        result = await self.send("Page.captureScreenshot", params)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(result["data"]))

    async def set_basic_auth(self, user: str, password: str) -> None:
        """Sends HTTP Basic credentials with every later request of the page."""
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        await self.send("Network.enable")
        await self.send(
            "Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}}
        )
