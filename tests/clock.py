"""A clock for tests that moves only when told to, so days of polling take no real time."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable


class ManualClock:
    """A clock that moves only when told to: ``await clock.advance(3600)``.

    Sleepers wake in deadline order as time passes over their deadlines, and the loop runs
    between wake-ups so woken tasks can act (and sleep again) before time moves on. Wall and
    monotonic time move together.
    """

    def __init__(
        self, start: float = 1_700_000_000.0, *, quiet_when: Callable[[], bool] | None = None
    ) -> None:
        """``quiet_when``: for code that also does real I/O (HTTP over loopback), a test
        that says when everything has gone back to sleeping on this clock; ``advance`` then
        waits (in real time, briefly) for it before moving on."""
        self._wall_offset = start
        self._quiet_when = quiet_when
        self._now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self._wall_offset + self._now

    def monotonic(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        await future

    @property
    def sleeping(self) -> int:
        """How many sleepers are waiting for time to move."""
        return sum(1 for _, _, future in self._sleepers if not future.done())

    async def settle(self, rounds: int = 20) -> None:
        """Lets ready tasks run without moving time."""
        for _ in range(rounds):
            await asyncio.sleep(0)
        if self._quiet_when is None:
            return
        deadline = time.monotonic() + 10.0
        # Real I/O (loopback HTTP) finishes in real time, so this polls rather than waits.
        while not self._quiet_when() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.001)

    async def advance(self, seconds: float, *, settle_rounds: int = 20) -> None:
        """Moves time forward, waking each sleeper at its own deadline on the way."""
        target = self._now + seconds
        await self.settle(settle_rounds)
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            if not future.done():
                future.set_result(None)
            await self.settle(settle_rounds)
        self._now = target
        await self.settle(settle_rounds)
