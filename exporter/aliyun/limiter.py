"""One process-wide limit on API calls: a request rate and a number in flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from exporter.aliyun.clock import Clock


class RequestLimiter:
    """Spaces request starts ``1/rate`` seconds apart and caps how many run at once.

    Each caller reserves the next free start time before sleeping, so waiting callers are served
    in order and the achieved rate matches the configured one, with no burst at start-up.
    """

    def __init__(self, rate: float, concurrency: int, clock: Clock) -> None:
        if rate <= 0 or concurrency < 1:
            raise ValueError("rate must be > 0 and concurrency >= 1")
        self._interval = 1.0 / rate
        self._clock = clock
        self._next_start = float("-inf")
        self._slots = asyncio.Semaphore(concurrency)

    @property
    def rate(self) -> float:
        return 1.0 / self._interval

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            now = self._clock.monotonic()
            start = max(now, self._next_start)
            self._next_start = start + self._interval
            if start > now:
                await self._clock.sleep(start - now)
            yield
