"""The key-age alarm's metric (the oldest key's age) and the per-key metrics only a dashboard reads.

One environment-level gauge replaces a gauge and an alarm per key: it must be above the alarm's threshold exactly
when some key is, whichever key that is, and the log must name it. Without a dashboard, the monitor leaves out the
per-key metrics no alarm reads (each a custom metric on the bill) and keeps every metric an alarm reads.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyrot import metric_names as m
from keyrot.errors import ConfigurationError
from keyrot.settings import MonitorSettings
from lab.monitor_scenario import MonitorWorld

from .conftest import current_key_id, rotated, usage

HOUR = 3600
SETTLE = 600
ENV = m.environment_dimensions("dev")


def _published(world: MonitorWorld, metric: str, key: str) -> list[float]:
    return world.maxima(metric, m.key_dimensions(world.settings.environment, key))


def test_the_oldest_keys_age_is_the_environments_gauge_and_the_log_names_it(
    monitor: MonitorWorld, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a key rotated ten hours before another
    chat = rotated(monitor, "chat-backend")
    monitor.clock.advance(10 * HOUR)
    rotated(monitor, "search")
    monitor.clock.advance(HOUR)
    # WHEN the monitor runs
    with caplog.at_level(logging.INFO, logger="keyrot.monitor.run"):
        monitor.run()
    # THEN the environment's gauge is the older key's age, which the log names
    assert monitor.maxima(m.OLDEST_KEY_AGE_HOURS, ENV) == [11.0]
    assert _published(monitor, m.KEY_AGE_HOURS, "chat-backend") == [11.0]
    assert _published(monitor, m.KEY_AGE_HOURS, "search") == [1.0]
    assert "oldest key: chat-backend, 11.0 hours" in caplog.text
    # WHEN the older key rotates and the monitor runs again
    assert monitor.rotation.driver().rotate(chat).succeeded
    monitor.clock.advance(HOUR)
    monitor.run()
    # THEN the gauge follows the key that is now the oldest
    assert monitor.maxima(m.OLDEST_KEY_AGE_HOURS, ENV)[-1] == 2.0


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(gaps=st.lists(st.integers(0, 200), min_size=1, max_size=4))
def test_the_gauge_is_over_a_threshold_exactly_when_some_key_is(new_monitor, gaps: list[int]) -> None:
    # GIVEN keys rotated `gaps` hours apart (any order, ties included)
    world: MonitorWorld = new_monitor()
    names = [f"key-{index}" for index in range(len(gaps))]
    for name, gap in zip(names, gaps, strict=True):
        rotated(world, name)
        world.clock.advance(gap * HOUR)
    # WHEN the monitor runs
    world.run()
    # THEN the gauge is the largest of the keys' ages, so any threshold is crossed by it iff by some key
    ages = [_published(world, m.KEY_AGE_HOURS, name)[-1] for name in names]
    (oldest,) = world.maxima(m.OLDEST_KEY_AGE_HOURS, m.environment_dimensions(world.settings.environment))
    assert oldest == max(ages)
    for threshold in {*ages, 0, 192}:
        assert (oldest > threshold) == any(age > threshold for age in ages)


def test_without_a_dashboard_only_the_metrics_alarms_read_are_published(monitor: MonitorWorld) -> None:
    # GIVEN a monitor of a stack without a dashboard, a used key and a day's spend on it
    world = monitor.with_settings(dashboard_metrics=False)
    arn = rotated(world, "chat-backend")
    world.run()
    key_id = current_key_id(world, arn)
    usage(world, key_id, 1, num_model_requests=3, input_tokens=300, output_tokens=40)
    usage(world, key_id, 2, "images", num_model_requests=1, images=4)
    world.rotation.openai.state.record_cost(key_id, 1.25)
    world.clock.advance(5 * 60 + SETTLE)
    world.run()
    # THEN what alarms read is there: usage for the anomaly bands, the oldest key's age, the day's spend
    t, dims = world.start, m.key_dimensions("dev", "chat-backend")
    window = (t - SETTLE, t + 10 * 60)
    assert world.sums(m.REQUESTS, dims, *window) == {t + 60: 3, t + 120: 1}
    assert world.sums(m.INPUT_TOKENS, dims, *window) == {t + 60: 300}
    assert world.maxima(m.OLDEST_KEY_AGE_HOURS, ENV)
    assert world.maxima(m.SPEND_TODAY_USD, ENV)[-1] == 1.25
    # AND no metric only a dashboard would show, per key or for the environment
    for metric in m.DASHBOARD_ONLY:
        assert not _published(world, metric, "chat-backend"), metric
        assert not world.sums(metric, dims, *window), metric
        assert not world.maxima(metric, ENV), metric


def test_the_log_says_which_key_spends_today_without_any_per_key_metric(
    monitor: MonitorWorld, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a stack without a dashboard, two keys of which one spends, and a key keyrot does not manage spending too
    world = monitor.with_settings(dashboard_metrics=False)
    chat, _ = rotated(world, "chat-backend"), rotated(world, "search")
    state = world.rotation.openai.state
    world.clock.advance(2 * HOUR)
    state.record_cost(current_key_id(world, chat), 1.25)
    user_key, _ = state.add_user_key(world.rotation.project_id)
    state.record_cost(user_key, 0.5)
    # WHEN the monitor runs
    with caplog.at_level(logging.INFO, logger="keyrot.monitor.run"):
        world.run()
    # THEN its log names each managed key's spend, the biggest first, and what other keys spent
    assert "spend today (UTC): 1.75 USD; chat-backend 1.25, search 0.00; other keys 0.50" in caplog.text
    assert not world.maxima(m.COST_TODAY_USD, m.key_dimensions("dev", "chat-backend"))


def test_with_one_anomaly_signal_the_other_usage_metric_is_left_out_too(monitor: MonitorWorld) -> None:
    # GIVEN a stack without a dashboard whose keys have only the requests band
    world = monitor.with_settings(dashboard_metrics=False, anomaly_metrics=(m.REQUESTS,))
    arn = rotated(world, "chat-backend")
    world.run()
    usage(world, current_key_id(world, arn), 1, num_model_requests=3, input_tokens=300, output_tokens=40)
    world.clock.advance(5 * 60 + SETTLE)
    world.run()
    # THEN requests are published for the band, input tokens (read by no alarm here) are not
    t, dims = world.start, m.key_dimensions("dev", "chat-backend")
    assert world.sums(m.REQUESTS, dims, t - SETTLE, t + 600) == {t + 60: 3}
    assert not world.sums(m.INPUT_TOKENS, dims, t - SETTLE, t + 600)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, (m.REQUESTS, m.INPUT_TOKENS)),
        ("Requests", (m.REQUESTS,)),
        (" InputTokens , Requests ", (m.INPUT_TOKENS, m.REQUESTS)),
    ],
)
def test_the_anomaly_metrics_are_read_from_the_environment(raw: str | None, expected: tuple[str, ...]) -> None:
    environ = _monitor_environ()
    if raw is not None:
        environ["KEYROT_ANOMALY_METRICS"] = raw
    assert MonitorSettings.from_env(environ).anomaly_metrics == expected


@pytest.mark.parametrize("raw", ["OutputTokens", "Requests,Bogus", "requests"])
def test_an_unknown_anomaly_metric_names_the_variable(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="KEYROT_ANOMALY_METRICS must list some of Requests, InputTokens"):
        MonitorSettings.from_env({**_monitor_environ(), "KEYROT_ANOMALY_METRICS": raw})


@pytest.mark.parametrize(("raw", "expected"), [(None, True), ("true", True), ("false", False), (" FALSE ", False)])
def test_the_setting_is_read_from_the_environment(raw: str | None, expected: bool) -> None:
    environ = _monitor_environ()
    if raw is not None:
        environ["KEYROT_DASHBOARD_METRICS"] = raw
    assert MonitorSettings.from_env(environ).dashboard_metrics is expected


def test_a_bad_setting_names_the_variable() -> None:
    environ = {**_monitor_environ(), "KEYROT_DASHBOARD_METRICS": "sometimes"}
    with pytest.raises(ConfigurationError, match="KEYROT_DASHBOARD_METRICS must be true or false"):
        MonitorSettings.from_env(environ)


def _monitor_environ() -> dict[str, str]:
    return {
        "KEYROT_ENVIRONMENT": "dev",
        "KEYROT_ADMIN_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:111111111111:secret:keyrot/dev/admin-AbCdEf",
        "KEYROT_OPENAI_PROJECT_ID": "proj_dev7Qm2xKp4LrT9aZ",
        "KEYROT_TOPIC_ARN": "arn:aws:sns:us-east-1:111111111111:keyrot-dev-oncall",
        "KEYROT_STATE_PARAMETER": "/keyrot/dev/monitor-state",
    }
