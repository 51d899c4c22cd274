"""The log backup files (MySQL/MariaDB binlogs, PostgreSQL WAL: DescribeBinlogFiles; SQL Server
log backups: DescribeLogBackupFiles), read in narrow windows behind a watermark like the
backups, so that a steady-state read is one call.

The API lists every file whose [LogBeginTime, LogEndTime] overlaps the window, from every node.
A read starts an hour before the watermark, or earlier at the oldest file still uploading, so a
file's move to backup storage is seen. What the chain says (newest stored file, gaps, uploads,
bytes) is summed up after each read (``exporter.recovery_state``).
"""

from __future__ import annotations

import asyncio
import logging

from exporter.aliyun.client import RdsClient
from exporter.aliyun.recovery import DESCRIBE_BINLOG_FILES, DESCRIBE_LOG_BACKUP_FILES
from exporter.clock import Clock
from exporter.config import PollingConfig, format_duration
from exporter.duties.base import Duty, DutyLoad
from exporter.schedule import MINUTE, first_poll_windows, floor_minute, plan_windows
from exporter.state import CLOCK_SKEW, READ_ONLY, DutyStatus, InstanceState

IMPLAUSIBLE = "ImplausibleLogFiles"
CATCH_UP_READS = 64
log = logging.getLogger(__name__)

# Read again before the watermark: files that closed just before it, still being uploaded.
LOG_OVERLAP = 3600.0
ENGINES = frozenset({"mysql", "postgresql", "mariadb", "sqlserver"})


class LogBackupsDuty(Duty):
    name = "log_backups"
    action = DESCRIBE_BINLOG_FILES
    failure_text = "cannot read the log backup files"
    recovery_text = "log backup files read again"

    def __init__(self, polling: PollingConfig, clock: Clock) -> None:
        super().__init__(polling, clock)
        # A read of several windows holds a window's files until it is folded: bound how
        # many instances do so at once (a cold start reads the lookback for all of them).
        self._catching_up = asyncio.Semaphore(CATCH_UP_READS)

    @property
    def refresh(self) -> float:
        return self.polling.log_backup_refresh

    @property
    def actions(self) -> tuple[str, ...]:
        return (DESCRIBE_BINLOG_FILES, DESCRIBE_LOG_BACKUP_FILES)

    def applies_to(self, state: InstanceState) -> bool:
        # With no engine known, once the restorable window's answer has told SQL Server apart.
        if state.target.instance_type == READ_ONLY:
            return False
        engine = state.known_engine.lower()
        return engine in ENGINES if engine else state.sql_server_by_answer is not None

    async def run(self, client: RdsClient, state: InstanceState, status: DutyStatus) -> str | None:
        if len(self._windows(state, self.clock.time())) == 1:
            return await self._read(client, state, status)
        async with self._catching_up:
            return await self._read(client, state, status)

    def _windows(self, state: InstanceState, now: float) -> list[tuple[float, float]]:
        """The windows of a read at ``now``: from an hour before the watermark (or the oldest
        file still uploading, or the start of the lookback) to the last whole minute."""
        chain = state.log_chain
        end = floor_minute(now)
        cutoff = now - self.polling.lookback
        start = floor_minute(cutoff)
        if chain.watermark is not None:
            start = max(start, floor_minute(chain.watermark - LOG_OVERLAP))
            uploading = chain.oldest_uploading_begin()
            if uploading is not None:
                start = max(floor_minute(cutoff), min(start, floor_minute(uploading)))
        return plan_windows(min(start, end - MINUTE), end, self.polling.window)

    async def _read(
        self, client: RdsClient, state: InstanceState, status: DutyStatus
    ) -> str | None:
        now = self.clock.time()  # after any wait for a turn
        windows = self._windows(state, now)
        target = state.target
        chain = state.log_chain
        sql_server = state.is_sql_server is True
        end = windows[-1][1]
        cutoff = now - self.polling.lookback
        # SQL Server lists whole minutes: two files a minute apart are contiguous there.
        tolerance = MINUTE if sql_server else 1.0
        implausible = 0
        was_uploading = chain.uploading_keys()
        listed: set[tuple[str, str, float, float]] = set()
        for window_start, window_end in windows:
            pages = client.iter_log_file_pages(
                target.instance_id, target.region, window_start, window_end, sql_server=sql_server
            )
            async for page in pages:
                # A slow read (a cold start at scale) lists files that closed while it ran:
                # "the future" is judged at each answer, not at the read's start.
                latest = self.clock.time() + CLOCK_SKEW
                implausible += chain.merge(page.items, cutoff, latest, listed)
            # Fold what neither the next window nor a later read lists as new: the next window
            # lists files ending after its start, a later read starts at most an hour before
            # this one's end (earlier only for files still uploading, which keep a record).
            chain.fold(min(window_end, end - LOG_OVERLAP), tolerance)
        # A file that was uploading and that this read no longer lists is gone (expired or
        # removed): it is neither uploading nor stored.
        chain.drop(was_uploading - listed)
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

    def forget(self, state: InstanceState) -> None:
        state.log_chain.summary = None

    def load(self, instances: int, rate_limit: float) -> DutyLoad:
        every = max(self.refresh, self.polling.interval)
        windows = first_poll_windows(self.polling)
        line = (
            f"log backups: {windows} call(s) per instance at first (one per window, more for "
            f"busy PostgreSQL WAL), then one DescribeBinlogFiles or DescribeLogBackupFiles "
            f"call every {format_duration(every)} ({instances / every:.3f}/s)"
        )
        return DutyLoad(windows, 1 / every, (line,))
