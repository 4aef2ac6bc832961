"""Alarms in `keyrot status` belong to a key by their exact names, so a key named like an alarm takes no other alarm."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
from hypothesis import given
from hypothesis import strategies as st

from keyrot.cli.alarms import load_alarms
from keyrot.names import ENVIRONMENT_ALARM_SUFFIXES, environment_alarm_name, key_alarm_names
from lab.scenario import RotationWorld

from .conftest import REGION, Cli, rotated

_KEY_NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)
# Key names that are the start of an environment alarm's suffix (`monitor` of monitor-not-running...).
_TRICKY = sorted({suffix.rsplit("-", n)[0] for suffix in ENVIRONMENT_ALARM_SUFFIXES for n in (1, 2)})


@dataclass
class _CloudWatch:
    """DescribeAlarms over a fixed list of alarm names (the prefix filter applied as AWS applies it)."""

    names: list[str]

    def get_paginator(self, operation: str) -> _CloudWatch:
        assert operation == "describe_alarms"
        return self

    def paginate(self, AlarmNamePrefix: str, **_: Any) -> Iterator[dict[str, Any]]:
        chosen = [name for name in self.names if name.startswith(AlarmNamePrefix)]
        yield {"MetricAlarms": [{"AlarmName": name, "StateValue": "OK"} for name in chosen]}


@given(
    keys=st.sets(st.one_of(st.sampled_from(_TRICKY), _KEY_NAMES), min_size=1, max_size=6),
    environment=st.sampled_from(["dev", "prod", "monitor"]),
)
def test_every_alarm_is_filed_under_the_key_whose_exact_alarm_it_is(keys: set[str], environment: str) -> None:
    # GIVEN every per-key alarm of some keys (named anything valid, including prefixes of environment alarms)
    # and every environment-wide alarm
    own = {key: set(key_alarm_names(environment, key)) for key in keys}
    wide = {environment_alarm_name(environment, suffix) for suffix in ENVIRONMENT_ALARM_SUFFIXES}
    cloudwatch = _CloudWatch(sorted(set().union(*own.values()) | wide))
    # WHEN they are split for status
    found = load_alarms(cloudwatch, environment, keys)
    # THEN each key has exactly its own alarms, and the environment exactly the rest
    assert {key: {alarm.name for alarm in found.of_key(key)} for key in keys} == own
    assert {alarm.name for alarm in found.environment_wide} == wide


def test_an_unknown_keyrot_alarm_is_environment_wide_not_a_keys() -> None:
    # GIVEN a key `monitor` and an alarm added later under a name that starts with it
    cloudwatch = _CloudWatch(["keyrot-dev-monitor-costs-failed", "keyrot-dev-monitor-requests-anomaly"])
    # WHEN the alarms are split
    found = load_alarms(cloudwatch, "dev", ["monitor"])
    # THEN only the key's exact alarm is the key's
    assert [alarm.name for alarm in found.of_key("monitor")] == ["keyrot-dev-monitor-requests-anomaly"]
    assert [alarm.name for alarm in found.environment_wide] == ["keyrot-dev-monitor-costs-failed"]


def test_status_keeps_environment_alarms_off_keys_named_monitor_and_daily(world: RotationWorld, cli: Cli) -> None:
    # GIVEN keys named `monitor` and `daily`, and the environment's monitor and spend alarms, one firing
    rotated(world, "monitor")
    rotated(world, "daily")
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    for name, state in (("keyrot-dev-monitor-not-running", "ALARM"), ("keyrot-dev-daily-spend", "OK")):
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            MetricName="Heartbeat",
            Namespace="Keyrot",
            Statistic="Sum",
            Period=300,
            EvaluationPeriods=1,
            Threshold=1.0,
            ComparisonOperator="LessThanThreshold",
        )
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")
    # WHEN status runs
    environment = json.loads(cli("status", "--env", "dev", "--json").stdout)["environments"][0]
    # THEN both alarms are the environment's, and neither key is failed by the firing one
    assert {key["key_name"]: key["alarms"] for key in environment["keys"]} == {"monitor": [], "daily": []}
    assert {alarm["name"] for alarm in environment["alarms"]["environment_wide"]} == {
        "keyrot-dev-monitor-not-running",
        "keyrot-dev-daily-spend",
    }
    assert {key["key_name"]: key["health"] for key in environment["keys"]} == {"monitor": "ok", "daily": "ok"}
