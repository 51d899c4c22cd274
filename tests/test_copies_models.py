"""Reading the disaster-recovery and cost answers: the shapes the reference documents (and the
ones it warns of), read leniently; a body without the answer fails closed."""

from __future__ import annotations

import pytest

from exporter.aliyun.copies import (
    parse_cross_copies_page,
    parse_cross_region_policy,
    parse_storage_usage,
)
from exporter.aliyun.models import ResponseShapeError

# The reference's example of DescribeResourceUsage (its leading space in DBInstanceId removed).
USAGE_EXAMPLE = {
    "RequestId": "F937E173-559C-4498-8D90-38D32342B9E4",
    "DBInstanceId": "rm-uf6wjk5xxxxxxx",
    "Engine": "MySQL",
    "BackupSize": 53002759,
    "BackupDataSize": 94324736,
    "BackupLogSize": 45145563,
    "BackupOssDataSize": 8821760,
    "BackupOssLogSize": 44180999,
    "ArchiveBackupSize": 0,
    "ColdBackupSize": 2337275904,
    "PaidBackupSize": 0,
    "BackupEcsSnapshotSize": "0",
    "DiskUsed": 2337275904,
}


def test_storage_sizes_are_taken_as_given_and_minus_one_is_no_data() -> None:
    usage = parse_storage_usage({**USAGE_EXAMPLE, "ColdBackupSize": -1, "PaidBackupSize": "512"})
    assert usage.bytes_by_kind == {
        "total": 53002759,  # not data + log: the API's sums do not add up
        "data": 94324736,
        "log": 45145563,
        "oss_data": 8821760,
        "oss_log": 44180999,
        "archive": 0,
        "ecs_snapshot": 0,  # a string in the answer
    }
    assert usage.paid_bytes == 512


def test_storage_without_any_size_is_a_malformed_answer() -> None:
    with pytest.raises(ResponseShapeError, match="backup size"):
        parse_storage_usage({"RequestId": "x", "DBInstanceId": "rm-a"})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {
                "BackupEnabled": "Enable",
                "LogBackupEnabled": "Enable",
                "CrossBackupRegion": "cn-shanghai",
                "Retention": 15,
            },
            (True, True, "cn-shanghai", 15),
        ),
        # Off: whatever else the answer carries, there is no destination.
        (
            {"BackupEnabled": "Disable", "LogBackupEnabled": "Enable", "CrossBackupRegion": "x"},
            (False, False, "", None),
        ),
        (
            {"BackupEnabled": "Enable", "LogBackupEnabled": "Disable", "Retention": "7"},
            (True, False, "", 7),
        ),
    ],
)
def test_cross_region_settings(body: dict[str, object], expected: tuple[object, ...]) -> None:
    policy = parse_cross_region_policy(body)
    assert (policy.enabled, policy.log_enabled, policy.destination, policy.retention_days) == (
        expected
    )


@pytest.mark.parametrize(
    "body", [{"RequestId": "x"}, {"BackupEnabled": "maybe"}, {"BackupEnabled": ["Enable"]}]
)
def test_cross_region_settings_that_say_nothing_fail_closed(body: dict[str, object]) -> None:
    with pytest.raises(ResponseShapeError):
        parse_cross_region_policy(body)


def test_copies_page_reads_status_ints_and_skips_what_cannot_be_placed() -> None:
    item = {
        "CrossBackupId": 124930001,
        "BackupSetStatus": 0,
        "BackupStartTime": "2024-03-05T02:22:45Z",
        "BackupEndTime": "2024-03-05T02:23:37Z",
        "CrossBackupSetSize": 5312836,
        "InstanceId": 8161055,  # a node number, not the instance: not used
    }
    page = parse_cross_copies_page(
        {
            "TotalRecordCount": 4,
            "Items": {
                "Item": [
                    item,
                    {**item, "CrossBackupId": 2, "BackupSetStatus": "1"},
                    {**item, "CrossBackupId": 3, "BackupSetStatus": 7},  # unknown status
                    {**item, "CrossBackupId": 4, "BackupEndTime": None},
                ]
            },
        },
        page_size=100,
    )
    assert page.raw_count == 4 and page.total_record_count == 4
    assert [(c.copy_id, c.succeeded) for c in page.items] == [("124930001", True), ("2", False)]
    assert page.items[0].end - page.items[0].start == 52
    assert page.items[0].size_bytes == 5312836


def test_copies_page_of_the_wrong_shape_fails_closed() -> None:
    with pytest.raises(ResponseShapeError):
        parse_cross_copies_page({"Items": {"Item": {"CrossBackupId": 1}}}, page_size=100)
    with pytest.raises(ResponseShapeError):
        parse_cross_copies_page({"TotalRecordCount": 1}, page_size=100)
