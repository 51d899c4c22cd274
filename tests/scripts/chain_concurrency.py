"""Run by tests/test_credentials.py in a fresh interpreter: the credentials package reads its
environment when first imported, so the chain must be set up before that happens.

Serves temporary credentials from a slow ALIBABA_CLOUD_CREDENTIALS_URI endpoint, then asks the
default chain for credentials from many coroutines at once while a ticker measures how long the
event loop stalls. Prints one JSON line with what it saw.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

from aiohttp import web

SECRET = sys.argv[1]
CALLERS = int(sys.argv[2])
# "nocode": the service answers without "Code", which the package rejects, quoting the body.
BROKEN = len(sys.argv) > 3 and sys.argv[3] == "nocode"


async def main() -> None:
    hits = 0

    async def credentials(request: web.Request) -> web.Response:
        nonlocal hits
        hits += 1
        await asyncio.sleep(0.3)  # a slow metadata or credentials service
        return web.json_response(
            {
                "Code": "Broken" if BROKEN else "Success",
                "AccessKeyId": "STS.NUexampleKeyId000",
                "AccessKeySecret": SECRET,
                "SecurityToken": "CAIStokenExample000",
                "Expiration": "2099-01-01T00:00:00Z",
            }
        )

    app = web.Application()
    app.router.add_get("/creds", credentials)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    os.environ["ALIBABA_CLOUD_CREDENTIALS_URI"] = f"http://127.0.0.1:{port}/creds"

    from exporter.aliyun.credentials import CredentialsError, DefaultChainCredentialsProvider

    provider = DefaultChainCredentialsProvider()
    await asyncio.to_thread(provider.load)
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - before - 0.01)

    errors: list[str] = []

    async def ask() -> bool:
        try:
            credentials = await provider.get()
        except CredentialsError as err:
            errors.append(str(err))
            return False
        return credentials.access_key_secret == SECRET

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    results = await asyncio.gather(*(ask() for _ in range(CALLERS)))
    done.set()
    await tick
    await runner.cleanup()
    print(json.dumps({"ok": sum(results), "max_lag": max(lags), "hits": hits, "errors": errors}))


asyncio.run(main())
