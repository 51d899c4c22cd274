"""DescribeCrossRegionBackups: the copies of an instance's backups in another region, read
behind a watermark in windows like the backups. A copy is listed by its backup's start time
but appears only once its backup has ended and been copied, so each read goes back
``COPY_OVERLAP`` before the last one's end: with the default refresh that is one call. From
the copies within the lookback: when the newest good copy's backup ended, the newest failed
one, and how many there are. For MySQL copying its logs too, also the times a restore from the
newest good copy can reach (DescribeAvailableRecoveryTime, which knows only copies of instances
on local disks: the others answer CrossBackupNotSupport, once); its answers that the copy
cannot be restored are kept as such, not as failures to ask, and a failure to ask keeps the
copies read."""

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
from exporter.schedule import MINUTE, first_poll_windows, floor_minute, plan_windows
from exporter.state import DutyStatus, InstanceState

log = logging.getLogger(__name__)

# How long after its backup starts a copy may first be listed: the backup's run and the copy.
COPY_OVERLAP = 20 * 3600.0


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
            # The settings said on (or could not be read), the listing says impossible: nothing
            # to report, and worth saying once, as the copies metrics go away.
            if not ledger.not_supported:
                log.warning(
                    "instance %s: cross-region copies cannot be listed: %s",
                    target.instance_id,
                    err.summary(),
                )
            ledger.copies.clear()
            ledger.summary = None
            ledger.watermark = None
            ledger.not_supported = True
            return None
        ledger.prune(cutoff)
        ledger.watermark = end
        ledger.not_supported = False
        window, broken = await self._copy_window(client, state)
        ledger.summary = ledger.summarize(window, broken)
        return None

    async def _copy_window(
        self, client: RdsClient, state: InstanceState
    ) -> tuple[RecoveryWindow | None, str | None]:
        """The newest good copy's restorable window, or why it has none. A failure to ask keeps
        what the last read said (the listing itself succeeded)."""
        ledger, target = state.copies, state.target
        newest = ledger.newest_good()
        if newest is None or ledger.window_supported is False:
            return None, None
        if state.known_engine.lower() != "mysql":
            return None, None
        policy = state.cross_region
        if policy is not None and not policy.log_enabled:
            return None, None  # no logs copied: a set, no point in time, and the API says so
        before = ledger.summary
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
                if err.code != ledger.window_error:
                    log.warning(
                        "instance %s: cannot read the restorable window of its newest "
                        "cross-region copy (the last one read is kept): %s",
                        target.instance_id,
                        err.summary(),
                    )
                ledger.window_error = err.code
                return (before.window, before.broken) if before is not None else (None, None)
            previous = ledger.summary.broken if ledger.summary is not None else None
            if previous != err.code:
                log.info(
                    "instance %s: its newest cross-region copy cannot be restored: %s",
                    target.instance_id,
                    err.summary(),
                )
            return None, err.code
        ledger.window_supported = True
        ledger.window_error = None
        return window, None

    def forget(self, state: InstanceState) -> None:
        state.copies.summary = None

    def load(self, instances: int, rate_limit: float) -> DutyLoad:
        every = max(self.refresh, self.polling.interval)
        first = first_poll_windows(self.polling)
        steady = len(plan_windows(0.0, COPY_OVERLAP + every, self.polling.window))
        line = (
            f"cross-region copies: {first} {self.action} call(s) per instance at the first "
            f"read, then {steady} every {format_duration(every)} "
            f"({instances * steady / every:.3f}/s for {instances} static instances), plus one "
            f"{DESCRIBE_COPY_RECOVERY_TIME} for MySQL instances that copy their logs"
        )
        return DutyLoad(first, steady / every, (line,))


def copies_range(
    now: float, watermark: float | None, polling: PollingConfig
) -> tuple[float, float]:
    """The minute-aligned [start, end] a read covers: the lookback at first, then from
    ``COPY_OVERLAP`` before the last read's end (after an outage too: nothing is skipped)."""
    end = floor_minute(now)
    earliest = floor_minute(now - polling.lookback)
    if watermark is None:
        return earliest, end
    return max(earliest, min(floor_minute(watermark - COPY_OVERLAP), end - MINUTE)), end
