"""infra/schedule.py: Secrets Manager schedule rules and the rotation interval they imply."""

from __future__ import annotations

import pytest

from keyrot.pulumi.schedule import ScheduleError, check_window, parse_schedule, parse_window

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("expression", "min_hours", "max_hours"),
    [
        ("rate(30 days)", 720, 720),
        ("rate(1 day)", 24, 24),
        ("rate(4 hours)", 4, 4),
        ("rate(999 days)", 999 * 24, 999 * 24),
        # Hour increments reset every day: 08:00, 16:00, then 08:00 the next day.
        ("cron(0 8/8 * * ? *)", 8, 16),
        ("cron(0 4/12 * * ? *)", 12, 12),
        ("cron(0 2 ? * MON *)", 168, 168),
        ("cron(0 2 ? * MON-FRI *)", 24, 72),
        # First Sunday of the month: four or five weeks apart.
        ("cron(0 0 ? * SUN#1 *)", 4 * 168, 5 * 168),
        # Last day of the month at 16:00: 28 to 31 days apart.
        ("cron(0 16 L * ? *)", 28 * 24, 31 * 24),
        ("cron(0 3 1 JAN,JUL ? *)", 181 * 24, 184 * 24),
    ],
)
def test_interval_of_valid_schedules(expression: str, min_hours: int, max_hours: int) -> None:
    schedule = parse_schedule(expression)
    assert (schedule.min_interval_hours, schedule.max_interval_hours) == (min_hours, max_hours)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("rate(3 hours)", "Secrets Manager rotates at most every 4 hours, got rate(3 hours)"),
        ("rate(24 hours)", "hour rates go up to 23 hours; use days, got 24"),
        ("rate(0 days)", "rate value must be at least 1, got 0"),
        ("rate(1000 days)", "the longest rotation period is 999 days, got 1000"),
        ("rate(1 week)", "must be rate(N hours|days) or cron(0 H D M W *)"),
        ("cron(30 0 * * ? *)", "cron minutes must be 0, got '30'"),
        ("cron(0 0 * * ? 2027)", "cron year must be '*', got '2027'"),
        ("cron(0 0/3 * * ? *)", "Secrets Manager rotates at most every 4 hours; this cron fires 3 h apart"),
        ("cron(0 0 * * * *)", "cron needs '?' in exactly one of day-of-month and day-of-week"),
        ("cron(0 0 31 2 ? *)", "cron expression never fires twice in four years"),
        ("cron(0 0 15W * ? *)", "cron day-of-month 'W' (nearest weekday) is not supported"),
        ("cron(0 0 1 13 ? *)", "cron month: '13' is outside 1-12"),
    ],
)
def test_invalid_schedules(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(expression)
    assert str(caught.value).startswith(message)


def test_window_rules() -> None:
    assert parse_window("3h") == 3
    with pytest.raises(ScheduleError, match="between 1h and 24h"):
        parse_window("0h")
    # A window may fill the gap between hourly rotations but not exceed it.
    check_window(parse_schedule("rate(6 hours)"), 6)
    with pytest.raises(ScheduleError, match="next rotation window"):
        check_window(parse_schedule("rate(6 hours)"), 7)
    # A daily window must end by midnight UTC.
    check_window(parse_schedule("cron(0 20 * * ? *)"), 4)
    with pytest.raises(ScheduleError, match="next UTC day"):
        check_window(parse_schedule("cron(0 20 * * ? *)"), 5)
