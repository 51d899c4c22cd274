"""Recoverability state, without I/O: the log chain's gaps and uploads, running jobs over time,
the answers' parsers, and what SQL Server's backup policy really says about its logs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.aliyun.models import ResponseShapeError, parse_backup_policy
from exporter.aliyun.recovery import (
    BackupJob,
    LogFile,
    parse_backup_jobs,
    parse_log_files_page,
    parse_recovery_window,
)
from exporter.policy import summarize_policy
from exporter.recovery_state import LogChain, summarize_jobs, summarize_log_chain, track_jobs

T0 = 1_764_331_200.0
MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0


def file(begin: float, end: float, host: str = "1", completed: bool = True) -> LogFile:
    return LogFile(begin, end, 1000, host, f"bin.{int(begin)}", completed)


def test_a_continuous_chain_has_no_gap() -> None:
    files = [file(T0 + n * HOUR, T0 + (n + 1) * HOUR) for n in range(5)]
    summary = summarize_log_chain(files, 1.0)
    assert summary.gap_seconds == 0
    assert summary.newest_end == T0 + 5 * HOUR
    assert summary.stored_bytes == 5000 and summary.uploading == 0


def test_a_hole_in_the_chain_is_measured_to_the_second() -> None:
    files = [file(T0, T0 + HOUR), file(T0 + HOUR + 17 * MINUTE + 3, T0 + 3 * HOUR)]
    assert summarize_log_chain(files, 1.0).gap_seconds == 17 * MINUTE + 3


def test_another_node_covering_the_hole_closes_it() -> None:
    """The standby's files cover the same times: the union over nodes counts."""
    primary = [file(T0, T0 + HOUR, "1"), file(T0 + 2 * HOUR, T0 + 3 * HOUR, "1")]
    standby = [file(T0 + HOUR - 10, T0 + 2 * HOUR + 10, "2")]
    assert summarize_log_chain(primary, 1.0).gap_seconds == HOUR
    assert summarize_log_chain(primary + standby, 1.0).gap_seconds == 0


def test_sql_server_files_a_minute_apart_are_contiguous() -> None:
    files = [file(T0, T0 + 30 * MINUTE), file(T0 + 31 * MINUTE, T0 + HOUR)]
    assert summarize_log_chain(files, MINUTE).gap_seconds == 0
    assert summarize_log_chain(files, 1.0).gap_seconds == MINUTE


def test_files_still_uploading_are_counted_apart() -> None:
    files = [
        file(T0, T0 + HOUR),
        file(T0 + HOUR, T0 + 2 * HOUR, completed=False),
        file(T0 + 2 * HOUR, T0 + 3 * HOUR, completed=False),
    ]
    summary = summarize_log_chain(files, 1.0)
    assert summary.newest_end == T0 + HOUR  # the newest file in backup storage
    assert summary.uploading == 2 and summary.oldest_uploading_end == T0 + 2 * HOUR
    assert summary.gap_seconds == 0 and summary.stored_bytes == 1000


def test_a_file_read_again_replaces_the_one_kept() -> None:
    chain = LogChain()
    chain.merge([file(T0, T0 + HOUR, completed=False)], cutoff=T0 - HOUR, latest=T0 + DAY)
    assert chain.oldest_uploading_begin() == T0
    chain.merge([file(T0, T0 + HOUR, completed=True)], cutoff=T0 - HOUR, latest=T0 + DAY)
    assert len(chain.files) == 1 and chain.oldest_uploading_begin() is None
    chain.prune(T0 + 2 * HOUR)
    assert not chain.files


def test_files_dated_in_the_future_are_left_out_and_counted() -> None:
    chain = LogChain()
    left_out = chain.merge(
        [file(T0, T0 + HOUR), file(T0 + 900 * DAY, T0 + 901 * DAY)], cutoff=T0, latest=T0 + DAY
    )
    assert left_out == 1
    assert chain.summarize(1.0).newest_end == T0 + HOUR


def test_a_folded_file_listed_again_is_not_counted_twice() -> None:
    chain = LogChain()
    files = [file(T0 + n * HOUR, T0 + (n + 1) * HOUR) for n in range(6)]
    chain.merge(files, cutoff=T0, latest=T0 + DAY)
    chain.fold(T0 + 4 * HOUR, 1.0)
    assert len(chain.files) == 3  # the three that end at or after the horizon
    chain.merge(files, cutoff=T0, latest=T0 + DAY)  # an overlapping read lists them all again
    summary = chain.summarize(1.0)
    assert summary.stored_bytes == 6000 and summary.gap_seconds == 0
    assert summary.newest_end == T0 + 6 * HOUR


def test_files_still_uploading_are_never_folded() -> None:
    chain = LogChain()
    chain.merge([file(T0, T0 + HOUR, completed=False)], cutoff=T0, latest=T0 + DAY)
    chain.fold(T0 + 5 * HOUR, 1.0)
    assert chain.oldest_uploading_begin() == T0
    assert chain.summarize(1.0).uploading == 1


def test_bytes_leave_with_their_hour() -> None:
    chain = LogChain()
    files = [file(T0 + n * HOUR, T0 + (n + 1) * HOUR - 1) for n in range(4)]
    chain.merge(files, cutoff=T0, latest=T0 + DAY)
    chain.fold(T0 + DAY, 1.0)
    assert chain.summarize(1.0).stored_bytes == 4000
    chain.prune(T0 + 2 * HOUR)  # the first two files ended before it
    assert chain.summarize(1.0).stored_bytes == 2000
    assert chain.summarize(1.0).gap_seconds == 0


spans = st.lists(
    st.tuples(
        st.integers(0, 40 * 60),  # begin, in minutes after T0
        st.integers(1, 120),  # length in minutes
        st.sampled_from(["1", "2"]),  # host
        st.integers(0, 7),  # the read from which it is in backup storage (7: never)
        st.integers(0, 10**9),  # size
    ),
    max_size=40,
)


@given(spans, st.lists(st.integers(0, 45 * 60), max_size=6), st.sampled_from([1.0, MINUTE]))
@settings(max_examples=300, deadline=None)
def test_folding_never_changes_what_the_chain_says(
    raw: list[tuple[int, int, str, int, int]], horizons: list[int], tolerance: float
) -> None:
    """Kept whole, or folded at any horizons with every file listed again at each read (as
    overlapping reads do) while uploads complete between reads: the same newest end, gaps,
    uploads and bytes."""
    unique = {(b, n, host): (done, size) for b, n, host, done, size in raw}  # one per name

    def listing(read: int) -> list[LogFile]:
        return [
            LogFile(T0 + b * MINUTE, T0 + (b + n) * MINUTE, size, host, f"f{b}.{n}", read >= done)
            for (b, n, host), (done, size) in unique.items()
        ]

    chain = LogChain()
    reads = sorted(horizons)
    for read, horizon in enumerate(reads):
        chain.merge(listing(read), cutoff=T0, latest=T0 + 9 * DAY)
        chain.fold(T0 + horizon * MINUTE, tolerance)
    chain.merge(listing(len(reads)), cutoff=T0, latest=T0 + 9 * DAY)
    assert chain.summarize(tolerance) == summarize_log_chain(listing(len(reads)), tolerance)


def test_jobs_are_remembered_with_first_seen_and_last_progress() -> None:
    job = BackupJob("77", "Uploading", 10.0, "Automated")
    running, gone = track_jobs({}, [job], T0, None)
    assert gone == [] and running["77"].first_seen == T0 and running["77"].seen_after is None
    moved = BackupJob("77", "Uploading", 40.0, "Automated")
    running, _ = track_jobs(running, [moved], T0 + HOUR, T0)
    assert running["77"].first_seen == T0 and running["77"].progress_since == T0 + HOUR
    running, _ = track_jobs(running, [moved], T0 + 2 * HOUR, T0 + HOUR)
    assert running["77"].progress_since == T0 + HOUR  # it did not move
    summary = summarize_jobs(running)
    assert summary.running == 1 and summary.progress == 40.0
    assert summary.oldest_first_seen == T0 and summary.stalled_since == T0 + HOUR
    later = BackupJob("78", "Preparing", 0.0, "Manual")
    running, gone = track_jobs(running, [later], T0 + 3 * HOUR, T0 + 2 * HOUR)
    assert [job.job_id for job in gone] == ["77"]
    assert running["78"].seen_after == T0 + 2 * HOUR  # it started after that listing


def test_failed_jobs_are_not_running() -> None:
    running, _ = track_jobs({}, [BackupJob("9", "Failed", 30.0, "Automated")], T0, None)
    summary = summarize_jobs(running)
    assert summary.running == 0 and summary.failed == 1 and summary.oldest_first_seen is None


def test_log_files_parse_both_actions() -> None:
    binlog = parse_log_files_page(
        {
            "Items": {
                "BinLogFile": [
                    {
                        "LogFileName": "mysql-bin.000070",
                        "LogBeginTime": "2019-02-09T17:45:21Z",
                        "LogEndTime": "2019-02-09T18:45:20Z",
                        "FileSize": "2269410",
                        "HostInstanceID": "5841973",
                        "RemoteStatus": "Uploading",
                    },
                    {"LogFileName": "broken", "LogBeginTime": "later"},
                ]
            },
            "TotalRecordCount": 2,
        },
        page_size=30,
    )
    (only,) = binlog.items
    assert only.host == "5841973" and not only.completed and only.size_bytes == 2269410
    assert binlog.unreadable == 1 and binlog.raw_count == 2
    sql_server = parse_log_files_page(
        {
            "Items": {
                "BinLogFile": [
                    {"LogBeginTime": "2018-10-31T08:10Z", "LogEndTime": "2018-10-31T08:40Z"}
                ]
            }
        }
    )
    assert (
        sql_server.items[0].completed
        and sql_server.items[0].end - sql_server.items[0].begin == 1800
    )
    with pytest.raises(ResponseShapeError):
        parse_log_files_page({"Items": None})


def test_recovery_window_and_jobs_parse() -> None:
    window = parse_recovery_window(
        {"RecoveryBeginTime": "2023-09-11T09:48:52Z", "RecoveryEndTime": "2023-09-18T08:03:09Z"}
    )
    assert window.end - window.begin == 6 * 86400 + 22 * 3600 + 14 * 60 + 17
    with pytest.raises(ResponseShapeError):
        parse_recovery_window({"RecoveryBeginTime": "2023-09-11T09:48:52Z"})
    jobs = parse_backup_jobs(
        {
            "Items": {
                "BackupJob": [
                    {"BackupJobId": "4762614", "BackupStatus": "Uploading", "Process": "25"},
                    {"BackupJobId": "", "Process": "1"},
                    {"BackupJobId": 5, "Process": "250"},
                ]
            }
        }
    )
    assert [(job.job_id, job.progress) for job in jobs] == [("4762614", 25.0), ("5", None)]


@pytest.mark.parametrize(
    ("fields", "enabled", "interval"),
    [
        ({"EnableBackupLog": "1"}, True, 300.0),
        ({"EnableBackupLog": "0", "LogBackupFrequency": "LogInterval"}, True, 1800.0),
        ({"EnableBackupLog": "0", "BackupInterval": "30"}, True, 1800.0),
        # With the data backups: Monday and Tuesday, the longest gap Tuesday to Monday.
        ({"BackupLog": "Disabled", "LogBackupFrequency": "Other"}, True, 6 * 86400.0 + 3600.0),
        ({}, None, None),
    ],
)
def test_sql_server_never_says_off_while_its_logs_are_backed_up(
    fields: dict[str, str], enabled: bool | None, interval: float | None
) -> None:
    body = {"PreferredBackupPeriod": "Monday,Tuesday", "PreferredBackupTime": "15:00Z-16:00Z"}
    summary = summarize_policy(parse_backup_policy({**body, **fields}), "SQLServer")
    assert summary.log_backup_enabled is enabled
    assert summary.log_backup_interval == interval


def test_other_engines_take_enable_backup_log_as_it_is() -> None:
    off = summarize_policy(parse_backup_policy({"EnableBackupLog": "0"}), "MySQL")
    assert off.log_backup_enabled is False and off.log_backup_interval is None
    on = summarize_policy(
        parse_backup_policy({"BackupLog": "Enable", "LogBackupRetentionPeriod": "7"}), "MySQL"
    )
    assert on.log_backup_enabled is True and on.log_retention_days == 7
