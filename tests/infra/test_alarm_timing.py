"""Alarms can see what the monitor publishes: late usage stays inside their range, and gauges never go OK on silence.

Usage is published with each minute's own timestamp, up to settleDelayMinutes + monitorIntervalMinutes (+ the run)
late. An hourly alarm only counts a datapoint while its period is among the ones it evaluates: for every setting the
reader accepts, the alarms' lookback must still hold the minute when it arrives.
"""

from __future__ import annotations

import math
from dataclasses import fields, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from infra_harness import Deployment, deployed, keyrot_config, run_program, stack_config

from keyrot import metric_names as m
from keyrot.pulumi.components.alarms import (
    MAX_ALARM_RANGE_SECONDS,
    MAX_SHORT_ALARM_RANGE_SECONDS,
    MONITOR_LEASE_MARGIN_SECONDS,
    USAGE_PERIOD_SECONDS,
    alarm_specs,
    heartbeat_periods,
    usage_delay_seconds,
    usage_lookback_periods,
)
from keyrot.pulumi.components.usage_monitor import MONITOR_TIMEOUT_SECONDS
from keyrot.pulumi.config import MAX_MONITOR_INTERVAL_MINUTES, MAX_SETTLE_DELAY_MINUTES

pytestmark = pytest.mark.timeout(120)

USAGE_METRICS = {m.UNMANAGED_KEY_REQUESTS, m.RETIRED_KEY_REQUESTS, m.REQUESTS, m.INPUT_TOKENS}
GAUGES = {m.SPEND_TODAY_USD, m.OLDEST_KEY_AGE_HOURS}


def _usage_metric(spec) -> str | None:
    if spec.metric_queries:
        return spec.metric_queries[0]["metric"]["metric_name"]
    return spec.metric_name if spec.metric_name in USAGE_METRICS else None


def _specs(interval: int, settle: int):
    config = replace(keyrot_config(deployed("dev")), monitor_interval_minutes=interval, settle_delay_minutes=settle)
    return config, alarm_specs(config, rotation_function_name="r", monitor_function_name="m")


@settings(max_examples=300, deadline=None)
@given(
    interval=st.integers(1, MAX_MONITOR_INTERVAL_MINUTES),
    settle=st.integers(0, MAX_SETTLE_DELAY_MINUTES),
    minute=st.integers(0, 59),
    lateness=st.floats(0, 1),
    alignment=st.integers(0, USAGE_PERIOD_SECONDS - 1),
)
def test_usage_published_as_late_as_the_settings_allow_is_still_inside_the_alarms_range(
    interval: int, settle: int, minute: int, lateness: float, alignment: int
) -> None:
    # GIVEN any accepted interval and settle delay, a minute of usage, and when it is published (up to the most
    # the settings allow), with the alarm's hourly periods starting at any offset
    config, specs = _specs(interval, settle)
    stamp = alignment + minute * 60  # within the period that starts at `alignment`
    published = stamp + lateness * usage_delay_seconds(config)
    for spec in specs:
        if _usage_metric(spec) is None:
            continue
        # WHEN the alarm evaluates right after publication: its range is the last N whole periods up to then
        end = alignment + math.floor((published - alignment) / USAGE_PERIOD_SECONDS) * USAGE_PERIOD_SECONDS
        start = end - spec.evaluation_periods * USAGE_PERIOD_SECONDS
        # THEN the minute's period is inside it (or still the current one, evaluated at the next boundary)
        assert start <= stamp, (spec.name, interval, settle, minute, lateness)
        assert spec.datapoints_to_alarm <= spec.evaluation_periods


@pytest.mark.parametrize(("interval", "settle"), [(1, 0), (15, 10), (480, 10), (15, 240), (480, 1440)])
def test_the_lookback_fits_cloudwatch_and_never_shrinks_below_three_hours(interval: int, settle: int) -> None:
    config, specs = _specs(interval, settle)
    lookback = usage_lookback_periods(config)
    assert 3 <= lookback and lookback * USAGE_PERIOD_SECONDS <= MAX_ALARM_RANGE_SECONDS
    assert {s.evaluation_periods for s in specs if _usage_metric(s)} == {lookback}


def test_a_slow_monitor_stack_gets_alarms_that_look_back_far_enough() -> None:
    # GIVEN a stack whose monitor runs every 8 hours (accepted settings that used to hide most usage)
    config = stack_config("dev", {"keyrot:monitorIntervalMinutes": "480", "keyrot:settleDelayMinutes": "240"})
    d = run_program("dev", config)
    alarms = {a.inputs["name"]: a for a in d.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    # THEN its usage alarms evaluate 2 + ceil((240 + 480 + 5) min / 1 h) = 15 hourly periods
    for name in ("keyrot-dev-unmanaged-key-requests", "keyrot-dev-chat-backend-requests-anomaly"):
        assert alarms[name].inputs["evaluationPeriods"] == 15, name


def test_gauge_alarms_keep_their_state_when_a_run_publishes_nothing() -> None:
    # GIVEN the daily spend and key-age alarms (gauges, published once per successful run)
    _, specs = _specs(15, 10)
    gauges = [s for s in specs if s.metric_name in GAUGES]
    assert {s.metric_name for s in gauges} == GAUGES
    # THEN missing data is ignored: a failed or skipped run can neither page nor turn a firing alarm OK
    assert {s.treat_missing_data for s in gauges} == {"ignore"}


# --- the heartbeat: a single crash must not page -----------------------------------------------------------------


def _periods_without_heartbeat(interval: int, lease: int, offset: float, first: float, last: float) -> int:
    """Whole alarm periods with no heartbeat between the last run before a crash and the first after it.

    Runs start every `interval` seconds (run 0 crashes holding the lease for `lease` seconds; a run starting while
    the lease holds skips), a healthy run publishes its heartbeat `first`/`last` x interval after it starts, and the
    alarm's periods start `offset` x interval after the runs' (CloudWatch aligns them to the clock, not the schedule).
    """
    before = -interval + first * interval  # the heartbeat of the last run before the crash
    resumed = next(k for k in range(1, 10_000) if k * interval >= lease)  # the first run the lease lets through
    after = resumed * interval + last * interval
    shift = offset * interval
    return math.floor((after - shift) / interval) - math.floor((before - shift) / interval) - 1


@settings(max_examples=400, deadline=None)
@given(
    interval=st.integers(1, MAX_MONITOR_INTERVAL_MINUTES),
    offset=st.floats(0, 0.999),
    first=st.floats(0, 0.999),
    last=st.floats(0, 0.999),
)
def test_a_single_crashed_run_never_pages_monitor_not_running(
    interval: int, offset: float, first: float, last: float
) -> None:
    # GIVEN any accepted monitor interval, and one run that crashes holding the state's lease for the function's
    # timeout plus its margin (the runs starting meanwhile skip)
    config, specs = _specs(interval, 10)
    (heartbeat,) = [s for s in specs if s.metric_name == m.MONITOR_HEARTBEAT]
    lease = MONITOR_TIMEOUT_SECONDS + MONITOR_LEASE_MARGIN_SECONDS
    # WHEN the monitor resumes with the first run after the lease
    silent = _periods_without_heartbeat(heartbeat.period, lease, offset, first, last)
    # THEN fewer periods went without a heartbeat than the alarm needs (missing data breaches: all N of N)
    assert heartbeat.datapoints_to_alarm == heartbeat.evaluation_periods == heartbeat_periods(config)
    assert heartbeat.treat_missing_data == "breaching"
    assert silent < heartbeat.evaluation_periods, (interval, silent)


@pytest.mark.parametrize(("interval", "expected"), [(1, 8), (2, 5), (5, 4), (6, 3), (15, 3), (480, 3)])
def test_heartbeat_periods_follow_the_lease(interval: int, expected: int) -> None:
    # max(3, ceil((300 s + 10 s) / interval) + 2): a 1-minute monitor waits 8 minutes, a 15-minute one 45
    _, specs = _specs(interval, 10)
    (heartbeat,) = [s for s in specs if s.metric_name == m.MONITOR_HEARTBEAT]
    assert heartbeat.evaluation_periods == expected
    # CloudWatch refuses more than a day of periods shorter than an hour
    assert heartbeat.evaluation_periods * heartbeat.period <= MAX_SHORT_ALARM_RANGE_SECONDS


def test_the_alarms_lease_is_the_monitors_own() -> None:
    # GIVEN the lease the monitor takes on the state (its remaining time, the timeout, plus a margin)
    from keyrot.monitor.run import MonitorDependencies

    (lease,) = [f.default for f in fields(MonitorDependencies) if f.name == "lease_seconds"]
    # THEN the alarm assumes exactly that lease
    assert lease == MONITOR_TIMEOUT_SECONDS + MONITOR_LEASE_MARGIN_SECONDS


def test_the_lease_the_alarm_assumes_is_the_deployed_monitors(deployment: Deployment) -> None:
    # GIVEN the monitor function as deployed THEN one run at a time (reserved concurrency 1), with the timeout the
    # alarm's lease arithmetic assumes
    (function,) = deployment.find(
        "aws:lambda/function:Function", lambda r: r.inputs["name"] == f"keyrot-{deployment.stack}-monitor"
    )
    assert function.inputs["reservedConcurrentExecutions"] == 1
    assert function.inputs["timeout"] == MONITOR_TIMEOUT_SECONDS
