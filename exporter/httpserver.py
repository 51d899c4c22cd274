"""Guards the HTTP server's connections against hostile or broken clients.

aiohttp alone keeps an idle connection for an hour, never times out a request header that
arrives a byte at a time, accepts connections until the process runs out of file descriptors,
and answers a malformed request with a body that quotes the offending line (an Authorization
header included). Here every connection gets a deadline for its request header and for idling
between requests, the number of open connections is capped, and those 4xx bodies say only the
status. How such errors are logged is ``exporter.logs``' job.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, cast

from aiohttp import web
from aiohttp.web_request import BaseRequest

log = logging.getLogger(__name__)

# The figures, and where they come from. Go's net/http has no timeouts unless the program sets
# them (ReadHeaderTimeout and IdleTimeout of zero mean none), and the exporter-toolkit's web
# package sets none either; its bootstrap package defaults ReadHeaderTimeout to one minute
# (prometheus/exporter-toolkit#421, the same figure as nginx's client_header_timeout).
# Prometheus itself closes idle connections after --web.read-timeout (5m) and accepts at most
# --web.max-connections (512).
HEADER_TIMEOUT = 60.0
# Longer than Prometheus' default scrape interval (1m), so a scraper keeps its connection (and
# TLS session) from one scrape to the next.
IDLE_TIMEOUT = 300.0
MAX_CONNECTIONS = 512
# A TLS handshake is done by asyncio before the connection reaches the guard (so it is neither
# counted nor timed by it): asyncio's default gives it 60 s. Ten seconds, as Go's HTTP client
# gives the other end of it (net/http's TLSHandshakeTimeout), is plenty for a real client.
TLS_HANDSHAKE_TIMEOUT = 10.0
# At most one "connection limit reached" warning per this many seconds.
WARN_EVERY = 60.0

_BUSY_BODY = b"too many open connections, try again later\n"
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: " + str(len(_BUSY_BODY)).encode() + b"\r\n"
    b"Connection: close\r\n\r\n" + _BUSY_BODY
)


@dataclass(frozen=True)
class HttpLimits:
    """``header_timeout``: seconds from a connection's first byte (or its opening) to the end
    of its request header. ``idle_timeout``: seconds a keep-alive connection may wait for its
    next request. ``max_connections``: open client connections; more are answered 503 and
    closed at once."""

    header_timeout: float = HEADER_TIMEOUT
    idle_timeout: float = IDLE_TIMEOUT
    max_connections: int = MAX_CONNECTIONS
    tls_handshake_timeout: float = TLS_HANDSHAKE_TIMEOUT


def default_limits() -> HttpLimits:
    """The defaults, with the connection cap at half the open files limit if that is lower:
    the other half is for the API client's connections, the log and the rest, so a flood of
    clients can never make ``accept()`` or an API call fail for want of a descriptor."""
    soft = _open_files_limit()
    if soft is None:
        return HttpLimits()
    return HttpLimits(max_connections=max(1, min(MAX_CONNECTIONS, soft // 2)))


def _open_files_limit() -> int | None:
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def raise_open_files_limit() -> None:
    """Raises the soft limit on open files to the hard limit, as Go programs do at start
    (the soft limit is often 1024 for historical reasons, the hard one far higher). Logs what
    it did; never fails."""
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return
    shown = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as err:
        log.info("cannot raise the open files limit from %d to %s: %s", soft, shown, err)
        return
    log.info("raised the open files limit from %d to %s", soft, shown)


class GuardedAppRunner(web.AppRunner):
    """An ``AppRunner`` whose connections are guarded by ``limits``; use it with any site."""

    def __init__(self, app: web.Application, limits: HttpLimits, **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=limits.idle_timeout, **kwargs)
        self.limits = limits

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        return _GuardedServer(server, self.limits)


class GuardedTCPSite(web.TCPSite):
    """A TCP site whose TLS handshakes time out after ``limits.tls_handshake_timeout``
    (aiohttp's own site has no setting for it)."""

    def __init__(
        self,
        runner: GuardedAppRunner,
        host: str | None,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context)
        self._handshake_timeout = runner.limits.tls_handshake_timeout

    async def start(self) -> None:
        if self._ssl_context is None:
            await super().start()
            return
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            server,
            self._host,
            self._port,
            ssl=self._ssl_context,
            ssl_handshake_timeout=self._handshake_timeout,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port


class _GuardedServer(web.Server):
    """The application's server, making guarded connections and counting them."""

    def __init__(self, inner: web.Server, limits: HttpLimits) -> None:
        # The same handler, request factory and connection settings the application made.
        super().__init__(
            inner.request_handler,
            request_factory=inner.request_factory,
            handler_cancellation=inner.handler_cancellation,
            **inner._kwargs,
        )
        self.limits = limits
        self.open = 0
        self._refused = 0
        self._warn_after = 0.0

    def __call__(self) -> web.RequestHandler:
        return _GuardedHandler(self, loop=self._loop, **self._kwargs)

    def admit(self) -> bool:
        if self.open < self.limits.max_connections:
            self.open += 1
            return True
        self._refused += 1
        now = self._loop.time()
        if now >= self._warn_after:
            log.warning(
                "connection limit reached (%d open): new connections are refused until some "
                "close (%d refused since the last such warning)",
                self.open,
                self._refused,
            )
            self._refused = 0
            self._warn_after = now + WARN_EVERY
        return False

    def release(self) -> None:
        self.open -= 1


class _GuardedHandler(web.RequestHandler):
    """One connection: refused when the server is full, closed when its request header takes
    longer than the header timeout, and with 4xx bodies that quote nothing of the request."""

    def __init__(self, manager: _GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = manager
        self._admitted = False
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._guard.admit():
            # Answered before any request is read: the client learns why, and the descriptor
            # is free again at once.
            refused = cast(asyncio.Transport, transport)
            refused.write(_BUSY)
            refused.close()
            return
        self._admitted = True
        super().connection_made(transport)
        # A connection that never sends anything is closed like one whose header stalls.
        self._arm_header_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._admitted:
            self._admitted = False
            self._guard.release()
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:
            # A whole request header arrived (or a malformed one was rejected).
            self._cancel_header_timer()
        elif data:
            # Part of a header; or, for a request with a body, part of that body (this
            # exporter serves only GETs, and a handler at work is never interrupted).
            self._arm_header_timer()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status < 500:
            # aiohttp's text quotes the bad line, which may be a header with credentials.
            message = f"{status} {HTTPStatus(status).phrase}\n"
        return super().handle_error(request, status, exc, message)

    def _arm_header_timer(self) -> None:
        timeout = self._guard.limits.header_timeout
        if self._header_timer is None and timeout > 0:
            self._header_timer = self._loop.call_later(timeout, self._header_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if not self._request_in_progress:
            self.force_close()
