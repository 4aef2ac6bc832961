"""Every benchmark runs once at a tiny size and reports well-formed results; the runner writes one results file.

The figures of a smoke run are real but too small to judge a target by, so only what is deterministic at any size
is asserted here (call counts, failures, the archive size). `make bench` measures at full size.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from bench import BENCHMARKS
from bench.__main__ import main, merged_document, missed_guards, render_table, results_document
from bench.common import BenchResult

_results: dict[str, BenchResult] = {}


def _smoke(name: str) -> BenchResult:
    if name not in _results:
        _results[name] = importlib.import_module(f"bench.{name}").run(smoke=True)
    return _results[name]


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_runs_at_smoke_size_and_reports_well_formed_results(name: str) -> None:
    # WHEN the benchmark runs at its smallest size
    result = _smoke(name)
    # THEN it reports rows, at least one target with a verdict, and JSON-ready figures
    assert result.name == name and result.smoke and result.rows
    assert result.targets and all(isinstance(row.met, bool) and row.goal for row in result.targets)
    assert json.loads(json.dumps(result.to_json(), default=str))["targets"]


def test_hot_path_reads_secrets_manager_once_per_ttl() -> None:
    figures = _smoke("hot_path").figures
    assert figures["calls_per_10k_reads_ttl_300s"]["KeyProvider (keyrot)"]["get_secret_value"] == 1
    assert figures["median_seconds_per_read"]["KeyProvider (keyrot)"] > 0


def test_rotation_path_has_no_unexplained_call_and_no_sleep() -> None:
    figures = _smoke("rotation_path").figures
    for label in ("first rotation", "later rotation", "revocation"):
        calls = figures["calls"][label]
        assert calls["unexplained"] == [], (label, calls["sequence"])
        assert calls["openai_calls"] >= 2 and calls["aws_calls"] >= 5
    assert figures["sleeps"] == 0


def test_monitor_usage_calls_do_not_depend_on_key_count() -> None:
    runs = _smoke("monitor_scale").figures["runs"]
    usage_calls = {run["openai_by_endpoint"]["usage"] + run["openai_by_endpoint"]["costs"] for run in runs}
    assert len(usage_calls) == 1
    assert all(run["usage_datums"] > 0 and run["put_metric_data"] >= 1 for run in runs)


def test_cold_start_builds_the_archive_under_five_megabytes() -> None:
    figures = _smoke("cold_start").figures
    assert 0 < figures["archive_bytes"] < 5 * 1024 * 1024
    assert set(figures["ratio_to_boto3"]) >= {"rotate: repo", "monitor: archive"}


def test_zero_downtime_loses_no_request() -> None:
    figures = _smoke("zero_downtime").figures
    assert figures["requests_sent"] > 0 and figures["requests_failed"] == 0
    assert figures["rotations_succeeded_first_attempt"] == figures["rotations"]


def test_zero_downtime_emergency_rotations_cost_at_most_one_request_each() -> None:
    emergency = _smoke("zero_downtime").figures["emergency"]
    assert emergency["requests_sent"] > 0 and emergency["revocations"] == emergency["rotations"] >= 1
    assert max(emergency["failed_per_rotation"]) <= 1
    assert emergency["rejections_absorbed"] >= 1  # the revoked key was really used, and the retry absorbed it


def test_cost_model_breaks_every_estimate_down_by_resource() -> None:
    estimates = _smoke("cost").figures["estimates"]
    for label, estimate in estimates.items():
        assert set(estimate["usd"]) == {
            "secrets",
            "kms",
            "metrics",
            "alarms",
            "dashboard",
            "lambda",
            "scheduler",
            "logs",
            "sns",
        }
        assert estimate["total_usd"] == pytest.approx(sum(estimate["usd"].values())), label
    # Per key Requests and InputTokens (what the anomaly alarms read); for the environment SpendTodayUSD,
    # OldestKeyAgeHours, MonitorHeartbeat, MonitorPublishMarker. No dashboard, so none of the metrics only it shows.
    assert estimates["defaults, 2 keys"]["volumes"]["metrics_published_per_monitor_run"] == 2 * 2 + 4


def test_cost_model_counts_every_aws_call_of_the_monitor_handler() -> None:
    # GIVEN the monitor's measured run (its own clients: keyrot.aws.clients.monitor_clients)
    calls = _smoke("cost").figures["profiles"]["monitor 2 keys, 15 min"]["aws_calls"]
    # THEN its Secrets Manager reads, state writes and metric publishing are all counted (each is billed)
    assert calls.get("cloudwatch:PutMetricData", 0) >= 1
    assert calls.get("secretsmanager:GetSecretValue", 0) >= 1 and calls.get("ssm:PutParameter", 0) >= 1


def test_cost_model_splits_the_bill_into_a_fixed_part_and_a_part_per_key() -> None:
    figures = _smoke("cost").figures
    fixed, per_key = sum(figures["fixed_usd"].values()), sum(figures["per_key_usd"].values())
    two = figures["estimates"]["defaults, 2 keys"]["total_usd"]
    assert fixed > 0 and per_key > 0
    assert fixed + 2 * per_key == pytest.approx(two)


def test_containment_revokes_every_key_of_the_secret_but_the_new_one_in_each_case() -> None:
    # GIVEN an emergency rotation for each leak: the current key, the previous one in its grace, one pushed out
    figures = _smoke("containment").figures
    # THEN in every case only the new key still authenticates, and the command succeeded
    assert figures["all_contained"]
    assert set(figures["cases"]) == {"current", "previous", "pushed out"}
    for case in figures["cases"].values():
        assert case["keys_live_before"] >= 1 and case["openai_calls"]["delete_service_account"] >= 1


def test_containment_has_no_keyrot_sleep_but_the_wait_for_the_rotation_function() -> None:
    figures = _smoke("containment").figures
    assert figures["keyrot_sleeps_besides_follower"] == 0


def test_containment_costs_the_readme_application_no_failed_request() -> None:
    # GIVEN the README snippet sending requests with the key that is revoked (shipped TTL, SDK retries off)
    figures = _smoke("containment").figures
    # THEN OpenAI's rejection was absorbed by the refresh-and-retry, and no request failed
    assert figures["application_requests_sent"] > 0 and figures["application_requests_failed"] == 0
    assert all(case["application"]["rejections_absorbed"] >= 1 for case in figures["cases"].values())


def test_detection_sees_every_kind_of_abuse_within_the_bound_its_settings_imply() -> None:
    # GIVEN abuse of each kind, in simulated time at the deployed defaults
    cases = _smoke("detection").figures["cases"]
    # THEN each is detected, never later than the bound the settings imply
    assert set(cases) == {"unmanaged key", "retired key", "usage spike", "daily spend"}
    for name, case in cases.items():
        assert case["worst_seconds"] is not None, name
        assert 0 < case["worst_seconds"] <= case["bound_seconds"], name


def test_detection_runs_at_the_documented_defaults() -> None:
    # GIVEN the settings the benchmark read from the program it deployed (Pulumi mocks, Pulumi.yaml's defaults)
    from keyrot.pulumi.config import SETTINGS

    documented = {setting.key: setting.default for setting in SETTINGS}
    defaults = _smoke("detection").figures["defaults"]
    # THEN they are the documented defaults: the latencies it reports are the ones a default environment has
    assert defaults["interval_seconds"] == documented["monitorIntervalMinutes"] * 60
    assert defaults["settle_seconds"] == documented["settleDelayMinutes"] * 60
    assert defaults["spend_limit_usd"] == documented["dailySpendLimitUsd"]


def test_runner_prints_one_table_and_writes_the_results_file(tmp_path: Path, capsys: Any) -> None:
    # GIVEN two finished results, one with a missed target
    done = BenchResult("a", "A", smoke=True)
    done.row("measure", "1")
    done.target("goal", "2", "≤ 3", True)
    missed = BenchResult("b", "B", smoke=True)
    missed.target("goal", "9", "≤ 3", False)
    # WHEN they are rendered and written
    document = results_document([done, missed], __import__("datetime").datetime.now(), 1.0, {"cpus": 2}, [])
    table = render_table([done, missed], 1.0, smoke=True)
    # THEN one table holds every row and the document counts the targets
    assert table.row_count == 3
    assert (document["targets_met"], document["targets_total"], document["all_targets_met"]) == (1, 2, False)
    assert document["benchmarks"]["b"]["targets"][0]["met"] is False


def test_a_missed_regression_guard_fails_the_run_and_a_missed_target_does_not() -> None:
    # GIVEN one benchmark that missed an ordinary target and one that missed a regression guard
    finding = BenchResult("a", "A", smoke=True)
    finding.target("goal", "9", "≤ 3", False)
    regression = BenchResult("b", "B", smoke=True)
    regression.guard("cached read vs library", "0.5× slower", "no slower", False)
    # THEN only the guard fails the run, and the results file marks it as a guard
    assert missed_guards([finding]) == []
    assert missed_guards([finding, regression]) == ["B: cached read vs library"]
    assert regression.to_json()["targets"][0]["guard"] is True


def test_hot_path_guards_the_cached_read_against_the_fastest_caching_library() -> None:
    result = _smoke("hot_path")
    (guard,) = [row for row in result.targets if row.guard]
    assert guard.measure.startswith("KeyProvider vs fastest caching library")
    assert "cached KeyProvider read vs uncached GetSecretValue" in [
        row.measure for row in result.rows if row.met is None
    ]


def test_cold_start_reports_import_ratios_without_a_target() -> None:
    result = _smoke("cold_start")
    assert [row.measure for row in result.targets] == ["Lambda archive size"]
    assert any(row.measure.startswith("import ") and "× boto3" in row.value for row in result.rows)


def test_runner_rejects_an_unknown_benchmark(capsys: Any) -> None:
    with pytest.raises(SystemExit):
        main(["--only", "nope"])
    assert "unknown benchmark" in capsys.readouterr().err


def test_runner_end_to_end_writes_results_with_machine_and_timestamp(tmp_path: Path, capsys: Any) -> None:
    output = tmp_path / "results.json"
    assert main(["--only", "rotation_path", "--smoke", "--output", str(output)]) == 0
    document = json.loads(output.read_text())
    assert document["generated_at"] and document["machine"]["cpus"] and "rotation_path" in document["benchmarks"]
    assert "keyrot benchmarks" in capsys.readouterr().out


def test_a_merged_rerun_replaces_only_its_benchmark_and_recounts_the_targets() -> None:
    # GIVEN a full run's results (one target met of two) and a re-run of one benchmark that now meets its target
    def result(met: bool) -> dict[str, Any]:
        return {"title": "t", "targets": [{"measure": "m", "value": "v", "goal": "g", "met": met, "guard": False}]}

    previous = {
        "generated_at": "2026-12-07T17:35:17+00:00",
        "benchmarks": {"cost": result(False), "hot_path": result(True)},
        "demo_soak": {"runs": 20},
    }
    rerun = {"generated_at": "2026-12-07T20:30:00+00:00", "command": "python -m bench --only cost --merge"}
    merged = merged_document(previous, {**rerun, "benchmarks": {"cost": result(True)}})
    # THEN the other benchmark and the file's own date are kept, the targets recounted, the re-run dated
    assert merged["benchmarks"]["hot_path"] == previous["benchmarks"]["hot_path"]
    assert merged["benchmarks"]["cost"]["targets"][0]["met"] is True
    assert (merged["targets_met"], merged["targets_total"], merged["all_targets_met"]) == (2, 2, True)
    assert merged["generated_at"] == previous["generated_at"] and merged["demo_soak"] == {"runs": 20}
    assert merged["rerun"] == {"cost": {"at": rerun["generated_at"], "command": rerun["command"]}}
