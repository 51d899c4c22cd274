"""`report`: one poll of the fleet against the simulator, the table or JSON, and the exit code."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest

from exporter.simulator import Faults, Fleet, SimulatedRds
from tests.signed_api import KEY_ID, SECRET

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "docs" / "status.schema.json").read_text())
DAY = 86400.0
REGION = "cn-hangzhou"
MISSING = "rm-nosuch0000000"  # listed in the configuration, unknown to the API
# An API-provided string that must neither run in a browser nor move a terminal's cursor.
HOSTILE_DESCRIPTION = "orders \x1b[2J\x9b31m\x1b[31m<b>red</b>"  # C0 and C1 escapes

pytestmark = pytest.mark.slow


def healthy_fleet(now: float, count: int) -> Fleet:
    fleet = Fleet(seed=11, now=now, history_days=8.0, readonly_fraction=0.0, failure_rate=0.0)
    for _ in range(count):
        add(fleet)
    return fleet


def add(fleet: Fleet, description: str | None = None, instance_id: str | None = None) -> str:
    """A PostgreSQL instance in REGION with whole log backups (recovery works)."""
    iid = fleet.add_instance(
        instance_id=instance_id, engine="PostgreSQL", region_id=REGION, description=description
    ).instance_id
    fleet.set_log_backup(iid, True)
    fleet.clear_log_gaps(iid)
    return iid


async def start_report(
    tmp_path: Path, url: str, *args: str, rate_limit: int = 50
) -> asyncio.subprocess.Process:
    """The report on REGION's instances, found by discovery, and on MISSING."""
    config = tmp_path / "config.yaml"
    config.write_text(
        f"api:\n  endpoint: {url}\n  retries: 1\n  rate_limit: {rate_limit}\n"
        f"credentials:\n  access_key_id: {KEY_ID}\n  access_key_secret: {SECRET}\n"
        "polling:\n  interval: 1m\n  lookback: 8d\n  window: 1d\n"
        f"discovery:\n  - region: {REGION}\n"
        f"instances:\n  - id: {MISSING}\n    region: {REGION}\n"
    )
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "exporter", "report", "--config.file", str(config), *args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )


async def run_report(tmp_path: Path, url: str, *args: str) -> tuple[int, str, str]:
    process = await start_report(tmp_path, url, *args)
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def named_on_stderr(err: str) -> dict[str, str]:
    """The lines naming an instance in trouble, by instance id (not the progress lines)."""
    lines = (line for line in err.splitlines() if not line.startswith("polled "))
    return {line.split(":", 1)[0]: line for line in lines if ": " in line}


async def test_healthy_instances_pass_and_only_the_unknown_one_is_named(
    tmp_path: Path,
) -> None:
    fleet = healthy_fleet(time.time(), count=3)
    ids = sorted(fleet.instances)
    async with SimulatedRds(fleet, {KEY_ID: SECRET}).serve("127.0.0.1", 0) as url:
        code, out, err = await run_report(tmp_path, url, "--output", "json")
    assert code == 1, err
    assert named_on_stderr(err) == {
        MISSING: f"{MISSING}: the API does not know this instance (InvalidDBInstanceId.NotFound)"
    }
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    health = {row["instance_id"]: row["health"] for row in doc["instances"]}
    assert health == {**dict.fromkeys(ids, "ok"), MISSING: "trouble"}
    assert all(row["full"] is not None for row in doc["instances"] if row["health"] == "ok")
    assert doc["discovery"] == [
        {"account": "default", "region": REGION, "state": "ok", "error_code": None, "instances": 3}
    ]
    assert "polled 4 instances" in err  # progress on stderr (a line: not a terminal here)


async def test_a_healthy_fleet_exits_0(tmp_path: Path) -> None:
    fleet = healthy_fleet(time.time(), count=2)
    add(fleet, instance_id=MISSING)  # here the API knows it
    async with SimulatedRds(fleet, {KEY_ID: SECRET}).serve("127.0.0.1", 0) as url:
        code, table, err = await run_report(tmp_path, url)
    assert code == 0, err
    assert named_on_stderr(err) == {}
    rows = table.splitlines()[1:]
    assert len(rows) == 3 and all(line.startswith("ok ") for line in rows), table


async def test_an_unhealthy_fleet_exits_1_naming_each_instance_in_trouble(
    tmp_path: Path,
) -> None:
    now = time.time()
    fleet = healthy_fleet(now, count=2)
    ok = sorted(fleet.instances)
    failing = add(fleet)
    fleet.set_failure_rate(failing, 1.0, since=now - 2 * DAY)
    stale = add(fleet, description=HOSTILE_DESCRIPTION)
    fleet.stop_backups(stale, after=now - 4 * DAY)
    policy = fleet.instance(stale).policy
    fleet.set_policy(stale, replace(policy, weekdays=frozenset(range(7))))
    echoing = add(fleet)
    faults = Faults()
    faults.for_instance(echoing).hostile = "echo_secret"  # its error answers quote our secret
    sim = SimulatedRds(fleet, {KEY_ID: SECRET}, faults=faults)
    async with sim.serve("127.0.0.1", 0) as url:
        code, table, err = await run_report(tmp_path, url)
        json_code, out, _ = await run_report(tmp_path, url, "--output", "json")
    assert code == json_code == 1, err
    named = named_on_stderr(err)
    assert set(named) == {failing, stale, echoing, MISSING}, err
    assert "the last FullBackup failed" in named[failing]
    assert "old (limit 1d13h30m)" in named[stale]  # 1.5 x a daily schedule's 25 h
    assert "cannot read its backups" in named[echoing]
    doc = json.loads(out)
    jsonschema.validate(doc, SCHEMA)
    health = {row["instance_id"]: row["health"] for row in doc["instances"]}
    assert health == {**dict.fromkeys(ok, "ok"), **dict.fromkeys(named, "trouble")}
    # The table: trouble first, every instance a line, the hostile text defused.
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["STATE", "INSTANCE"]
    assert [line.split()[0] for line in lines[1:]] == ["trouble"] * 4 + ["ok"] * 2
    assert "\x1b" not in table and "\x9b" not in table and "[31m<b>red</b>" in table, table
    for output in (table, err, out):
        assert SECRET not in output


async def test_a_bad_config_exits_2_with_the_problem(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("polling:\n  interval: soon\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "exporter", "report", "--config.file", str(config)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    out, err = await process.communicate()
    assert process.returncode == 2
    assert out == b"" and b"polling.interval" in err


async def test_ctrl_c_while_polling_is_one_line_and_exit_130(tmp_path: Path) -> None:
    fleet = healthy_fleet(time.time(), count=20)
    api = SimulatedRds(fleet, {KEY_ID: SECRET})
    async with api.serve("127.0.0.1", 0) as url:
        # One request a second: the first reads of 21 instances take far longer than the test.
        process = await start_report(tmp_path, url, rate_limit=1)
        deadline = time.monotonic() + 60
        while not any(r.action == "DescribeBackups" for r in api.requests):
            assert time.monotonic() < deadline, "the report never polled"
            await asyncio.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 130, err
    assert "report: interrupted" in err.decode().splitlines()
    assert b"Traceback" not in err and out == b""


async def test_a_timeout_names_what_is_not_read_and_exits_2(tmp_path: Path) -> None:
    fleet = healthy_fleet(time.time(), count=20)
    async with SimulatedRds(fleet, {KEY_ID: SECRET}).serve("127.0.0.1", 0) as url:
        # One request a second: 21 instances cannot all be read in two seconds.
        process = await start_report(tmp_path, url, "--timeout", "2s", rate_limit=1)
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    lines = err.decode().splitlines()
    assert process.returncode == 2, lines
    assert out == b"" and not any("Traceback" in line for line in lines)
    timed_out = [line for line in lines if line.startswith("report: timed out after 2s: ")]
    assert len(timed_out) == 1 and "instances read; not yet: " in timed_out[0], lines
    assert "and " in timed_out[0] and " more" in timed_out[0]  # five named, the rest counted


async def test_a_bad_timeout_is_one_line_and_exit_2(tmp_path: Path) -> None:
    async with SimulatedRds(healthy_fleet(time.time(), 1), {KEY_ID: SECRET}).serve(
        "127.0.0.1", 0
    ) as url:
        process = await start_report(tmp_path, url, "--timeout", "soon")
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2
    assert 'error: argument --timeout: invalid duration "soon"' in err.decode()
    assert b"Traceback" not in err and out == b""
