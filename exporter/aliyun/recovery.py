"""Typed results of the recoverability actions: log backup files (DescribeBinlogFiles,
DescribeLogBackupFiles), the restorable window (DescribeLocalAvailableRecoveryTime) and running
backups (DescribeBackupTasks). Read as leniently as ``models``: numbers as numbers or strings,
times in any of the API's forms; a list of the wrong shape is a ``ResponseShapeError``; a file
that cannot be placed in time is skipped.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from exporter.aliyun.errors import untrusted
from exporter.aliyun.models import ResponseShapeError, items_of, parse_time, to_int, to_str

DESCRIBE_BINLOG_FILES = "DescribeBinlogFiles"
DESCRIBE_LOG_BACKUP_FILES = "DescribeLogBackupFiles"
DESCRIBE_LOCAL_RECOVERY_TIME = "DescribeLocalAvailableRecoveryTime"
DESCRIBE_BACKUP_TASKS = "DescribeBackupTasks"
COMPLETED = "Completed"


@dataclass(frozen=True, slots=True)
class LogFile:
    """One log backup file. SQL Server's have no name, host or upload status: they are in
    backup storage once listed."""

    begin: float
    end: float
    size_bytes: int | None
    host: str  # HostInstanceID: the node that wrote it ("" on SQL Server)
    name: str  # LogFileName ("" on SQL Server)
    completed: bool  # RemoteStatus Completed (in backup storage), or no status at all

    @property
    def key(self) -> tuple[str, str, float, float]:
        """What names it across answers (a file overlapping two windows is listed twice)."""
        return (self.host, self.name, self.begin, self.end)


@dataclass(frozen=True)
class LogFilesPage:
    items: tuple[LogFile, ...]
    total_record_count: int | None
    raw_count: int
    unreadable: int  # records without a begin and an end in order: skipped


def parse_log_files_page(body: Mapping[str, Any], page_size: int | None = None) -> LogFilesPage:
    """A page of DescribeBinlogFiles or DescribeLogBackupFiles (both list ``BinLogFile``)."""
    raw_items = items_of(body, "Items", "BinLogFile", page_size)
    files: list[LogFile] = []
    for raw in raw_items:
        file = _log_file(raw)
        if file is not None:
            files.append(file)
    return LogFilesPage(
        items=tuple(files),
        total_record_count=to_int(body.get("TotalRecordCount")),
        raw_count=len(raw_items),
        unreadable=len(raw_items) - len(files),
    )


def _log_file(raw: object) -> LogFile | None:
    if not isinstance(raw, Mapping):
        return None
    begin = parse_time(raw.get("LogBeginTime"))
    end = parse_time(raw.get("LogEndTime"))
    if begin is None or end is None or end < begin:
        return None
    size = to_int(raw.get("FileSize"))
    status = to_str(raw.get("RemoteStatus"))
    return LogFile(
        begin=begin,
        end=end,
        size_bytes=size if size is not None and size >= 0 else None,
        host=sys.intern(untrusted(to_str(raw.get("HostInstanceID")), 64)),
        name=untrusted(to_str(raw.get("LogFileName")), 128),
        # SQL Server lists only what is stored; MySQL and PostgreSQL say Uploading until then.
        completed=status in ("", COMPLETED),
    )


@dataclass(frozen=True)
class RecoveryWindow:
    """DescribeLocalAvailableRecoveryTime: the times a point-in-time restore can reach."""

    begin: float
    end: float


def parse_recovery_window(body: Mapping[str, Any]) -> RecoveryWindow:
    begin = parse_time(body.get("RecoveryBeginTime"))
    end = parse_time(body.get("RecoveryEndTime"))
    if begin is None or end is None:
        raise ResponseShapeError("RecoveryBeginTime or RecoveryEndTime missing or not a time")
    if end < begin:
        raise ResponseShapeError("RecoveryEndTime before RecoveryBeginTime")
    return RecoveryWindow(begin, end)


@dataclass(frozen=True, slots=True)
class BackupJob:
    """One running or queued backup (DescribeBackupTasks has no times: the exporter keeps
    them)."""

    job_id: str
    status: str  # BackupStatus: NoStart, Checking, Preparing, Waiting, Uploading, ...
    progress: float | None  # Process, 0..100
    mode: str  # JobMode: Automated or Manual


def parse_backup_jobs(body: Mapping[str, Any]) -> tuple[BackupJob, ...]:
    jobs: list[BackupJob] = []
    for raw in items_of(body, "Items", "BackupJob", None):
        if not isinstance(raw, Mapping):
            continue
        job_id = untrusted(to_str(raw.get("BackupJobId")), 64)
        if not job_id:
            continue
        progress = to_int(raw.get("Process"))
        jobs.append(
            BackupJob(
                job_id=job_id,
                status=untrusted(to_str(raw.get("BackupStatus")), 32),
                progress=float(progress) if progress is not None and 0 <= progress <= 100 else None,
                mode=untrusted(to_str(raw.get("JobMode")), 32),
            )
        )
    return tuple(jobs)
