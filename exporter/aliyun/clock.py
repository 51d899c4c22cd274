"""The time the API client needs: wall time to sign requests, monotonic time to pace them, and
a sleep it can wait on. A protocol, so that the caller passes its own clock (and tests a fake)."""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock time, epoch seconds."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    async def sleep(self, seconds: float) -> None: ...
