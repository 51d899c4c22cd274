"""When things run: the time ranges a backup poll reads, and the slots of a periodic task.

Pure functions of the clock's readings and the polling settings; the poller and the discovery
loops share them, and ``--check-config`` plans the API load with the same ones.
"""

from __future__ import annotations

import math

from exporter.config import PollingConfig

MINUTE = 60.0


def floor_minute(epoch: float) -> float:
    return math.floor(epoch / MINUTE) * MINUTE


def ceil_minute(epoch: float) -> float:
    return math.ceil(epoch / MINUTE) * MINUTE


def poll_range(now: float, watermark: float | None, polling: PollingConfig) -> tuple[float, float]:
    """The minute-aligned [start, end] one poll must cover.

    Later polls start at ``watermark - overlap``. When that range is longer than a whole number
    of windows only by scheduling drift (a late wake-up, minute rounding), the overlap gives up
    those few minutes instead of costing one more call, so a steady-state poll is exactly one
    window; the start never moves past the watermark, so no gap can open.
    """
    end = floor_minute(now)
    earliest = floor_minute(now - polling.lookback)
    if watermark is None:
        start = earliest
    else:
        nominal = floor_minute(watermark - polling.effective_overlap)
        tolerance = max(2 * MINUTE, 0.1 * polling.interval)
        whole_windows = max(1, math.ceil((end - nominal - tolerance) / polling.window))
        trimmed = ceil_minute(end - whole_windows * polling.window)
        start = max(nominal, min(trimmed, floor_minute(watermark)), earliest)
    if end <= start:
        # The API wants EndTime after StartTime: re-read the last whole minute rather than ask
        # about the future, so the watermark (this end) never runs ahead of the clock.
        start = end - MINUTE
    return start, end


def window_width(window: float) -> float:
    """The width reads use for ``polling.window``: whole minutes, as the API's times are."""
    return max(MINUTE, floor_minute(window))


def plan_windows(start: float, end: float, window: float) -> list[tuple[float, float]]:
    """Consecutive [start, end] pieces tiling the range, none wider than ``window``."""
    width = window_width(window)
    windows: list[tuple[float, float]] = []
    cursor = start
    while cursor < end:
        stop = min(cursor + width, end)
        windows.append((cursor, stop))
        cursor = stop
    return windows


def next_slot(anchor: float, interval: float, previous: int, now: float) -> int:
    """The first slot ``anchor + k * interval`` after ``previous`` that is still ahead of ``now``.

    Counting slots, rather than dividing elapsed time, keeps a timer that fires a hair early (or
    float rounding) from running the same slot twice; slots missed by a slow poll are skipped.
    """
    slot = max(previous + 1, math.floor((now - anchor) / interval))
    while anchor + slot * interval <= now:
        slot += 1
    return slot


def first_poll_windows(polling: PollingConfig) -> int:
    """Windows (so calls, at one page each) of an instance's first poll."""
    return len(plan_windows(*poll_range(polling.lookback, None, polling), polling.window))


def steady_poll_windows(polling: PollingConfig) -> int:
    """Windows of a later poll, one interval after the one before, planned as the poller
    plans it."""
    _, watermark = poll_range(polling.lookback, None, polling)
    later = polling.lookback + polling.interval
    return len(plan_windows(*poll_range(later, watermark, polling), polling.window))
