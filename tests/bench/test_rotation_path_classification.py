"""The rotation-path benchmark's call classification: a justified repeat is allowed only as often as it is justified.

The benchmark is what tells a reviewer that a change added a remote call; if it waved through any repeat, a second
read of the admin key or a second listing of accounts could creep into finishSecret unnoticed.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bench.rotation_path import JUSTIFIED, JUSTIFIED_REPEATS, REQUIRED, RotationRecord, StepCalls, classify_rotation

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
KNOWN_CALLS = sorted({call for _, call in (*REQUIRED, *JUSTIFIED)} | {"aws:ListSecrets", "openai:DELETE /x"})


def _record(*steps: tuple[str, list[str]]) -> RotationRecord:
    return RotationRecord(steps=[StepCalls(step, calls, 0.0) for step, calls in steps])


def test_a_justified_repeat_counts_as_justified_and_not_as_unexplained() -> None:
    # GIVEN finishSecret describing the secret twice (before and after the promotion), as JUSTIFIED_REPEATS allows
    record = _record(("finishSecret", ["aws:DescribeSecret", "aws:DescribeSecret"]))
    # WHEN the rotation's calls are classified
    required, justified, unexplained = classify_rotation(record)
    # THEN the first is required, the second a justified extra, nothing unexplained
    assert required == {"aws:DescribeSecret": 1}
    assert justified == {"finishSecret: aws:DescribeSecret (again)": 1}
    assert unexplained == []


def test_a_repeat_beyond_its_justified_count_is_unexplained() -> None:
    # GIVEN finishSecret describing the secret one more time than its justification allows
    allowed, _ = JUSTIFIED_REPEATS[("finishSecret", "aws:DescribeSecret")]
    record = _record(("finishSecret", ["aws:DescribeSecret"] * (allowed + 1)))
    # WHEN classified
    _, _, unexplained = classify_rotation(record)
    # THEN exactly the extra call is reported
    assert unexplained == ["finishSecret: aws:DescribeSecret (repeated)"]


def test_a_repeat_justified_in_one_step_is_unexplained_in_another() -> None:
    # GIVEN createSecret describing the secret twice (only finishSecret's second describe is justified)
    record = _record(("createSecret", ["aws:DescribeSecret", "aws:DescribeSecret"]))
    # WHEN classified
    _, justified, unexplained = classify_rotation(record)
    # THEN the repeat is not explained by finishSecret's justification
    assert unexplained == ["createSecret: aws:DescribeSecret (repeated)"] and not justified


@given(st.lists(st.tuples(st.sampled_from(STEPS), st.lists(st.sampled_from(KNOWN_CALLS), max_size=12)), max_size=5))
def test_every_call_is_classified_exactly_once(steps: list[tuple[str, list[str]]]) -> None:
    # GIVEN any sequence of steps and calls
    record = _record(*steps)
    # WHEN classified
    required, justified, unexplained = classify_rotation(record)
    # THEN required + justified + unexplained account for every call made, no call counted twice or lost
    assert sum(required.values()) + sum(justified.values()) + len(unexplained) == len(record.calls)
