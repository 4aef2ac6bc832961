"""Secrets Manager rotation schedules: parse `rate(...)` / `cron(...)`, check AWS's rules, measure the interval.

Plain functions, no Pulumi. The interval drives three settings: the grace period must be shorter than the shortest
gap between rotations, and the key-age alarm and the default OpenAI-side key expiry must outlast the longest gap.

AWS's rules (Secrets Manager user guide, "Rotation schedules"): rate units are hour(s) or day(s); rotation may happen
at most every four hours; the longest rate is 999 days; cron minutes must be 0 and year must be `*`; the rotation
window (`Duration`, e.g. `3h`, 1-24 hours) must end before the next window and before the end of the UTC day.
"""

from __future__ import annotations

import calendar
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

MIN_INTERVAL_HOURS = 4
MAX_RATE_DAYS = 999
# [unconfirmed] Hour rates above 23 are not documented; 23 is the largest any public example uses.
MAX_RATE_HOURS = 23

_RATE = re.compile(r"^rate\((?P<value>[0-9]{1,6}) (?P<unit>hours?|days?)\)$")
_CRON = re.compile(r"^cron\((?P<body>[^()]+)\)$")
_WINDOW = re.compile(r"^(?P<hours>[0-9]{1,2})h$")
_MONTHS = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
# AWS cron: 1 = SUN ... 7 = SAT.
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
# Long enough to see every monthly and weekday pattern, leap years included.
_SIMULATION_START = date(2027, 1, 1)
_SIMULATION_DAYS = 4 * 366


class ScheduleError(ValueError):
    """The expression breaks a Secrets Manager rule; the message says which."""


@dataclass(frozen=True)
class RotationSchedule:
    expression: str
    # Shortest and longest gap between two scheduled rotation windows, in hours.
    min_interval_hours: int
    max_interval_hours: int
    # UTC hours at which windows open (rate expressions open at midnight).
    start_hours: tuple[int, ...]


def parse_schedule(expression: str) -> RotationSchedule:
    expression = expression.strip()
    rate = _RATE.match(expression)
    if rate:
        return _parse_rate(expression, int(rate.group("value")), rate.group("unit"))
    cron = _CRON.match(expression)
    if cron:
        return _parse_cron(expression, cron.group("body"))
    raise ScheduleError("must be rate(N hours|days) or cron(0 H D M W *)")


def parse_window(text: str) -> int:
    match = _WINDOW.match(text.strip())
    if not match:
        raise ScheduleError("must be a whole number of hours such as '3h'")
    hours = int(match.group("hours"))
    if not 1 <= hours <= 24:
        raise ScheduleError(f"must be between 1h and 24h, got {hours}h")
    return hours


def check_window(schedule: RotationSchedule, window_hours: int) -> None:
    if window_hours > schedule.min_interval_hours:
        raise ScheduleError(
            f"the {window_hours}h window would run into the next rotation window "
            f"({schedule.min_interval_hours} h apart)"
        )
    late = max(schedule.start_hours)
    if late + window_hours > 24:
        raise ScheduleError(f"the {window_hours}h window opening at {late:02d}:00 UTC would run into the next UTC day")


def _parse_rate(expression: str, value: int, unit: str) -> RotationSchedule:
    if value < 1:
        raise ScheduleError(f"rate value must be at least 1, got {value}")
    if unit.startswith("hour"):
        if value < MIN_INTERVAL_HOURS:
            raise ScheduleError(
                f"Secrets Manager rotates at most every {MIN_INTERVAL_HOURS} hours, got rate({value} {unit})"
            )
        if value > MAX_RATE_HOURS:
            raise ScheduleError(f"hour rates go up to {MAX_RATE_HOURS} hours; use days, got {value}")
        # "For a rate in hours ... the rotation window [must be] less than or equal to the number of hours between
        # rotations": the UTC-day rule applies to daily schedules only, so report one window start at midnight.
        return RotationSchedule(expression, value, value, (0,))
    if value > MAX_RATE_DAYS:
        raise ScheduleError(f"the longest rotation period is {MAX_RATE_DAYS} days, got {value}")
    hours = value * 24
    return RotationSchedule(expression, hours, hours, (0,))


def _parse_cron(expression: str, body: str) -> RotationSchedule:
    fields = body.split()
    if len(fields) != 6:
        raise ScheduleError(
            f"cron needs 6 fields (minutes hours day-of-month month day-of-week year), got {len(fields)}"
        )
    minutes, hours_field, dom, month, dow, year = fields
    if minutes != "0":
        raise ScheduleError(f"cron minutes must be 0, got {minutes!r}")
    if year != "*":
        raise ScheduleError(f"cron year must be '*', got {year!r}")
    if (dom == "?") == (dow == "?"):
        raise ScheduleError("cron needs '?' in exactly one of day-of-month and day-of-week")
    hours = sorted(_values(hours_field, 0, 23, {}, "hours"))
    months = _values(month, 1, 12, _MONTHS, "month")
    day_matches = _day_matcher(dom, dow)

    fires: list[int] = []  # hours since the simulation start
    for offset in range(_SIMULATION_DAYS):
        day = _SIMULATION_START + timedelta(days=offset)
        if day.month in months and day_matches(day):
            fires.extend(offset * 24 + hour for hour in hours)
    if len(fires) < 2:
        raise ScheduleError("cron expression never fires twice in four years")
    gaps = [b - a for a, b in itertools.pairwise(fires)]
    if min(gaps) < MIN_INTERVAL_HOURS:
        raise ScheduleError(
            f"Secrets Manager rotates at most every {MIN_INTERVAL_HOURS} hours; this cron fires {min(gaps)} h apart"
        )
    if max(gaps) > MAX_RATE_DAYS * 24:
        raise ScheduleError(f"the longest rotation period is {MAX_RATE_DAYS} days")
    return RotationSchedule(expression, min(gaps), max(gaps), tuple(hours))


def _values(field: str, low: int, high: int, names: dict[str, int], label: str) -> set[int]:
    result: set[int] = set()
    for part in field.split(","):
        result |= _part(part.upper(), low, high, names, label)
    return result


def _part(part: str, low: int, high: int, names: dict[str, int], label: str) -> set[int]:
    step = 1
    if "/" in part:
        part, step_text = part.split("/", 1)
        if not _is_ascii_number(step_text) or int(step_text) < 1:
            raise ScheduleError(f"cron {label}: bad step {step_text!r}")
        step = int(step_text)
        if part != "*" and "-" not in part:
            part = f"{part}-{high}"
    if part == "*":
        start, end = low, high
    elif "-" in part:
        first, last = part.split("-", 1)
        start, end = _number(first, names, label), _number(last, names, label)
    else:
        start = end = _number(part, names, label)
    if not (low <= start <= high and low <= end <= high) or start > end:
        raise ScheduleError(f"cron {label}: {part!r} is outside {low}-{high}")
    return set(range(start, end + 1, step))


def _number(text: str, names: dict[str, int], label: str) -> int:
    if text in names:
        return names[text]
    if not _is_ascii_number(text):
        raise ScheduleError(f"cron {label}: {text!r} is not a number")
    return int(text)


def _day_matcher(dom: str, dow: str) -> Callable[[date], bool]:
    if dow == "?":
        return _dom_matcher(dom.upper())
    return _dow_matcher(dow.upper())


def _dom_matcher(dom: str) -> Callable[[date], bool]:
    if dom == "L":
        return lambda day: day.day == calendar.monthrange(day.year, day.month)[1]
    if "W" in dom:
        raise ScheduleError(
            "cron day-of-month 'W' (nearest weekday) is not supported by keyrot's checks; use a day list"
        )
    days = _values(dom, 1, 31, {}, "day-of-month")
    return lambda day: day.day in days


def _dow_matcher(dow: str) -> Callable[[date], bool]:
    def weekday(day: date) -> int:  # AWS numbering: SUN=1 .. SAT=7
        return (day.weekday() + 1) % 7 + 1

    if "#" in dow:
        name, nth = dow.split("#", 1)
        target = _number(name, _DAYS, "day-of-week")
        if not _is_ascii_number(nth) or not 1 <= int(nth) <= 5:
            raise ScheduleError(f"cron day-of-week: bad '#{nth}'")
        return lambda day: weekday(day) == target and (day.day - 1) // 7 + 1 == int(nth)
    if dow.endswith("L") and dow != "L":
        target = _number(dow[:-1], _DAYS, "day-of-week")
        return lambda day: weekday(day) == target and day.day + 7 > calendar.monthrange(day.year, day.month)[1]
    days = _values("7" if dow == "L" else dow, 1, 7, _DAYS, "day-of-week")
    return lambda day: weekday(day) in days


def _is_ascii_number(text: str) -> bool:
    """0-9 only, and short: str.isdigit() also accepts '²' and other Unicode digits, which AWS refuses."""
    return 0 < len(text) <= 6 and all("0" <= char <= "9" for char in text)
