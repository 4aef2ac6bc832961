"""Publish metric data to CloudWatch in batches within the service's limits, and read back publish markers.

PutMetricData is not idempotent: a datapoint sent twice counts twice. Each usage batch therefore carries a
MonitorPublishMarker datapoint whose value is a monotonically increasing marker; after a crash, the highest marker
CloudWatch holds tells which batches landed (state.PublishIntent records the plan). The heartbeat is not a marker: it
goes out once, at the end of a run in which every part succeeded (monitor/run.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from keyrot import metric_names as m
from keyrot.aws.errors import aws_errors

# PutMetricData accepts up to 1000 metric data entries and 1 MB per request. One slot stays free for the marker.
MAX_DATUMS_PER_CALL = 1000
USAGE_DATUMS_PER_CALL = MAX_DATUMS_PER_CALL - 1


@dataclass(frozen=True)
class Datum:
    name: str
    dimensions: tuple[tuple[str, str], ...]
    timestamp: int  # Unix seconds
    value: float
    unit: str = "Count"

    @classmethod
    def of(cls, name: str, dimensions: Mapping[str, str], timestamp: int, value: float, unit: str = "Count") -> Datum:
        return cls(name, tuple(sorted(dimensions.items())), timestamp, value, unit)

    @property
    def sort_key(self) -> list[Any]:
        """Orders usage datums deterministically: by time, then key name (or environment), then metric."""
        return [self.timestamp, dict(self.dimensions).get(m.DIM_KEY_NAME, ""), self.name]

    def to_api(self) -> dict[str, Any]:
        return {
            "MetricName": self.name,
            "Dimensions": [{"Name": name, "Value": value} for name, value in self.dimensions],
            "Timestamp": datetime.fromtimestamp(self.timestamp, UTC),
            "Value": float(self.value),
            "Unit": self.unit,
        }


def heartbeat(environment: str, timestamp: int, marker: int) -> Datum:
    """The heartbeat datapoint: the run did its whole job. Its value is the last committed marker (alarms count
    samples, not values), never above a pending intent's markers, so reading it as a marker is harmless."""
    return Datum.of(m.MONITOR_HEARTBEAT, m.environment_dimensions(environment), timestamp, marker)


def publish_marker(environment: str, timestamp: int, marker: int) -> Datum:
    """The datapoint that rides with usage batch `marker`: seen in CloudWatch, the batch landed."""
    return Datum.of(m.MONITOR_PUBLISH_MARKER, m.environment_dimensions(environment), timestamp, marker)


def split_usage(datums: Iterable[Datum], per_call: int | None = None) -> list[list[Datum]]:
    """Sorted usage datums cut into per-call batches, each leaving room for its marker."""
    size = per_call or USAGE_DATUMS_PER_CALL
    ordered = sorted(datums, key=lambda datum: datum.sort_key)
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def select_batch(datums: Iterable[Datum], boundaries: Sequence[Sequence[Any]], index: int) -> list[Datum]:
    """The datums of batch `index` as defined by recorded boundaries (first sort key of each batch)."""
    low = list(boundaries[index])
    high = list(boundaries[index + 1]) if index + 1 < len(boundaries) else None
    chosen = [d for d in datums if d.sort_key >= low and (high is None or d.sort_key < high)]
    return sorted(chosen, key=lambda datum: datum.sort_key)


class MetricPublisher:
    """PutMetricData and the marker read-back for one namespace."""

    def __init__(self, cloudwatch: Any, namespace: str = m.NAMESPACE) -> None:
        self._cloudwatch = cloudwatch
        self.namespace = namespace
        self.calls = 0

    def put(self, datums: Sequence[Datum]) -> None:
        """Publish `datums` in as few calls as the limits allow (one call when they fit)."""
        for start in range(0, len(datums), MAX_DATUMS_PER_CALL):
            batch = datums[start : start + MAX_DATUMS_PER_CALL]
            with aws_errors("PutMetricData"):
                self._cloudwatch.put_metric_data(Namespace=self.namespace, MetricData=[d.to_api() for d in batch])
            self.calls += 1

    def highest_marker(self, environment: str, since: int, until: int) -> int | None:
        """The largest publish marker CloudWatch holds between `since` and `until`, or None.

        Markers rode on MonitorHeartbeat before they had a metric of their own: both are read (one call), so an
        intent left by an earlier version still resolves exactly.
        """
        queries = [
            {
                "Id": query_id,
                "MetricStat": {
                    "Metric": {
                        "Namespace": self.namespace,
                        "MetricName": name,
                        "Dimensions": [{"Name": m.DIM_ENVIRONMENT, "Value": environment}],
                    },
                    "Period": 60,
                    "Stat": "Maximum",
                },
                "ReturnData": True,
            }
            for query_id, name in (("marker", m.MONITOR_PUBLISH_MARKER), ("legacy", m.MONITOR_HEARTBEAT))
        ]
        start = datetime.fromtimestamp(since, UTC) - timedelta(minutes=1)
        end = datetime.fromtimestamp(until, UTC) + timedelta(minutes=1)
        highest: float | None = None
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end}
            if token:
                kwargs["NextToken"] = token
            with aws_errors("GetMetricData"):
                response = self._cloudwatch.get_metric_data(**kwargs)
            for result in response.get("MetricDataResults", []):
                for value in result.get("Values", []):
                    highest = value if highest is None else max(highest, value)
            token = response.get("NextToken")
            if not token:
                return int(highest) if highest is not None else None
