"""Configuration files a broken or hostile setup can hand the exporter (issue 17, items 10-12).

Every problem is one ``path: problem`` line: at start the exporter exits 1 with it, on SIGHUP
the reload is refused with it and ``config_last_reload_successful`` goes to 0. No file, however
large or whatever it is (a FIFO, a hung mount), hangs the exporter, its reloads or its shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from exporter.config import Config, ConfigError, load_config, parse_config
from exporter.service import Exporter
from exporter.serving import reload_from
from exporter.simulator import Fleet, SimulatedRds
from tests.harness import key
from tests.helpers import KEY_ID, NOW, SECRET
from tests.running_config import MultiHarness, running_config
from tests.test_cli import REPO, free_port, run_cli, start_exporter, stop, wait_for
from tests.test_reload import RELOADED, config_for, metrics_of

MINIMAL = "instances:\n  - {id: rm-1, region: cn-hangzhou}\n"
HUGE = "9" * 5000
MAX_FILE_BYTES = 1024 * 1024  # the documented limit (README, Configuration)
GENEROUS = 30.0  # seconds: only ever reached when something hangs


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, {}, **kwargs)
    return info.value.problems


def refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "reload refused" in r.getMessage()]


async def refused_reload(
    h: MultiHarness, load: Callable[[], Config], caplog: pytest.LogCaptureFixture
) -> str:
    """Reloads through ``load``, checks it was refused as an operator sees it (the running
    configuration kept, the gauge at 0, one log line without a traceback), returns the line."""
    running = h.exporter.config
    assert (await h.scrape())[RELOADED][frozenset()] == 1
    caplog.clear()
    assert not await reload_from(h.exporter, load)
    assert h.exporter.config is running
    assert (await h.scrape())[RELOADED][frozenset()] == 0
    (record,) = refusals(caplog)
    assert record.exc_info is None
    return record.getMessage()


def start_refused(config: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Starts the exporter on ``config``; it must exit 1 with exactly one line and no traceback."""
    result = run_cli("--config.file", str(config), *args, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    return line


def two_instance_fleet(seed: int) -> tuple[Fleet, list[str]]:
    fleet = Fleet.generate(seed=seed, instances=2, now=NOW, readonly_fraction=0.0)
    return fleet, list(fleet.instances)


# ---------------------------------------------------------------------------------------------
# Item 10: values the YAML library used to crash on


def test_a_date_like_id_is_just_an_id(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "instances:\n  - {id: 2001-02-30, region: cn-hangzhou}\n")
    assert [i.id for i in load_config(path, {}).instances] == ["2001-02-30"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (HUGE, "integer longer than 100 characters (quote it if it is text)"),
        ("0x" + "f" * 4000, "integer longer than 100 characters (quote it if it is text)"),
        ("!!timestamp 2001-02-30", "not a valid !!timestamp value"),
        ("!!float abc", "not a valid !!float value"),
        ("0b_", "not a valid !!int value"),
        ('!!int ""', "not a valid !!int value"),
        ('!!float ""', "not a valid !!float value"),
    ],
)
def test_a_value_that_cannot_be_built_is_one_located_line(
    tmp_path: Path, value: str, problem: str
) -> None:
    path = write(tmp_path / "c.yaml", f"polling:\n  page_size: {value}\n{MINIMAL}")
    assert problems_of(path) == [f"{path}: line 2, column 14: invalid YAML: {problem}"]


def test_a_huge_number_from_the_environment_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", "polling:\n  page_size: ${BIG}\n" + MINIMAL)
    with pytest.raises(ConfigError) as info:
        load_config(path, {"BIG": HUGE})
    (line,) = info.value.problems
    # Located at its key, the way every other bad value is.
    assert line.startswith("polling.page_size: must be 30, 50 or 100, got ")
    assert len(line) < 200


@pytest.mark.slow
def test_start_with_an_unbuildable_value_exits_1_with_one_line(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", f"polling:\n  page_size: {HUGE}\n{MINIMAL}")
    assert start_refused(path).startswith(f"{path}: line 2, column 14: invalid YAML: integer")
    dated = write(tmp_path / "d.yaml", "instances:\n  - {id: 2001-02-30, region: cn-hangzhou}\n")
    result = run_cli("--check-config", "--config.file", str(dated))
    assert result.returncode == 0, result.stderr
    assert "configuration is valid" in result.stdout


async def test_reload_of_an_unbuildable_value_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fleet, ids = two_instance_fleet(31)
    path = write(tmp_path / "c.yaml", f"polling:\n  page_size: {HUGE}\n{MINIMAL}")
    async with running_config(lambda urls: config_for(urls[0], ids), fleet) as h:
        line = await refused_reload(h, lambda: load_config(path, {}), caplog)
        assert f"{path}: line 2, column 14: invalid YAML: integer longer than" in line
        assert HUGE[:200] not in line


async def test_reload_refuses_whatever_the_loader_raises(caplog: pytest.LogCaptureFixture) -> None:
    fleet, ids = two_instance_fleet(32)

    def broken() -> Config:
        raise ValueError(f"day is out of range for month {SECRET}")

    async with running_config(lambda urls: config_for(urls[0], ids), fleet) as h:
        line = await refused_reload(h, broken, caplog)
    assert "ValueError" in line
    assert SECRET not in caplog.text


async def test_reload_to_a_date_like_id_applies_it(tmp_path: Path) -> None:
    fleet, ids = two_instance_fleet(33)
    path = tmp_path / "c.yaml"
    async with running_config(lambda urls: config_for(urls[0], ids), fleet) as h:
        url = h.exporter.config.api.endpoint
        assert url is not None
        data = config_for(url, ids[:1])
        data["instances"].append({"id": "DATE", "region": "cn-hangzhou"})
        # JSON is YAML; the id is written unquoted, as an operator would.
        write(path, json.dumps(data).replace('"DATE"', "2001-02-30"))
        assert await reload_from(h.exporter, lambda: load_config(path, {}))
        assert [i.id for i in h.exporter.config.instances] == [ids[0], "2001-02-30"]
        assert (await h.scrape())[RELOADED][frozenset()] == 1


# ---------------------------------------------------------------------------------------------
# Item 12: size, and YAML forms that are refused


def padded(text: str, size: int) -> str:
    """``text`` followed by a comment, ``size`` bytes in all."""
    return text + "#" * (size - len(text.encode()) - 1) + "\n"


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    fits = write(tmp_path / "fits.yaml", padded(MINIMAL, MAX_FILE_BYTES))
    assert [i.id for i in load_config(fits, {}).instances] == ["rm-1"]
    path = write(tmp_path / "c.yaml", padded(MINIMAL, MAX_FILE_BYTES + 1))
    assert problems_of(path) == [
        f"{path}: is 1,048,577 bytes, over the 1 MiB limit for configuration files"
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "polling:\n  interval: 1:30\n",
            'polling.interval: invalid duration "1:30" '
            "(use e.g. 90s, 5m, 1h30m, 8d or a number of seconds)",
        ),
        (
            "api:\n  timeout: 1:30.5\n",
            'api.timeout: invalid duration "1:30.5" '
            "(use e.g. 90s, 5m, 1h30m, 8d or a number of seconds)",
        ),
        ("polling:\n  page_size: 1:40\n", 'polling.page_size: must be 30, 50 or 100, got "1:40"'),
    ],
)
def test_sexagesimal_numbers_are_refused_not_read_as_base_60(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = write(tmp_path / "c.yaml", text + MINIMAL)
    assert problems_of(path) == [problem]


def test_a_thousand_problems_are_cut_to_the_first_hundred(tmp_path: Path) -> None:
    items = "".join(f"  - {{id: rm-{n}}}\n" for n in range(1000))
    path = write(tmp_path / "c.yaml", f"instances:\n{items}")
    lines = problems_of(path)
    assert lines[:2] == ["instances[0].region: required", "instances[1].region: required"]
    assert lines[100:] == [f"{path}: 900 more problems not shown"]


@pytest.mark.slow
@pytest.mark.parametrize("case", ["too_large", "sexagesimal"])
def test_start_refuses_with_one_line(tmp_path: Path, case: str) -> None:
    path = tmp_path / "c.yaml"
    if case == "too_large":
        write(path, padded(MINIMAL, 2 * MAX_FILE_BYTES))
        expected = f"{path}: is 2,097,152 bytes, over the 1 MiB limit for configuration files"
    else:
        write(path, "polling:\n  interval: 1:30\n" + MINIMAL)
        expected = 'polling.interval: invalid duration "1:30" (use e.g.'
    assert start_refused(path, "--check-config").startswith(expected)


@pytest.mark.parametrize("case", ["too_large", "sexagesimal"])
async def test_reload_refuses_with_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    fleet, ids = two_instance_fleet(34)
    path = tmp_path / "c.yaml"
    async with running_config(lambda urls: config_for(urls[0], ids), fleet) as h:
        good = json.dumps(config_for(str(h.exporter.config.api.endpoint), ids))
        if case == "too_large":
            write(path, padded(good + "\n", MAX_FILE_BYTES + 1))
            expected = f"{path}: is 1,048,577 bytes, over the 1 MiB limit"
        else:
            write(path, good.replace('"5m"', "1:30"))
            expected = 'polling.interval: invalid duration "1:30"'
        line = await refused_reload(h, lambda: load_config(path, {}), caplog)
        assert expected in line


# ---------------------------------------------------------------------------------------------
# Item 11: files that block on read


def finishes(function: Callable[[], object]) -> list[object]:
    """Runs ``function`` on a daemon thread and waits a generous while: the list holds its
    result or exception once it has returned, and is empty if it hung."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(function())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(GENEROUS)
    return outcome


def unblock(fifo: Path) -> None:
    """Lets a reader stuck on ``fifo`` (the code before the change) see end of file."""
    with contextlib.suppress(OSError):
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "c.yaml"
    os.mkfifo(fifo)
    try:
        outcome = finishes(lambda: load_config(fifo, {}))
    finally:
        unblock(fifo)
    assert outcome, "load_config hung on a FIFO"
    (error,) = outcome
    assert isinstance(error, ConfigError)
    assert error.problems == [f"{fifo}: cannot read: a named pipe (FIFO), not a regular file"]


@pytest.mark.slow
def test_start_on_a_fifo_exits_1_with_one_line(tmp_path: Path) -> None:
    fifo = tmp_path / "c.yaml"
    os.mkfifo(fifo)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "exporter", "--config.file", str(fifo)],
            capture_output=True,
            text=True,
            timeout=GENEROUS,
            cwd=REPO,
        )
    finally:
        unblock(fifo)
    assert result.returncode == 1
    assert result.stderr.strip() == f"{fifo}: cannot read: a named pipe (FIFO), not a regular file"


def test_a_device_is_refused() -> None:
    assert problems_of(Path("/dev/null")) == [
        "/dev/null: cannot read: a character device, not a regular file"
    ]


@pytest.mark.slow
def test_web_config_on_a_fifo_exits_1_with_one_line(tmp_path: Path) -> None:
    """``--web.config.file`` is read the same way (and its name is printed once)."""
    fifo = tmp_path / "web.yml"
    os.mkfifo(fifo)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "exporter", "--demo", "--web.config.file", str(fifo)],
            capture_output=True,
            text=True,
            timeout=GENEROUS,
            cwd=REPO,
        )
    finally:
        unblock(fifo)
    assert result.returncode == 1
    assert result.stderr.strip() == f"{fifo}: cannot read: a named pipe (FIFO), not a regular file"


class Stuck:
    """A reader that blocks like a hung mount, until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()

    def __call__(self, path: str, limit: int) -> bytes:
        self.entered.set()
        self.released.wait()
        return b""


def test_a_read_that_never_returns_is_given_up_after_the_timeout(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", MINIMAL)
    stuck = Stuck()
    try:
        outcome = finishes(lambda: load_config(path, {}, timeout=0.05, read=stuck))
    finally:
        stuck.released.set()
    assert outcome, "the read was never given up"
    (error,) = outcome
    assert isinstance(error, ConfigError)
    assert error.problems == [f"{path}: cannot read: no answer within 0.05s"]


async def test_reload_from_a_read_that_never_returns_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fleet, ids = two_instance_fleet(35)
    path = write(tmp_path / "c.yaml", MINIMAL)
    stuck = Stuck()
    try:
        async with running_config(lambda urls: config_for(urls[0], ids), fleet) as h:
            line = await refused_reload(
                h, lambda: load_config(path, {}, timeout=0.05, read=stuck), caplog
            )
    finally:
        stuck.released.set()
    assert line.endswith(f"{path}: cannot read: no answer within 0.05s")


def test_a_reload_stuck_in_a_read_does_not_hold_up_the_exit() -> None:
    """``asyncio.run`` (as the CLI runs the exporter) returns once the reload is cancelled,
    even though its read never returns: the read is not on the loop's default executor."""
    stuck = Stuck()
    config = parse_config(config_for("http://127.0.0.1:9", ["rm-1"]), {})

    async def scenario() -> None:
        exporter = Exporter(config, rng=random.Random(1))
        loop = asyncio.get_running_loop()
        reading = asyncio.Event()

        def load() -> Config:
            loop.call_soon_threadsafe(reading.set)
            stuck("config.yaml", MAX_FILE_BYTES)
            return config

        reload = asyncio.create_task(reload_from(exporter, load))
        await reading.wait()
        reload.cancel()  # what serve() does on SIGTERM
        await asyncio.gather(reload, return_exceptions=True)

    try:
        outcome = finishes(lambda: asyncio.run(scenario()))
    finally:
        stuck.released.set()
    assert outcome == [None], "asyncio.run waited for the stuck read"


@pytest.mark.slow
async def test_sighup_on_a_fifo_is_refused_and_the_next_one_works(tmp_path: Path) -> None:
    """The real process: SIGHUP with the config path turned into a FIFO is refused, a later
    SIGHUP with a good file applies it, and SIGTERM still stops the process."""
    fleet = Fleet.generate(seed=36, instances=3, now=time.time(), readonly_fraction=0.0)
    ids = list(fleet.instances)
    sim = SimulatedRds(fleet, {KEY_ID: SECRET})
    config = tmp_path / "config.yaml"

    def write_config(instance_ids: Sequence[str], url: str) -> None:
        data = config_for(url, instance_ids, interval="1m")
        data["polling"]["lookback"] = "2d"
        staged = write(tmp_path / "staged.yaml", json.dumps(data))
        os.replace(staged, config)

    async with sim.serve("127.0.0.1", 0) as url:
        write_config(ids[:2], url)
        port = free_port()
        process = await start_exporter(
            "--config.file", str(config), "--web.listen-address", f"127.0.0.1:{port}"
        )
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        try:
            async with aiohttp.ClientSession() as session:
                await wait_for(f"http://127.0.0.1:{port}/-/ready", session)
                os.replace(fifo, config)
                process.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + GENEROUS
                while metrics_of(await wait_for(metrics_url, session))[RELOADED][frozenset()]:
                    assert time.monotonic() < deadline, "the reload from a FIFO never ended"
                    await asyncio.sleep(0.1)
                write_config(ids, url)
                process.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + GENEROUS
                while True:
                    samples = metrics_of(await wait_for(metrics_url, session))
                    success = samples.get("aliyun_rds_backup_collect_success", {})
                    if samples[RELOADED][frozenset()] and success.get(key(instance_id=ids[2])):
                        break
                    assert time.monotonic() < deadline, "the SIGHUP after the FIFO did nothing"
                    await asyncio.sleep(0.1)
        finally:
            try:
                code, stderr, _ = await stop(process, signal.SIGTERM)
            except TimeoutError:  # hung (the code before the change): do not leave it behind
                process.kill()
                await process.wait()
                raise
    assert code == 0, stderr
    refused = [line for line in stderr.splitlines() if "reload refused" in line]
    assert len(refused) == 1, stderr
    assert f"{config}: cannot read: a named pipe (FIFO), not a regular file" in refused[0]
    assert "configuration reloaded: 3 static instance(s)" in stderr
    assert "Traceback" not in stderr
