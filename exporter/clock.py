"""Clocks: wall time for API dates and ages, monotonic time for schedules, and a sleeper.

Everything that reads time takes a ``Clock`` so tests can drive days of polling without waiting.
"""

from __future__ import annotations

import asyncio
import time

from exporter.aliyun.clock import Clock

__all__ = ["Clock", "SystemClock"]


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))
