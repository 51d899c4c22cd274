"""Reading a backup policy: weekdays, the UTC window, the expected interval between backups."""

from __future__ import annotations

import itertools
from calendar import timegm
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.aliyun.models import parse_backup_policy
from exporter.policy import (
    DAY,
    WEEKDAYS,
    PolicySummary,
    Schedule,
    expected_interval_seconds,
    longest_gap_days,
    next_backup_time,
    parse_period,
    parse_schedule,
    parse_window,
    summarize_policy,
    weekday_of,
)
from exporter.simulator import FORBIDDEN_RAM, Faults, Fleet
from tests.harness import INTERVAL, Samples, key, running

HOUR = 3600
NOW_MONDAY = float(timegm((2025, 12, 1, 12, 0, 0, 0, 0, 0)))  # Monday 2025-12-01T12:00Z


def period(*days: int) -> str:
    return ",".join(WEEKDAYS[day] for day in days)


# ----- PreferredBackupPeriod --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Monday", {0}),
        ("Monday,Thursday", {0, 3}),
        ("Monday,Wednesday,Friday,Sunday", {0, 2, 4, 6}),
        (period(*range(7)), set(range(7))),
        ("sunday, MONDAY", {6, 0}),  # any case, spaces around items
        ("Mon,Tue", {0, 1}),  # three-letter names
        ("Friday,Friday", {4}),
        ("Monday,", {0}),  # a trailing comma is harmless
    ],
)
def test_period_parses(text: str, expected: set[int]) -> None:
    assert parse_period(text) == frozenset(expected)


@pytest.mark.parametrize("text", ["", " ", ",", "Moonday", "Monday,Funday", "1,2", "Monday;Friday"])
def test_malformed_period_is_none(text: str) -> None:
    assert parse_period(text) is None


# ----- PreferredBackupTime ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "width"),
    [
        ("15:00Z-16:00Z", 15 * HOUR, HOUR),
        ("00:00Z-01:00Z", 0, HOUR),
        ("02:30Z-03:00Z", 2 * HOUR + 1800, 1800),
        ("01:00Z-05:00Z", HOUR, 4 * HOUR),
        ("23:00Z-01:00Z", 23 * HOUR, 2 * HOUR),  # wraps past midnight
        ("23:00Z-00:00Z", 23 * HOUR, HOUR),  # ends at midnight
        ("22:30Z-00:15Z", 22 * HOUR + 1800, HOUR + 2700),
        ("00:01Z-00:00Z", 60, DAY - 60),  # the widest window there is
        ("15:00-16:00", 15 * HOUR, HOUR),  # without the Z
        (" 7:00Z - 8:00Z ", 7 * HOUR, HOUR),
    ],
)
def test_window_parses(text: str, start: int, width: int) -> None:
    assert parse_window(text) == (start, width)


@pytest.mark.parametrize(
    "text",
    ["", "15:00Z", "15:00Z-15:00Z", "24:00Z-01:00Z", "15:60Z-16:00Z", "1500-1600", "a-b", "-"],
)
def test_malformed_window_is_none(text: str) -> None:
    assert parse_window(text) is None


# ----- Expected interval ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "gap"),
    [
        ({0}, 7),  # one day a week
        ({3}, 7),
        ({6}, 7),
        (set(range(7)), 1),  # daily
        ({0, 3}, 4),  # Monday, Thursday: Thursday -> Monday is four days
        ({0, 1}, 6),  # Monday, Tuesday: six days back to Monday
        ({0, 6}, 6),  # Sunday -> Monday is one day; Monday -> Sunday six
        ({0, 2, 4, 6}, 2),
        ({1, 3, 5}, 3),  # Saturday -> Tuesday
        ({0, 1, 2, 3, 4}, 3),  # weekdays only: Friday -> Monday
        ({5, 6}, 6),  # weekends only
        ({0, 1, 2, 3, 4, 5}, 2),  # all but Sunday
    ],
)
def test_longest_gap(days: set[int], gap: int) -> None:
    assert longest_gap_days(days) == gap


def test_every_day_combination_matches_a_walk_through_two_weeks() -> None:
    for size in range(1, 8):
        for days in itertools.combinations(range(7), size):
            assert longest_gap_days(days) == brute_force_gap(set(days)), days


def brute_force_gap(days: set[int]) -> int:
    """Walk day by day through two weeks and measure the longest wait for the next backup."""
    scheduled = [d for d in range(21) if d % 7 in days]
    return max(b - a for a, b in itertools.pairwise(scheduled) if a < 14)


def test_issue_example_monday_thursday_is_four_days_plus_the_window() -> None:
    schedule = parse_schedule("Monday,Thursday", "15:00Z-16:00Z")
    assert schedule is not None
    assert schedule.expected_interval == 4 * DAY + HOUR


def test_one_day_a_week_with_a_window_past_midnight() -> None:
    schedule = parse_schedule("Sunday", "23:00Z-01:00Z")
    assert schedule == Schedule(frozenset({6}), 23 * HOUR, 2 * HOUR)
    assert schedule.expected_interval == 7 * DAY + 2 * HOUR


@pytest.mark.parametrize("days", [set(), {7}, {-1}])
def test_longest_gap_refuses_impossible_days(days: set[int]) -> None:
    with pytest.raises(ValueError):
        longest_gap_days(days)


weekday_sets = st.sets(st.integers(0, 6), min_size=1).map(frozenset)
widths = st.integers(60, DAY - 60)


@pytest.mark.slow
@settings(derandomize=True, database=None, max_examples=300)
@given(weekday_sets, widths)
def test_expected_interval_is_between_a_day_and_a_week_plus_the_window(
    days: frozenset[int], width: int
) -> None:
    interval = expected_interval_seconds(days, width)
    assert DAY + width <= interval <= 7 * DAY + width
    assert (interval - width) % DAY == 0


@pytest.mark.slow
@settings(derandomize=True, database=None, max_examples=300)
@given(weekday_sets, widths, st.integers(0, 6))
def test_expected_interval_ignores_which_day_the_week_starts(
    days: frozenset[int], width: int, shift: int
) -> None:
    rotated = frozenset((day + shift) % 7 for day in days)
    assert expected_interval_seconds(rotated, width) == expected_interval_seconds(days, width)


@pytest.mark.slow
@settings(derandomize=True, database=None, max_examples=300)
@given(weekday_sets, widths)
def test_expected_interval_equals_brute_force(days: frozenset[int], width: int) -> None:
    assert expected_interval_seconds(days, width) == brute_force_gap(set(days)) * DAY + width


@pytest.mark.slow
@settings(derandomize=True, database=None, max_examples=300)
@given(weekday_sets, st.integers(0, 6), widths)
def test_adding_a_day_never_makes_the_interval_longer(
    days: frozenset[int], extra: int, width: int
) -> None:
    more = days | {extra}
    assert expected_interval_seconds(more, width) <= expected_interval_seconds(days, width)


@pytest.mark.slow
@settings(derandomize=True, database=None, max_examples=300)
@given(weekday_sets, st.integers(0, 23), st.integers(1, 23), st.integers(0, 4 * 7 * DAY))
def test_real_backups_never_drift_further_apart_than_the_interval(
    days: frozenset[int], start_hour: int, width_hours: int, offset: int
) -> None:
    """Backups at the latest and earliest moments of their windows stay within the interval."""
    window = f"{start_hour:02d}:00Z-{(start_hour + width_hours) % 24:02d}:00Z"
    schedule = parse_schedule(period(*sorted(days)), window)
    assert schedule is not None
    first = schedule.next_window_start(NOW_MONDAY + offset)
    after = schedule.next_window_start(first)
    # The first backup started as early as it could, the next as late as it could.
    assert (after + schedule.window_width) - first <= schedule.expected_interval


# ----- Next window ------------------------------------------------------------------------------


def test_weekday_of_epoch_days() -> None:
    assert weekday_of(0) == 3  # 1970-01-01 was a Thursday
    assert weekday_of(int(NOW_MONDAY // DAY)) == 0


@pytest.mark.parametrize(
    ("period_text", "window", "expected"),
    [
        ("Monday", "15:00Z-16:00Z", (2025, 12, 1, 15)),  # later today
        ("Monday", "10:00Z-11:00Z", (2025, 12, 8, 10)),  # passed: next week
        ("Tuesday,Friday", "02:00Z-03:00Z", (2025, 12, 2, 2)),
        ("Sunday", "23:00Z-01:00Z", (2025, 12, 7, 23)),
    ],
)
def test_next_window_start(period_text: str, window: str, expected: tuple[int, ...]) -> None:
    schedule = parse_schedule(period_text, window)
    assert schedule is not None
    year, month, day, hour = expected
    assert schedule.next_window_start(NOW_MONDAY) == timegm((year, month, day, hour, 0, 0))


def test_next_backup_prefers_the_api_while_it_is_ahead() -> None:
    schedule = parse_schedule("Monday", "15:00Z-16:00Z")
    api_time = NOW_MONDAY + 3 * HOUR + 900  # 15:15
    summary = PolicySummary(schedule, 7, True, api_time)
    assert next_backup_time(summary, NOW_MONDAY) == api_time
    # Once it has passed, the schedule says when the next one is due.
    assert next_backup_time(summary, api_time + 60) == NOW_MONDAY + 7 * DAY + 3 * HOUR
    assert next_backup_time(PolicySummary(None, 7, True, api_time), api_time + 60) is None


# ----- The API's answer -------------------------------------------------------------------------


def test_summary_of_a_full_answer() -> None:
    policy = parse_backup_policy(
        {
            "PreferredBackupPeriod": "Monday,Thursday",
            "PreferredBackupTime": "23:00Z-01:00Z",
            "BackupRetentionPeriod": 14,
            "EnableBackupLog": "1",
            "PreferredNextBackupTime": "2025-12-04T23:12Z",
            "RequestId": "x",
        }
    )
    summary = summarize_policy(policy)
    assert summary.schedule == Schedule(frozenset({0, 3}), 23 * HOUR, 2 * HOUR)
    assert summary.schedule.expected_interval == 4 * DAY + 2 * HOUR
    assert summary.retention_days == 14
    assert summary.log_backup_enabled is True
    assert summary.next_backup_time == timegm((2025, 12, 4, 23, 12, 0))


def test_summary_of_an_unreadable_answer_leaves_values_out() -> None:
    policy = parse_backup_policy(
        {
            "PreferredBackupPeriod": "Someday",
            "PreferredBackupTime": "15:00Z-16:00Z",
            "BackupRetentionPeriod": "seven",
            "EnableBackupLog": "maybe",
        }
    )
    summary = summarize_policy(policy)
    assert summary == PolicySummary(None, None, None, None)
    assert summarize_policy(parse_backup_policy({})) == PolicySummary(None, None, None, None)


# ----- End to end: the exporter's policy metrics against the simulator's ground truth -----------


def set_policies(fleet: Fleet, faults: Faults) -> None:
    """Besides the drawn policies: one day a week, a window past midnight, twice a week."""
    ids = list(fleet.instances)
    policy = fleet.instance(ids[0]).policy
    fleet.set_policy(ids[0], replace(policy, weekdays=frozenset({2}), window_start_hour=23))
    fleet.set_policy(ids[1], replace(policy, weekdays=frozenset({0, 3}), log_backup=False))
    fleet.set_policy(ids[2], replace(policy, weekdays=frozenset(range(7)), retention_days=30))


def policy_samples(samples: Samples, name: str) -> dict[str, float]:
    return {dict(k)["instance_id"]: v for k, v in samples.get(name, {}).items()}


async def test_policy_metrics_match_the_simulator() -> None:
    async with running(instances=8, prepare=set_policies) as h:
        samples = await h.scrape()
        fetched = h.clock.time()  # within the first virtual second
        intervals = policy_samples(samples, "aliyun_rds_backup_policy_expected_interval_seconds")
        retention = policy_samples(samples, "aliyun_rds_backup_policy_retention_days")
        log_backup = policy_samples(samples, "aliyun_rds_backup_policy_log_backup_enabled")
        upcoming = policy_samples(samples, "aliyun_rds_backup_policy_next_backup_timestamp_seconds")
        assert set(intervals) == set(h.fleet.instances)
        for iid, instance in h.fleet.instances.items():
            truth = instance.policy
            assert intervals[iid] == truth.longest_gap_seconds() + HOUR  # one-hour windows
            assert retention[iid] == truth.retention_days
            # SQL Server backs its logs up even when the policy says "off" (every 30 minutes
            # or with each data backup), so the exporter never reports it off there.
            logs_run = truth.log_backup or instance.engine == "SQLServer"
            assert log_backup[iid] == (1 if logs_run else 0)
            due = h.fleet.next_full_backup(iid, fetched)
            assert due is not None
            assert upcoming[iid] == due // 60 * 60  # the API gives minutes
        ids = list(h.fleet.instances)
        assert intervals[ids[0]] == 7 * DAY + HOUR
        assert intervals[ids[1]] == 4 * DAY + HOUR
        assert intervals[ids[2]] == DAY + HOUR
        # One DescribeBackupPolicy per instance, after its first poll, none since.
        asked = [r for r in h.sim.requests if r.action == "DescribeBackupPolicy"]
        assert sorted(r.instance_id for r in asked) == sorted(ids)
        # Without a BackupPolicyMode, one answer holds the data and the log backup fields.
        assert all("BackupPolicyMode" not in r.params for r in asked)


async def test_policy_is_refreshed_slowly_and_its_failures_stay_out_of_collection() -> None:
    async with running(instances=3, policy_refresh="1h") as h:
        ids = list(h.fleet.instances)
        before = await h.scrape()
        name = "aliyun_rds_backup_policy_expected_interval_seconds"
        assert set(policy_samples(before, name)) == set(ids)
        policy_api = h.sim.faults.for_action("DescribeBackupPolicy")
        policy_api.forced_error = FORBIDDEN_RAM
        changed = ids[0]
        policy = h.fleet.instance(changed).policy
        h.fleet.set_policy(changed, replace(policy, weekdays=frozenset({4})))
        h.sim.clear_requests()
        await h.advance(HOUR + INTERVAL)  # due an hour after the last read, at the next poll
        during = await h.scrape()
        # The last policy read stays; the backup collection is not marked failed.
        assert policy_samples(during, name) == policy_samples(before, name)
        for iid in ids:
            assert during["aliyun_rds_backup_collect_success"][key(instance_id=iid)] == 1
        asked = [r for r in h.sim.requests if r.action == "DescribeBackupPolicy"]
        assert sorted(r.instance_id for r in asked) == sorted(ids)  # once each
        await h.advance(HOUR - INTERVAL)
        # A permanent error is not retried at each of the 24 polls: it waits for the next
        # hourly refresh.
        asked = [r for r in h.sim.requests if r.action == "DescribeBackupPolicy"]
        assert all(sum(r.instance_id == iid for r in asked) <= 2 for iid in ids)
        requests = (await h.scrape())["aliyun_rds_api_requests_total"]
        assert requests[key(action="DescribeBackupPolicy", code="Forbidden.RAM")] == len(asked)
        policy_api.forced_error = None
        await h.advance(HOUR)  # the next hourly refresh reads the new policy
        after = await h.scrape()
        assert policy_samples(after, name)[changed] == 7 * DAY + HOUR


async def test_throttled_policy_reads_are_retried_at_the_next_poll() -> None:
    def prepare(fleet: Fleet, faults: Faults) -> None:
        faults.for_action("DescribeBackupPolicy").outage = True

    async with running(instances=2, prepare=prepare, api={"retries": 0}) as h:
        samples = await h.scrape()
        assert (
            "aliyun_rds_backup_policy_expected_interval_seconds" not in samples
            or not (samples["aliyun_rds_backup_policy_expected_interval_seconds"])
        )
        h.sim.faults.for_action("DescribeBackupPolicy").outage = False
        await h.advance(INTERVAL)  # not six hours: a server error is retried at the next poll
        samples = await h.scrape()
        name = "aliyun_rds_backup_policy_expected_interval_seconds"
        assert set(policy_samples(samples, name)) == set(h.fleet.instances)


async def test_policy_refresh_zero_never_asks() -> None:
    async with running(instances=2, policy_refresh="0") as h:
        await h.advance(INTERVAL)
        assert not [r for r in h.sim.requests if r.action == "DescribeBackupPolicy"]
        samples = await h.scrape()
        assert (
            "aliyun_rds_backup_policy_retention_days" not in samples
            or not (samples["aliyun_rds_backup_policy_retention_days"])
        )
