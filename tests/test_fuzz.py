"""Property tests: whatever the API or the config file hold, only our own clear errors escape."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.aliyun.models import (
    ResponseShapeError,
    parse_backup_policy,
    parse_backups_page,
    parse_db_instances_page,
    parse_time,
)
from exporter.config import ConfigError, parse_config, parse_duration

pytestmark = pytest.mark.slow  # hundreds of examples each

# Any JSON document, biased towards the keys the parsers look at.
KEYS = st.sampled_from(
    [
        "Items",
        "Backup",
        "DBInstance",
        "BackupId",
        "BackupStatus",
        "BackupStartTime",
        "BackupEndTime",
        "BackupSize",
        "BackupType",
        "IsAvail",
        "ConsistentTime",
        "Encryption",
        "StorageClass",
        "TotalRecordCount",
        "PageNumber",
        "TotalEcsSnapshotSize",
        "RequestId",
        "PreferredBackupPeriod",
        "PreferredBackupTime",
        "BackupRetentionPeriod",
        "DBInstanceId",
    ]
) | st.text(max_size=8)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["Success", "Failed", "2024-01-01T00:00Z", "2024-13-45T99:99:99Z", "{}"])
    # Integers too large for a float (a JSON body may hold them).
    | st.sampled_from([10**400, -(10**400), 2**63, 2**64 + 1])
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(KEYS, children, max_size=6),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(body=st.dictionaries(KEYS, JSON, max_size=8))
def test_backups_parser_returns_a_page_or_a_shape_error(body: dict[str, Any]) -> None:
    try:
        page = parse_backups_page(body)
    except ResponseShapeError as err:
        assert str(err) and "\n" not in str(err)
        return
    for backup in page.items:
        assert backup.backup_id
        assert backup.start is not None
        assert backup.status
        if backup.succeeded:
            assert backup.end is not None
    # Every record is either folded in or skipped with a reason: none disappears silently.
    assert page.raw_count == len(page.items) + len(page.skipped)
    assert all(record.key and record.reason for record in page.skipped)


@settings(max_examples=200, deadline=None)
@given(
    items=st.lists(
        st.fixed_dictionaries(
            {
                # An id of control characters only is no id (it is skipped).
                "BackupId": st.text(min_size=1, max_size=5).filter(
                    lambda text: text.strip() and text.isprintable()
                ),
                "BackupStartTime": st.just("2024-01-01T00:00Z"),
                "BackupEndTime": st.sampled_from(["2024-01-01T01:00:00Z", "2024-01-01T01:00Z"]),
                "BackupStatus": st.sampled_from(["Success", "Failed"]),
            },
            optional={
                "BackupSize": SCALARS,
                "IsAvail": SCALARS,
                "Encryption": SCALARS,
                "ConsistentTime": SCALARS,
                "StorageClass": SCALARS,
                "BackupType": SCALARS,
            },
        ),
        max_size=5,
    )
)
def test_usable_records_always_parse_whatever_the_optional_fields(
    items: list[dict[str, Any]],
) -> None:
    page = parse_backups_page(json.loads(json.dumps({"Items": {"Backup": items}})))
    assert len(page.items) == len(items)


@settings(max_examples=200, deadline=None)
@given(body=st.dictionaries(KEYS, JSON, max_size=8))
def test_policy_and_instance_parsers_give_a_result_or_a_shape_error(body: dict[str, Any]) -> None:
    parse_backup_policy(body)  # every field optional: never raises
    try:
        page = parse_db_instances_page(body)
    except ResponseShapeError as err:
        assert str(err) and "\n" not in str(err)
        return
    assert all(instance.instance_id for instance in page.items)


@given(text=st.text(max_size=40))
def test_time_parser_never_raises(text: str) -> None:
    value = parse_time(text)
    assert value is None or isinstance(value, float)


CONFIG_KEYS = st.sampled_from(
    [
        "api",
        "credentials",
        "polling",
        "instances",
        "discovery",
        "accounts",
        "id",
        "region",
        "labels",
        "interval",
        "lookback",
        "window",
        "overlap",
        "page_size",
        "rate_limit",
        "timeout",
        "retries",
        "concurrency",
        "endpoint",
        "access_key_id",
        "access_key_secret",
        "security_token",
        "name",
        "engines",
        "tags",
    ]
) | st.text(max_size=6)
CONFIG_SCALARS = SCALARS | st.sampled_from(
    ["5m", "1d", "8d", "90s", "cn-hangzhou", "rm-abc", "${HOME}", "${MISSING_VAR}", "https://x"]
)
CONFIG = st.recursive(
    CONFIG_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(CONFIG_KEYS, children, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None)
@given(data=CONFIG)
def test_config_loader_gives_a_config_or_clear_problems(data: object) -> None:
    try:
        config = parse_config(data, {"HOME": "/home/x"})
    except ConfigError as err:
        assert err.problems
        for line in err.problems:
            assert line and "\n" not in line
            assert "Traceback" not in line
        return
    assert config.instances or config.discovery


@given(value=st.one_of(st.text(max_size=12), st.integers(), st.floats(), st.none(), st.booleans()))
def test_duration_parser_gives_seconds_or_value_error(value: object) -> None:
    try:
        seconds = parse_duration(value)
    except ValueError as err:
        assert str(err)
        return
    assert seconds >= 0
