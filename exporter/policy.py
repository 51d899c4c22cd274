"""An instance's backup schedule, read from DescribeBackupPolicy. Pure functions, no I/O.

RDS takes a full backup on each day listed in ``PreferredBackupPeriod`` (``Monday,Thursday``),
starting somewhere inside the UTC window ``PreferredBackupTime`` (``15:00Z-16:00Z``). The longest
a healthy instance can go between two backups is therefore the longest gap between consecutive
scheduled days, plus the width of the window (one backup starts at the very beginning of the
window, the next at its very end). That is the expected interval the staleness alert scales.

Anything that cannot be read leaves the value out (None): no guessing, no sentinel values.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from exporter.aliyun.models import BackupPolicy

DAY = 86400
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAY_NUMBERS = {
    **{name.lower(): number for number, name in enumerate(WEEKDAYS)},
    **{name[:3].lower(): number for number, name in enumerate(WEEKDAYS)},
}
_WINDOW_RE = re.compile(r"(\d{1,2}):(\d{2})Z?-(\d{1,2}):(\d{2})Z?")


@dataclass(frozen=True)
class Schedule:
    """Scheduled full backups: on these weekdays (0 = Monday), in a UTC window of the day."""

    weekdays: frozenset[int]
    window_start: int
    """Seconds after midnight UTC."""
    window_width: int
    """Seconds, 60..86340; the window may run past midnight."""

    @property
    def expected_interval(self) -> float:
        """The longest time between two scheduled backups, window width included."""
        return expected_interval_seconds(self.weekdays, self.window_width)

    def next_window_start(self, after: float) -> float:
        """The first scheduled window start strictly after ``after`` (epoch seconds)."""
        day = int(after // DAY)
        for offset in range(8):
            candidate = (day + offset) * DAY + self.window_start
            if candidate > after and weekday_of(day + offset) in self.weekdays:
                return float(candidate)
        raise AssertionError("a non-empty weekday set repeats within eight days")


@dataclass(frozen=True, slots=True)
class PolicySummary:
    """What the exporter keeps of one DescribeBackupPolicy answer."""

    schedule: Schedule | None
    retention_days: int | None
    log_backup_enabled: bool | None
    next_backup_time: float | None
    """PreferredNextBackupTime as the API gave it (epoch seconds)."""
    log_retention_days: int | None = None
    log_backup_interval: float | None = None
    """Seconds between log backups, where the policy says (SQL Server): the recovery-point
    lag the policy implies."""


def weekday_of(epoch_day: int) -> int:
    """Weekday (0 = Monday) of a day counted from 1970-01-01, which was a Thursday."""
    return (epoch_day + 3) % 7


def parse_period(text: str) -> frozenset[int] | None:
    """``Monday,Wednesday`` -> {0, 2}. Full or three-letter names, any case; None when empty
    or when any item is not a weekday (a half-understood schedule would mislead)."""
    days: set[int] = set()
    for item in text.split(","):
        name = item.strip().lower()
        if not name:
            continue
        number = _DAY_NUMBERS.get(name)
        if number is None:
            return None
        days.add(number)
    return frozenset(days) or None


def parse_window(text: str) -> tuple[int, int] | None:
    """``15:00Z-16:00Z`` -> (start, width) in seconds. ``23:00Z-01:00Z`` wraps past midnight
    (two hours wide). None when malformed or when start and end are the same time."""
    match = _WINDOW_RE.fullmatch("".join(text.split()))
    if match is None:
        return None
    start_hour, start_minute, end_hour, end_minute = (int(part) for part in match.groups())
    if start_hour > 23 or end_hour > 23 or start_minute > 59 or end_minute > 59:
        return None
    start = start_hour * 3600 + start_minute * 60
    end = end_hour * 3600 + end_minute * 60
    width = (end - start) % DAY
    if width == 0:
        return None  # an empty window, or a whole day: the API never sends either
    return start, width


def longest_gap_days(weekdays: Iterable[int]) -> int:
    """The most days from one scheduled day to the next (7 with one day a week).

    Raises ValueError for an empty set or a day outside 0..6.
    """
    days = sorted(set(weekdays))
    if not days or days[0] < 0 or days[-1] > 6:
        raise ValueError("weekdays must be a non-empty subset of 0..6")
    following = [*days[1:], days[0] + 7]
    return max(after - before for before, after in zip(days, following, strict=True))


def expected_interval_seconds(weekdays: Iterable[int], window_width: float) -> float:
    """Longest gap between consecutive scheduled days, plus the window's width."""
    return float(longest_gap_days(weekdays) * DAY + window_width)


def parse_schedule(period: str, window: str) -> Schedule | None:
    weekdays = parse_period(period)
    parsed_window = parse_window(window)
    if weekdays is None or parsed_window is None:
        return None
    start, width = parsed_window
    return _schedule(weekdays, start, width)


@functools.lru_cache(maxsize=1024)
def _schedule(weekdays: frozenset[int], start: int, width: int) -> Schedule:
    """One Schedule for all the instances that have it (a fleet has a few schedules, and
    each one is some 500 bytes with its weekday set)."""
    return Schedule(weekdays=weekdays, window_start=start, window_width=width)


def summarize_policy(policy: BackupPolicy, engine: str = "") -> PolicySummary:
    retention = policy.retention_days
    log_retention = policy.log_retention_days
    schedule = parse_schedule(policy.preferred_backup_period, policy.preferred_backup_time)
    enabled, interval = policy.log_backup_enabled, None
    if engine.lower() == "sqlserver":
        enabled, interval = sql_server_log_backups(policy, schedule)
    return PolicySummary(
        schedule=schedule,
        retention_days=retention if retention is not None and retention >= 0 else None,
        log_backup_enabled=enabled,
        next_backup_time=policy.next_backup_time,
        log_retention_days=log_retention
        if log_retention is not None and log_retention > 0
        else None,
        log_backup_interval=interval,
    )


def sql_server_log_backups(
    policy: BackupPolicy, schedule: Schedule | None
) -> tuple[bool | None, float | None]:
    """Whether SQL Server backs up its logs, and how often. Its EnableBackupLog (and BackupLog)
    say "on" only for log backups every 5 minutes, and "off" for the other frequencies, which
    still back logs up: every 30 minutes (LogBackupFrequency LogInterval, or the minutes of
    BackupInterval), or with each data backup."""
    if policy.log_backup_enabled:
        return True, 300.0
    minutes = policy.backup_interval_minutes
    if minutes is not None and minutes > 0:
        return True, minutes * 60.0
    if policy.log_backup_frequency == "LogInterval":
        return True, 1800.0
    if policy.log_backup_enabled is None and not policy.log_backup_frequency:
        return None, None  # the answer says nothing about log backups
    return True, schedule.expected_interval if schedule is not None else None


def next_backup_time(summary: PolicySummary, now: float) -> float | None:
    """When the next scheduled backup is due, as of ``now``.

    The API's PreferredNextBackupTime while it is still ahead; once it has passed (policies are
    refreshed only every few hours) the start of the next scheduled window; None when neither
    is known.
    """
    if summary.next_backup_time is not None and summary.next_backup_time > now:
        return summary.next_backup_time
    if summary.schedule is not None:
        return summary.schedule.next_window_start(now)
    return None
