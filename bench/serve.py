"""Serving an aiohttp app on loopback until SIGTERM or SIGINT, for the benchmark's processes."""

from __future__ import annotations

import asyncio
import signal

from aiohttp import web


async def serve_until_signalled(app: web.Application, port: int, ready: str) -> None:
    """Serves ``app`` on 127.0.0.1:``port``; prints ``ready`` once listening (the driver waits
    for that line), then runs until SIGTERM or SIGINT."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(ready, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()
