"""Running an exporter until it is told to stop: the HTTP site, the signals, the reloads.

SIGTERM and SIGINT stop it within a few seconds; SIGHUP reads the configuration again and
applies it, or refuses it and keeps the running one. A reload never holds up shutdown: its file
is read on a daemon thread, which nothing waits for.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Callable
from contextlib import AsyncExitStack

from exporter.config import Config, ConfigError
from exporter.filesafe import run_in_daemon_thread
from exporter.httpserver import GuardedAppRunner, GuardedTCPSite, default_limits
from exporter.service import Exporter

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 5.0


async def reload_from(exporter: Exporter, load: Callable[[], Config]) -> bool:
    """SIGHUP: reads the configuration again and applies it, or refuses it and keeps the
    running one (each problem logged on its own line, and the reload gauge says so)."""
    refused = "reload refused, keeping the running configuration: %s"
    try:
        # File I/O stays off the event loop, and off its default executor too: asyncio.run
        # waits for that one at exit, so a read that hangs (a dead mount) would stop SIGTERM.
        config = await run_in_daemon_thread(load, "reload")
    except ConfigError as err:
        for problem in err.problems:
            log.error(refused, problem)
        exporter.telemetry.reloaded(False, exporter.clock.time())
        return False
    except Exception as err:  # a loader bug must not leave the gauge saying all is well
        # Only the type: the message of an unexpected error could quote a secret.
        log.error(refused, f"cannot load it ({type(err).__name__})")
        exporter.telemetry.reloaded(False, exporter.clock.time())
        return False
    for warning in config.warnings:
        log.warning("%s", warning)
    running = exporter.config
    try:
        await exporter.reload(config)
    except Exception:
        # The new configuration passed its checks but could not be started: go back to the one
        # that was running rather than stay stopped.
        log.exception("reload failed while starting; going back to the running configuration")
        await exporter.reload(running)
        exporter.telemetry.reloaded(False, exporter.clock.time())
        return False
    log.info("configuration reloaded: %d static instance(s)", len(config.instances))
    return True


class Reloader:
    """SIGHUP: one reload at a time (a burst applies one after the other), each a task that
    shutdown cancels."""

    def __init__(self, exporter: Exporter, load: Callable[[], Config] | None) -> None:
        self._exporter = exporter
        self._load = load
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[bool]] = set()
        self.stopping = False

    def on_hangup(self) -> None:
        if self.stopping:  # shutting down: nothing to reload into
            return
        task = asyncio.create_task(self._reload_once(), name="reload")
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    async def _reload_once(self) -> bool:
        async with self._lock:
            if self._load is None:
                log.warning("SIGHUP ignored: there is no configuration file to reload")
                return False
            return await reload_from(self._exporter, self._load)

    def _finished(self, task: asyncio.Task[bool]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Retrieved here, so never "Task exception was never retrieved" instead.
            log.error("reload failed: %s", type(task.exception()).__name__)

    async def cancel(self) -> None:
        """Cuts short any reload in progress; returns once they are over. A load waits on a
        daemon thread, so this returns at once whatever the file system does."""
        self.stopping = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def serve(
    exporter: Exporter,
    host: str | None,
    port: int,
    ssl_context: ssl.SSLContext | None = None,
    load: Callable[[], Config] | None = None,
) -> None:
    """Runs until SIGTERM or SIGINT, then shuts down within a few seconds. With ``load``,
    SIGHUP reloads the configuration through it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    reloader = Reloader(exporter, load)
    loop.add_signal_handler(signal.SIGHUP, reloader.on_hangup)
    # Header and idle timeouts, a TLS handshake timeout and a connection cap: exporter.httpserver.
    runner = GuardedAppRunner(
        exporter.app,
        default_limits(),
        handle_signals=False,
        access_log=None,
        shutdown_timeout=SHUTDOWN_GRACE,
    )
    async with AsyncExitStack() as stack:
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = GuardedTCPSite(runner, host, port, ssl_context=ssl_context)
        await site.start()
        await exporter.start()
        stack.push_async_callback(exporter.stop)
        log.info("listening on %s://%s:%d", "https" if ssl_context else "http", host or "*", port)
        await stop.wait()
        log.info("shutting down")
        # A reload cut short must be over before the exporter stops for good.
        await reloader.cancel()
