"""The log backup files (MySQL/MariaDB binlogs, PostgreSQL WAL: DescribeBinlogFiles; SQL Server
log backups: DescribeLogBackupFiles), read in narrow windows behind a watermark like the
backups, so that a steady-state read is one call.

The API lists every file whose [LogBeginTime, LogEndTime] overlaps the window, from every node.
A read starts an hour before the watermark, or earlier at the oldest file still uploading, so a
file's move to backup storage is seen. What the chain says (newest stored file, gaps, uploads,
bytes) is summed up after each read (``exporter.recovery_state``).
"""

from __future__ import annotations

import logging

from exporter.aliyun.client import RdsClient
from exporter.aliyun.recovery import DESCRIBE_BINLOG_FILES, DESCRIBE_LOG_BACKUP_FILES
from exporter.config import format_duration
from exporter.duties.base import Duty, DutyLoad
from exporter.schedule import MINUTE, first_poll_windows, floor_minute, plan_windows
from exporter.state import CLOCK_SKEW, READ_ONLY, DutyStatus, InstanceState

IMPLAUSIBLE = "ImplausibleLogFiles"
log = logging.getLogger(__name__)

# Read again before the watermark: files that closed just before it, still being uploaded.
LOG_OVERLAP = 3600.0
ENGINES = frozenset({"mysql", "postgresql", "mariadb", "sqlserver"})


class LogBackupsDuty(Duty):
    name = "log_backups"
    action = DESCRIBE_BINLOG_FILES
    failure_text = "cannot read the log backup files"
    recovery_text = "log backup files read again"

    @property
    def refresh(self) -> float:
        return self.polling.log_backup_refresh

    @property
    def actions(self) -> tuple[str, ...]:
        return (DESCRIBE_BINLOG_FILES, DESCRIBE_LOG_BACKUP_FILES)

    def applies_to(self, state: InstanceState) -> bool:
        return state.target.instance_type != READ_ONLY and state.known_engine.lower() in ENGINES

    def is_due(self, state: InstanceState, status: DutyStatus, now: float) -> bool:
        return bool(state.collect_success) and now >= status.due

    async def run(self, client: RdsClient, state: InstanceState, status: DutyStatus) -> str | None:
        target = state.target
        chain = state.log_chain
        sql_server = state.known_engine.lower() == "sqlserver"
        now = self.clock.time()
        end = floor_minute(now)
        cutoff = now - self.polling.lookback
        start = floor_minute(cutoff)
        if chain.watermark is not None:
            start = max(start, floor_minute(chain.watermark - LOG_OVERLAP))
            uploading = chain.oldest_uploading_begin()
            if uploading is not None:
                start = max(floor_minute(cutoff), min(start, floor_minute(uploading)))
        start = min(start, end - MINUTE)
        # SQL Server lists whole minutes: two files a minute apart are contiguous there.
        tolerance = MINUTE if sql_server else 1.0
        latest = now + CLOCK_SKEW
        implausible = 0
        for window_start, window_end in plan_windows(start, end, self.polling.window):
            pages = client.iter_log_file_pages(
                target.instance_id, target.region, window_start, window_end, sql_server=sql_server
            )
            async for page in pages:
                implausible += chain.merge(page.items, cutoff, latest)
            # What neither the next window nor a later read lists again: the next window lists
            # files ending after its start; a later read starts an hour before this read's end,
            # or at the oldest file still uploading.
            horizon = min(window_end, end - LOG_OVERLAP)
            uploading = chain.oldest_uploading_begin()
            if uploading is not None:
                horizon = min(horizon, floor_minute(uploading))
            chain.fold(horizon, tolerance)
        chain.prune(cutoff)
        chain.watermark = end
        chain.summary = chain.summarize(tolerance)
        if not implausible:
            return None
        if status.error != IMPLAUSIBLE:  # once per change, as the poller logs failures
            log.warning(
                "instance %s: %d log backup file(s) dated in the future left out",
                target.instance_id,
                implausible,
            )
        return IMPLAUSIBLE

    def load(self, instances: int, rate_limit: float) -> DutyLoad:
        every = max(self.refresh, self.polling.interval)
        windows = first_poll_windows(self.polling)
        line = (
            f"log backups: {windows} call(s) per instance at first (one per window, more for "
            f"busy PostgreSQL WAL), then one DescribeBinlogFiles or DescribeLogBackupFiles "
            f"call every {format_duration(every)} ({instances / every:.3f}/s)"
        )
        return DutyLoad(windows, 1 / every, (line,))
