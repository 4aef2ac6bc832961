"""`make demo-soak`: the rehearsal's pass count and p50/p95 are reported truthfully and land in bench/results.json under
their own key, which `make bench` keeps. The rehearsal itself is replaced by a stand-in here (tests/functional/
test_demo.py runs the real one); `make demo-soak` runs it 20 times.
"""

from __future__ import annotations

import json
from itertools import cycle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.__main__ import main as bench_main
from bench.demo_soak import RESULTS_KEY, RunOutcome, merge_into, run


def _rehearsals(outcomes: list[RunOutcome]) -> Any:
    feed = iter(outcomes)
    return lambda: next(feed)


def test_twenty_passing_runs_meet_the_target_and_report_p50_and_p95() -> None:
    # GIVEN twenty rehearsals that pass in 30.0 … 49.0 s
    outcomes = [RunOutcome(True, 30.0 + i) for i in range(20)]
    # WHEN the soak runs
    result = run(20, rehearse=_rehearsals(outcomes), say=lambda _: None)
    # THEN every run counts, the target is met, and the percentiles lie where twenty samples put them
    assert (result.figures["runs"], result.figures["passed"]) == (20, 20)
    assert result.targets[0].met and result.targets[0].value == "20 of 20"
    assert result.figures["p50_seconds"] == 39.5
    assert 47.0 <= result.figures["p95_seconds"] <= 49.0
    assert result.figures["failures"] == []


def test_one_failed_run_misses_the_target_and_names_what_failed() -> None:
    # GIVEN one rehearsal in twenty whose janitor check did not hold
    failed = RunOutcome(False, 41.0, ("once the grace was over and the key idle, the janitor revoked it",))
    outcomes = [RunOutcome(True, 40.0)] * 7 + [failed] + [RunOutcome(True, 40.0)] * 12
    # WHEN the soak runs
    result = run(20, rehearse=_rehearsals(outcomes), say=lambda _: None)
    # THEN the target is missed and the failure says which run and which check
    assert not result.targets[0].met and result.targets[0].value == "19 of 20"
    assert result.figures["failures"] == [{"run": 8, "checks": list(failed.failed_checks), "leftover_processes": 0}]


@given(st.lists(st.floats(min_value=1, max_value=600), min_size=1, max_size=40))
def test_p50_and_p95_stay_within_the_observed_durations(durations: list[float]) -> None:
    outcomes = cycle([RunOutcome(True, seconds) for seconds in durations])
    result = run(len(durations), rehearse=lambda: next(outcomes), say=lambda _: None)
    low, high = round(min(durations), 1), round(max(durations), 1)
    assert low <= result.figures["p50_seconds"] <= result.figures["p95_seconds"] <= high


def test_merge_keeps_everything_else_results_json_holds(tmp_path: Path) -> None:
    # GIVEN the benchmarks' results file, with a first-run measurement from an earlier soak
    output = tmp_path / "results.json"
    output.write_text(json.dumps({"targets_met": 14, "benchmarks": {"cost": {}}, RESULTS_KEY: {"first_run": {"x": 1}}}))
    # WHEN a soak alone writes its figures
    merge_into(output, {"figures": {"runs": 20}})
    # THEN only its key changed, and the first-run figures it did not measure again are kept
    document = json.loads(output.read_text())
    assert document["targets_met"] == 14 and document["benchmarks"] == {"cost": {}}
    assert document[RESULTS_KEY] == {"figures": {"runs": 20}, "first_run": {"x": 1}}


def test_a_first_run_measured_alone_keeps_the_soaks_figures(tmp_path: Path) -> None:
    # GIVEN the figures of a soak
    output = tmp_path / "results.json"
    output.write_text(json.dumps({RESULTS_KEY: {"figures": {"runs": 20, "passed": 20}}}))
    # WHEN a fresh clone's first run is measured on its own
    merge_into(output, {"first_run": {"install_seconds": 120.0}}, first_run_only=True)
    # THEN both are there
    assert json.loads(output.read_text())[RESULTS_KEY] == {
        "figures": {"runs": 20, "passed": 20},
        "first_run": {"install_seconds": 120.0},
    }


@pytest.mark.timeout(120)
def test_make_bench_keeps_the_soak_results_when_it_rewrites_the_file(tmp_path: Path, capsys: Any) -> None:
    # GIVEN a results file holding the soak's figures
    output = tmp_path / "results.json"
    output.write_text(json.dumps({RESULTS_KEY: {"figures": {"runs": 20, "passed": 20}}}))
    # WHEN the benchmark runner rewrites it
    assert bench_main(["--only", "rotation_path", "--smoke", "--output", str(output)]) == 0
    # THEN the soak's figures are still there beside the new ones
    document = json.loads(output.read_text())
    assert document[RESULTS_KEY] == {"figures": {"runs": 20, "passed": 20}}
    assert "rotation_path" in document["benchmarks"]
