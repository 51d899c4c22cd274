"""Command line: flags, logging, config, signals and exit codes."""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import sys
from collections.abc import Sequence

from prometheus_client import disable_created_metrics

from exporter import __version__
from exporter.config import Config, ConfigError, format_duration, load_config
from exporter.discovery import listing_filters
from exporter.httpserver import raise_open_files_limit
from exporter.logs import LEVELS, setup_logging
from exporter.poller import plan_windows, poll_range
from exporter.service import Exporter, poll_settings, serve
from exporter.sharding import Shard
from exporter.webconfig import WebConfig, load_web_config

log = logging.getLogger("exporter")

DEFAULT_LISTEN = ":9877"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aliyun-rds-backup-exporter",
        description="Prometheus exporter for the backup status of Alibaba Cloud RDS instances.",
    )
    parser.add_argument(
        "--config.file",
        dest="config_file",
        default="config.yaml",
        metavar="PATH",
        help="configuration file (default: %(default)s)",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help="address to serve /metrics on (default: %(default)s)",
    )
    parser.add_argument(
        "--web.telemetry-path",
        dest="telemetry_path",
        default="/metrics",
        metavar="PATH",
        help="path of the metrics endpoint (default: %(default)s)",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        default=None,
        metavar="PATH",
        help="TLS and basic auth settings, in the Prometheus exporter-toolkit format",
    )
    parser.add_argument(
        "--log.level",
        dest="log_level",
        default="info",
        choices=sorted(LEVELS),
        help="log level (default: %(default)s)",
    )
    parser.add_argument(
        "--log.format",
        dest="log_format",
        default="logfmt",
        choices=["logfmt", "json"],
        help="log format (default: %(default)s)",
    )
    parser.add_argument(
        "--shard.index",
        dest="shard_index",
        type=int,
        default=0,
        metavar="N",
        help="this replica's shard, from 0: it polls only the instances whose id hashes to it "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--shard.total",
        dest="shard_total",
        type=int,
        default=1,
        metavar="N",
        help="how many replicas split the fleet between them (default: %(default)s, no sharding)",
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate the configuration, print a summary and exit (0 = valid, 1 = invalid)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="run against the built-in simulated RDS API: no account or credentials needed",
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
    if path in ("/", "/-/healthy", "/-/ready"):
        raise ValueError(f"--web.telemetry-path: {path} is taken by another endpoint")


def summarize(config: Config, shard: Shard | None = None) -> list[str]:
    """What ``--check-config`` prints: the load this config puts on the API (this replica's
    share of it when sharded)."""
    polling = config.polling
    api = config.api
    instances = sum(1 for i in config.instances if shard is None or shard.owns(i.id))
    settings = poll_settings(config)
    start, end = poll_range(polling.lookback, None, settings)
    windows = len(plan_windows(start, end, polling.window))
    # A steady-state poll, planned the way the poller plans it (a later poll, one interval on).
    later = polling.lookback + polling.interval
    steady_windows = len(plan_windows(*poll_range(later, end, settings), polling.window))
    first_poll_calls = instances * windows
    steady_calls = instances * steady_windows  # one page per window at most backups a day
    capacity = api.rate_limit * polling.interval
    first_poll_seconds = first_poll_calls / api.rate_limit
    discovery = config.discovery
    lines = [
        f"accounts: {len(config.accounts)}",
        *(
            [
                f"shard: {shard.index} of {shard.total} (indexes 0..{shard.total - 1}): "
                f"{instances} of the {len(config.instances)} static instances, and about "
                f"1/{shard.total} of those discovery finds"
            ]
            if shard is not None and shard.sharded
            else []
        ),
        f"instances: {instances} static"
        + (
            f", discovery entries: {len(discovery)} (each instance found adds the same load "
            "as a static one)"
            if discovery
            else ""
        ),
        f"polling: every {format_duration(polling.interval)}, lookback "
        f"{format_duration(polling.lookback)}, window {format_duration(polling.window)}, "
        f"overlap {format_duration(polling.effective_overlap)}",
        f"first poll: {windows} window(s) per instance, at least {first_poll_calls} API calls, "
        f"about {format_duration(math.ceil(first_poll_calls / api.rate_limit))} at "
        f"{api.rate_limit:g} requests/s",
        f"steady state: {steady_windows} window(s) per instance per poll, about "
        f"{steady_calls} API calls per interval "
        f"({steady_calls / polling.interval:.2f}/s against a rate limit of {api.rate_limit:g}/s)",
    ]
    for entry in discovery:
        listings = len(listing_filters(entry))  # several tags: one listing per pair
        calls = (
            "one DescribeDBInstances call per 100 instances found"
            if listings == 1
            else f"{listings} DescribeDBInstances listings (one per tag), each one call per 100 "
            "instances it finds"
        )
        lines.append(
            f"discovery: account {entry.account}, region {entry.region}: {calls}, every "
            f"{format_duration(entry.refresh)}; vanished instances kept for "
            f"{format_duration(entry.grace)}"
        )
    if polling.policy_refresh > 0:
        lines.append(
            f"backup policy: one DescribeBackupPolicy call per instance every "
            f"{format_duration(max(polling.policy_refresh, polling.interval))} "
            f"({instances} calls for the static instances, "
            f"{instances / max(polling.policy_refresh, polling.interval):.3f}/s)"
        )
    else:
        lines.append("backup policy: not read (polling.policy_refresh is 0)")
    if steady_calls <= capacity < first_poll_calls:
        lines.append(
            f"note: the first poll of every instance takes about "
            f"{format_duration(math.ceil(first_poll_seconds))}, longer than one interval; "
            "/-/ready turns 200 when it is done"
        )
    if steady_calls > capacity:
        lines.append(
            f"warning: {steady_calls} calls per interval exceed what rate_limit allows "
            f"({capacity:g}); polls will fall behind the interval: raise api.rate_limit or "
            "polling.interval"
        )
    lines.extend(f"warning: {warning}" for warning in config.warnings)
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # *_created series add nothing our alerts or dashboards use, and double the output.
    disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in the library
    setup_logging(args.log_level, args.log_format)
    raise_open_files_limit()  # before any socket: clients, API calls and the log share it
    try:
        host, port = parse_listen_address(args.listen)
        check_telemetry_path(args.telemetry_path)
        shard = Shard(args.shard_index, args.shard_total)
        if args.demo and shard.sharded:
            raise ValueError("--shard.total: not available with --demo")
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    web_config: WebConfig | None = None
    if args.web_config_file:
        try:
            web_config = load_web_config(args.web_config_file)
        except ConfigError as err:
            file_prefix = f"{args.web_config_file}: "
            for problem in err.problems:
                # Problems with a key get the file's name; those with the file have it.
                prefix = "" if problem.startswith(file_prefix) else file_prefix
                print(f"{prefix}{problem}", file=sys.stderr)
            return 1
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
        for line in summarize(config, shard):
            print(f"  {line}")
        return 0
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
