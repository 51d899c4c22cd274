"""Command line: flags, logging, config, signals and exit codes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import ssl
import sys
from collections.abc import Sequence

from prometheus_client import disable_created_metrics

from exporter import __version__
from exporter.config import Config, ConfigError, load_config
from exporter.httpserver import raise_open_files_limit
from exporter.logs import LEVELS, setup_logging
from exporter.memory import tune_malloc
from exporter.service import Exporter, load_plan
from exporter.serving import serve
from exporter.sharding import Shard
from exporter.webconfig import WebConfig, load_web_config

log = logging.getLogger("exporter")

DEFAULT_LISTEN = ":9877"


# The flags, in --help order: (flag, dest, default, metavar, help); a bool default is a switch.
FLAGS: tuple[tuple[str, str, object, str | None, str], ...] = (
    ("--config.file", "config_file", "config.yaml", "PATH", "configuration file"),
    ("--web.listen-address", "listen", DEFAULT_LISTEN, "HOST:PORT", "address to serve /metrics on"),
    ("--web.telemetry-path", "telemetry_path", "/metrics", "PATH", "path of the metrics endpoint"),
    (
        "--web.config.file",
        "web_config_file",
        None,
        "PATH",
        "TLS and basic auth settings, in the Prometheus exporter-toolkit format",
    ),
    ("--log.level", "log_level", "info", None, "log level"),
    ("--log.format", "log_format", "logfmt", None, "log format"),
    (
        "--shard.index",
        "shard_index",
        0,
        "N",
        "this replica's shard, from 0: it polls only the instances whose id hashes to it",
    ),
    (
        "--shard.total",
        "shard_total",
        1,
        "N",
        "how many replicas split the fleet between them (1: no sharding)",
    ),
    (
        "--check-config",
        "check_config",
        False,
        None,
        "validate the configuration, print a summary and exit (0 = valid, 1 = invalid)",
    ),
    (
        "--demo",
        "demo",
        False,
        None,
        "run against the built-in simulated RDS API: no account or credentials needed",
    ),
)
CHOICES = {"log_level": sorted(LEVELS), "log_format": ["logfmt", "json"]}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aliyun-rds-backup-exporter",
        description="Prometheus exporter for the backup status of Alibaba Cloud RDS instances.",
        epilog="Command: 'report' polls every instance once, prints its status and exits "
        "(aliyun-rds-backup-exporter report --help).",
    )
    for flag, dest, default, metavar, text in FLAGS:
        if isinstance(default, bool):
            parser.add_argument(flag, dest=dest, action="store_true", help=text)
            continue
        parser.add_argument(
            flag,
            dest=dest,
            default=default,
            type=type(default) if isinstance(default, int) else str,
            metavar=metavar,
            choices=CHOICES.get(dest),
            help=text if default is None else f"{text} (default: %(default)s)",
        )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def parse_listen_address(value: str) -> tuple[str | None, int]:
    """``HOST:PORT``, ``:PORT`` (all interfaces) or ``[::1]:PORT``."""
    host, sep, port_text = value.rpartition(":")
    if not sep:
        raise ValueError(f"--web.listen-address: expected HOST:PORT, got {value!r}")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"--web.listen-address: port must be a number, got {value!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"--web.listen-address: port out of range in {value!r}")
    host = host.strip("[]")
    return (host or None), port


def check_telemetry_path(path: str) -> None:
    """A path of its own, starting with ``/``, that the other endpoints do not use."""
    if not path.startswith("/") or any(c.isspace() for c in path) or "?" in path:
        raise ValueError(f"--web.telemetry-path: must be a path starting with /, got {path!r}")
    if path in ("/", "/status.json", "/-/healthy", "/-/ready"):
        raise ValueError(f"--web.telemetry-path: {path} is taken by another endpoint")


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["report"]:  # the one subcommand: poll once, print, exit
        from exporter import report

        disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in the library
        raise_open_files_limit()
        return report.main(argv[1:])
    args = build_parser().parse_args(argv)
    # *_created series add nothing our alerts or dashboards use, and double the output.
    disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in the library
    setup_logging(args.log_level, args.log_format)
    raise_open_files_limit()  # before any socket: clients, API calls and the log share it
    tune_malloc()  # before the fleet's state grows
    try:
        host, port = parse_listen_address(args.listen)
        check_telemetry_path(args.telemetry_path)
        shard = Shard(args.shard_index, args.shard_total)
        if args.demo and shard.sharded:
            raise ValueError("--shard.total: not available with --demo")
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    web_config = read_web_config(args.web_config_file)
    if isinstance(web_config, int):
        return web_config
    ssl_context = web_config.tls.context() if web_config and web_config.tls else None
    if args.demo:
        from exporter.demo import run_demo

        return run_demo(host, port, args.telemetry_path, web_config, ssl_context)
    try:
        # Bounded: a regular file of at most 1 MiB, read within 10 s (exporter.filesafe).
        config = load_config(args.config_file, os.environ)
    except ConfigError as err:
        # One line per problem, each naming its key path (file-level ones name the file).
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return 1
    if args.check_config:
        print(f"{args.config_file}: configuration is valid")
        for line in load_plan(config, shard):
            print(f"  {line}")
        return 0
    return run(config, args, host, port, web_config, ssl_context, shard)


def read_web_config(path: str | None) -> WebConfig | int | None:
    """The --web.config.file settings, or the exit code after printing its problems."""
    if not path:
        return None
    try:
        return load_web_config(path)
    except ConfigError as err:
        file_prefix = f"{path}: "
        for problem in err.problems:
            # Problems with a key get the file's name; those with the file have it.
            prefix = "" if problem.startswith(file_prefix) else file_prefix
            print(f"{prefix}{problem}", file=sys.stderr)
        return 1


def run(
    config: Config,
    args: argparse.Namespace,
    host: str | None,
    port: int,
    web_config: WebConfig | None,
    ssl_context: ssl.SSLContext | None,
    shard: Shard,
) -> int:
    """Serves until SIGTERM or SIGINT; SIGHUP reloads the configuration file."""
    for warning in config.warnings:
        log.warning("%s", warning)
    log.info("starting aliyun-rds-backup-exporter %s", __version__)
    if shard.sharded:
        log.info("shard %s: polling only the instances whose id hashes to it", shard)
    exporter = Exporter(
        config, telemetry_path=args.telemetry_path, web_config=web_config, shard=shard
    )
    try:
        asyncio.run(
            serve(
                exporter,
                host,
                port,
                ssl_context,
                load=lambda: load_config(args.config_file, os.environ),
            )
        )
    except OSError as err:
        log.error("cannot serve on %s: %s", args.listen, err.strerror or err)
        return 1
    return 0
