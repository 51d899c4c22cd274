"""``load_config`` and ``parse_config``: a file, or already-parsed YAML, in; one Config out.

The steps: read the YAML (:mod:`~exporter.config.yamlfile`), replace ``${VAR}`` references
(:mod:`~exporter.config.envvars`), read every section as :mod:`~exporter.config.schema`
declares it (cross-field checks included), and build the frozen dataclasses. Every problem
becomes one ``key.path: problem`` line, and all of them are raised together as a ConfigError.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from exporter.config import schema
from exporter.config.envvars import expand
from exporter.config.errors import ConfigError, Report, kind
from exporter.config.model import (
    AccountConfig,
    ApiConfig,
    Config,
    DiscoveryConfig,
    InstanceConfig,
    PollingConfig,
    StaticCredentials,
)
from exporter.config.sections import Values, read_keys, read_section
from exporter.config.yamlfile import load_yaml_file
from exporter.filesafe import READ_TIMEOUT, read_regular_file

_MAX_PROBLEMS = 100  # a broken megabyte can hold 500,000; the first ones are what helps


def load_config(
    path: str | os.PathLike[str],
    environ: Mapping[str, str],
    *,
    timeout: float = READ_TIMEOUT,
    read: Callable[[str, int], bytes] = read_regular_file,
) -> Config:
    """Read, parse and check the YAML file at ``path``; raise ConfigError with every problem
    (at most the first hundred, then how many more).

    Only a regular file of at most :data:`~exporter.filesafe.MAX_FILE_BYTES` is read, and the
    read is given up after ``timeout`` seconds (:func:`exporter.filesafe.read_bounded`;
    ``read`` is for tests).
    """
    name = os.fspath(path)
    data = load_yaml_file(name, timeout=timeout, read=read)
    try:
        return parse_config(data, environ, source=name)
    except ConfigError as err:
        if len(err.problems) <= _MAX_PROBLEMS:
            raise
        more = len(err.problems) - _MAX_PROBLEMS
        raise ConfigError(
            [*err.problems[:_MAX_PROBLEMS], f"{name}: {more} more problems not shown"]
        ) from None
    except RecursionError:
        raise ConfigError(f"{name}: nested too deeply") from None
    except (ValueError, OverflowError) as exc:  # e.g. a ${VAR} holding a 5,000-digit number
        raise ConfigError(f"{name}: cannot check a value ({type(exc).__name__})") from None


def parse_config(data: object, environ: Mapping[str, str], source: str = "config") -> Config:
    """Check already-parsed YAML data and build the Config; raise ConfigError with every problem.

    ``source`` names the whole document in the few messages that are about it (``config.yaml:
    must be a mapping, got a list``); every other message starts with its key path.
    """
    if data is None:
        raise ConfigError(
            f"{source}: is empty (expected a mapping with instances, discovery or accounts)"
        )
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: must be a mapping, got {kind(data)}")
    report = Report()
    config = _config(report, expand(data, environ, report))
    if report.problems or config is None:
        raise ConfigError(report.redacted() or [f"{source}: invalid"])
    return config


def _config(report: Report, data: object) -> Config | None:
    top = read_section(report, "", data, schema.TOP)
    if top is None:
        return None
    if "accounts" in top.given:
        entries = top.items("accounts") or []
        accounts = tuple(
            _account(entry.get("name", str) or f"#{index}", entry)
            for index, entry in enumerate(entries)
            if entry is not None
        )
    else:
        only = read_keys(report, "", top.given, schema.TOP_LEVEL_ACCOUNT)
        accounts = (_account("default", only),)
    api, polling = top.section("api"), top.section("polling")
    return Config(
        api=ApiConfig() if api is None else api.build(ApiConfig),
        polling=PollingConfig() if polling is None else polling.build(PollingConfig),
        accounts=accounts,
        warnings=tuple(report.warnings),
    )


def _account(name: str, account: Values) -> AccountConfig:
    instances = tuple(
        entry.build(InstanceConfig, account=name)
        for entry in account.items("instances") or []
        if entry is not None and "id" in entry.valid and "region" in entry.valid
    )
    discovery = tuple(
        entry.build(DiscoveryConfig, account=name)
        for entry in account.items("discovery") or []
        if entry is not None and "region" in entry.valid
    )
    return AccountConfig(
        name,
        _credentials(account.section("credentials")),
        instances,
        discovery,
        account.get("endpoint", str),
    )


def _credentials(credentials: Values | None) -> StaticCredentials | None:
    """Static keys; None for the default credential chain (or when the keys had a problem)."""
    if credentials is None:
        return None
    key_id = credentials.get("access_key_id", str)
    secret = credentials.get("access_key_secret", str)
    if not key_id or not secret:
        return None
    return StaticCredentials(key_id, secret, credentials.get("security_token", str) or None)
