"""Defensive parsing of API answers: every field optional, numbers as strings, loose times."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from exporter.aliyun.models import (
    ResponseShapeError,
    format_api_minute,
    parse_backup,
    parse_backup_policy,
    parse_backups_page,
    parse_db_instances_page,
    parse_time,
    to_int,
)

EPOCH_2019 = datetime(2019, 2, 13, 12, 20, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-02-13T12:20:00Z", EPOCH_2019),
        ("2019-02-13T12:20Z", EPOCH_2019),
        ("2019-02-13T12:20:00", EPOCH_2019),
        ("2019-02-13T20:20:00+08:00", EPOCH_2019),
        ("2019-02-13T12:20:00.123Z", EPOCH_2019 + 0.123),
        ("2019-02-13 12:20:00", EPOCH_2019),
        ("2019-02-13t12:20:00z", EPOCH_2019),
        ("2019-02-13T20:20+0800", EPOCH_2019),
        ("2019-02-13T20:20:00+08", EPOCH_2019),
        ("2019-02-13T07:20:00-05:00", EPOCH_2019),
        ("2019-02-13T12:20:00 UTC", EPOCH_2019),
        (" 2019-02-13T12:20Z ", EPOCH_2019),
        (1550060400, EPOCH_2019),
        (1550060400.0, EPOCH_2019),
        ("1550060400", EPOCH_2019),
        (1550060400000, EPOCH_2019),
        ("1550060400000", EPOCH_2019),
        ("2019-02-30T12:20Z", None),
        ("2019-02-13T25:20Z", None),
        ("yesterday", None),
        ("", None),
        (None, None),
        (True, None),
        (float("nan"), None),
        ("9" * 400, None),
    ],
)
def test_parse_time(text: object, expected: float | None) -> None:
    assert parse_time(text) == expected


def test_format_api_minute_is_minute_precision_utc() -> None:
    assert format_api_minute(EPOCH_2019 + 59) == "2019-02-13T12:20Z"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5),
        ("5", 5),
        (" 7 ", 7),
        (5.0, 5),
        ("5.0", 5),
        (5.5, 5),
        ("5.5", 5),
        ("1e3", 1000),
        (float("inf"), None),
        ("nan", None),
        ("x", None),
        (True, None),
        (None, None),
        ([], None),
    ],
)
def test_to_int(value: object, expected: int | None) -> None:
    assert to_int(value) == expected


DOC_EXAMPLE = {
    "Items": {
        "Backup": [
            {
                "BackupDownloadURL": "http://example.invalid/****",
                "BackupEndTime": "2019-02-13T12:20:00Z",
                "BackupId": "321020562",
                "BackupInitiator": "System",
                "BackupMethod": "Physical",
                "BackupMode": "Automated",
                "BackupSize": 2167808,
                "BackupStartTime": "2019-02-03T12:20:00Z",
                "BackupStatus": "Success",
                "BackupType": "FullBackup",
                "ConsistentTime": 1576506856,
                "DBInstanceId": "rm-uf6wjk5****",
                "Encryption": "{}",
                "Engine": "MySQL",
                "EngineVersion": "8.0",
                "IsAvail": 1,
                "StorageClass": "0",
            }
        ]
    },
    "PageNumber": "1",
    "PageRecordCount": "30",
    "RequestId": "1A6D328C-84B8-40DC-BF49-6C73984D7494",
    "TotalEcsSnapshotSize": 0,
    "TotalRecordCount": "100",
}


def test_documented_example_parses() -> None:
    page = parse_backups_page(DOC_EXAMPLE)
    assert page.request_id == "1A6D328C-84B8-40DC-BF49-6C73984D7494"
    assert page.total_record_count == 100
    assert page.snapshot_chain_bytes == 0
    (backup,) = page.items
    assert backup.backup_id == "321020562"
    assert backup.succeeded
    assert backup.end == EPOCH_2019
    assert backup.size_bytes == 2167808
    assert backup.storage_class == "regular"
    assert backup.encrypted is False
    assert backup.consistent_time == 1576506856.0


def test_numbers_as_strings_and_missing_fields() -> None:
    backup = parse_backup({"BackupId": 42, "BackupSize": "1024", "IsAvail": "0"})
    assert backup is not None
    assert backup.backup_id == "42"
    assert backup.size_bytes == 1024
    assert backup.available == 0
    assert backup.start is None and backup.end is None
    assert backup.backup_type == "FullBackup"
    assert backup.status == ""


@pytest.mark.parametrize(
    ("record", "key", "problem"),
    [
        ("junk", "#", "the record is not an object"),
        ({"BackupStatus": "Success"}, "#", "no BackupId"),
        (
            {"BackupId": "7", "BackupStatus": "Success"},
            "7",
            "BackupStartTime missing or not a time",
        ),
        ({"BackupId": "7", "BackupStartTime": "2019-02-13T12:20Z"}, "7", "BackupStatus missing"),
        (
            {
                "BackupId": "7",
                "BackupStartTime": "2019-02-13T12:20Z",
                "BackupStatus": "Success",
                "BackupEndTime": "soon",
            },
            "7",
            "a successful backup without a readable BackupEndTime",
        ),
        (
            {
                "BackupId": "7",
                "BackupStartTime": "2019-02-13T12:20Z",
                "BackupStatus": "Success",
                "BackupEndTime": "2019-02-13T11:20Z",
            },
            "7",
            "BackupEndTime before BackupStartTime",
        ),
    ],
)
def test_a_record_missing_what_we_need_is_skipped_and_the_rest_kept(
    record: object, key: str, problem: str
) -> None:
    good = {"BackupId": "1", "BackupStartTime": "2019-02-13T12:20Z", "BackupStatus": "Failed"}
    page = parse_backups_page({"Items": {"Backup": [good, record, dict(good, BackupId="2")]}})
    assert [b.backup_id for b in page.items] == ["1", "2"]
    (skipped,) = page.skipped
    assert skipped.key.startswith(key) and skipped.reason == problem
    assert page.raw_count == 3
    # The same record read again gets the same key, so it is counted once.
    again = parse_backups_page({"Items": {"Backup": [record]}})
    assert again.skipped[0].key == skipped.key


def test_a_page_with_more_records_than_asked_for_is_the_wrong_shape() -> None:
    good = {"BackupId": "1", "BackupStartTime": "2019-02-13T12:20Z", "BackupStatus": "Failed"}
    body = {"Items": {"Backup": [dict(good, BackupId=str(n)) for n in range(31)]}}
    with pytest.raises(ResponseShapeError, match="31 records, more than PageSize 30"):
        parse_backups_page(body, page_size=30)
    assert len(parse_backups_page(body, page_size=50).items) == 31


def test_a_failed_backup_needs_no_end_time() -> None:
    page = parse_backups_page(
        {
            "Items": {
                "Backup": [
                    {
                        "BackupId": "1",
                        "BackupStartTime": "2019-02-13T12:20Z",
                        "BackupStatus": "Failed",
                    }
                ]
            }
        }
    )
    assert page.items[0].failed and page.items[0].end is None
    assert page.raw_count == 1


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, "Items is missing"),
        ({"RequestId": "x", "TotalRecordCount": "0"}, "Items is missing"),
        ({"Items": None}, "Items is not an object"),
        ({"Items": []}, "Items is not an object"),
        ({"Items": "x"}, "Items is not an object"),
        ({"Items": {"Backup": None}}, "Items.Backup is not a list"),
        ({"Items": {"Backup": {"BackupId": "1"}}}, "Items.Backup is not a list"),
    ],
)
def test_a_body_of_the_wrong_shape_is_not_an_empty_page(
    body: dict[str, object], problem: str
) -> None:
    with pytest.raises(ResponseShapeError, match=problem):
        parse_backups_page(body)
    items = body.get("Items")
    if not isinstance(items, dict):  # the same outer rule for DescribeDBInstances
        with pytest.raises(ResponseShapeError):
            parse_db_instances_page(body)


def test_an_empty_list_may_leave_out_its_inner_key() -> None:
    """How the API renders an empty list (XML's <Items/> turned into JSON)."""
    page = parse_backups_page({"Items": {}, "TotalRecordCount": "0"})
    assert page.items == () and page.raw_count == 0 and page.total_record_count == 0


def test_negative_sizes_are_no_sizes() -> None:
    backup = parse_backup({"BackupId": "1", "BackupSize": -1, "ConsistentTime": -5})
    assert backup is not None and backup.size_bytes is None and backup.consistent_time is None


@pytest.mark.parametrize(
    ("encryption", "expected"),
    [("{}", False), ("", False), ('{"EncryptionType":"TDE"}', True), ("not json", True)],
)
def test_encryption_flag(encryption: str, expected: bool) -> None:
    backup = parse_backup({"BackupId": "1", "Encryption": encryption})
    assert backup is not None and backup.encrypted is expected


def test_policy_and_instances_parse() -> None:
    policy = parse_backup_policy(
        {
            "PreferredBackupPeriod": "Monday,Thursday",
            "PreferredBackupTime": "15:00Z-16:00Z",
            "BackupRetentionPeriod": "7",
            "EnableBackupLog": "1",
            "PreferredNextBackupTime": "2018-01-19T15:15Z",
        }
    )
    assert policy.retention_days == 7
    assert policy.log_backup_enabled is True
    assert policy.next_backup_time == datetime(2018, 1, 19, 15, 15, tzinfo=timezone.utc).timestamp()
    page = parse_db_instances_page(
        {
            "Items": {"DBInstance": [{"DBInstanceId": "rm-1", "Engine": "MySQL"}, {"Engine": "x"}]},
            "TotalRecordCount": 2,
            "PageNumber": 1,
        }
    )
    assert [i.instance_id for i in page.items] == ["rm-1"]
    assert page.raw_count == 2


def test_repeated_text_fields_are_stored_once() -> None:
    """A fleet keeps tens of thousands of backups: their status, type, method, engine and
    instance id are one string each, not one per backup (read from separate JSON answers)."""
    import json

    raw = (
        '{"BackupId": "%s", "DBInstanceId": "rm-1", "BackupStatus": "Success", '
        '"BackupType": "FullBackup", "BackupMethod": "Physical", "Engine": "MySQL", '
        '"EngineVersion": "8.0", "BackupStartTime": "2019-02-13T12:20:00Z"}'
    )
    first = parse_backup(json.loads(raw % "1"))
    second = parse_backup(json.loads(raw % "2"))
    assert first is not None and second is not None
    for name in ("instance_id", "status", "backup_type", "method", "engine", "engine_version"):
        assert getattr(first, name) is getattr(second, name), name


def test_numbers_too_large_to_be_true_are_no_numbers() -> None:
    """A JSON integer of hundreds of digits does not even convert to a float: it must not
    crash the parse, nor reach a metric."""
    huge = 10**400
    assert to_int(huge) is None and parse_time(huge) is None and to_int("9" * 30) is None
    page = parse_backups_page(
        {
            "Items": {
                "Backup": [
                    {"BackupId": "1", "BackupStatus": "Success", "BackupStartTime": huge},
                    {
                        "BackupId": "2",
                        "BackupStatus": "Success",
                        "BackupStartTime": "2019-02-13T12:20Z",
                        "BackupEndTime": "2019-02-13T13:20Z",
                        "BackupSize": huge,
                        "ConsistentTime": huge,
                        "IsAvail": huge,
                    },
                ]
            },
            "TotalEcsSnapshotSize": huge,
        }
    )
    assert [record.key for record in page.skipped] == ["1"]
    (backup,) = page.items
    assert backup.size_bytes is None and backup.consistent_time is None
    assert backup.available is None and page.snapshot_chain_bytes is None
