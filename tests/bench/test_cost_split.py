"""The cost model's split of a bill into a fixed part and a part per key: it always adds back up to the bills it came
from."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from bench.cost import COST_GROUPS, Declared, Estimate, split


def _declared(keys: int) -> Declared:
    return Declared(
        secrets=keys + 1,
        managed_keys=keys,
        kms_keys=1,
        kms_rotation=True,
        alarm_metrics=[1] * (1 + 6 * keys),
        anomaly_alarm_names=[],
        dashboards=0,
        function_memory_mb={},
        log_retention_days={},
        monitor_interval_minutes=15,
        other_schedule_minutes={},
        rotation_interval_hours=720,
        subscriptions=Counter(),
    )


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
