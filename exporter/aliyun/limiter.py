"""One process-wide limit on API calls: a request rate and a number in flight, with a
background lane that only uses what nothing else wants."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from exporter.aliyun.clock import Clock

# How far ahead the background lane may take a start at high rates (one start at low ones).
BACKGROUND_HORIZON = 0.05


class RequestLimiter:
    """Spaces request starts ``1/rate`` seconds apart and caps how many run at once.

    Each caller reserves the next free start time before sleeping, so waiting callers are served
    in order and the achieved rate matches the configured one, with no burst at start-up.

    A *background* call (the backfill of an instance's older backups) waits until the starts
    already taken run out within a short horizon (one start, or 50 ms at high rates) and a slot
    is free, then takes the next start like any other: while the other calls keep the rate busy
    it never gets one, and a call that comes after it waits at most that horizon longer. The
    horizon lets a busy event loop wake late without losing the starts nothing else wanted.
    Every waiter sleeps on the clock, so a test's manual clock sees them.
    """

    def __init__(self, rate: float, concurrency: int, clock: Clock) -> None:
        if rate <= 0 or concurrency < 1:
            raise ValueError("rate must be > 0 and concurrency >= 1")
        self._interval = 1.0 / rate
        self._horizon = max(self._interval, BACKGROUND_HORIZON)
        self._clock = clock
        self._next_start = float("-inf")
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight = 0
        # One background call at a time looks for a spare start; the rest queue here, off the
        # clock, so many backfill workers cost one wake-up per start, not one each.
        self._background_turn = asyncio.Lock()

    @property
    def in_flight(self) -> int:
        """Calls past their start time and not yet done: the ones waiting on the network."""
        return self._in_flight

    @property
    def rate(self) -> float:
        return 1.0 / self._interval

    @asynccontextmanager
    async def slot(self, *, background: bool = False) -> AsyncIterator[None]:
        if background:
            async with self._background_turn:
                await self._wait_for_spare()
                start = self._reserve()  # before the turn passes on, or the next takes it too
                await self._slots.acquire()
        else:
            await self._slots.acquire()
            start = self._reserve()
        try:
            now = self._clock.monotonic()
            if start > now:
                await self._clock.sleep(start - now)
            self._in_flight += 1
            try:
                yield
            finally:
                self._in_flight -= 1
        finally:
            self._slots.release()

    def _reserve(self) -> float:
        """The next free start time, now taken."""
        start = max(self._clock.monotonic(), self._next_start)
        self._next_start = start + self._interval
        return start

    async def _wait_for_spare(self) -> None:
        """Until the starts taken end within the horizon and a slot is free (sleeping until
        the queue is that short, without spinning)."""
        while True:
            now = self._clock.monotonic()
            ahead = self._next_start - now
            if ahead <= self._horizon and not self._slots.locked():
                return
            await self._clock.sleep(max(ahead - self._horizon, self._interval))
