"""Clocks: wall time for API dates and ages, monotonic time for schedules, and a sleeper.

Everything that reads time takes a ``Clock`` so tests can drive days of polling without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

from exporter.aliyun.clock import Clock

__all__ = ["Clock", "SystemClock"]


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> Coroutine[Any, Any, None]:
        # asyncio.sleep's own coroutine, not one around it: a frame less for each of the
        # fleet's poll tasks, which spend their lives asleep.
        return asyncio.sleep(max(0.0, seconds))
