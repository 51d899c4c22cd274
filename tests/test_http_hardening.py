"""The HTTP server against hostile or broken clients, over real loopback connections: a bad
client makes its own request fail and nothing else; logs, time and descriptors stay bounded;
nothing secret reaches the log (issue 17, items 6 to 9)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import io
import logging
import os
import socket
import ssl
import subprocess
import sys
import textwrap
import time
import zlib
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import aiohttp
import bcrypt
import pytest
import trustme
from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter.httpserver import GuardedAppRunner, GuardedTCPSite, HttpLimits
from exporter.logs import setup_logging
from exporter.web import make_app
from exporter.webconfig import WebConfig, middleware

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "s3cret-Pa55"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
TOKEN = base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()
BODY = b"# TYPE up gauge\nup 1\n" * 50
# Only bounds a test that would otherwise hang: no assertion is about how fast anything is.
BUDGET = 15.0


def render(accept: str, names: Sequence[str]) -> tuple[Sequence[bytes], str]:
    return [BODY], "text/plain; version=0.0.4; charset=utf-8"


def exporter_app(*, auth: bool = False) -> web.Application:
    """The exporter's own app (its /metrics handler), with basic auth if asked."""
    middlewares = [middleware(WebConfig(users={"prometheus": HASH}))] if auth else []
    return make_app(CollectorRegistry(), ready=lambda: True, render=render, middlewares=middlewares)


@contextlib.asynccontextmanager
async def served(app: web.Application, limits: HttpLimits | None = None) -> AsyncIterator[int]:
    """Serves ``app`` on loopback, guarded by ``limits`` (aiohttp's plain runner without)."""
    runner = (
        web.AppRunner(app, access_log=None)
        if limits is None
        else GuardedAppRunner(app, limits, access_log=None)
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site.port
    finally:
        await runner.cleanup()


async def exchange(port: int, data: bytes) -> bytes:
    """Sends ``data`` on a new connection and reads until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        return await asyncio.wait_for(reader.read(), BUDGET)
    finally:
        writer.close()


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """What the server sends until it closes the connection (a reset counts as closed)."""
    try:
        return await asyncio.wait_for(reader.read(), BUDGET)
    except ConnectionResetError:
        return b""


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """The exporter's logging set up as ``main`` does, into a buffer; put back afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    watched = [logging.getLogger(name) for name in ("aiohttp.server", "asyncio")]
    filters = [logger.filters[:] for logger in watched]
    buffer = io.StringIO()
    setup_logging("info", "logfmt", buffer)
    try:
        yield buffer
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        for logger, kept in zip(watched, filters, strict=True):
            logger.filters[:] = kept


# Item 6: quiet, bounded server errors.


async def test_malformed_requests_log_one_quiet_line_per_kind_without_credentials(
    log_output: io.StringIO,
) -> None:
    bad_url = b"GET * HTTP/1.1\r\nHost: x\r\n\r\n"
    # Real credentials, then a control byte: the parser rejects the header line.
    bad_header = (
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic "
        + TOKEN.encode()
        + b"\x01\r\n\r\n"
    )
    async with served(exporter_app(auth=True), HttpLimits()) as port:
        answers = [await exchange(port, request) for request in [bad_url, bad_header] * 25]
        # The server still serves everyone else.
        ok = await exchange(
            port,
            f"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {TOKEN}\r\n"
            "Connection: close\r\n\r\n".encode(),
        )
    assert all(answer.startswith(b"HTTP/1.0 400 Bad Request\r\n") for answer in answers)
    assert ok.startswith(b"HTTP/1.1 200 OK\r\n")
    # Neither the answer nor the log quotes the header back.
    for text in (b"".join(answers).decode("latin-1"), log_output.getvalue()):
        assert TOKEN not in text and PASSWORD not in text and "Authorization" not in text
    lines = log_output.getvalue().splitlines()
    assert "Traceback" not in log_output.getvalue()
    assert all("level=info" in line for line in lines), lines
    # 50 bad requests of two kinds: one line for each kind.
    assert len(lines) == 2, lines
    assert "InvalidURLError" in lines[0] and "127.0.0.1" in lines[0]
    assert "BadHttpMessage" in lines[1]


async def test_each_kind_of_client_error_is_logged_once_per_interval() -> None:
    from exporter.logs import ServerLogFilter

    now = [1000.0]
    quiet = ServerLogFilter(interval=60.0, clock=lambda: now[0])
    logger = logging.getLogger("aiohttp.server")
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    saved_level = logger.level
    logger.addFilter(quiet)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        async with served(exporter_app(), HttpLimits()) as port:
            for _ in range(10):
                await exchange(port, b"GET * HTTP/1.1\r\n\r\n")
            first = buffer.getvalue().splitlines()
            now[0] += 59.0
            await exchange(port, b"GET * HTTP/1.1\r\n\r\n")
            assert buffer.getvalue().splitlines() == first
            now[0] += 2.0
            await exchange(port, b"GET * HTTP/1.1\r\n\r\n")
    finally:
        logger.removeFilter(quiet)
        logger.removeHandler(handler)
        logger.setLevel(saved_level)
    lines = buffer.getvalue().splitlines()
    assert len(first) == 1 and "InvalidURLError" in first[0]
    assert len(lines) == 2
    assert lines[1].endswith("(10 more like it since the last one logged)")


async def test_accept_failing_for_want_of_descriptors_is_one_short_line(
    log_output: io.StringIO,
) -> None:
    """What asyncio reports each time ``accept()`` hits the open files limit (it retries every
    second): a traceback at error level each time, before."""
    loop = asyncio.get_running_loop()
    with socket.socket() as sock:
        for _ in range(100):
            try:
                raise OSError(24, "Too many open files")
            except OSError as error:
                loop.call_exception_handler(
                    {
                        "message": "socket.accept() out of system resource",
                        "exception": error,
                        "socket": sock,
                    }
                )
    lines = log_output.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert "Too many open files" in lines[0] and "Traceback" not in lines[0]


# Item 7: a malformed Basic header is a 401.


@pytest.mark.parametrize(
    "value",
    [
        b"Basic \xff\xfe",  # raw bytes, not base64
        b"Basic \xc3\xa9t\xc3\xa9",  # UTF-8 text, not base64
        b"Basic " + base64.b64encode(b"\xff\xfe:" + PASSWORD.encode()),  # not UTF-8 inside
        b"Basic " + base64.b64encode(b"no colon"),
        b"Basic ====",
        b"Basic",
        b"Bearer " + TOKEN.encode(),
    ],
)
async def test_a_malformed_basic_header_is_a_401(
    value: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: %s\r\n\r\n"
    async with served(exporter_app(auth=True)) as port:
        refused = await exchange(port, request % value)
        allowed = await exchange(port, request % f"Basic {TOKEN}".encode())
    assert refused.startswith(b"HTTP/1.1 401 Unauthorized\r\n"), refused[:200]
    assert b'WWW-Authenticate: Basic realm="aliyun-rds-backup-exporter"' in refused
    assert allowed.startswith(b"HTTP/1.1 200 OK\r\n")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# Item 8: idle connections and descriptors.


@pytest.mark.slow
async def test_a_request_header_that_never_ends_is_closed_after_the_header_timeout() -> None:
    limits = HttpLimits(header_timeout=0.3, idle_timeout=60.0)
    async with served(exporter_app(), limits) as port:
        # Half a header, then nothing.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        assert await closed_by_server(reader) == b""
        writer.close()
        # A byte at a time, each well within any per-read timeout (slowloris).
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def trickle() -> None:
            writer.write(b"GET /metrics HTTP/1.1\r\nX-Slow: ")
            with contextlib.suppress(ConnectionError):
                while not reader.at_eof():
                    writer.write(b"a")
                    await writer.drain()
                    await asyncio.sleep(0.02)

        sender = asyncio.create_task(trickle())
        try:
            assert await closed_by_server(reader) == b""
        finally:
            sender.cancel()
            writer.close()
        # Nothing at all, not even a request line.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await closed_by_server(reader) == b""
        writer.close()
        # A whole request is served as usual.
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as response,
        ):
            assert response.status == 200
            assert await response.read() == BODY


async def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() -> None:
    limits = HttpLimits(header_timeout=60.0, idle_timeout=0.3)
    async with served(exporter_app(), limits) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = await closed_by_server(reader)
        finally:
            writer.close()
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"\r\n\r\nOK\n")


async def test_connections_beyond_the_cap_are_refused_and_served_once_others_close() -> None:
    limits = HttpLimits(header_timeout=60.0, idle_timeout=60.0, max_connections=3)
    async with served(exporter_app(), limits) as port:
        held = []
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\nOK\n"), BUDGET)  # admitted
            held.append(writer)
        refused = await exchange(port, b"")
        assert refused.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert refused.endswith(b"too many open connections, try again later\n")
        held.pop().close()
        # The freed slot is taken by the next client (as soon as the server sees the close).
        deadline = time.monotonic() + BUDGET
        while (answer := await exchange(port, b"GET / HTTP/1.0\r\n\r\n")).startswith(
            b"HTTP/1.1 503"
        ):
            assert time.monotonic() < deadline, "the closed connection's slot was never freed"
            await asyncio.sleep(0.02)
        assert answer.startswith(b"HTTP/1.0 200 OK\r\n")
        for writer in held:
            writer.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The exporter with soft and hard limits of 128 open files, as a real process.
LOW_LIMIT = textwrap.dedent(
    """
    import resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
    from exporter.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="no open files limit")
async def test_a_flood_of_half_open_connections_under_a_low_fd_limit() -> None:
    """200 connections that never send a request, against the demo with 128 descriptors:
    the cap (half the limit) refuses the excess at once, the log stays a few lines, and
    scrapes work again once the flood is gone."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LOW_LIMIT,
        "--demo",
        "--web.listen-address",
        f"127.0.0.1:{port}",
        cwd=REPO,
        env={**os.environ},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    flood: list[asyncio.StreamWriter] = []
    try:
        url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
            # Once the first polls are done: the flood, not the demo's own start, is measured.
            await scrape_until_ok(s, f"{url}/-/ready")
            answers = []
            for _ in range(200):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                answers.append(asyncio.create_task(closed_by_server(reader)))
                flood.append(writer)
            # 64 are admitted (and wait for their request); the other 136 are answered 503.
            deadline = time.monotonic() + BUDGET
            while sum(answer.done() for answer in answers) < 200 - 64:
                assert time.monotonic() < deadline, "the connections beyond the cap stay open"
                await asyncio.sleep(0.05)
            refused = [answer.result() for answer in answers if answer.done()]
            assert all(a.startswith(b"HTTP/1.1 503 Service Unavailable\r\n") for a in refused)
            for writer in flood:
                writer.close()
            flood.clear()
            await asyncio.gather(*answers)
            await scrape_until_ok(s, f"{url}/metrics")
    finally:
        for writer in flood:
            writer.close()
        if process.returncode is None:
            process.terminate()
        _, err = await asyncio.wait_for(process.communicate(), BUDGET)
    stderr = err.decode()
    assert "Traceback" not in stderr and "level=error" not in stderr, stderr[-3000:]
    assert "connection limit reached (64 open)" in stderr
    assert len(stderr.splitlines()) < 30, stderr[-3000:]


async def scrape_until_ok(session: aiohttp.ClientSession, url: str) -> None:
    deadline = time.monotonic() + 90.0  # bounds a hang only
    while True:
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(url) as response:
                if response.status == 200:
                    return
        assert time.monotonic() < deadline, f"{url} never answered 200"
        await asyncio.sleep(0.1)


@pytest.mark.slow
def test_the_soft_open_files_limit_is_raised_to_the_hard_limit_at_start(tmp_path: Path) -> None:
    resource = pytest.importorskip("resource")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.skip(f"hard limit {hard} leaves nothing to show")
    config = tmp_path / "config.yaml"
    config.write_text(
        "credentials:\n  access_key_id: AKID\n  access_key_secret: secret\n"
        "instances:\n  - id: rm-0001\n    region: cn-hangzhou\n"
    )
    script = textwrap.dedent(
        """
        import resource, sys
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        from exporter.cli import main
        code = main(sys.argv[1:])
        print("soft limit now", resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        sys.exit(code)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, "--check-config", "--config.file", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    assert f"soft limit now {hard}" in result.stdout
    assert f"raised the open files limit from 256 to {hard}" in result.stderr
    assert "level=info" in result.stderr


# Item 9: Accept-Encoding q-values.


@pytest.mark.parametrize(
    ("accept_encoding", "expected"),
    [
        ("gzip;q=0", None),
        ("gzip; q=0.000", None),
        ("GZIP;Q=0", None),
        ("gzip;q=nonsense", None),
        ("*;q=0", None),
        ("identity", None),
        ("", None),
        ("gzip;q=0, deflate", "deflate"),
        ("deflate, gzip;q=0.1", "deflate"),
        ("deflate;q=0.5, gzip;q=0.8", "gzip"),
        ("deflate, gzip", "gzip"),
        ("x-gzip", "gzip"),
        ("*", "gzip"),
        ("gzip", "gzip"),
        ("br;q=1, gzip;q=0.5", "gzip"),
    ],
)
async def test_accept_encoding_q_values_are_honoured(
    accept_encoding: str, expected: str | None
) -> None:
    async with (
        served(exporter_app()) as port,
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(
            f"http://127.0.0.1:{port}/metrics", headers={"Accept-Encoding": accept_encoding}
        ) as response,
    ):
        body = await response.read()
        coding = response.headers.get("Content-Encoding")
        vary = response.headers.get("Vary", "")
    assert response.status == 200
    assert coding == expected
    assert "Accept-Encoding" in vary
    if expected == "gzip":
        body = gzip.decompress(body)
    elif expected == "deflate":
        body = zlib.decompress(body)
    assert body == BODY


async def test_a_tls_handshake_that_never_comes_is_closed_after_its_timeout() -> None:
    """asyncio gives a TLS handshake 60 s, and the connection guard only sees a connection once
    it is done: a stalled handshake is closed after the site's own, shorter, timeout."""
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    limits = HttpLimits(tls_handshake_timeout=0.3)
    runner = GuardedAppRunner(exporter_app(), limits, access_log=None)
    await runner.setup()
    site = GuardedTCPSite(runner, "127.0.0.1", 0, ssl_context=server_context)
    await site.start()
    try:
        # A connection that never starts its handshake.
        reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
        assert await closed_by_server(reader) == b""
        writer.close()
        # A real client still gets its answer.
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"https://127.0.0.1:{site.port}/metrics", ssl=client_context) as response,
        ):
            assert response.status == 200
            assert await response.read() == BODY
    finally:
        await runner.cleanup()
