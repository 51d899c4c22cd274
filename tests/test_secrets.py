"""Secrets hygiene: real-looking keys, tokens and passwords go through every path that logs or
raises, and none of them shows up in any log line, error, repr or metric."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from exporter.aliyun.credentials import Credentials, DefaultChainCredentialsProvider
from exporter.config import ConfigError, load_config, parse_config
from exporter.service import Exporter
from exporter.simulator import Fleet, SimulatedRds
from tests.clock import ManualClock
from tests.helpers import NOW

KEY_ID = "LTAI5tQm9vXyZ8wK3pRt7Lq2"
SECRET = "Zq8mP3vR7tY2wK9sL4nB6xC1dF5gH0jQ"
TOKEN = "CAIS8gF1q6Ft5B2yfSjIr5bWKdjSqK1W7LqGfFbF0WUAeNdYuvPzjzz2IHhMenJoAesXv/0yl2hR"
ALL = (SECRET, TOKEN)


def assert_clean(*texts: str) -> None:
    for text in texts:
        for secret in ALL:
            assert secret not in text


async def test_full_run_with_failures_leaks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    holder: list[int] = []
    clock = ManualClock(start=NOW, quiet_when=lambda: clock.sleeping >= holder[0])
    fleet = Fleet.generate(seed=9, instances=3, now=NOW, readonly_fraction=0.0)
    sim = SimulatedRds(fleet, {}, clock=clock.time)
    sim.add_sts_credentials(KEY_ID, SECRET, TOKEN, expires_at=NOW + 3600)
    sim.faults.throttle_rate = 0.3
    async with sim.serve("127.0.0.1", 0) as url:
        config = parse_config(
            {
                "api": {"endpoint": url, "rate_limit": 1000, "concurrency": 16, "retries": 2},
                "credentials": {
                    "access_key_id": "${AK}",
                    "access_key_secret": "${SK}",
                    "security_token": "${TOKEN}",
                },
                "instances": [
                    {"id": iid, "region": "cn-hangzhou"}
                    for iid in [*fleet.instances, "rm-unknown00000"]
                ],
            },
            {"AK": KEY_ID, "SK": SECRET, "TOKEN": TOKEN},
        )
        holder.append(len(config.instances))
        exporter = Exporter(config, clock=clock, rng=random.Random(0))
        runner = web.AppRunner(exporter.app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        await exporter.start()
        try:
            await clock.advance(600)  # successes, throttling, NotFound
            sim.faults.throttle_rate = 0.0
            await clock.advance(3600)  # the token expires: InvalidSecurityToken.Expired
            async with aiohttp.ClientSession() as session:
                pages = []
                for path in ("/metrics", "/", "/-/ready", "/-/healthy"):
                    async with session.get(f"http://127.0.0.1:{port}{path}") as response:
                        pages.append(await response.text())
        finally:
            await exporter.stop()
            await runner.cleanup()
    codes = {r.code for r in sim.requests}
    assert {"OK", "Throttling.User", "InvalidDBInstanceId.NotFound"} <= codes
    assert any(c.startswith("InvalidSecurityToken") for c in codes)
    errors = [s.last_error or "" for s in exporter.state.instances.values()]
    assert_clean(caplog.text, *pages, *errors, repr(config), str(config), repr(exporter.config))


def test_config_errors_never_quote_secrets(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        # The secret is also pasted where a region belongs, and the token is of the wrong type.
        f"credentials:\n  access_key_id: {KEY_ID}\n  access_key_secret: {SECRET}\n"
        f"  security_token: {{x: {TOKEN}}}\n  extra: {SECRET}\n"
        f"instances:\n  - id: rm-1\n    region: {SECRET}\n  - id: {TOKEN}x y\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    assert len(caught.value.problems) >= 3
    assert_clean(str(caught.value), repr(caught.value))


def test_credentials_never_show_in_reprs() -> None:
    credentials = Credentials(KEY_ID, SECRET, TOKEN)
    assert_clean(repr(credentials), str(credentials), repr(DefaultChainCredentialsProvider()))
