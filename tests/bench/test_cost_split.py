"""The cost model's options and its split into fixed and per-key parts: each option changes exactly what it names,
and the split always adds back up to the bill it came from."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from bench import cost_options as o
from bench import prices as p
from bench.cost import COST_GROUPS, Declared, Estimate, InvocationProfile, split

ENV = (("Environment", "dev"),)


def _key(name: str) -> tuple[tuple[str, str], ...]:
    return (("Environment", "dev"), ("KeyName", name))


def _declared(keys: int) -> Declared:
    names = [f"keyrot-dev-{n}" for n in ("rotation-failed", "daily-spend", "key-too-old")]
    billed = [1, 1, 1]
    for index in range(1, keys + 1):
        for suffix, metrics in (("requests-anomaly", 3), ("input-tokens-anomaly", 3)):
            names.append(f"keyrot-dev-key-{index}-{suffix}")
            billed.append(metrics)
    return Declared(
        secrets=keys + 1,
        managed_keys=keys,
        kms_keys=1,
        kms_rotation=True,
        alarm_metrics=billed,
        anomaly_alarm_names=[n for n in names if n.endswith("-anomaly")],
        dashboards=1,
        function_memory_mb={},
        log_retention_days={},
        monitor_interval_minutes=15,
        other_schedule_minutes={},
        rotation_interval_hours=720,
        subscriptions=Counter(),
        alarm_names=names,
    )


def _profile(keys: int) -> InvocationProfile:
    metrics = {("MonitorHeartbeat", ENV), ("SpendTodayUSD", ENV), ("OldestKeyAgeHours", ENV)}
    for index in range(1, keys + 1):
        for metric in ("Requests", "InputTokens", "OutputTokens", "KeyAgeHours", "CostTodayUSD"):
            metrics.add((metric, _key(f"key-{index}")))
    return InvocationProfile(metrics=metrics)


def test_one_anomaly_alarm_per_key_drops_only_the_input_tokens_bands() -> None:
    declared, profile = o.one_anomaly_alarm_per_key(_declared(2), _profile(2))
    assert not [n for n in declared.alarm_names if "input-tokens" in n]
    assert sum(declared.alarm_metrics) == sum(_declared(2).alarm_metrics) - 2 * p.ANOMALY_ALARM_METRICS
    assert declared.anomaly_alarm_names == [n for n in declared.alarm_names if n.endswith("-anomaly")]
    assert profile.metrics == _profile(2).metrics


def test_dropped_per_key_metrics_leave_environment_metrics_alone() -> None:
    _, profile = o.without_per_key_metrics("OutputTokens", "CostTodayUSD")(_declared(2), _profile(2))
    assert {m[0] for m in profile.metrics} == {
        "MonitorHeartbeat",
        "SpendTodayUSD",
        "OldestKeyAgeHours",
        "Requests",
        "InputTokens",
        "KeyAgeHours",
    }


def _estimate(keys: int, usd: dict[str, float]) -> Estimate:
    return Estimate(f"{keys} keys", _declared(keys), usd, {})


money = st.floats(min_value=0, max_value=100, allow_nan=False)


@given(
    fixed=st.fixed_dictionaries({group: money for group in COST_GROUPS}),
    per_key=st.fixed_dictionaries({group: money for group in COST_GROUPS}),
    keys=st.integers(1, 10),
    extra=st.integers(1, 10),
)
def test_the_fixed_and_per_key_parts_add_back_up_to_each_bill(
    fixed: dict[str, float], per_key: dict[str, float], keys: int, extra: int
) -> None:
    # GIVEN two environments whose bills are a fixed part plus a part per key
    one = _estimate(keys, {g: fixed[g] + keys * per_key[g] for g in COST_GROUPS})
    more = _estimate(keys + extra, {g: fixed[g] + (keys + extra) * per_key[g] for g in COST_GROUPS})
    # WHEN the bill is split
    found_fixed, found_per_key = split(one, more, extra)
    # THEN the split finds both parts, group by group
    for group in COST_GROUPS:
        assert abs(found_per_key[group] - per_key[group]) < 1e-6
        assert abs(found_fixed[group] - fixed[group]) < 1e-6
