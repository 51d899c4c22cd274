"""What every per-instance API duty is: one call (or one paged listing), on its own schedule,
folded into the instance's state. The poller runs them; it treats them all alike.

A duty says when it is due, makes its call and folds the answer in (``run``), says what a failure
means for the instance (``failed``, ``finish``), and what it costs (``load``). Mapping exceptions
to codes, logging once per change of error, and the schedule itself are the poller's.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass

from exporter.aliyun.client import RdsClient
from exporter.clock import Clock
from exporter.config import PollingConfig, format_duration
from exporter.failures import Failure
from exporter.state import DutyStatus, InstanceState


class Outcome(enum.Enum):
    DONE = "done"  # the call went through (its answer may still say something is wrong)
    FAILED = "failed"  # the call failed: see the failure's code
    GONE = "gone"  # the instance no longer exists: stop polling it


@dataclass(frozen=True)
class DutyLoad:
    """What a duty costs per instance, for ``--check-config``."""

    first_calls: int
    """Calls of its first run (at one page per listing)."""
    calls_per_second: float
    """Calls per second once steady (at one page per listing)."""
    lines: tuple[str, ...]
    """What ``--check-config`` says about it, for the given number of instances."""
    backfill_calls: int = 0
    """Calls its first run leaves to the backfill, in the background lane."""


class Duty(ABC):
    """One kind of API call the poller makes for each instance."""

    name: str  # its key in InstanceState.duties
    action: str  # the API action it calls
    gates_readiness = False  # /-/ready waits for its first run on every instance
    failure_text = "cannot read"  # how the log says that it failed
    recovery_text = "recovered"  # how the log says that it works again

    def __init__(self, polling: PollingConfig, clock: Clock) -> None:
        self.polling = polling
        self.clock = clock

    def applies_to(self, state: InstanceState) -> bool:
        """Whether the instance has what this duty reads (an engine that supports the action,
        a type that keeps backups)."""
        return True

    def is_due(self, state: InstanceState, status: DutyStatus, now: float) -> bool:
        """At a poll slot (monotonic ``now``): whether to run now. By default once its refresh
        has passed, and only after a successful backups poll: when that fails, this would too."""
        return bool(state.collect_success) and now >= status.due

    @abstractmethod
    async def run(self, client: RdsClient, state: InstanceState, status: DutyStatus) -> str | None:
        """Makes the call and folds the answer into ``state``; raises on failure. Returns a
        code when the answer came but says something is wrong (logged once per change)."""

    def failed(self, state: InstanceState, failure: Failure) -> Outcome:
        """What a failure means; ``Outcome.GONE`` when the instance no longer exists."""
        return Outcome.FAILED

    def finish(self, state: InstanceState, failure: Failure | None, took: float) -> None:
        """After each run that did not end with GONE, successful or not."""
        return None

    def needs_backfill(self, state: InstanceState) -> bool:
        """Whether its first run left reads for later (``backfill``), after a poll."""
        return False

    async def backfill(self, client: RdsClient, state: InstanceState) -> None:
        """Reads what the first run left for later, in the rate limiter's background lane;
        raises on failure (it is tried again after the next poll)."""
        return None

    def forget(self, state: InstanceState) -> None:
        """Drops what it shows of the instance, so its series go: it was switched off, or its
        reads have failed for so long that its figures would mislead (ages keep growing on
        what may have changed since)."""
        return None

    def expired(self, status: DutyStatus, now: float) -> bool:
        """At monotonic ``now``: its last success is older than two of its periods and a
        poll, so what it read is no longer shown (see ``forget``)."""
        if status.succeeded is None:
            return False
        every = max(self.refresh, self.polling.interval)
        return now - status.succeeded > 2 * every + self.polling.interval

    @property
    def refresh(self) -> float:
        """Seconds between runs; 0: at every poll slot."""
        return 0.0

    @property
    def actions(self) -> tuple[str, ...]:
        """Every API action it may call (its series exist from the start)."""
        return (self.action,)

    def next_due(self, failure: Failure | None, now: float) -> float:
        """When it is due again (monotonic), after a run at ``now``: ``refresh`` later, or at
        the next poll after a throttling, server or network error."""
        retry_in = 0.0 if failure is not None and failure.retryable else self.refresh
        # Due at the poll nearest to ``retry_in`` from now (polls come every interval).
        return now + max(0.0, retry_in - self.polling.interval / 2)

    def refresh_load(self, instances: int, what: str) -> DutyLoad:
        """The cost of one call per instance every ``refresh`` (at most one per poll)."""
        every = max(self.refresh, self.polling.interval)
        line = (
            f"{what}: one {self.action} call per instance every {format_duration(every)} "
            f"({instances} calls for the static instances, {instances / every:.3f}/s)"
        )
        return DutyLoad(1, 1 / every, (line,))

    @abstractmethod
    def load(self, instances: int, rate_limit: float) -> DutyLoad:
        """Its cost for ``instances`` instances."""
