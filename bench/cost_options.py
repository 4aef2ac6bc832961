"""The cost model's options that are not settings today: each a change to what the program declares and what one
monitor run publishes, applied to the measured deployment and profile, then priced by the same model.

A `Transform` takes the declared resources and the monitor's measured profile and returns them as they would be
with the option (alarms removed or replaced, metrics no longer published, a metric published by the environment
instead of by each key). Nothing here is a guess at a total: every figure comes out of `cost._model`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.cost import Declared, InvocationProfile

Metric = tuple[str, tuple[tuple[str, str], ...]]
Transform = Callable[["Declared", "InvocationProfile"], tuple["Declared", "InvocationProfile"]]
INPUT_TOKENS_ANOMALY_SUFFIX = "-input-tokens-anomaly"


def _is_per_key(metric: Metric) -> bool:
    return any(name == "KeyName" for name, _ in metric[1])


def _environment_dims(metrics: Iterable[Metric]) -> tuple[tuple[str, str], ...]:
    for _, dims in metrics:
        if not any(name == "KeyName" for name, _ in dims):
            return dims
    raise ValueError("the monitor published no environment-level metric")


def without_per_key_metrics(*names: str) -> Transform:
    """Per-key metrics `names` no longer published (their dashboard widgets would go too)."""

    def transform(declared: Declared, monitor: InvocationProfile) -> tuple[Declared, InvocationProfile]:
        metrics = {m for m in monitor.metrics if not (_is_per_key(m) and m[0] in names)}
        return declared, dataclasses.replace(monitor, metrics=metrics)

    return transform


def one_anomaly_alarm_per_key(declared: Declared, monitor: InvocationProfile) -> tuple[Declared, InvocationProfile]:
    """Each key keeps its requests anomaly alarm and loses its input-tokens one (3 alarm metrics each)."""
    kept = [
        (name, billed)
        for name, billed in zip(declared.alarm_names, declared.alarm_metrics, strict=True)
        if not name.endswith(INPUT_TOKENS_ANOMALY_SUFFIX)
    ]
    return _with_alarms(declared, kept), monitor


def combined(*transforms: Transform) -> Transform:
    def transform(declared: Declared, monitor: InvocationProfile) -> tuple[Declared, InvocationProfile]:
        for each in transforms:
            declared, monitor = each(declared, monitor)
        return declared, monitor

    return transform


def _with_alarms(declared: Declared, alarms: list[tuple[str, int]]) -> Declared:
    return dataclasses.replace(
        declared,
        alarm_names=[name for name, _ in alarms],
        alarm_metrics=[billed for _, billed in alarms],
        anomaly_alarm_names=[n for n in declared.anomaly_alarm_names if n in {name for name, _ in alarms}],
    )
