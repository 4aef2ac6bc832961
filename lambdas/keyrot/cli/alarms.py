"""keyrot's CloudWatch alarms of one environment, split into per-key and environment-wide alarms."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from keyrot.aws.errors import aws_errors
from keyrot.names import alarm_prefix, key_alarm_names


@dataclass(frozen=True)
class Alarm:
    name: str
    state: str  # OK, ALARM, INSUFFICIENT_DATA

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "state": self.state}


@dataclass
class EnvironmentAlarms:
    per_key: dict[str, list[Alarm]] = field(default_factory=dict)
    environment_wide: list[Alarm] = field(default_factory=list)

    def of_key(self, key_name: str) -> list[Alarm]:
        return self.per_key.get(key_name, [])

    @property
    def firing(self) -> list[Alarm]:
        every = [*self.environment_wide, *(alarm for alarms in self.per_key.values() for alarm in alarms)]
        return [alarm for alarm in every if alarm.state == "ALARM"]


def load_alarms(cloudwatch: Any, environment: str, key_names: Iterable[str]) -> EnvironmentAlarms:
    """Every `keyrot-<env>-…` alarm: a key's own alarms by their exact names (keyrot.names), the rest environment-wide.

    Never by prefix: a key may be named `monitor` or `daily`, and `keyrot-<env>-monitor-not-running` is still the
    environment's alarm.
    """
    owners = {name: key for key in key_names for name in key_alarm_names(environment, key)}
    found = EnvironmentAlarms()
    with aws_errors("DescribeAlarms"):
        pages = cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNamePrefix=alarm_prefix(environment), AlarmTypes=["MetricAlarm", "CompositeAlarm"]
        )
        for page in pages:
            for raw in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                alarm = Alarm(raw["AlarmName"], raw.get("StateValue", "INSUFFICIENT_DATA"))
                owner = owners.get(alarm.name)
                if owner is None:
                    found.environment_wide.append(alarm)
                else:
                    found.per_key.setdefault(owner, []).append(alarm)
    return found


def summarise(alarms: Iterable[Alarm]) -> str:
    """`3 OK`, or `1 ALARM (keyrot-dev-rotation-failed), 7 OK`."""
    alarms = list(alarms)
    if not alarms:
        return "none"
    counts = Counter(alarm.state for alarm in alarms)
    firing = [alarm.name for alarm in alarms if alarm.state == "ALARM"]
    parts = []
    if firing:
        parts.append(f"{len(firing)} ALARM ({', '.join(firing)})")
    parts += [f"{count} {state}" for state, count in sorted(counts.items()) if state != "ALARM"]
    return ", ".join(parts)
