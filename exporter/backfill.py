"""The backfill: what first polls left for later (a duty's ``backfill``), read a few instances at
a time in the rate limiter's background lane.

A first poll answers the question the alerts ask first (the newest backups) in about one call
per instance; the rest of the lookback waits here. The background lane gives it only the request
starts that nothing else wants, so no poll, first or later, waits behind it. An instance is
queued after each poll that leaves it incomplete, so a backfill that failed is tried again after
the instance's next poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from exporter.aliyun.client import RdsClient
from exporter.duties import Duty
from exporter.failures import failure_of
from exporter.state import FleetState, InstanceState

log = logging.getLogger(__name__)


class Backfill:
    """A queue of (duty, instance) backfills and up to ``workers`` tasks working through it,
    oldest request first; the tasks end when the queue is empty."""

    def __init__(
        self, state: FleetState, client_for: Callable[[InstanceState], RdsClient], workers: int
    ) -> None:
        """``client_for(instance)``: the client for calls about it (the poller's own)."""
        self._state = state
        self._client_for = client_for
        self._workers = max(1, workers)
        self._queue: dict[tuple[str, str], tuple[Duty, InstanceState]] = {}
        self._active: set[tuple[str, str]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._errors: dict[tuple[str, str], str] = {}  # last failure code, logged once per change

    def want(self, duty: Duty, state: InstanceState) -> None:
        """Queues the instance's backfill for ``duty`` unless it is queued or running."""
        key = (duty.name, state.target.instance_id)
        if key in self._queue or key in self._active:
            return
        self._queue[key] = (duty, state)
        while len(self._tasks) < min(self._workers, len(self._queue)):
            task = asyncio.create_task(self._work(), name="backfill")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._queue.clear()
        self._active.clear()

    async def _work(self) -> None:
        while self._queue:
            key = next(iter(self._queue))
            duty, state = self._queue.pop(key)
            if self._state.instances.get(state.target.instance_id) is not state:
                self._errors.pop(key, None)
                continue  # no longer polled
            self._active.add(key)
            try:
                await duty.backfill(self._client_for(state), state)
            except Exception as error:  # logged; tried again after the instance's next poll
                self._report(key, error)
            else:
                if self._errors.pop(key, None) is not None:
                    log.info("instance %s: backfill of older records recovered", key[1])
            finally:
                self._active.discard(key)

    def _report(self, key: tuple[str, str], error: Exception) -> None:
        failure = failure_of(error)
        previous = self._errors.get(key)
        self._errors[key] = failure.code
        if failure.unexpected:
            log.error(
                "instance %s: unexpected error in the backfill of %s",
                key[1],
                key[0],
                exc_info=(type(error), error, error.__traceback__),
            )
        elif previous != failure.code:
            log.warning(
                "instance %s: backfill of older records (%s) failed, tried again after the "
                "next poll: %s",
                key[1],
                key[0],
                failure.message,
            )
