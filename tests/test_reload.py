"""SIGHUP: a good new configuration is applied without losing state, a bad one is refused and
the running one kept, and a gauge says which happened."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import Config, ConfigError, parse_config
from exporter.serving import reload_from
from exporter.simulator import Fleet, SimulatedRds
from tests.harness import INTERVAL, key, success_key
from tests.helpers import KEY_ID, NOW, SECRET
from tests.running_config import api_section, running_config
from tests.test_cli import free_port, start_exporter, stop, wait_for

RELOADED = "aliyun_rds_exporter_config_last_reload_successful"


def config_for(url: str, ids: Sequence[str], interval: str = "5m") -> dict[str, Any]:
    return {
        "api": api_section(url),
        "credentials": {"access_key_id": KEY_ID, "access_key_secret": SECRET},
        "polling": {"interval": interval, "lookback": "8d", "window": "1d"},
        "instances": [{"id": iid, "region": "cn-hangzhou"} for iid in ids],
    }


async def test_reload_applies_changes_and_keeps_what_it_knows() -> None:
    fleet = Fleet.generate(seed=21, instances=4, now=NOW, readonly_fraction=0.0)
    ids = list(fleet.instances)
    urls: list[str] = []

    def first(found: Sequence[str]) -> dict[str, Any]:
        urls.extend(found)
        return config_for(found[0], ids[:3])

    async with running_config(first, fleet) as h:
        kept = ids[1]
        h.fleet.add_backup(
            kept, start=h.clock.time() + 60, end=h.clock.time() + 120, status="Failed"
        )
        await h.advance(2 * INTERVAL)
        before = await h.scrape()
        watermark = h.exporter.state.instances[kept].watermark
        assert before["aliyun_rds_backup_failures_total"][success_key(kept)] == 1
        h.sim.clear_requests()

        new = parse_config(config_for(urls[0], ids[1:], interval="10m"), {})
        assert await reload_from(h.exporter, lambda: new)
        await h.advance(1.0)
        after = await h.scrape()
        seen = {dict(k).get("instance_id") for fam in after.values() for k in fam}
        assert ids[0] not in seen  # left the configuration: its series are gone
        assert after["aliyun_rds_backup_collect_success"][key(instance_id=ids[3])] == 1
        # Kept instances keep their counters and watermark: one short poll, no backfill.
        assert after["aliyun_rds_backup_failures_total"][success_key(kept)] == 1
        calls = [r for r in h.sim.requests if r.instance_id == kept]
        assert len(calls) == 1
        assert h.exporter.state.instances[kept].watermark >= watermark  # type: ignore[operator]
        assert after[RELOADED][frozenset()] == 1
        async with h.session.get(h.url + "/metrics") as response:
            text = await response.text()
        assert "DescribeBackups every 10m" in text  # the HELP texts follow the new interval
        assert "DescribeBackups every 5m" not in text


async def test_bad_reload_keeps_the_running_configuration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fleet = Fleet.generate(seed=22, instances=2, now=NOW, readonly_fraction=0.0)
    ids = list(fleet.instances)
    async with running_config(lambda urls: config_for(urls[0], ids), fleet) as h:
        running: Config = h.exporter.config

        def broken() -> Config:
            raise ConfigError(["instances[0].id: required", "polling.window: must be at least 1m"])

        assert not await reload_from(h.exporter, broken)
        assert h.exporter.config is running
        h.sim.clear_requests()
        await h.advance(INTERVAL)
        samples = await h.scrape()
        assert samples[RELOADED][frozenset()] == 0
        assert {r.instance_id for r in h.sim.requests} == set(ids)  # still polling
        for iid in ids:
            assert samples["aliyun_rds_backup_collect_success"][key(instance_id=iid)] == 1
    refused = [r.getMessage() for r in caplog.records if "reload refused" in r.getMessage()]
    assert len(refused) == 2
    assert "instances[0].id: required" in refused[0]


def metrics_of(text: str) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    samples: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return samples


@pytest.mark.slow
async def test_sighup_to_the_real_process(tmp_path: Path) -> None:
    fleet = Fleet.generate(seed=23, instances=3, now=time.time(), readonly_fraction=0.0)
    ids = list(fleet.instances)
    sim = SimulatedRds(fleet, {KEY_ID: SECRET})
    config = tmp_path / "config.yaml"

    def write(instance_ids: Sequence[str], url: str) -> None:
        instances = "\n".join(f"  - id: {i}\n    region: cn-hangzhou" for i in instance_ids)
        config.write_text(
            f"api:\n  endpoint: {url}\ncredentials:\n  access_key_id: {KEY_ID}\n"
            f"  access_key_secret: {SECRET}\npolling:\n  interval: 1m\n  lookback: 2d\n"
            f"  window: 1d\ninstances:\n{instances}\n"
        )

    async with sim.serve("127.0.0.1", 0) as url:
        write(ids[:2], url)
        port = free_port()
        process = await start_exporter(
            "--config.file", str(config), "--web.listen-address", f"127.0.0.1:{port}"
        )
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        try:
            async with aiohttp.ClientSession() as session:
                await wait_for(f"http://127.0.0.1:{port}/-/ready", session)
                write(ids, url)
                process.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + 20
                while True:
                    samples = metrics_of(await wait_for(metrics_url, session))
                    success = samples.get("aliyun_rds_backup_collect_success", {})
                    if success.get(key(instance_id=ids[2])) == 1:
                        break
                    assert time.monotonic() < deadline, "the reload never polled the new instance"
                    await asyncio.sleep(0.1)
                config.write_text("polling:\n  interval: soon\n")
                process.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + 20
                while metrics_of(await wait_for(metrics_url, session))[RELOADED][frozenset()]:
                    assert time.monotonic() < deadline, "the bad reload was never reported"
                    await asyncio.sleep(0.1)
                samples = metrics_of(await wait_for(metrics_url, session))
                assert {
                    dict(k)["instance_id"] for k in samples["aliyun_rds_backup_collect_success"]
                } == set(ids)
        finally:
            code, stderr, _ = await stop(process, signal.SIGTERM)
    assert code == 0, stderr
    assert "configuration reloaded: 3 static instance(s)" in stderr
    assert "reload refused, keeping the running configuration: polling.interval" in stderr
    assert SECRET not in stderr


@pytest.mark.slow
async def test_sighup_in_demo_mode_is_ignored_with_a_warning() -> None:
    port = free_port()
    process = await start_exporter("--demo", "--web.listen-address", f"127.0.0.1:{port}")
    try:
        async with aiohttp.ClientSession() as session:
            await wait_for(f"http://127.0.0.1:{port}/-/healthy", session)
            process.send_signal(signal.SIGHUP)
            await asyncio.sleep(0.5)
            await wait_for(f"http://127.0.0.1:{port}/-/healthy", session)
    finally:
        code, stderr, _ = await stop(process, signal.SIGTERM)
    assert code == 0
    assert "SIGHUP ignored" in stderr


async def test_reload_keeps_discovered_instances_and_their_state() -> None:
    fleet = Fleet(seed=24, now=NOW, readonly_fraction=0.0)
    for n in range(3):
        fleet.add_instance(region_id="cn-hangzhou", description=f"app {n}")
    urls: list[str] = []

    def config(found: Sequence[str]) -> dict[str, Any]:
        urls[:] = found
        return {
            "api": api_section(found[0]),
            "credentials": {"access_key_id": KEY_ID, "access_key_secret": SECRET},
            "discovery": [{"region": "cn-hangzhou", "refresh": "10m"}],
        }

    async with running_config(config, fleet) as h:
        iid = next(iter(fleet.instances))
        now = h.clock.time()
        h.fleet.add_backup(iid, start=now + 60, end=now + 120, status="Failed")
        await h.advance(2 * INTERVAL)
        assert (await h.scrape())["aliyun_rds_backup_failures_total"][success_key(iid)] == 1
        h.sim.clear_requests()

        assert await reload_from(h.exporter, lambda: parse_config(config(urls), {}))
        assert await h.ready() == 200  # no gap while discovery refreshes again
        await h.advance(1.0)
        samples = await h.scrape()
        assert samples["aliyun_rds_backup_failures_total"][success_key(iid)] == 1
        backups = [r for r in h.sim.requests if r.action == "DescribeBackups"]
        assert sorted(r.instance_id for r in backups) == sorted(fleet.instances)  # no backfill
