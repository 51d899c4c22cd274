"""``aliyun-rds-backup-exporter report``: poll the fleet once, print its status, exit.

For audits, cron jobs and CI without Prometheus. It runs the exporter's own polling (newest
backups first, the configured rate limits) until every instance has had each of its duties
once, then prints the status rows of ``exporter.status`` as a table or as the JSON document
of ``/status.json``, and exits 1 when any instance breaks a rule of the shipped alerts or a
discovery entry cannot list its instances (each named on stderr), 0 when none does, 2 when it
cannot run (flags, configuration, an unexpected error) and 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TextIO

from exporter import __version__
from exporter.config import Config, ConfigError, format_duration, load_config, parse_duration
from exporter.logs import LEVELS, setup_logging
from exporter.service import Exporter
from exporter.status import Health, Row, discovery_problems, document, fleet_rows

log = logging.getLogger(__name__)

OK, TROUBLE, CANNOT_RUN = 0, 1, 2
INTERRUPTED = 130  # as a shell reports SIGINT
PROGRESS_EVERY = 0.25  # seconds between progress updates on a terminal
PROGRESS_LINE_EVERY = 10.0  # ... and between progress lines when stderr is a file or a pipe
BAR_WIDTH = 30
# Columns of the table: heading, width cap (a description may be long), the cell.
COLUMNS: tuple[tuple[str, int], ...] = (
    ("STATE", 7),
    ("INSTANCE", 40),
    ("DESCRIPTION", 30),
    ("ACCOUNT", 20),
    ("REGION", 20),
    ("ENGINE", 10),
    ("FULL BACKUP", 12),
    ("LIMIT", 10),
    ("LAST", 7),
    ("FAILED", 10),
    ("COLLECTION", 10),
    ("PROBLEMS", 200),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aliyun-rds-backup-exporter report",
        description=(
            "Poll every configured and discovered instance once and print its backup status. "
            "Exit status: 0 all fine, 1 an instance breaks an alert rule (or discovery fails), "
            "2 cannot run (or --timeout passed), 130 interrupted."
        ),
    )
    parser.add_argument("--config.file", dest="config_file", default="config.yaml", metavar="PATH")
    parser.add_argument("--output", choices=["table", "json"], default="table")
    parser.add_argument(
        "--timeout",
        type=_duration,
        default=None,
        metavar="DURATION",
        help="give up after this long (e.g. 10m): exit 2 naming the instances not yet read "
        "(default: wait for them all)",
    )
    parser.add_argument(
        "--log.level",
        dest="log_level",
        choices=sorted(LEVELS),
        default="error",
        help="log level on stderr (default: %(default)s: the table says what failed)",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # argparse's own exit: 0 for --help, 2 for a bad flag
        return int(exit_.code or 0)
    setup_logging(args.log_level, "logfmt")
    try:
        config = load_config(args.config_file, os.environ)
    except ConfigError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return CANNOT_RUN
    try:
        rows, doc, problems = asyncio.run(collect(config, sys.stderr, args.timeout))
    except TimedOut as late:
        print(f"report: {late}", file=sys.stderr)
        return CANNOT_RUN
    except KeyboardInterrupt:
        print("report: interrupted", file=sys.stderr)
        return INTERRUPTED
    except Exception as err:  # a crash is not "instances in trouble": cron must tell them apart
        print(f"report: failed: {type(err).__name__}: {err}", file=sys.stderr)
        return CANNOT_RUN
    try:
        if args.output == "json":
            print(json.dumps(doc, indent=2, allow_nan=False))
        else:
            print(render_table(rows))
        sys.stdout.flush()
    except BrokenPipeError:  # `report | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    for line in problems:
        print(_printable(line), file=sys.stderr)
    return TROUBLE if problems else OK


class TimedOut(Exception):
    """``--timeout`` passed before every instance was read; says how far it got."""


async def collect(
    config: Config, progress: TextIO, timeout: float | None = None
) -> tuple[list[Row], dict[str, object], list[str]]:
    """Polls until every instance has been read once (or ``timeout`` seconds pass: TimedOut);
    the rows, the JSON document, and a line per instance or discovery entry in trouble."""
    exporter = Exporter(config)
    bar = Progress(progress)
    deadline = None if timeout is None else time.monotonic() + timeout
    await exporter.start()
    try:
        while True:
            done, total, listed = exporter.first_reads()
            bar.show(done, total, listed)
            if listed and done == total:
                break
            if deadline is not None and time.monotonic() >= deadline:
                raise TimedOut(
                    f"timed out after {format_duration(timeout or 0)}: {done} of {total} "
                    f"instances read{_not_yet(exporter.unread())}"
                )
            await asyncio.sleep(PROGRESS_EVERY)
        bar.finish(total)
        now = exporter.clock.time()
        state = exporter.state
        rows = fleet_rows(state, now, exporter.clock.monotonic(), config.polling.interval)
        # The poller stops here: no next poll is due.
        rows = [replace(row, next_poll=None) for row in rows]
        doc = document(rows, state.discovery, now=now, version=__version__, ready=state.ready)
        problems = discovery_problems(state.discovery)
    finally:
        await exporter.stop()
    problems += [
        f"{row.instance_id}: {'; '.join(p.text for p in row.problems if p.trouble)}"
        for row in rows
        if row.health is Health.TROUBLE
    ]
    return rows, doc, problems


class Progress:
    """A bar on a terminal; otherwise a line now and then, for a log file."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._last = 0.0

    def show(self, done: int, total: int, listed: bool) -> None:
        now = time.monotonic()
        if not self._tty:
            if now - self._last >= PROGRESS_LINE_EVERY:
                self._last = now
                print(f"polled {done} of {total} instances", file=self._stream, flush=True)
            return
        filled = BAR_WIDTH * done // total if total else 0
        waiting = "" if listed else ", listing instances"
        self._stream.write(
            f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} polled{waiting}"
        )
        self._stream.flush()

    def finish(self, total: int) -> None:
        if self._tty:
            self._stream.write("\r\033[K")
        print(f"polled {total} instances", file=self._stream, flush=True)


def render_table(rows: Sequence[Row]) -> str:
    """A fixed-width table, one instance a line, trouble first."""
    cells = [[_printable(text) for text in _cells(row)] for row in rows]
    widths = [
        min(cap, max([len(name), *(len(line[i]) for line in cells)]))
        for i, (name, cap) in enumerate(COLUMNS)
    ]
    lines = [[name for name, _ in COLUMNS], *cells]
    return "\n".join(
        "  ".join(_fit(cell, width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _cells(row: Row) -> list[str]:
    failed = "" if row.failed_sets is None else str(row.failed_sets)
    if failed and not row.lookback_complete:
        failed += " (part)"
    return [
        row.health.value,
        row.instance_id,
        row.description,
        row.account,
        row.region,
        row.engine,
        "none" if row.full_age is None else format_duration(round(row.full_age / 60) * 60),
        format_duration(row.stale_after),
        row.last_status or "",
        failed,
        row.collection,
        "; ".join(problem.text for problem in row.problems),
    ]


def _not_yet(unread: Sequence[str], shown: int = 5) -> str:
    if not unread:
        return ""  # every instance read; discovery has not answered
    more = f" and {len(unread) - shown} more" if len(unread) > shown else ""
    return "; not yet: " + ", ".join(unread[:shown]) + more


def _duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text!r}")
    return seconds


def _printable(text: str) -> str:
    """What the API sent, safe for a terminal: no control characters (escape sequences)."""
    return "".join(c if c.isprintable() else "?" for c in text)


def _fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "~"
