"""Polls DescribeBackups for every target on a schedule and folds the results into state.

First poll of an instance: ``[now - lookback, now]`` in windows no wider than ``window``. Later
polls: from the watermark minus the overlap (backups that were still running) up to now. The
watermark moves only when every window and page of a poll succeeded, so a failed poll loses
nothing: the next one covers the gap.

The same per-instance task refreshes the instance's backup policy (DescribeBackupPolicy) every
``policy_refresh`` seconds, right after a successful poll. A policy that cannot be fetched keeps
the last one read and never marks the backup collection failed.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from exporter.aliyun.client import RdsClient
from exporter.aliyun.credentials import CredentialsError
from exporter.aliyun.errors import ApiError
from exporter.aliyun.models import BackupsPage, SkippedRecord
from exporter.clock import Clock
from exporter.policy import summarize_policy
from exporter.state import READ_ONLY, FleetState, InstanceState, Target, implausible

log = logging.getLogger(__name__)

MINUTE = 60.0
GONE = "gone"  # poll_instance's answer when a retiring instance no longer exists
# Codes that say the instance itself does not exist (not a bare 404 from a misrouted proxy,
# which must not make retiring instances vanish).
INSTANCE_GONE_CODES = frozenset(
    {"InvalidDBInstanceId.NotFound", "InvalidDBInstance.NotFound", "InvalidDBInstanceName.NotFound"}
)


def floor_minute(epoch: float) -> float:
    return math.floor(epoch / MINUTE) * MINUTE


def ceil_minute(epoch: float) -> float:
    return math.ceil(epoch / MINUTE) * MINUTE


@dataclass(frozen=True)
class PollSettings:
    interval: float
    lookback: float
    window: float
    overlap: float
    page_size: int = 100
    policy_refresh: float = 0.0  # seconds between DescribeBackupPolicy calls; 0 = never


def poll_range(
    now: float,
    watermark: float | None,
    settings: PollSettings,
    reread_from: float | None = None,
) -> tuple[float, float]:
    """The minute-aligned [start, end] one poll must cover.

    Later polls start at ``watermark - overlap``. When that range is longer than a whole number
    of windows only by scheduling drift (a late wake-up, minute rounding), the overlap gives up
    those few minutes instead of costing one more call, so a steady-state poll is exactly one
    window; the start never moves past the watermark, so no gap can open. ``reread_from``: the
    start of a window whose records had to be skipped last time; it is read again (within the
    lookback) until they can be read.
    """
    end = floor_minute(now)
    earliest = floor_minute(now - settings.lookback)
    if watermark is None:
        start = earliest
    else:
        nominal = floor_minute(watermark - settings.overlap)
        tolerance = max(2 * MINUTE, 0.1 * settings.interval)
        whole_windows = max(1, math.ceil((end - nominal - tolerance) / settings.window))
        trimmed = ceil_minute(end - whole_windows * settings.window)
        start = max(nominal, min(trimmed, floor_minute(watermark)), earliest)
        if reread_from is not None:
            start = max(min(start, floor_minute(reread_from)), earliest)
    if end <= start:
        # The API wants EndTime after StartTime: re-read the last whole minute rather than ask
        # about the future, so the watermark (this end) never runs ahead of the clock.
        start = end - MINUTE
    return start, end


def plan_windows(start: float, end: float, window: float) -> list[tuple[float, float]]:
    """Consecutive [start, end] pieces tiling the range, none wider than ``window``."""
    width = max(MINUTE, floor_minute(window))
    windows: list[tuple[float, float]] = []
    cursor = start
    while cursor < end:
        stop = min(cursor + width, end)
        windows.append((cursor, stop))
        cursor = stop
    return windows


def next_slot(anchor: float, interval: float, previous: int, now: float) -> int:
    """The first slot ``anchor + k * interval`` after ``previous`` that is still ahead of ``now``.

    Counting slots, rather than dividing elapsed time, keeps a timer that fires a hair early (or
    float rounding) from running the same slot twice; slots missed by a slow poll are skipped.
    """
    slot = max(previous + 1, math.floor((now - anchor) / interval))
    while anchor + slot * interval <= now:
        slot += 1
    return slot


class CollectObserver:
    """Receives each poll's duration (the collect histogram); a no-op by default."""

    def observe_poll(self, instance_id: str, seconds: float) -> None:
        return None


class Poller:
    """Runs one task per target; each polls on its own phase so polls spread over the interval."""

    def __init__(
        self,
        state: FleetState,
        clients: Mapping[str, RdsClient],
        settings: PollSettings,
        clock: Clock,
        *,
        observer: CollectObserver | None = None,
        on_gone: Callable[[str], None] | None = None,
    ) -> None:
        """``on_gone(instance_id)``: called when a retiring target (one discovery no longer
        finds) turns out not to exist any more; its task has ended by then."""
        self._state = state
        self._clients = clients
        self._settings = settings
        self._clock = clock
        self._observer = observer or CollectObserver()
        self._on_gone = on_gone
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def set_targets(self, targets: Iterable[Target]) -> None:
        """Starts tasks for new targets, stops those of removed ones (their series go too)."""
        targets = list(targets)
        removed = self._state.sync_targets(targets)
        for instance_id in removed:
            task = self._tasks.pop(instance_id, None)
            if task is not None:
                task.cancel()
        count = max(1, len(targets))
        for index, target in enumerate(targets):
            if target.instance_id not in self._tasks:
                phase = self._settings.interval * index / count
                self._tasks[target.instance_id] = asyncio.create_task(
                    self._run_instance(target.instance_id, phase),
                    name=f"poll {target.instance_id}",
                )

    @property
    def running_tasks(self) -> int:
        """Instance tasks that have not ended (each is polling or asleep on the clock)."""
        return sum(1 for task in self._tasks.values() if not task.done())

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run_instance(self, instance_id: str, phase: float) -> None:
        # First poll at once (the shared rate limiter paces start-up); after that each instance
        # keeps its own phase so the fleet's polls are spread over the interval, anchored to a
        # monotonic start so slow polls do not drift the schedule.
        interval = self._settings.interval
        anchor = self._clock.monotonic() + phase
        slot = -1  # slot 0 is the phase offset itself, the first poll after this one
        while True:
            state = self._state.instances.get(instance_id)
            if state is None:
                return
            if await self.poll_instance(state) == GONE:
                self._tasks.pop(instance_id, None)
                if self._on_gone is not None:
                    self._on_gone(instance_id)
                return
            if self._policy_due(state):
                await self.refresh_policy(state)
            now = self._clock.monotonic()
            slot = next_slot(anchor, interval, slot, now)
            await self._clock.sleep(anchor + slot * interval - now)

    async def poll_instance(self, state: InstanceState) -> str | None:
        """One poll: every window of the range, every page; state changes only by merging.

        Returns ``GONE``, changing nothing, when the target is retiring and the API says it
        does not exist: it was deleted, so there is nothing left to report on.
        """
        target = state.target
        client = self._clients[target.account]
        settings = self._settings
        now = self._clock.time()
        started = self._clock.monotonic()
        start, end = poll_range(now, state.watermark, settings, state.reread_from)
        cutoff = now - settings.lookback
        error: str | None = None
        reread_from: float | None = None
        try:
            for window_start, window_end in plan_windows(start, end, settings.window):
                pages = client.iter_backup_pages(
                    target.instance_id,
                    target.region,
                    window_start,
                    window_end,
                    page_size=settings.page_size,
                )
                async for page in pages:
                    if self._fold(state, page, cutoff, now) and reread_from is None:
                        reread_from = window_start
        except ApiError as err:
            if err.code in INSTANCE_GONE_CODES and target.retiring:
                log.info(
                    "instance %s: no longer found by discovery and now %s: dropped",
                    target.instance_id,
                    err.code,
                )
                return GONE
            error = err.code
            self._report(state, error, err.summary())
        except CredentialsError as err:
            error = "CredentialsError"
            self._report(state, error, str(err))
        except Exception:
            # A bug must not stop this instance's polling for good, nor the others'.
            error = "ExporterError"
            if state.last_error != error:
                log.exception("instance %s: unexpected error while polling", target.instance_id)
        else:
            state.watermark = end
            # Skipped records may have been damaged on the way: read them again next time, or
            # they would be lost for good once they leave the overlap.
            state.reread_from = reread_from
            state.baseline_done = True
            state.last_collect_success = self._clock.time()
            if state.last_error is not None:
                log.info("instance %s: collection recovered", target.instance_id)
        state.prune(self._clock.time() - settings.lookback)
        state.refresh_summaries()
        state.polled = True
        state.collect_success = error is None
        state.last_error = error
        self._observer.observe_poll(target.instance_id, self._clock.monotonic() - started)
        return None

    @staticmethod
    def _fold(state: InstanceState, page: BackupsPage, cutoff: float, now: float) -> bool:
        """Merges a page's records that can be true; the others are skipped, counted on
        ``aliyun_rds_backup_skipped_records`` and logged once each, never failing the poll.
        Returns whether any was skipped."""
        kept = []
        skipped = list(page.skipped)
        for backup in page.items:
            problem = implausible(backup, now, state.not_before)
            if problem is None:
                kept.append(backup)
            else:
                skipped.append(SkippedRecord(backup.backup_id, problem))
        state.merge(kept, cutoff)
        if page.snapshot_chain_bytes is not None:
            state.snapshot_chain_bytes = page.snapshot_chain_bytes
        for record in skipped:
            if state.note_skipped(record, now):
                log.warning(
                    "instance %s: backup record %s skipped: %s",
                    state.target.instance_id,
                    record.key,
                    record.reason,
                )
        return bool(skipped)

    def _policy_due(self, state: InstanceState) -> bool:
        # Only after a successful poll: when DescribeBackups fails (a wrong key, a deleted
        # instance, an outage), DescribeBackupPolicy would too, and only add noise.
        return (
            self._settings.policy_refresh > 0
            and bool(state.collect_success)
            and state.target.instance_type != READ_ONLY  # replicas have no backup policy
            and self._clock.monotonic() >= state.policy_due
        )

    async def refresh_policy(self, state: InstanceState) -> None:
        """Fetches the instance's backup policy. On failure the last policy read stays; a
        throttling, server or network error is retried at the next poll, anything else after
        ``policy_refresh``."""
        target = state.target
        client = self._clients[target.account]
        retry_in = self._settings.policy_refresh
        try:
            policy = await client.describe_backup_policy(target.instance_id, target.region)
        except ApiError as err:
            if err.retryable:
                retry_in = 0.0
            self._policy_failed(state, err.code, err.summary())
        except CredentialsError as err:
            retry_in = 0.0
            self._policy_failed(state, "CredentialsError", str(err))
        except Exception:
            if state.policy_error != "ExporterError":
                log.exception(
                    "instance %s: unexpected error reading the backup policy", target.instance_id
                )
            state.policy_error = "ExporterError"
        else:
            summary = summarize_policy(policy)
            if summary.schedule is None and state.policy_error != "Unreadable":
                log.warning(
                    "instance %s: cannot read the backup schedule (PreferredBackupPeriod %r, "
                    "PreferredBackupTime %r); the stale-backup alert uses its fallback",
                    target.instance_id,
                    policy.preferred_backup_period,
                    policy.preferred_backup_time,
                )
            elif summary.schedule is not None and state.policy_error is not None:
                log.info("instance %s: backup policy read again", target.instance_id)
            state.policy = summary
            state.policy_error = None if summary.schedule is not None else "Unreadable"
        # Due at the poll nearest to ``retry_in`` from now (polls come every interval).
        later = max(0.0, retry_in - self._settings.interval / 2)
        state.policy_due = self._clock.monotonic() + later

    def _policy_failed(self, state: InstanceState, code: str, message: str) -> None:
        if state.policy_error != code:
            log.warning(
                "instance %s: cannot read the backup policy (a policy read before is kept): %s",
                state.target.instance_id,
                message,
            )
        state.policy_error = code

    def _report(self, state: InstanceState, code: str, message: str) -> None:
        """Logs an instance's error once per change of error, not once per poll."""
        if state.last_error != code:
            log.warning("instance %s: collection failed: %s", state.target.instance_id, message)
        else:
            log.debug("instance %s: still failing: %s", state.target.instance_id, message)
