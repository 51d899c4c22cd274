"""DescribeBinlogFiles (MySQL, PostgreSQL, MariaDB) and DescribeLogBackupFiles (SQL Server): one
instance's log backup files whose [LogBeginTime, LogEndTime] overlaps the window, paged."""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from exporter.simulator import render
from exporter.simulator.actions.call import Answer, Call
from exporter.simulator.actions.params import (
    DEFAULT_PAGE_SIZE,
    is_number,
    page_number,
    page_number_error,
    time_param,
    visible_instance,
)
from exporter.simulator.errors import (
    ApiError,
    db_instance_not_found,
    incorrect_engine,
    invalid_format,
    missing_parameter,
    parameter_absence,
    read_only_not_supported,
)
from exporter.simulator.models import SimInstance, SimLogFile
from exporter.simulator.timefmt import parse_minute, parse_second

# PageSize: 30..1000 in the API metadata (the doc text says 30..100).
LOG_PAGE_SIZES = (30, 1000)
BINLOG_ENGINES = frozenset({"MySQL", "PostgreSQL", "MariaDB"})
SQLSERVER_ENGINES = frozenset({"SQLServer"})

Render = Callable[[SimInstance, SimLogFile, float], dict[str, object]]


@dataclass(frozen=True)
class _Window:
    start: float
    end: float
    page: int
    page_size: int


def _window(params: Mapping[str, str], parse: Callable[[str], float | None]) -> _Window:
    """The window and page asked for, in the order the API checks them."""
    if not params.get("DBInstanceId"):
        raise missing_parameter("DBInstanceId")
    start = time_param(params, "StartTime", parse)
    end = time_param(params, "EndTime", parse)
    if start is None:
        raise parameter_absence("StartTime")
    if end is None:
        raise parameter_absence("EndTime")
    size_text = params.get("PageSize", str(DEFAULT_PAGE_SIZE))
    low, high = LOG_PAGE_SIZES
    if not is_number(size_text) or not low <= int(size_text) <= high:
        raise invalid_format("PageSize")
    page = page_number(params)
    if end <= start:
        raise ApiError(
            400, "InvalidParameterCombination", "The end time must be greater than the start time"
        )
    return _Window(start, end, page, int(size_text))


def _log_instance(call: Call, engines: Collection[str]) -> SimInstance:
    instance = visible_instance(call, db_instance_not_found)
    if instance.engine not in engines:
        raise incorrect_engine()
    if not instance.has_backups:
        # Documented for DescribeBinlogFiles; DescribeLogBackupFiles is taken to do the same.
        raise read_only_not_supported()
    return instance


def _page(call: Call, files: Sequence[SimLogFile], window: _Window) -> Sequence[SimLogFile]:
    page, size = window.page, window.page_size
    if call.inferred.log_page_past_end_error and page > 1 and (page - 1) * size >= len(files):
        raise page_number_error()  # as DescribeBackups does
    chosen = list(files[(page - 1) * size : page * size])
    if call.shuffle_seed is not None:
        key = f"{call.shuffle_seed}|logs|{call.params['DBInstanceId']}|{window}"
        random.Random(key).shuffle(chosen)
    return chosen


def _list_logs(
    call: Call, parse: Callable[[str], float | None], engines: Collection[str], item: Render
) -> Answer:
    window = _window(call.params, parse)
    instance = _log_instance(call, engines)
    files = call.fleet.log_files(instance.instance_id, window.start, window.end, call.now)
    chosen = _page(call, files, window)
    counted = files if call.inferred.total_file_size_whole_result else chosen
    return Answer(
        body={
            "Items": {"BinLogFile": [item(instance, f, call.now) for f in chosen]},
            "PageNumber": window.page,
            "PageRecordCount": len(chosen),
            "TotalRecordCount": len(files),
            "TotalFileSize": sum(f.size for f in counted),
        },
        window_seconds=window.end - window.start,
    )


def describe_binlog_files(call: Call) -> Answer:
    """Binlogs or WAL segments of every node (told apart by HostInstanceID) whose LogEndTime is
    after StartTime and LogBeginTime before EndTime (``yyyy-MM-ddTHH:mm:ssZ``), once closed;
    RemoteStatus Uploading until they are in backup storage."""
    return _list_logs(call, parse_second, BINLOG_ENGINES, render.binlog_item)


def describe_log_backup_files(call: Call) -> Answer:
    """SQL Server's log backups overlapping the window (``yyyy-MM-ddTHH:mmZ``), whole minutes,
    listed once stored; the list is named BinLogFile all the same."""
    return _list_logs(call, parse_minute, SQLSERVER_ENGINES, render.log_backup_item)
