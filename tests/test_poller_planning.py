"""Which time ranges a poll asks for: minute-aligned, tiled, never wider than the window."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.config import PollingConfig
from exporter.schedule import MINUTE, next_slot, plan_windows, poll_range

DAY = 86400.0
NOW = 1_764_331_234.0  # not minute-aligned on purpose
SETTINGS = PollingConfig(interval=300, lookback=8 * DAY, window=DAY, overlap=DAY - 300)


def test_first_poll_covers_lookback_in_whole_windows() -> None:
    start, end = poll_range(NOW, None, SETTINGS)
    assert end == math.floor(NOW / 60) * 60
    assert end - start == 8 * DAY
    windows = plan_windows(start, end, SETTINGS.window)
    assert len(windows) == 8
    assert all(b - a == DAY for a, b in windows)


@pytest.mark.parametrize("late", [0.0, 1.0, 59.0, 61.0, 90.0])
def test_steady_state_is_one_window_despite_drift(late: float) -> None:
    _, watermark = poll_range(NOW, None, SETTINGS)
    start, end = poll_range(NOW + SETTINGS.interval + late, watermark, SETTINGS)
    assert plan_windows(start, end, SETTINGS.window) == [(start, end)]
    assert end - start <= SETTINGS.window
    # No gap after the watermark, and the re-read reaches back nearly a whole window.
    assert start <= watermark
    assert watermark - start >= SETTINGS.overlap - 3 * MINUTE


def test_after_outage_the_range_grows_to_cover_the_gap() -> None:
    _, watermark = poll_range(NOW, None, SETTINGS)
    later = NOW + 3 * DAY
    start, end = poll_range(later, watermark, SETTINGS)
    assert start == math.floor((watermark - SETTINGS.overlap) / 60) * 60
    windows = plan_windows(start, end, SETTINGS.window)
    assert len(windows) == 4
    assert max(b - a for a, b in windows) <= DAY


def test_outage_longer_than_lookback_is_clamped_to_lookback() -> None:
    _, watermark = poll_range(NOW, None, SETTINGS)
    later = NOW + 30 * DAY
    start, end = poll_range(later, watermark, SETTINGS)
    assert end - start == 8 * DAY


def test_explicit_larger_overlap_is_honoured() -> None:
    settings = PollingConfig(interval=300, lookback=8 * DAY, window=DAY, overlap=2 * DAY)
    _, watermark = poll_range(NOW, None, settings)
    start, _ = poll_range(NOW + 300, watermark, settings)
    assert start <= watermark - 2 * DAY


def test_tiny_interval_never_asks_about_the_future() -> None:
    settings = PollingConfig(interval=1, lookback=DAY, window=3600, overlap=0)
    _, watermark = poll_range(NOW, None, settings)
    for step in range(1, 200):  # three minutes of one-second polls
        now = NOW + step
        start, end = poll_range(now, watermark, settings)
        assert end > start
        assert start % 60 == 0 and end % 60 == 0
        assert end <= now  # so the watermark can never pass the clock
        assert start <= watermark  # and no gap opens behind it
        watermark = end


@given(
    start_minutes=st.integers(min_value=0, max_value=10_000_000),
    length_minutes=st.integers(min_value=1, max_value=100_000),
    window_minutes=st.integers(min_value=1, max_value=10_000),
)
def test_windows_tile_exactly(start_minutes: int, length_minutes: int, window_minutes: int) -> None:
    start = start_minutes * MINUTE
    end = start + length_minutes * MINUTE
    windows = plan_windows(start, end, window_minutes * MINUTE)
    assert windows[0][0] == start
    assert windows[-1][1] == end
    for (_, b), (c, _) in itertools.pairwise(windows):
        assert b == c
    for a, b in windows:
        assert 0 < b - a <= window_minutes * MINUTE
        assert a % MINUTE == 0 and b % MINUTE == 0


@given(
    now=st.floats(min_value=1e9, max_value=2e9),
    elapsed=st.floats(min_value=1, max_value=40 * DAY),
    interval_min=st.integers(min_value=1, max_value=120),
)
def test_ranges_never_leave_a_gap(now: float, elapsed: float, interval_min: int) -> None:
    settings = PollingConfig(
        interval=interval_min * MINUTE,
        lookback=8 * DAY,
        window=DAY,
        overlap=DAY - interval_min * MINUTE,
    )
    _, watermark = poll_range(now, None, settings)
    start, end = poll_range(now + elapsed, watermark, settings)
    assert start <= max(watermark, end - settings.lookback)
    assert start < end <= now + elapsed
    for a, b in plan_windows(start, end, settings.window):
        assert b - a <= settings.window


def test_next_slot_never_repeats_a_slot_and_skips_missed_ones() -> None:
    anchor, interval = 132.6, 300.0
    # Woken a hair before the deadline (float rounding, an early timer): still the next slot.
    assert next_slot(anchor, interval, 3, anchor + 3 * interval - 1e-9) == 4
    # The phase slot right after start-up.
    assert next_slot(anchor, interval, -1, 0.5) == 0
    # A poll that overran two slots skips them.
    assert next_slot(anchor, interval, 1, anchor + 3.5 * interval) == 4


@given(
    anchor=st.floats(min_value=0, max_value=1e6),
    interval=st.floats(min_value=1, max_value=1e4),
    slot=st.integers(min_value=0, max_value=10_000),
    late=st.floats(min_value=-1e-6, max_value=1e4),
)
def test_next_slot_is_always_ahead(anchor: float, interval: float, slot: int, late: float) -> None:
    now = anchor + slot * interval + late
    chosen = next_slot(anchor, interval, slot, now)
    assert chosen > slot
    assert anchor + chosen * interval > now
    assert anchor + (chosen - 1) * interval <= now or chosen == slot + 1
