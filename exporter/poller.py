"""Runs every API duty (``exporter.duties``) for every target on a schedule.

One task per target. At each of its poll slots (every ``polling.interval``, each target on its own
phase so the fleet's calls spread over the interval) it runs, in order, the duties that apply to
the instance and are due. All calls share the clients' rate limiter. A duty's failure is turned
into a code (``exporter.failures``), logged once per change of code, and never stops the target's
other duties, nor the other targets.

Readiness first: until every instance has had its first poll, instances run only the duties
``/-/ready`` waits for; the others run as soon as the whole fleet has. A cold start of a large
fleet then answers "are backups recent?" before "to when can we restore?", rather than sharing
the rate limit between both. What a first poll leaves for later (the rest of the lookback) goes
to the backfill (``exporter.backfill``), which only uses the rate nothing else wants.

:func:`plan_load` states what the duties cost, for ``--check-config``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

from exporter.aliyun.client import RdsClient
from exporter.backfill import Backfill
from exporter.clock import Clock
from exporter.config import PollingConfig, format_duration
from exporter.duties import Duty, DutyLoad, Outcome
from exporter.failures import Failure, failure_of
from exporter.schedule import next_slot
from exporter.state import FleetState, InstanceState, Target

log = logging.getLogger(__name__)


class Poller:
    """Runs one task per target; each polls on its own phase so polls spread over the interval."""

    def __init__(
        self,
        state: FleetState,
        clients: Mapping[str, RdsClient],
        polling: PollingConfig,
        clock: Clock,
        duties: Sequence[Duty],
        *,
        on_gone: Callable[[str], None] | None = None,
        backfill_workers: int = 1,
    ) -> None:
        """``on_gone(instance_id)``: called when a retiring target (one discovery no longer
        finds) turns out not to exist any more; its task has ended by then.
        ``backfill_workers``: instances whose backfill runs at once."""
        self._state = state
        self._clients = clients
        self._polling = polling
        self._clock = clock
        self._duties = list(duties)
        self._readiness_duties = [duty for duty in self._duties if duty.gates_readiness]
        self._other_duties = [duty for duty in self._duties if not duty.gates_readiness]
        self._on_gone = on_gone
        self._backfill = Backfill(state, self.client_for, backfill_workers)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # Set once the fleet's first poll has ended (``FleetState.ready``); never cleared.
        self._warm = asyncio.Event()

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
                phase = self._polling.interval * index / count
                self._tasks[target.instance_id] = asyncio.create_task(
                    self._run_instance(target.instance_id, phase),
                    name=f"poll {target.instance_id}",
                )
        self._note_progress()  # a removed target or a first discovery may complete the fleet

    def client_for(self, state: InstanceState) -> RdsClient:
        """The client for calls about one instance, polls and backfill alike: it notes each
        throttled answer on the instance (the status page shows it)."""

        def throttled() -> None:
            state.throttled_at = self._clock.time()

        return self._clients[state.target.account].noting_throttles(throttled)

    def read_all(self, state: InstanceState) -> bool:
        """Every duty that applies to the instance has run once, but those that would not run
        at any time now (after a failed backups poll): what the report waits for."""
        return all(
            state.duty(d.name).ran or not d.is_due(state, state.duty(d.name), math.inf)
            for d in self._duties
            if d.applies_to(state)
        )

    def _note_progress(self) -> None:
        if not self._warm.is_set() and self._state.ready:
            self._warm.set()

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._backfill.stop()

    async def _run_instance(self, instance_id: str, phase: float) -> None:
        # First poll at once (the shared rate limiter paces start-up); after that each instance
        # keeps its own phase so the fleet's polls are spread over the interval, anchored to a
        # monotonic start so slow polls do not drift the schedule.
        interval = self._polling.interval
        anchor = self._clock.monotonic() + phase
        slot = -1  # slot 0 is the phase offset itself, the first poll after this one
        while True:
            state = self._state.instances.get(instance_id)
            if state is None:
                return
            warm = self._warm.is_set()
            outcome = await self.poll(state, self._duties if warm else self._readiness_duties)
            self._note_progress()
            now = self._clock.monotonic()
            slot = next_slot(anchor, interval, slot, now)
            if outcome is not Outcome.GONE and not warm:
                state.next_poll = anchor + slot * interval  # or sooner, once the fleet is warm
                if not await self._warmed_before(state.next_poll):
                    continue  # its next slot came first
                outcome = await self.poll(state, self._other_duties)  # the rest of its slot
                now = self._clock.monotonic()
                slot = next_slot(anchor, interval, slot - 1, now)
            if outcome is Outcome.GONE:
                self._tasks.pop(instance_id, None)
                if self._on_gone is not None:
                    self._on_gone(instance_id)
                return
            state.next_poll = anchor + slot * interval
            await self._clock.sleep(state.next_poll - now)

    async def _warmed_before(self, deadline: float) -> bool:
        """Waits for the fleet's first poll to end, at most until ``deadline`` (monotonic); says
        whether it did."""
        delay = deadline - self._clock.monotonic()
        sleeper = asyncio.ensure_future(self._clock.sleep(delay))
        warmed = asyncio.ensure_future(self._warm.wait())
        try:
            done, _ = await asyncio.wait({sleeper, warmed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            warmed.cancel()
        return warmed in done and sleeper not in done

    async def poll(self, state: InstanceState, duties: Sequence[Duty]) -> Outcome:
        """One poll slot: each of ``duties`` that applies and is due, in order."""
        for duty in duties:
            status = state.duty(duty.name)
            if duty.expired(status, self._clock.monotonic()):
                duty.forget(state)
            due = duty.is_due(state, status, self._clock.monotonic())
            if due and duty.applies_to(state) and await self.run_duty(duty, state) is Outcome.GONE:
                return Outcome.GONE
        state.polled = all(
            state.duty(duty.name).ran
            for duty in self._duties
            if duty.gates_readiness and duty.applies_to(state)
        )
        for duty in duties:
            if duty.needs_backfill(state):
                self._backfill.want(duty, state)
        return Outcome.DONE

    async def run_duty(self, duty: Duty, state: InstanceState) -> Outcome:
        """Runs one duty for one instance; its outcome goes into the instance's state."""
        status = state.duty(duty.name)
        client = self.client_for(state)
        started = self._clock.monotonic()
        failure: Failure | None = None
        try:
            code = await duty.run(client, state, status)
        except Exception as error:  # mapped to a code and logged: a bug must not stop polling
            failure = failure_of(error)
            if duty.failed(state, failure) is Outcome.GONE:
                return Outcome.GONE
            code = failure.code
            self._report(duty, state, failure, status.error, error)
        else:
            if status.error is not None and code is None:
                log.info("instance %s: %s", state.target.instance_id, duty.recovery_text)
        now = self._clock.monotonic()
        duty.finish(state, failure, now - started)
        status.error = code
        status.ran = True
        status.failing = failure is not None
        if failure is None:
            status.succeeded = now
        status.due = duty.next_due(failure, now)
        return Outcome.FAILED if failure is not None else Outcome.DONE

    @staticmethod
    def _report(
        duty: Duty, state: InstanceState, failure: Failure, previous: str | None, error: Exception
    ) -> None:
        """Logs a failure once per change of code, not once per poll; a bug with its traceback."""
        iid = state.target.instance_id
        if failure.unexpected:
            if previous != failure.code:
                log.error(
                    "instance %s: unexpected error in %s",
                    iid,
                    duty.action,
                    exc_info=(type(error), error, error.__traceback__),
                )
        elif previous != failure.code:
            log.warning("instance %s: %s: %s", iid, duty.failure_text, failure.message)
        else:
            log.debug("instance %s: still failing: %s", iid, failure.message)


def plan_load(
    duties: Sequence[Duty], instances: int, polling: PollingConfig, rate_limit: float
) -> list[str]:
    """What the duties cost for ``instances`` instances: a line or two per duty, the total, and
    a note or a warning when the rate limit cannot keep up."""
    loads: list[DutyLoad] = [duty.load(instances, rate_limit) for duty in duties]
    lines = [line for load in loads for line in load.lines]
    per_second = instances * sum(load.calls_per_second for load in loads)
    per_interval = per_second * polling.interval
    capacity = rate_limit * polling.interval
    if len(loads) > 1:
        lines.append(
            f"all duties: about {math.ceil(per_interval)} API calls per interval "
            f"({per_second:.2f}/s against a rate limit of {rate_limit:g}/s)"
        )
    gating = instances * sum(
        load.first_calls for duty, load in zip(duties, loads, strict=True) if duty.gates_readiness
    )
    first_calls = instances * sum(load.first_calls for load in loads)
    backfill = instances * sum(load.backfill_calls for load in loads)
    lines.append(
        f"until every newest backup is known (/-/ready): about "
        f"{format_duration(math.ceil(gating / rate_limit))}, more where newest full backups are "
        "older than a window"
    )
    if backfill:
        # The backfill and the other first reads share what the steady load leaves.
        spare = rate_limit - per_second
        lines.append(
            "until the backfill is complete: "
            + (
                f"about {format_duration(math.ceil((first_calls + backfill) / spare))}"
                if spare > 0
                else "never at this load (see the warning)"
            )
        )
    if per_interval <= capacity < first_calls:
        lines.append(
            f"note: the first reads of every duty take about "
            f"{format_duration(math.ceil(first_calls / rate_limit))}, longer than one interval; "
            "the newest backups come first"
        )
    if per_interval > capacity:
        lines.append(
            f"warning: {math.ceil(per_interval)} calls per interval exceed what rate_limit "
            f"allows ({capacity:g}); polls will fall behind the interval: raise api.rate_limit, "
            "polling.interval or the duties' refreshes"
        )
    return lines
