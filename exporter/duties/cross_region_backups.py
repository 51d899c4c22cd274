"""DescribeCrossRegionBackups: the copies of an instance's backups in another region, read
behind a watermark in windows like the backups (a read re-reads the overlap, so a copy that
appears an hour after its backup is still found). From the copies within the lookback: when the
newest good copy's backup ended, the newest failed one, and how many there are. For MySQL, also
the times a restore from the newest good copy can reach (DescribeAvailableRecoveryTime, which
knows only copies of instances on local disks: the others answer CrossBackupNotSupport, once);
its answers that the copy cannot be restored are kept as such, not as failures to ask."""

from __future__ import annotations

import logging

from exporter.aliyun.client import RdsClient
from exporter.aliyun.copies import (
    COPY_UNRESTORABLE_CODES,
    CROSS_BACKUP_NOT_SUPPORTED,
    DESCRIBE_COPY_RECOVERY_TIME,
    DESCRIBE_CROSS_REGION_BACKUPS,
    iter_cross_copy_pages,
)
from exporter.aliyun.errors import ApiError
from exporter.aliyun.recovery import RecoveryWindow, parse_recovery_window
from exporter.config import PollingConfig, format_duration
from exporter.duties.base import Duty, DutyLoad
from exporter.duties.cross_region_policy import keeps_backups
from exporter.schedule import first_poll_windows, floor_minute, plan_windows
from exporter.state import DutyStatus, InstanceState

log = logging.getLogger(__name__)


class CrossRegionBackupsDuty(Duty):
    name = "cross_region_backups"
    action = DESCRIBE_CROSS_REGION_BACKUPS
    failure_text = "cannot list the cross-region backup copies (the last ones read are kept)"
    recovery_text = "cross-region backup copies listed again"

    @property
    def refresh(self) -> float:
        return self.polling.cross_region_backup_refresh

    @property
    def actions(self) -> tuple[str, ...]:
        return (DESCRIBE_CROSS_REGION_BACKUPS, DESCRIBE_COPY_RECOVERY_TIME)

    def applies_to(self, state: InstanceState) -> bool:
        # Not while its settings say copying is off or impossible (when they are read at all).
        policy = state.cross_region
        return keeps_backups(state) and (policy is None or policy.enabled)

    def is_due(self, state: InstanceState, status: DutyStatus, now: float) -> bool:
        return bool(state.collect_success) and now >= status.due

    async def run(self, client: RdsClient, state: InstanceState, status: DutyStatus) -> None:
        target = state.target
        ledger = state.copies
        now = self.clock.time()
        cutoff = now - self.polling.lookback
        start, end = copies_range(now, ledger.watermark, self.polling)
        try:
            for span in plan_windows(start, end, self.polling.window):
                async for page in iter_cross_copy_pages(
                    client, target.instance_id, target.region, *span
                ):
                    ledger.merge(page.items, cutoff)
        except ApiError as err:
            if err.code != CROSS_BACKUP_NOT_SUPPORTED:
                raise
            ledger.copies.clear()  # the instance cannot have copies: nothing to report
            ledger.summary = None
            return None
        ledger.prune(cutoff)
        ledger.watermark = end
        window, broken = await self._copy_window(client, state)
        ledger.summary = ledger.summarize(window, broken)
        return None

    async def _copy_window(
        self, client: RdsClient, state: InstanceState
    ) -> tuple[RecoveryWindow | None, str | None]:
        """The newest good copy's restorable window, or why it has none."""
        ledger, target = state.copies, state.target
        newest = ledger.newest_good()
        if newest is None or ledger.window_supported is False:
            return None, None
        if state.known_engine.lower() != "mysql":
            return None, None
        params = {
            "DBInstanceId": target.instance_id,
            "RegionId": target.region,
            "CrossBackupId": newest.copy_id,
        }
        try:
            window = await client.call(
                DESCRIBE_COPY_RECOVERY_TIME,
                params,
                region=target.region,
                parse=parse_recovery_window,
            )
        except ApiError as err:
            if err.code == CROSS_BACKUP_NOT_SUPPORTED:
                ledger.window_supported = False  # cloud disks: no window to ask for
                return None, None
            if err.code not in COPY_UNRESTORABLE_CODES:
                raise
            previous = ledger.summary.broken if ledger.summary is not None else None
            if previous != err.code:
                log.info(
                    "instance %s: its newest cross-region copy cannot be restored: %s",
                    target.instance_id,
                    err.summary(),
                )
            return None, err.code
        ledger.window_supported = True
        return window, None

    def forget(self, state: InstanceState) -> None:
        state.copies.summary = None

    def load(self, instances: int, rate_limit: float) -> DutyLoad:
        every = max(self.refresh, self.polling.interval)
        first = first_poll_windows(self.polling)
        line = (
            f"cross-region copies: {first} {self.action} call(s) per instance at the first "
            f"read, then one every {format_duration(every)} ({instances / every:.3f}/s for "
            f"{instances} static instances)"
        )
        return DutyLoad(first, 1 / every, (line,))


def copies_range(
    now: float, watermark: float | None, polling: PollingConfig
) -> tuple[float, float]:
    """The minute-aligned [start, end] a read covers: the lookback at first; then the last
    whole window (one call: a copy appears minutes to hours after its backup, well within it),
    or from the watermark when that is older (reads failed for a while)."""
    end = floor_minute(now)
    earliest = floor_minute(now - polling.lookback)
    if watermark is None:
        return earliest, end
    return max(earliest, min(floor_minute(watermark), end - polling.window)), end
