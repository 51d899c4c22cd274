"""exporter.config: YAML + ${VAR} in, frozen dataclasses out, one line per problem."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.config import (
    AccountConfig,
    ApiConfig,
    Config,
    ConfigError,
    DiscoveryConfig,
    FrozenMap,
    InstanceConfig,
    PollingConfig,
    StaticCredentials,
    format_duration,
    load_config,
    parse_config,
    parse_duration,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.yaml"

# Real-looking keys: they must never show up in an error or a repr.
KEY_ID = "LTAI5tQ8mZr2vXkN7pW3hJcD"
SECRET = "Xk9fQ2mZ7pL3vR8sT1wY6nB4cD0eH5"
TOKEN = "CAIS9AF1q6Ft5B2yfSjIr5bSEsv3vK1T0qGMdlPZhWMNO+1ejZzCiDz2IHhMdHhvAe8b"
ENV = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID,
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
    "ALIBABA_CLOUD_SECURITY_TOKEN": TOKEN,
}
MINIMAL = "instances: [{id: rm-1, region: cn-hangzhou}]\n"
DURATION_HINT = "use e.g. 90s, 5m, 1h30m, 8d or a number of seconds"
URL = "must be an http(s) URL like https://rds.aliyuncs.com"
LABEL_NAME = "invalid label name (letters, digits and underscores, not starting with a digit)"
ENGINE = "must be one of MySQL, PostgreSQL, SQLServer or MariaDB"
NOT_WITH_ACCOUNTS = "(move them into an entry of accounts)"


def write(tmp_path: Path, text: str | bytes, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Config:
    return load_config(write(tmp_path, text), ENV if environ is None else environ)


def problems(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, environ)
    return info.value.problems


# ---------------------------------------------------------------------------------------------
# Valid files


def test_minimal_file_gets_every_default(tmp_path: Path) -> None:
    config = load(tmp_path, MINIMAL)
    assert config == Config(
        api=ApiConfig(endpoint=None, timeout=10.0, rate_limit=10.0, concurrency=8, retries=4),
        polling=PollingConfig(
            interval=300.0, lookback=691200.0, window=86400.0, overlap=None, page_size=100
        ),
        accounts=(
            AccountConfig(
                name="default",
                credentials=None,
                instances=(InstanceConfig("rm-1", "cn-hangzhou", "default"),),
                discovery=(),
            ),
        ),
        warnings=(),
    )
    assert config.polling.effective_overlap == 86400 - 300
    assert config.instances == config.accounts[0].instances


def test_every_key_set(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
api:
  endpoint: https://rds-vpc.cn-hangzhou.aliyuncs.com/
  timeout: 30s
  rate_limit: 2.5
  concurrency: 3
  retries: 0
credentials:
  access_key_id: ${ALIBABA_CLOUD_ACCESS_KEY_ID}
  access_key_secret: ${ALIBABA_CLOUD_ACCESS_KEY_SECRET}
  security_token: ${ALIBABA_CLOUD_SECURITY_TOKEN}
polling:
  interval: 10m
  lookback: 2w
  window: 12h
  overlap: 1h
  page_size: 50
instances:
  - id: rm-a
    region: cn-shanghai-finance-1
    labels: {team: payments, tier: 1, ratio: 0.5}
discovery:
  - region: ap-southeast-1
    engines: [mysql, POSTGRESQL, SqlServer, mariadb, MySQL]
    statuses: [running]
    instance_types: [primary, readonly, guard, temp]
    resource_group: rg-acfm2xxxxxxxx
    tags: {env: prod, cost-centre: 42}
    include_read_only: true
    refresh: 90s
    grace: 0
""",
    )
    assert config.api == ApiConfig("https://rds-vpc.cn-hangzhou.aliyuncs.com", 30.0, 2.5, 3, 0)
    assert config.polling == PollingConfig(600.0, 14 * 86400.0, 43200.0, 3600.0, 50)
    assert config.polling.effective_overlap == 3600.0
    (account,) = config.accounts
    assert account.credentials == StaticCredentials(KEY_ID, SECRET, TOKEN)
    assert account.instances == (
        InstanceConfig(
            "rm-a",
            "cn-shanghai-finance-1",
            "default",
            {"team": "payments", "tier": "1", "ratio": "0.5"},
        ),
    )
    assert account.discovery == (
        DiscoveryConfig(
            region="ap-southeast-1",
            account="default",
            engines=("MySQL", "PostgreSQL", "SQLServer", "MariaDB"),
            statuses=("Running",),
            instance_types=("Primary", "Readonly", "Guard", "Temp"),
            resource_group="rg-acfm2xxxxxxxx",
            tags={"env": "prod", "cost-centre": "42"},
            include_read_only=True,
            refresh=90.0,
            grace=0.0,
        ),
    )
    assert config.warnings == ()


def test_config_is_frozen_and_hashable(tmp_path: Path) -> None:
    config = load(tmp_path, "instances: [{id: rm-1, region: cn-hangzhou, labels: {a: b}}]\n")
    labels = config.instances[0].labels
    assert isinstance(labels, FrozenMap)
    assert labels == {"a": "b"}
    assert hash(config) == hash(
        load(tmp_path, "instances: [{id: rm-1, region: cn-hangzhou, labels: {a: b}}]\n")
    )
    with pytest.raises(AttributeError):
        config.polling.interval = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        labels["a"] = "c"  # type: ignore[index]


def test_null_values_mean_not_set(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "api:\npolling:\n  interval:\n  overlap:\ncredentials:\n" + MINIMAL,
    )
    assert config.api == ApiConfig()
    assert config.polling == PollingConfig()
    assert config.accounts[0].credentials is None


@pytest.mark.parametrize(
    ("endpoint", "normalised"),
    [
        ("https://rds.aliyuncs.com", "https://rds.aliyuncs.com"),
        ("https://rds.aliyuncs.com/", "https://rds.aliyuncs.com"),
        (" HTTPS://RDS.aliyuncs.com:443 ", "https://rds.aliyuncs.com:443"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:9000", "http://[::1]:9000"),
        ("https://rds.aliyuncs.com:", "https://rds.aliyuncs.com"),
        ("", None),
    ],
)
def test_endpoint_is_normalised(tmp_path: Path, endpoint: str, normalised: str | None) -> None:
    config = load(tmp_path, f"api: {{endpoint: '{endpoint}'}}\n" + MINIMAL)
    assert config.api.endpoint == normalised


def test_one_second_interval_is_accepted(tmp_path: Path) -> None:
    config = load(tmp_path, "polling: {interval: 1s, window: 1m, lookback: 1m}\n" + MINIMAL)
    assert config.polling.interval == 1.0
    assert config.polling.effective_overlap == 59.0
    assert len(config.warnings) == 1


def test_discovery_only_is_enough(tmp_path: Path) -> None:
    config = load(tmp_path, "discovery: [{region: cn-hangzhou}]\n")
    assert config.instances == ()
    assert config.discovery == (DiscoveryConfig(region="cn-hangzhou", account="default"),)


def test_accounts_shape(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
accounts:
  - name: prod
    credentials:
      access_key_id: ${ALIBABA_CLOUD_ACCESS_KEY_ID}
      access_key_secret: ${ALIBABA_CLOUD_ACCESS_KEY_SECRET}
    instances:
      - {id: rm-1, region: cn-hangzhou}
      - {id: rm-2, region: cn-hangzhou}
  - name: staging.eu_1
    instances: [{id: rm-3, region: eu-central-1}]
    discovery: [{region: eu-central-1, engines: [MySQL]}]
""",
    )
    assert [a.name for a in config.accounts] == ["prod", "staging.eu_1"]
    assert config.accounts[0].credentials == StaticCredentials(KEY_ID, SECRET)
    assert config.accounts[1].credentials is None
    assert [(i.id, i.account) for i in config.instances] == [
        ("rm-1", "prod"),
        ("rm-2", "prod"),
        ("rm-3", "staging.eu_1"),
    ]
    assert config.discovery == (
        DiscoveryConfig(region="eu-central-1", account="staging.eu_1", engines=("MySQL",)),
    )
    assert config.warnings == ()


# ---------------------------------------------------------------------------------------------
# Every rule, with its exact line

INVALID = [
    # shape
    (
        "polling: {intervall: 5m}\n" + MINIMAL,
        ["polling.intervall: unknown key (did you mean interval?)"],
    ),
    ("interval: 5m\n" + MINIMAL, ["interval: unknown key (did you mean polling.interval?)"]),
    ("instance: []\n" + MINIMAL, ["instance: unknown key (did you mean instances?)"]),
    ("scrape: {}\n" + MINIMAL, ["scrape: unknown key"]),
    ("api: [1]\n" + MINIMAL, ["api: must be a mapping, got a list"]),
    ("polling: 5m\n" + MINIMAL, ["polling: must be a mapping, got a string"]),
    ("api: {}\n", ["instances: no instances or discovery configured"]),
    ("instances: []\ndiscovery: []\n", ["instances: no instances or discovery configured"]),
    # api
    ("api: {rate_limit: true}\n" + MINIMAL, ["api.rate_limit: must be a number > 0, got true"]),
    ("api: {rate_limit: 0}\n" + MINIMAL, ["api.rate_limit: must be a number > 0, got 0"]),
    ("api: {rate_limit: fast}\n" + MINIMAL, ['api.rate_limit: must be a number > 0, got "fast"']),
    ("api: {rate_limit: .nan}\n" + MINIMAL, ["api.rate_limit: must be a number > 0, got nan"]),
    ("api: {timeout: 0}\n" + MINIMAL, ["api.timeout: must be a duration > 0, got 0s"]),
    ("api: {timeout: -1}\n" + MINIMAL, ["api.timeout: must not be negative, got -1"]),
    (
        "api: {timeout: 5 min}\n" + MINIMAL,
        [f'api.timeout: invalid duration "5 min" ({DURATION_HINT})'],
    ),
    (
        "api: {timeout: [1]}\n" + MINIMAL,
        [f"api.timeout: must be a duration ({DURATION_HINT}), got a list"],
    ),
    ("api: {concurrency: 0}\n" + MINIMAL, ["api.concurrency: must be an integer >= 1, got 0"]),
    ("api: {concurrency: 2.5}\n" + MINIMAL, ["api.concurrency: must be an integer >= 1, got 2.5"]),
    (
        "api: {concurrency: false}\n" + MINIMAL,
        ["api.concurrency: must be an integer >= 1, got false"],
    ),
    ("api: {retries: -1}\n" + MINIMAL, ["api.retries: must be an integer >= 0, got -1"]),
    (
        "api: {endpoint: 'ftp://rds.aliyuncs.com'}\n" + MINIMAL,
        [f'api.endpoint: {URL}, got "ftp://rds.aliyuncs.com"'],
    ),
    (
        "api: {endpoint: rds.aliyuncs.com}\n" + MINIMAL,
        [f'api.endpoint: {URL}, got "rds.aliyuncs.com"'],
    ),
    (
        "api: {endpoint: 'https://rds.aliyuncs.com/api'}\n" + MINIMAL,
        [
            'api.endpoint: must be scheme://host[:port] with no path or query, got "https://rds.aliyuncs.com/api"'
        ],
    ),
    (
        "api: {endpoint: 'https://rds.aliyuncs.com?x=1'}\n" + MINIMAL,
        [
            'api.endpoint: must be scheme://host[:port] with no path or query, got "https://rds.aliyuncs.com?x=1"'
        ],
    ),
    (
        "api: {endpoint: 'http://127.0.0.1:99999'}\n" + MINIMAL,
        ['api.endpoint: invalid port in "http://127.0.0.1:99999"'],
    ),
    (
        "api: {endpoint: 'https://me:hunter2@rds.aliyuncs.com'}\n" + MINIMAL,
        ["api.endpoint: must not contain a user name or password"],
    ),
    ("api: {endpoint: 8080}\n" + MINIMAL, ["api.endpoint: must be a string, got a number"]),
    # polling
    ("polling: {interval: 0}\n" + MINIMAL, ["polling.interval: must be at least 1s, got 0s"]),
    (
        "polling: {interval: 500ms}\n" + MINIMAL,
        ["polling.interval: must be at least 1s, got 500ms"],
    ),
    ("polling: {window: 30s}\n" + MINIMAL, ["polling.window: must be at least 1m, got 30s"]),
    (
        "polling: {window: 90s}\n" + MINIMAL,
        [
            "polling.window: must be a whole number of minutes "
            "(API times have minute precision), got 1m30s"
        ],
    ),
    (
        "polling: {lookback: 12h}\n" + MINIMAL,
        ["polling.lookback: must be at least polling.window (1d), got 12h"],
    ),
    (
        "polling: {window: 2d, lookback: 1d}\n" + MINIMAL,
        ["polling.lookback: must be at least polling.window (2d), got 1d"],
    ),
    (
        "polling: {overlap: 1d}\n" + MINIMAL,
        ["polling.overlap: must be less than polling.window (1d), got 1d"],
    ),
    ("polling: {overlap: -5}\n" + MINIMAL, ["polling.overlap: must not be negative, got -5"]),
    ("polling: {page_size: 20}\n" + MINIMAL, ["polling.page_size: must be 30, 50 or 100, got 20"]),
    (
        "polling: {page_size: '100x'}\n" + MINIMAL,
        ['polling.page_size: must be 30, 50 or 100, got "100x"'],
    ),
    # instances
    ("instances: {id: rm-1}\n", ["instances: must be a list, got a mapping"]),
    ("instances: [rm-1]\n", ["instances[0]: must be a mapping, got a string"]),
    ("instances: [null]\n", ["instances[0]: must be a mapping, got null"]),
    ("instances: [{region: cn-hangzhou}]\n", ["instances[0].id: required"]),
    ("instances: [{id: rm-1}]\n", ["instances[0].region: required"]),
    ("instances: [{id: '', region: cn-hangzhou}]\n", ["instances[0].id: must not be empty"]),
    (
        "instances: [{id: 'rm 1', region: cn-hangzhou}]\n",
        ['instances[0].id: must not contain whitespace, got "rm 1"'],
    ),
    (
        "instances: [{id: 42, region: cn-hangzhou}]\n",
        ["instances[0].id: must be a string, got a number"],
    ),
    (
        "instances: [{id: rm-1, region: Hangzhou}]\n",
        ['instances[0].region: must be a region id like cn-hangzhou, got "Hangzhou"'],
    ),
    (
        "instances: [{id: rm-1, region: cn_hangzhou}]\n",
        ['instances[0].region: must be a region id like cn-hangzhou, got "cn_hangzhou"'],
    ),
    (
        "instances: [{id: rm-1, regin: cn-hangzhou}]\n",
        [
            "instances[0].regin: unknown key (did you mean region?)",
            "instances[0].region: required",
        ],
    ),
    (
        "instances:\n"
        "  - {id: rm-1, region: cn-hangzhou}\n"
        "  - {id: rm-2, region: cn-hangzhou}\n"
        "  - {id: rm-1, region: cn-beijing}\n",
        ["instances[2].id: duplicate of instances[0]"],
    ),
    (
        "instances: [{id: rm-1, region: cn-hangzhou, labels: [a]}]\n",
        ["instances[0].labels: must be a mapping, got a list"],
    ),
    (
        "instances: [{id: rm-1, region: cn-hangzhou, labels: {region_id: x}}]\n",
        ["instances[0].labels.region_id: reserved (the exporter sets this label itself)"],
    ),
    (
        "instances: [{id: rm-1, region: cn-hangzhou, labels: {instance: x}}]\n",
        ["instances[0].labels.instance: reserved (the exporter sets this label itself)"],
    ),
    (
        "instances: [{id: rm-1, region: cn-hangzhou, labels: {1team: x}}]\n",
        [f"instances[0].labels.1team: {LABEL_NAME}"],
    ),
    (
        "instances: [{id: rm-1, region: cn-hangzhou, labels: {'team name': x}}]\n",
        [f'instances[0].labels["team name"]: {LABEL_NAME}'],
    ),
    (
        "instances: [{id: rm-1, region: cn-hangzhou, labels: {__meta: x}}]\n",
        ["instances[0].labels.__meta: invalid label name (names starting with __ are reserved)"],
    ),
    (
        "instances: [{id: rm-1, region: cn-hangzhou, labels: {team: [a]}}]\n",
        ["instances[0].labels.team: must be a string, got a list"],
    ),
    (
        "instances: [{id: rm-1, region: cn-hangzhou, labels: {critical: yes}}]\n",
        ["instances[0].labels.critical: must be a string, got a boolean"],
    ),
    # discovery
    ("discovery: [{engines: [MySQL]}]\n", ["discovery[0].region: required"]),
    (
        "discovery: [{region: cn-hangzhou, engines: [MySQL, Oracle]}]\n",
        [f'discovery[0].engines[1]: {ENGINE}, got "Oracle"'],
    ),
    (
        "discovery: [{region: cn-hangzhou, engines: MySQL}]\n",
        ["discovery[0].engines: must be a list, got a string"],
    ),
    (
        "discovery: [{region: cn-hangzhou, instance_types: [Master]}]\n",
        [
            "discovery[0].instance_types[0]: must be one of Primary, Readonly, Guard or Temp, "
            'got "Master"'
        ],
    ),
    (
        "discovery: [{region: cn-hangzhou, instance_types: [Primary, readonly]}]\n",
        [
            "discovery[0].instance_types: lists Readonly, but read-only instances are skipped "
            "unless include_read_only is true"
        ],
    ),
    (
        "discovery: [{region: cn-hangzhou, statuses: [1]}]\n",
        ["discovery[0].statuses[0]: must be an instance status such as Running, got 1"],
    ),
    (
        "discovery: [{region: cn-hangzhou, tags: {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6}}]\n",
        ["discovery[0].tags: at most 5 tags are allowed (the API's limit), got 6"],
    ),
    (
        "discovery: [{region: cn-hangzhou, tags: {'': x}}]\n",
        ['discovery[0].tags[""]: tag keys must not be empty'],
    ),
    (
        "discovery: [{region: cn-hangzhou, tags: [env]}]\n",
        ["discovery[0].tags: must be a mapping, got a list"],
    ),
    (
        "discovery: [{region: cn-hangzhou, include_read_only: maybe}]\n",
        ['discovery[0].include_read_only: must be true or false, got "maybe"'],
    ),
    (
        "discovery: [{region: cn-hangzhou, refresh: 0}]\n",
        ["discovery[0].refresh: must be at least 1s, got 0s"],
    ),
    (
        "discovery: [{region: cn-hangzhou, grace: -1}]\n",
        ["discovery[0].grace: must not be negative, got -1"],
    ),
    (
        "discovery: [{region: cn-hangzhou, resource_group: ''}]\n",
        ["discovery[0].resource_group: must not be empty"],
    ),
    (
        "discovery: [{region: cn-hangzhou, engine: [MySQL]}]\n",
        ["discovery[0].engine: unknown key (did you mean engines?)"],
    ),
    # credentials
    ("credentials: {access_key_id: x}\n" + MINIMAL, ["credentials.access_key_secret: required"]),
    (
        "credentials: {}\n" + MINIMAL,
        ["credentials.access_key_id: required", "credentials.access_key_secret: required"],
    ),
    (
        "credentials: {access_key_id: 123, access_key_secret: x}\n" + MINIMAL,
        ["credentials.access_key_id: must be a string, got a number"],
    ),
    (
        "credentials: {access_key_id: ' ', access_key_secret: x}\n" + MINIMAL,
        ["credentials.access_key_id: must not be empty"],
    ),
    (
        "credentials: {access_key: x, access_key_id: x, access_key_secret: x}\n" + MINIMAL,
        ["credentials.access_key: unknown key (did you mean access_key_id?)"],
    ),
    ("credentials: [x]\n" + MINIMAL, ["credentials: must be a mapping, got a list"]),
    # accounts
    (
        "accounts: [{name: a, instances: [{id: rm-2, region: cn-hangzhou}]}]\n" + MINIMAL,
        [f"accounts: cannot be combined with top-level instances {NOT_WITH_ACCOUNTS}"],
    ),
    (
        "credentials: {access_key_id: x, access_key_secret: y}\ndiscovery: []\n"
        "accounts: [{name: a, instances: [{id: rm-2, region: cn-hangzhou}]}]\n",
        [f"accounts: cannot be combined with top-level credentials, discovery {NOT_WITH_ACCOUNTS}"],
    ),
    ("accounts: []\n", ["accounts: must list at least one account"]),
    ("accounts: {a: 1}\n", ["accounts: must be a list, got a mapping"]),
    (
        "accounts: [{instances: [{id: rm-1, region: cn-hangzhou}]}]\n",
        ["accounts[0].name: required"],
    ),
    (
        "accounts: [{name: 'a b', instances: [{id: rm-1, region: cn-hangzhou}]}]\n",
        ["accounts[0].name: must be letters, digits, '_', '.' or '-' only, got \"a b\""],
    ),
    ("accounts: [{name: a}]\n", ["accounts[0]: no instances or discovery configured"]),
    (
        "accounts:\n"
        "  - {name: a, instances: [{id: rm-1, region: cn-hangzhou}]}\n"
        "  - {name: a, discovery: [{region: cn-hangzhou}]}\n",
        ["accounts[1].name: duplicate of accounts[0]"],
    ),
    (
        "accounts:\n"
        "  - name: a\n"
        "    instances: [{id: rm-0, region: cn-hangzhou}, {id: rm-1, region: cn-hangzhou}]\n"
        "  - {name: b, instances: [{id: rm-1, region: cn-beijing}]}\n",
        ["accounts[1].instances[0].id: duplicate of accounts[0].instances[1]"],
    ),
    (
        "accounts: [{name: a, instances: [{id: rm-1, region: cn-hangzhou}], credential: {}}]\n",
        ["accounts[0].credential: unknown key (did you mean credentials?)"],
    ),
]


@pytest.mark.parametrize(("text", "expected"), INVALID, ids=[e[0] for _, e in INVALID])
def test_each_rule_reports_its_line(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert problems(tmp_path, text) == expected


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = """
api:
  rate_limit: true
  timeout: 0
polling:
  intervall: 5m
  window: 30s
credentials:
  access_key_id: ${ALIBABA_CLOUD_ACCESS_KEY_ID}
  access_key_secret: ${ALIBABA_KEY}
instances:
  - id: rm-1
    region: cn-hangzhou
  - region: cn-hangzhou
  - id: rm-1
    region: Hangzhou
discovery:
  - region: cn-hangzhou
    engines: [Oracle]
"""
    assert problems(tmp_path, text) == [
        "credentials.access_key_secret: environment variable ALIBABA_KEY is not set",
        "api.timeout: must be a duration > 0, got 0s",
        "api.rate_limit: must be a number > 0, got true",
        "polling.intervall: unknown key (did you mean interval?)",
        "polling.window: must be at least 1m, got 30s",
        "instances[1].id: required",
        "instances[2].id: duplicate of instances[0]",
        'instances[2].region: must be a region id like cn-hangzhou, got "Hangzhou"',
        f'discovery[0].engines[0]: {ENGINE}, got "Oracle"',
    ]


def test_config_error_joins_problems_with_newlines() -> None:
    err = ConfigError(["a: one", "b: two", "a: one"])
    assert err.problems == ["a: one", "b: two"]
    assert str(err) == "a: one\nb: two"
    assert ConfigError("x: y").problems == ["x: y"]


# ---------------------------------------------------------------------------------------------
# ${VAR}


def test_interpolation_everywhere_in_strings(tmp_path: Path) -> None:
    environ = {
        "ID": "rm-env",
        "REGION": "cn-beijing",
        "A": "pay",
        "B": "ments",
        "ENGINE": "postgresql",
        "RATE": "2.5",
        "CONC": "3",
        "RO": "true",
        "WINDOW": "2h",
        "EMPTY": "",
    }
    config = load(
        tmp_path,
        """
api: {rate_limit: "${RATE}", concurrency: "${CONC}", endpoint: "${EMPTY}"}
polling: {window: "${WINDOW}"}
instances:
  - id: ${ID}
    region: ${REGION}
    labels: {team: "${A}-${B}", price: "$${A} and $$ and $${B}"}
discovery:
  - region: cn-hangzhou
    engines: [MySQL, "${ENGINE}"]
    include_read_only: ${RO}
""",
        environ,
    )
    assert config.api.rate_limit == 2.5
    assert config.api.concurrency == 3
    assert config.api.endpoint is None
    assert config.polling.window == 7200.0
    (instance,) = config.instances
    assert (instance.id, instance.region) == ("rm-env", "cn-beijing")
    assert dict(instance.labels) == {"team": "pay-ments", "price": "${A} and $$ and ${B}"}
    assert config.discovery[0].engines == ("MySQL", "PostgreSQL")
    assert config.discovery[0].include_read_only is True


def test_missing_variables_name_path_and_variable(tmp_path: Path) -> None:
    text = """
instances:
  - id: ${ID}
    region: cn-hangzhou
    labels: {team: "${A}-${B}-${A}"}
discovery:
  - region: cn-hangzhou
    engines: [MySQL, "${ENGINE}"]
"""
    assert problems(tmp_path, text, {"A": "x"}) == [
        "instances[0].id: environment variable ID is not set",
        "instances[0].labels.team: environment variable B is not set",
        "discovery[0].engines[1]: environment variable ENGINE is not set",
    ]


def test_keys_are_not_interpolated(tmp_path: Path) -> None:
    assert problems(
        tmp_path, 'instances: [{id: rm-1, region: cn-hangzhou, labels: {"${K}": v}}]\n', {"K": "k"}
    ) == [f'instances[0].labels["${{K}}"]: {LABEL_NAME}']


def test_malformed_reference(tmp_path: Path) -> None:
    line = "invalid ${...} reference (write ${NAME}, or $${ for a literal ${)"
    assert problems(tmp_path, "instances: [{id: 'rm-${1X}', region: cn-hangzhou}]\n") == [
        f"instances[0].id: {line}"
    ]
    assert problems(tmp_path, "instances: [{id: 'rm-${ID', region: cn-hangzhou}]\n") == [
        f"instances[0].id: {line}"
    ]


def test_empty_security_token_means_none(tmp_path: Path) -> None:
    text = (
        "credentials:\n"
        "  access_key_id: ${ALIBABA_CLOUD_ACCESS_KEY_ID}\n"
        "  access_key_secret: ' ${ALIBABA_CLOUD_ACCESS_KEY_SECRET}\n'\n"
        "  security_token: ${ALIBABA_CLOUD_SECURITY_TOKEN}\n" + MINIMAL
    )
    config = load(tmp_path, text, {**ENV, "ALIBABA_CLOUD_SECURITY_TOKEN": "  "})
    assert config.accounts[0].credentials == StaticCredentials(KEY_ID, SECRET, None)


# ---------------------------------------------------------------------------------------------
# Secrets


def test_secrets_never_in_errors(tmp_path: Path) -> None:
    cases = [
        # a secret with whitespace inside it
        (
            "credentials: {access_key_id: x, access_key_secret: '${S}'}\n" + MINIMAL,
            {"S": SECRET[:10] + " " + SECRET[10:]},
        ),
        # a bad reference inside a literal secret
        (f"credentials: {{access_key_id: x, access_key_secret: '{SECRET}${{'}}\n" + MINIMAL, {}),
        # a number where a secret goes
        ("credentials: {access_key_id: x, access_key_secret: 1234567890123}\n" + MINIMAL, {}),
        # a misspelt key holding the secret
        (f"credentials: {{access_key_id: x, acces_key_secret: {SECRET}}}\n" + MINIMAL, {}),
        # YAML syntax error on the secret's line
        (f"credentials:\n  access_key_id: x\n  access_key_secret: {SECRET}: oops\n" + MINIMAL, {}),
        (f"credentials:\n  access_key_id: x\n  access_key_secret: '{SECRET}\n" + MINIMAL, {}),
        # a password in the endpoint
        (f"api: {{endpoint: 'https://u:{SECRET}@rds.aliyuncs.com'}}\n" + MINIMAL, {}),
    ]
    for text, environ in cases:
        with pytest.raises(ConfigError) as info:
            load(tmp_path, text, environ)
        assert info.value.problems
        assert SECRET not in str(info.value)
        assert SECRET[:10] not in str(info.value)
        assert "1234567890123" not in str(info.value)


def test_secrets_never_in_repr(tmp_path: Path) -> None:
    text = (
        "credentials:\n"
        "  access_key_id: ${ALIBABA_CLOUD_ACCESS_KEY_ID}\n"
        "  access_key_secret: ${ALIBABA_CLOUD_ACCESS_KEY_SECRET}\n"
        "  security_token: ${ALIBABA_CLOUD_SECURITY_TOKEN}\n" + MINIMAL
    )
    config = load(tmp_path, text)
    credentials = config.accounts[0].credentials
    assert credentials is not None and credentials.access_key_secret == SECRET
    for rendered in (repr(config), str(config), repr(credentials), str(config.accounts)):
        assert SECRET not in rendered
        assert TOKEN not in rendered


# ---------------------------------------------------------------------------------------------
# Warnings


@pytest.mark.parametrize(
    ("text", "warnings"),
    [
        (
            "polling: {interval: 30s}\n" + MINIMAL,
            (
                "polling.interval: 30s is under one minute; fine for tests and demos, "
                "but in production it spends API quota for no gain",
            ),
        ),
        (
            "polling: {interval: 2h, window: 1h}\n" + MINIMAL,
            (
                "polling.overlap: defaults to 0s because polling.interval (2h) is not shorter "
                "than polling.window (1h); a backup still running at one poll may never be seen "
                "finishing",
            ),
        ),
        ("polling: {interval: 2h, window: 1h, overlap: 30m}\n" + MINIMAL, ()),
        (
            "discovery: [{region: cn-hangzhou, statuses: [Runing]}]\n",
            (
                'discovery[0].statuses[0]: "Runing" is not a known instance status; '
                "it is passed to DescribeDBInstances as written",
            ),
        ),
        (
            "accounts:\n"
            "  - {name: a, instances: [{id: rm-1, region: cn-hangzhou}]}\n"
            "  - {name: b, instances: [{id: rm-2, region: cn-hangzhou}]}\n",
            (
                "accounts[1].credentials: not set, so this account uses the default credential "
                "chain, like accounts[0]: both are the same account",
            ),
        ),
    ],
)
def test_warnings(tmp_path: Path, text: str, warnings: tuple[str, ...]) -> None:
    assert load(tmp_path, text).warnings == warnings


def test_unknown_status_is_kept(tmp_path: Path) -> None:
    config = load(tmp_path, "discovery: [{region: cn-hangzhou, statuses: [Runing, running]}]\n")
    assert config.discovery[0].statuses == ("Runing", "Running")


# ---------------------------------------------------------------------------------------------
# Polling overlap


@pytest.mark.parametrize(
    ("polling", "expected"),
    [
        (PollingConfig(), 86400.0 - 300.0),
        (PollingConfig(interval=60, window=3600), 3540.0),
        (PollingConfig(interval=3600, window=3600), 0.0),
        (PollingConfig(interval=7200, window=3600), 0.0),
        (PollingConfig(interval=7200, window=3600, overlap=600), 600.0),
        (PollingConfig(overlap=0), 0.0),
        (PollingConfig(overlap=-5), 0.0),
    ],
)
def test_effective_overlap(polling: PollingConfig, expected: float) -> None:
    assert polling.effective_overlap == expected


# ---------------------------------------------------------------------------------------------
# Durations


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("90s", 90.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("8d", 691200.0),
        ("1w", 604800.0),
        ("1y", 365 * 86400.0),
        ("500ms", 0.5),
        ("1m30s500ms", 90.5),
        ("1d12h", 129600.0),
        ("0", 0.0),
        ("0s", 0.0),
        (" 5m ", 300.0),
        ("300", 300.0),
        ("2.5", 2.5),
        (90, 90.0),
        (1.5, 1.5),
        (0, 0.0),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5 min", f'invalid duration "5 min" ({DURATION_HINT})'),
        ("", f'invalid duration "" ({DURATION_HINT})'),
        ("1h1d", f'invalid duration "1h1d" ({DURATION_HINT})'),
        ("5M", f'invalid duration "5M" ({DURATION_HINT})'),
        ("1.5h", f'invalid duration "1.5h" ({DURATION_HINT})'),
        ("-5m", f'invalid duration "-5m" ({DURATION_HINT})'),
        ("5m5m", f'invalid duration "5m5m" ({DURATION_HINT})'),
        (-1, "must not be negative, got -1"),
        ("-1", 'must not be negative, got "-1"'),
        (True, f"must be a duration ({DURATION_HINT}), got true"),
        (None, f"must be a duration ({DURATION_HINT}), got null"),
        ([1], f"must be a duration ({DURATION_HINT}), got a list"),
        (math.nan, f"must be a duration ({DURATION_HINT}), got nan"),
        (math.inf, "duration inf is too long"),
        ("99999999999y", 'duration "99999999999y" is too long'),
    ],
)
def test_parse_duration_rejects(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.5, "500ms"),
        (1, "1s"),
        (90, "1m30s"),
        (300, "5m"),
        (5400, "1h30m"),
        (86400, "1d"),
        (604800, "7d"),
        (691200, "8d"),
        (90061.5, "1d1h1m1s500ms"),
        (-300, "-5m"),
        (math.inf, "inf"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@settings(derandomize=True, database=None, max_examples=300)
@given(st.integers(min_value=0, max_value=10**13))
def test_format_then_parse_round_trips(ms: int) -> None:
    assert parse_duration(format_duration(ms / 1000)) == ms / 1000


# ---------------------------------------------------------------------------------------------
# The file itself


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV)
    assert info.value.problems == [f"{path}: cannot read: No such file or directory"]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, ENV)  # a directory
    assert info.value.problems == [f"{tmp_path}: cannot read: Is a directory"]


def test_not_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, b"instances: []\n# caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV)
    assert info.value.problems == [f"{path}: line 2: invalid YAML: not UTF-8 text"]


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV)
    assert info.value.problems == [
        f"{path}: is empty (expected a mapping with instances, discovery or accounts)"
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("- a\n- b\n", "must be a mapping, got a list"),
        ("just text\n", "must be a mapping, got a string"),
        ("42\n", "must be a mapping, got a number"),
    ],
)
def test_top_level_not_a_mapping(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV)
    assert info.value.problems == [f"{path}: {problem}"]


def test_parse_config_names_its_source() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config([], ENV)
    assert info.value.problems == ["config: must be a mapping, got a list"]
    with pytest.raises(ConfigError) as info:
        parse_config(None, ENV, source="x.yaml")
    assert info.value.problems == [
        "x.yaml: is empty (expected a mapping with instances, discovery or accounts)"
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "polling:\n  interval: 5m\n  window: 1d: x\n",
            "line 3, column 13: invalid YAML: mapping values are not allowed here",
        ),
        (
            "polling:\n  interval: 5m\n interval: 10m\n",
            "line 3, column 2: invalid YAML: while parsing a block mapping (line 1): "
            "expected <block end>, but found '<block mapping start>'",
        ),
        (
            "instances: [{id: rm-1\n",
            "line 2, column 1: invalid YAML: while parsing a flow mapping (line 1): "
            "expected ',' or '}', but got '<stream end>'",
        ),
        (
            "polling:\n  interval: 5m\n  interval: 10m\n",
            'line 3, column 3: invalid YAML: duplicate key "interval" (first on line 2)',
        ),
        (
            "a: 1\n---\nb: 2\n",
            "line 2, column 1: invalid YAML: expected a single document in the stream (line 1): "
            "but found another document",
        ),
        ("a: \x07\n", "line 1, column 4: invalid YAML: control character #x0007 is not allowed"),
    ],
)
def test_yaml_errors_name_line_and_column(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, ENV)
    assert info.value.problems == [f"{path}: {problem}"]


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    text = (
        "base: &base {region: cn-hangzhou}\n"
        "instances:\n"
        "  - {<<: *base, id: rm-1}\n"
        "  - {<<: *base, id: rm-2, region: cn-beijing}\n"
    )
    # `base` is not a known key, so this reports exactly that, and nothing about merges.
    assert problems(tmp_path, text) == ["base: unknown key"]


# ---------------------------------------------------------------------------------------------
# The shipped example


def test_example_file_loads() -> None:
    config = load_config(
        EXAMPLE,
        {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
        },
    )
    assert config.warnings == ()
    assert config.api == ApiConfig()
    assert config.polling == PollingConfig()
    (account,) = config.accounts
    assert account.credentials == StaticCredentials(KEY_ID, SECRET)
    assert [i.id for i in config.instances] == ["rm-uf6wjk5xxxxxxxx", "pgm-bp1xxxxxxxxxxxxx"]
    assert dict(config.instances[0].labels) == {"team": "payments", "tier": "1", "dr": "required"}
    assert config.discovery == ()  # optional: shown commented out
    assert config.polling.policy_refresh == 6 * 3600.0


def test_example_discovery_block_is_valid() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    start = text.index("# discovery:")
    block = text[start : text.index("\n\n", start)]
    uncommented = "\n".join(line[2:] for line in block.splitlines())
    data = yaml.safe_load(uncommented)
    config = parse_config({"instances": [], **data}, {})
    assert config.discovery[0].engines == ("MySQL", "PostgreSQL")
    assert dict(config.discovery[0].tags) == {"env": "prod"}


def test_example_file_needs_its_variables() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(EXAMPLE, {})
    assert info.value.problems == [
        "credentials.access_key_id: environment variable ALIBABA_CLOUD_ACCESS_KEY_ID is not set",
        "credentials.access_key_secret: "
        "environment variable ALIBABA_CLOUD_ACCESS_KEY_SECRET is not set",
    ]


def test_example_multi_account_block_loads() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    block = text[text.index("# accounts:") :]
    uncommented = "\n".join(re.sub(r"^# ?", "", line) for line in block.splitlines())
    data = yaml.safe_load(uncommented)
    variables = [
        "PROD_ACCESS_KEY_ID",
        "PROD_ACCESS_KEY_SECRET",
        "STAGING_ACCESS_KEY_ID",
        "STAGING_ACCESS_KEY_SECRET",
    ]
    config = parse_config(data, dict.fromkeys(variables, "k"))
    assert [a.name for a in config.accounts] == ["production", "staging"]
    assert len(config.instances) == 2


def test_example_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    keys = [
        "api", "endpoint", "timeout", "rate_limit", "concurrency", "retries",
        "credentials", "access_key_id", "access_key_secret", "security_token",
        "polling", "interval", "lookback", "window", "overlap", "page_size", "policy_refresh",
        "instances", "id", "region", "labels",
        "discovery", "engines", "statuses", "instance_types", "resource_group", "tags",
        "include_read_only", "refresh", "grace",
        "accounts", "name",
    ]  # fmt: skip
    for key in keys:
        assert re.search(rf"^[#\s-]*{key}:", text, re.MULTILINE), key


# ---------------------------------------------------------------------------------------------
# Robustness: any YAML-shaped input gives a Config or a ConfigError, nothing else

_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 200000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "5m", "cn-hangzhou", "rm-1", "MySQL", "${X}", "${", "a b", "https://h"]),
)
_keys = st.sampled_from(
    ["api", "polling", "instances", "discovery", "accounts", "credentials", "id", "region",
     "labels", "name", "engines", "tags", "interval", "window", "timeout", "endpoint", "x"]
)  # fmt: skip
_trees = st.recursive(
    _leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=25,
)


@pytest.mark.slow
@settings(derandomize=True, database=None, max_examples=250, deadline=None)
@given(st.dictionaries(_keys, _trees, max_size=6))
def test_arbitrary_input_never_crashes(data: dict[str, object]) -> None:
    try:
        config = parse_config(data, {"X": "rm-x"})
    except ConfigError as err:
        assert err.problems
        assert all(": " in line for line in err.problems)
    else:
        assert config.instances or config.discovery


# ---------------------------------------------------------------------------------------------
# Backup policy refresh and per-account endpoints


def test_policy_refresh_and_account_endpoints(tmp_path: Path) -> None:
    assert load(tmp_path, MINIMAL).polling.policy_refresh == 6 * 3600.0
    assert load(tmp_path, "polling: {policy_refresh: 12h}\n" + MINIMAL).polling.policy_refresh == (
        12 * 3600.0
    )
    assert load(tmp_path, "polling: {policy_refresh: 0}\n" + MINIMAL).polling.policy_refresh == 0
    config = load(
        tmp_path,
        "api: {endpoint: 'https://rds.aliyuncs.com'}\n"
        "accounts:\n"
        "  - {name: a, instances: [{id: rm-1, region: cn-hangzhou}]}\n"
        "  - name: b\n"
        "    endpoint: https://rds-vpc.cn-shanghai.aliyuncs.com/\n"
        "    credentials: {access_key_id: x, access_key_secret: y}\n"
        "    discovery: [{region: cn-shanghai}]\n",
    )
    assert [a.endpoint for a in config.accounts] == [
        None,
        "https://rds-vpc.cn-shanghai.aliyuncs.com",
    ]
    assert config.api.endpoint == "https://rds.aliyuncs.com"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "polling: {policy_refresh: 500ms}\n" + MINIMAL,
            ["polling.policy_refresh: must be 0 (off) or at least 1s, got 500ms"],
        ),
        (
            "polling: {policy_refresh: -1}\n" + MINIMAL,
            ["polling.policy_refresh: must not be negative, got -1"],
        ),
        (
            "policy_refresh: 6h\n" + MINIMAL,
            ["policy_refresh: unknown key (did you mean polling.policy_refresh?)"],
        ),
        (
            "accounts: [{name: a, endpoint: 'ftp://x', instances: [{id: rm-1, region: cn-x}]}]\n",
            [
                "accounts[0].endpoint: must be an http(s) URL like https://rds.aliyuncs.com, "
                'got "ftp://x"'
            ],
        ),
        (
            "endpoint: https://rds.aliyuncs.com\n" + MINIMAL,
            ["endpoint: unknown key (did you mean api.endpoint?)"],
        ),
    ],
)
def test_policy_refresh_and_endpoint_rules(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert problems(tmp_path, text) == expected


def test_policy_refresh_shorter_than_the_interval_warns(tmp_path: Path) -> None:
    config = load(tmp_path, "polling: {interval: 10m, policy_refresh: 1m}\n" + MINIMAL)
    assert config.warnings == (
        "polling.policy_refresh: 1m is shorter than polling.interval (10m); a policy is fetched "
        "at most once per poll of its instance",
    )
