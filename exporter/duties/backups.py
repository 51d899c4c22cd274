"""DescribeBackups: the backup sets of one instance, read in narrow windows behind a watermark.

First poll: newest first. It reads the newest window, then goes back a window at a time only
until the newest restorable full backup the schedule took is among what it read (so the newest
of every kind the alerts ask about is known), or the lookback ends: about one call per instance
before ``/-/ready`` and the instance's series. The rest of the lookback (counts of sets and
failures) is read afterwards by the backfill (``exporter.backfill``), in the rate limiter's
background lane, until ``lookback_complete``. Later polls: from the watermark minus the overlap
(backups that were still running) up to now. The watermark moves only when every window and page
succeeded, so a failed poll loses nothing: the next one covers the gap. Records that cannot be
used are skipped and their window read again next time.
"""

from __future__ import annotations

import logging
import math
from typing import Protocol

from exporter.aliyun.client import DESCRIBE_BACKUPS, RdsClient
from exporter.aliyun.models import BackupsPage, SkippedRecord
from exporter.clock import Clock
from exporter.config import PollingConfig, format_duration
from exporter.duties.base import Duty, DutyLoad, Outcome
from exporter.failures import Failure
from exporter.schedule import (
    first_poll_windows,
    floor_minute,
    plan_windows,
    poll_range,
    steady_poll_windows,
    window_width,
)
from exporter.state import READ_ONLY, DutyStatus, InstanceState, implausible

log = logging.getLogger(__name__)

# Windows whose records had to be skipped are read again at most this often, until their records
# can be read: often enough that a record damaged on the way is soon back, rarely enough that one
# that is wrong for good costs next to nothing (one call per window per hour).
REREAD_EVERY = 3600.0
# Newly skipped records logged one by one per poll; the rest are counted in one line.
LOGGED_PER_POLL = 5
FULL_BACKUP = "FullBackup"
# Codes that say the instance itself does not exist (not a bare 404 from a misrouted proxy,
# which must not make retiring instances vanish).
INSTANCE_GONE_CODES = frozenset(
    {"InvalidDBInstanceId.NotFound", "InvalidDBInstance.NotFound", "InvalidDBInstanceName.NotFound"}
)


class PollObserver(Protocol):
    def observe_poll(self, instance_id: str, seconds: float) -> None:
        """Called once per poll of an instance with how long it took."""
        ...


class BackupsDuty(Duty):
    name = "backups"
    action = DESCRIBE_BACKUPS
    gates_readiness = True
    failure_text = "collection failed"
    recovery_text = "collection recovered"

    def __init__(
        self, polling: PollingConfig, clock: Clock, observer: PollObserver | None = None
    ) -> None:
        super().__init__(polling, clock)
        self._observer = observer

    def is_due(self, state: InstanceState, status: DutyStatus, now: float) -> bool:
        return True  # at every poll slot

    async def run(self, client: RdsClient, state: InstanceState, status: DutyStatus) -> None:
        """Every window of the range, every page, and the windows due to be read again; then, on
        a first poll, the search back. State changes only by merging."""
        target = state.target
        polling = self.polling
        now = self.clock.time()
        start, end = poll_range(now, state.watermark, polling)
        if state.watermark is None:
            start = max(start, end - window_width(polling.window))  # newest first: the rest later
        cutoff = now - polling.lookback
        if state.read_back_from is not None:
            # A backup that ran for long has finished (exporter.duties.backup_tasks): it
            # started before this poll's range may reach, and is listed by its start time.
            start = max(floor_minute(cutoff), min(start, floor_minute(state.read_back_from)))
        again = windows_to_reread(state, start, cutoff, now)
        skipped_in: list[tuple[float, float]] = []
        new_records: list[tuple[SkippedRecord, str]] = []  # with the answer's RequestId
        for window in [*again, *plan_windows(start, end, polling.window)]:
            pages = client.iter_backup_pages(
                target.instance_id, target.region, *window, page_size=polling.page_size
            )
            async for page in pages:
                # Judged at each answer: a slow poll lists backups that ended while it ran.
                skipped, new = fold(state, page, cutoff, self.clock.time())
                new_records += [(record, page.request_id) for record in new]
                if skipped and window not in skipped_in:
                    skipped_in.append(window)
        state.watermark = end
        if state.covered_from is None:
            state.covered_from = start
        state.read_back_from = None
        # Windows not due yet stay; those read now stay only if they still hold skipped records.
        read_again = {window_start for window_start, _ in again}
        pending = [w for w in state.reread if cutoff <= w[0] < start and w[0] not in read_again]
        state.reread = dict.fromkeys([*pending, *skipped_in])
        if again:
            state.reread_after = now + REREAD_EVERY
        try:
            if not state.baseline_done:
                await self._search(client, state, new_records)
                state.baseline_done = True
        finally:
            log_skipped(target.instance_id, new_records)
        state.last_collect_success = self.clock.time()
        return None

    async def _search(
        self, client: RdsClient, state: InstanceState, new_records: list[tuple[SkippedRecord, str]]
    ) -> None:
        """Goes back a window at a time until the newest backups are known."""
        while not newest_known(state):
            window = self.next_older(state)
            if window is None:
                return
            await self._read_older(client, state, window, new_records)

    def needs_backfill(self, state: InstanceState) -> bool:
        return state.baseline_done and not state.lookback_complete

    async def backfill(self, client: RdsClient, state: InstanceState) -> None:
        """Reads what the search left, newest first, in the limiter's background lane; what is
        read stays if a later window fails (the next backfill goes on from there)."""
        background = client.background()
        new_records: list[tuple[SkippedRecord, str]] = []
        try:
            while (window := self.next_older(state)) is not None:
                await self._read_older(background, state, window, new_records)
                state.prune(self.clock.time() - self.polling.lookback)
                state.refresh_summaries()
        finally:
            log_skipped(state.target.instance_id, new_records)

    def next_older(self, state: InstanceState) -> tuple[float, float] | None:
        """The window just before what has been read, or None (and ``lookback_complete``) when
        the reads reach back the lookback."""
        floor = state.lookback_floor(self.clock.time(), self.polling.lookback)
        covered = state.covered_from
        if covered is None:
            return None
        if covered <= floor:
            state.lookback_complete = True
            return None
        return max(floor, covered - window_width(self.polling.window)), covered

    async def _read_older(
        self,
        client: RdsClient,
        state: InstanceState,
        window: tuple[float, float],
        new_records: list[tuple[SkippedRecord, str]],
    ) -> None:
        """One window before the first poll's range: its failures were there before the
        exporter looked, so they are the baseline, never counted. Newly skipped records are
        added to ``new_records``, to log."""
        target = state.target
        pages = client.iter_backup_pages(
            target.instance_id, target.region, *window, page_size=self.polling.page_size
        )
        async for page in pages:
            now = self.clock.time()
            skipped, new = fold(state, page, now - self.polling.lookback, now, older=True)
            new_records += [(record, page.request_id) for record in new]
            if skipped:
                state.reread[window] = None
        state.covered_from = window[0]

    def failed(self, state: InstanceState, failure: Failure) -> Outcome:
        if failure.code in INSTANCE_GONE_CODES and state.target.retiring:
            # Deleted: there is nothing left to report on, so it goes now, not after grace.
            log.info(
                "instance %s: no longer found by discovery and now %s: dropped",
                state.target.instance_id,
                failure.code,
            )
            return Outcome.GONE
        return Outcome.FAILED

    def finish(self, state: InstanceState, failure: Failure | None, took: float) -> None:
        state.prune(self.clock.time() - self.polling.lookback)
        state.refresh_summaries()
        state.collect_success = failure is None
        state.last_error = failure.code if failure is not None else None
        state.last_error_message = failure.message if failure is not None else None
        if self._observer is not None:
            self._observer.observe_poll(state.target.instance_id, took)

    def load(self, instances: int, rate_limit: float) -> DutyLoad:
        polling = self.polling
        windows = first_poll_windows(polling)
        steady = steady_poll_windows(polling)
        older = (windows - 1) * instances
        steady_calls = instances * steady  # one page per window at most backups a day
        lines = (
            f"first poll: newest first, 1 window per instance and one more for each window "
            f"further back to its newest full backup: at least {instances} API calls, about "
            f"{format_duration(math.ceil(instances / rate_limit))} at {rate_limit:g} requests/s",
            f"backfill: the rest of the {windows} window(s) of the lookback, at most {older} "
            "API calls, with the rate the other reads leave",
            f"steady state: {steady} window(s) per instance per poll, about {steady_calls} API "
            f"calls per interval ({steady_calls / polling.interval:.2f}/s against a rate limit "
            f"of {rate_limit:g}/s)",
        )
        return DutyLoad(1, steady / polling.interval, lines, backfill_calls=windows - 1)


def windows_to_reread(
    state: InstanceState, start: float, cutoff: float, now: float
) -> list[tuple[float, float]]:
    """The windows with skipped records that lie before this poll's range (this poll reads
    the others anyway), clipped to it, if they are due."""
    if now < state.reread_after:
        return []
    return [
        (window_start, min(window_end, start))
        for window_start, window_end in state.reread
        if cutoff <= window_start < start
    ]


def newest_known(state: InstanceState) -> bool:
    """Whether what has been read holds the newest restorable full backup the schedule took,
    hence also the newest restorable one and every newer backup of any kind (a read-only replica
    keeps none: its first window says so)."""
    if state.target.instance_type == READ_ONLY:
        return True
    return any(
        backup.backup_type == FULL_BACKUP and backup.restorable and backup.automated
        for backup in state.backups.values()
    )


def fold(
    state: InstanceState, page: BackupsPage, cutoff: float, now: float, *, older: bool = False
) -> tuple[bool, list[SkippedRecord]]:
    """Merges a page's records that can be true; the others are skipped and counted on
    ``aliyun_rds_backup_skipped_records``, never failing the poll. Returns whether any was
    skipped, and those seen for the first time (to log)."""
    kept = []
    skipped = list(page.skipped)
    for backup in page.items:
        problem = implausible(backup, now, state.not_before)
        if problem is None:
            kept.append(backup)
        else:
            skipped.append(SkippedRecord(backup.backup_id, problem))
    state.merge(kept, cutoff, older=older)
    if page.snapshot_chain_bytes is not None:
        state.snapshot_chain_bytes = page.snapshot_chain_bytes
    new = [record for record in skipped if state.note_skipped(record, now)]
    return bool(skipped), new


def log_skipped(instance_id: str, records: list[tuple[SkippedRecord, str]]) -> None:
    """One line per newly skipped record, up to ``LOGGED_PER_POLL``, then one line for the rest:
    a peer sending endless odd records cannot flood the log. The RequestId is what a support
    ticket about the record needs."""
    for record, request_id in records[:LOGGED_PER_POLL]:
        log.warning(
            "instance %s: backup record %s skipped: %s (RequestId %s)",
            instance_id,
            record.key,
            record.reason,
            request_id or "none",
        )
    if len(records) > LOGGED_PER_POLL:
        log.warning(
            "instance %s: %d more backup records skipped in this poll (not logged one by one)",
            instance_id,
            len(records) - LOGGED_PER_POLL,
        )
