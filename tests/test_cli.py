"""The command line as an operator meets it: a real process, real signals, real output."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter import __version__
from exporter.cli import parse_listen_address
from exporter.config import parse_config
from exporter.service import load_plan
from exporter.simulator import Fleet, SimulatedRds
from tests.helpers import KEY_ID, SECRET

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert __version__ in result.stdout


@pytest.mark.slow
def test_bad_config_prints_one_line_per_problem_and_exits_1(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        textwrap.dedent(
            """
            api:
              rate_limit: 0
            credentials:
              access_key_id: LTAI5tSomething0000
              access_key_secret: ${NOT_SET_ANYWHERE}
            polling:
              interval: soon
            instances:
              - region: cn-hangzhou
              - id: rm-1
                region: cn-hangzhou
            """
        )
    )
    result = run_cli("--config.file", str(config))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert any(line.startswith("credentials.access_key_secret: ") for line in lines), lines
    assert any(line.startswith("api.rate_limit: ") for line in lines), lines
    assert any(line.startswith("polling.interval: ") for line in lines), lines
    assert "instances[0].id: required" in lines
    assert len(lines) == 4


@pytest.mark.slow
def test_missing_config_file_is_one_clear_line(tmp_path: Path) -> None:
    result = run_cli("--config.file", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "nope.yaml" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_check_config_summarises_the_load(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    instances = "\n".join(f"  - id: rm-{n:04d}\n    region: cn-hangzhou" for n in range(400))
    config.write_text(
        "api:\n  rate_limit: 1\ncredentials:\n  access_key_id: ${AK}\n"
        "  access_key_secret: ${SK}\npolling:\n  interval: 5m\n  lookback: 8d\n  window: 1d\n"
        f"instances:\n{instances}\n"
    )
    result = run_cli(
        "--check-config", "--config.file", str(config), env={"AK": KEY_ID, "SK": SECRET}
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "configuration is valid" in out
    assert "400 static" in out
    # Newest first: one call per instance before /-/ready, the rest of the 8 windows later.
    assert "first poll: newest first" in out and "at least 400 API calls, about 6m40s" in out
    assert "until every newest backup is known (/-/ready): about 6m40s" in out
    assert "backfill: the rest of the 8 window(s) of the lookback, at most 2800 API calls" in out
    assert "until the backfill is complete: never at this load" in out
    # Per 5 minutes: 400 DescribeBackups calls, the backup policies (400 every 6h: 5.6), running
    # backups and log files (400 every 15m each: 133.3 + 133.3), the restorable windows (400
    # every hour: 33.3), the cross-region settings (every 6h: 5.6), copies and backup storage
    # (every hour each: 33.3 + 33.3) cannot fit into 1 request/s.
    assert "all duties: about 778 API calls per interval" in out
    assert "warning: 778 calls per interval exceed" in out
    assert "cross-region copies: 8 DescribeCrossRegionBackups call(s) per instance" in out
    assert SECRET not in out + result.stderr


@pytest.mark.parametrize(
    ("value", "expected"),
    [(":9877", (None, 9877)), ("127.0.0.1:80", ("127.0.0.1", 80)), ("[::1]:9", ("::1", 9))],
)
def test_listen_address(value: str, expected: tuple[str | None, int]) -> None:
    assert parse_listen_address(value) == expected


@pytest.mark.parametrize("value", ["9877", "host:port", "x:70000"])
def test_bad_listen_address(value: str) -> None:
    with pytest.raises(ValueError, match=r"--web\.listen-address"):
        parse_listen_address(value)


async def wait_for(url: str, session: aiohttp.ClientSession, timeout: float = 30.0) -> str:
    """Polls until the URL answers 200 (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            async with session.get(url) as response:
                if response.status == 200:
                    return await response.text()
        except aiohttp.ClientError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer 200 within {timeout}s")
        await asyncio.sleep(0.1)


async def start_exporter(
    *args: str, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exporter",
        *args,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def stop(process: asyncio.subprocess.Process, signum: int) -> tuple[int, str, float]:
    started = time.monotonic()
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):  # it may have exited on its own: say why
            process.send_signal(signum)
    _, err = await asyncio.wait_for(process.communicate(), timeout=15)
    return process.returncode or 0, err.decode(), time.monotonic() - started


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_demo_serves_and_shuts_down_cleanly(signum: int) -> None:
    port = free_port()
    process = await start_exporter("--demo", "--web.listen-address", f"127.0.0.1:{port}")
    try:
        async with aiohttp.ClientSession() as session:
            await wait_for(f"http://127.0.0.1:{port}/-/ready", session)
            text = await wait_for(f"http://127.0.0.1:{port}/metrics", session)
    finally:
        code, stderr, took = await stop(process, signum)
    names = {f.name for f in text_string_to_metric_families(text)}
    assert "aliyun_rds_backup_last_success_timestamp_seconds" in names
    assert "aliyun_rds_backup_collect_success" in names
    assert code == 0, stderr
    assert took < 5.0
    assert "Traceback" not in stderr
    assert "level=info" in stderr and "shutting down" in stderr


@pytest.fixture
async def simulator() -> AsyncIterator[tuple[SimulatedRds, str]]:
    fleet = Fleet.generate(seed=3, instances=3, now=time.time(), readonly_fraction=0.0)
    sim = SimulatedRds(fleet, {KEY_ID: SECRET})
    async with sim.serve("127.0.0.1", 0) as url:
        yield sim, url


def write_config(path: Path, url: str, ids: list[str], credentials: str = "") -> Path:
    instances = "\n".join(f"  - id: {iid}\n    region: cn-hangzhou" for iid in ids)
    path.write_text(
        f"api:\n  endpoint: {url}\n  retries: 1\n{credentials}"
        f"polling:\n  interval: 1m\n  lookback: 2d\n  window: 1d\ninstances:\n{instances}\n"
    )
    return path


@pytest.mark.slow
async def test_default_credential_chain_reads_the_environment(
    simulator: tuple[SimulatedRds, str], tmp_path: Path
) -> None:
    """No credentials in the file: the official chain finds them in the environment."""
    sim, url = simulator
    config = write_config(tmp_path / "c.yaml", url, list(sim.fleet.instances))
    port = free_port()
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",  # never reach for a metadata service
    }
    process = await start_exporter(
        "--config.file", str(config), "--web.listen-address", f"127.0.0.1:{port}", env=env
    )
    try:
        async with aiohttp.ClientSession() as session:
            await wait_for(f"http://127.0.0.1:{port}/-/ready", session)
            text = await wait_for(f"http://127.0.0.1:{port}/metrics", session)
    finally:
        code, stderr, _ = await stop(process, signal.SIGTERM)
    assert code == 0, stderr
    success = {
        s.labels["instance_id"]: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "aliyun_rds_backup_collect_success"
    }
    assert success == {iid: 1.0 for iid in sim.fleet.instances}
    assert "default credential chain" in stderr
    assert SECRET not in stderr


@pytest.mark.slow
async def test_secrets_never_reach_the_logs(
    simulator: tuple[SimulatedRds, str], tmp_path: Path
) -> None:
    """Wrong secret, debug logging, JSON logs: the secret and token appear nowhere."""
    sim, url = simulator
    wrong = "Wr0ngSecretValueThatLooksReal1234"
    token = "CAISsecurityTokenValueLooksReal0987"
    creds = (
        f"credentials:\n  access_key_id: {KEY_ID}\n  access_key_secret: {wrong}\n"
        f"  security_token: {token}\n"
    )
    config = write_config(tmp_path / "c.yaml", url, [*sim.fleet.instances, "rm-x0000000"], creds)
    port = free_port()
    process = await start_exporter(
        "--config.file",
        str(config),
        "--web.listen-address",
        f"127.0.0.1:{port}",
        "--log.level",
        "debug",
        "--log.format",
        "json",
    )
    try:
        async with aiohttp.ClientSession() as session:
            await wait_for(f"http://127.0.0.1:{port}/-/ready", session)
            text = await wait_for(f"http://127.0.0.1:{port}/metrics", session)
    finally:
        code, stderr, _ = await stop(process, signal.SIGTERM)
    assert code == 0
    assert "InvalidSecurityToken" in stderr or "SignatureDoesNotMatch" in stderr
    assert stderr.lstrip().startswith("{")
    for secret in (wrong, token):
        assert secret not in stderr
        assert secret not in text


@pytest.mark.slow
async def test_demo_over_tls_with_basic_auth(tmp_path: Path) -> None:
    import base64
    import ssl

    import bcrypt
    import trustme

    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(tmp_path / "server.crt")
    server.private_key_pem.write_to_path(tmp_path / "server.key")
    hashed = bcrypt.hashpw(b"s3cret-pass", bcrypt.gensalt(4)).decode()
    (tmp_path / "web.yml").write_text(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
        f"basic_auth_users:\n  prom: '{hashed}'\n"
    )
    context = ssl.create_default_context()
    ca.configure_trust(context)
    auth = {"Authorization": "Basic " + base64.b64encode(b"prom:s3cret-pass").decode()}
    port = free_port()
    process = await start_exporter(
        "--demo",
        "--web.listen-address",
        f"127.0.0.1:{port}",
        "--web.config.file",
        str(tmp_path / "web.yml"),
    )
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 30
            while True:
                try:
                    async with session.get(
                        f"https://127.0.0.1:{port}/metrics", ssl=context, headers=auth
                    ) as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectorError:
                    pass
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            async with session.get(f"https://127.0.0.1:{port}/metrics", ssl=context) as response:
                assert response.status == 401
    finally:
        code, stderr, _ = await stop(process, signal.SIGTERM)
    assert code == 0, stderr
    assert "listening on https://" in stderr
    assert "s3cret-pass" not in stderr and hashed not in stderr


@pytest.mark.slow
def test_bad_web_config_exits_1_with_the_problem(tmp_path: Path) -> None:
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n  alice: hunter2\n")
    result = run_cli("--demo", "--web.config.file", str(web))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"{web}: basic_auth_users.alice: must be a bcrypt hash ($2a$, $2b$ or $2y$)"
    )
    assert "hunter2" not in result.stderr


def test_check_config_summary_names_discovery_and_policy_calls() -> None:
    config = parse_config(
        {
            "credentials": {"access_key_id": KEY_ID, "access_key_secret": SECRET},
            "polling": {"policy_refresh": "6h"},
            "instances": [{"id": f"rm-{n}", "region": "cn-hangzhou"} for n in range(60)],
            "discovery": [{"region": "cn-shanghai", "refresh": "15m", "grace": "2h"}],
        },
        {},
    )
    lines = load_plan(config)
    assert "instances: 60 static, discovery entries: 1" in lines[1]
    # 60 newest-first calls at 10/s; then every first read and the backfill in what is left.
    assert (
        "until every newest backup is known (/-/ready): about 6s, more where newest full "
        "backups are older than a window"
    ) in lines
    assert "until the backfill is complete: about 3m2s" in lines
    assert (
        "discovery: account default, region cn-shanghai: one DescribeDBInstances call per 100 "
        "instances found, every 15m; vanished instances kept for 2h"
    ) in lines
    assert any(
        line.startswith("backup policy: one DescribeBackupPolicy call per instance every 6h (60")
        for line in lines
    )
    off = parse_config(
        {
            "credentials": {"access_key_id": KEY_ID, "access_key_secret": SECRET},
            "polling": {"policy_refresh": 0},
            "instances": [{"id": "rm-1", "region": "cn-hangzhou"}],
        },
        {},
    )
    assert "backup policy: not read (polling.policy_refresh is 0)" in load_plan(off)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("metrics", "must be a path starting with /"),
        ("/-/healthy", "is taken by another endpoint"),
        ("/status.json", "is taken by another endpoint"),
    ],
)
def test_bad_telemetry_path_is_one_line_and_exit_2(path: str, reason: str) -> None:
    result = run_cli("--demo", "--web.telemetry-path", path)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: --web.telemetry-path: ")
    assert reason in result.stderr and "Traceback" not in result.stderr
