"""The scheduled Lambda entry point: settings from the environment, a summary, EMF on failure, no secrets."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from keyrot import metric_names as m
from keyrot.handlers import monitor as monitor_handler
from keyrot.monitor.state import MonitorStateError
from lab.monitor_scenario import MonitorWorld

from .conftest import current_key_id, rotated


@pytest.fixture
def lambda_env(monitor: MonitorWorld, monkeypatch: pytest.MonkeyPatch) -> MonitorWorld:
    settings = monitor.settings
    for name, value in {
        "KEYROT_ENVIRONMENT": settings.environment,
        "KEYROT_ADMIN_SECRET_ARN": settings.admin_secret_arn,
        "KEYROT_OPENAI_PROJECT_ID": settings.project_id,
        "KEYROT_TOPIC_ARN": settings.topic_arn,
        "KEYROT_STATE_PARAMETER": settings.state_parameter,
        "OPENAI_BASE_URL": settings.openai_base_url,
        "KEYROT_SETTLE_DELAY_SECONDS": "0",
        "KEYROT_VALIDATION_DELAY_SECONDS": "0.01",
    }.items():
        monkeypatch.setenv(name, value)
    return monitor


def _lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_handler_runs_and_logs_a_summary_without_key_material(lambda_env: MonitorWorld, capfd: Any) -> None:
    world = lambda_env
    arn = rotated(world, "chat-backend")
    now = int(time.time())
    watermark = now - now % 60 - 600
    world.ssm.put_parameter(
        Name=world.settings.state_parameter,
        Type="String",
        Overwrite=True,
        Value=json.dumps({"version": 1, "watermark": watermark, "marker": 0, "intent": None, "notified": {}}),
    )
    world.rotation.openai.state.record_usage(
        current_key_id(world, arn), at=watermark + 65, num_model_requests=3, input_tokens=1, output_tokens=1
    )
    summary = monitor_handler.handler({}, None)
    assert summary["usage_datums"] == 3 and summary["window"][0] == watermark
    out = capfd.readouterr().out
    (done,) = [line for line in _lines(out) if line.get("message") == "monitor run complete"]
    assert done["usage_datums"] == 3
    for value in world.rotation.openai.state.minted_values:
        assert value not in out


def test_handler_failure_is_counted_and_logged(lambda_env: MonitorWorld, capfd: Any) -> None:
    world = lambda_env
    world.ssm.put_parameter(Name=world.settings.state_parameter, Type="String", Value="garbage", Overwrite=True)
    with pytest.raises(MonitorStateError):
        monitor_handler.handler({}, None)
    lines = _lines(capfd.readouterr().out)
    (failure,) = [line for line in lines if line.get("message") == "monitor run failed"]
    assert failure["error_class"] == "MonitorStateError"
    emf = [line for line in lines if "_aws" in line]
    assert emf and emf[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == m.MONITOR_RUN_FAILED
    assert emf[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[m.DIM_ENVIRONMENT]]


def _metric_names(line: dict[str, Any]) -> list[str]:
    return [metric["Name"] for directive in line["_aws"]["CloudWatchMetrics"] for metric in directive["Metrics"]]


def test_a_costs_failure_is_counted_and_the_run_still_succeeds(lambda_env: MonitorWorld, capfd: Any) -> None:
    from lab.openai_standin import server_error

    # GIVEN a Costs API that fails
    rotated(lambda_env, "chat-backend")
    lambda_env.rotation.openai.faults.add(server_error("costs"))
    # WHEN the scheduled function runs
    summary = monitor_handler.handler({}, None)
    # THEN it succeeds, and the EMF output counts the costs failure on its own and by part
    assert summary["heartbeat"] and list(summary["failed_parts"]) == ["costs"]
    emf = [line for line in _lines(capfd.readouterr().out) if "_aws" in line]
    costs = [line for line in emf if m.COSTS_READ_FAILED in _metric_names(line)]
    parts = [line for line in emf if m.MONITOR_PART_FAILED in _metric_names(line)]
    assert len(costs) == 1 and costs[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[m.DIM_ENVIRONMENT]]
    assert len(parts) == 1 and parts[0][m.DIM_PART] == "costs"
    assert not [line for line in emf if m.MONITOR_RUN_FAILED in _metric_names(line)]


def test_a_failed_part_fails_the_function_and_is_counted_by_name(lambda_env: MonitorWorld, capfd: Any) -> None:
    from keyrot.openai_admin import ServerError
    from lab.openai_standin import server_error

    # GIVEN ten minutes of usage to read, and a Usage API that fails
    rotated(lambda_env, "chat-backend")
    now = int(time.time())
    state = {"version": 1, "watermark": now - now % 60 - 600, "marker": 0, "intent": None, "notified": {}}
    lambda_env.ssm.put_parameter(
        Name=lambda_env.settings.state_parameter, Type="String", Overwrite=True, Value=json.dumps(state)
    )
    lambda_env.rotation.openai.faults.add(server_error("usage"))
    # WHEN the scheduled function runs THEN it fails (the Lambda error alarm sees it) once the other parts ran
    with pytest.raises(ServerError):
        monitor_handler.handler({}, None)
    lines = _lines(capfd.readouterr().out)
    (failure,) = [line for line in lines if line.get("message") == "monitor run failed"]
    assert failure["error_class"] == "ServerError" and list(failure["failed_parts"]) == ["usage"]
    emf = [line for line in lines if "_aws" in line]
    assert [line[m.DIM_PART] for line in emf if m.MONITOR_PART_FAILED in _metric_names(line)] == ["usage"]
    assert [line for line in emf if m.MONITOR_RUN_FAILED in _metric_names(line)]


def test_an_operators_set_aside_input_reaches_the_run(lambda_env: MonitorWorld) -> None:
    # GIVEN nothing set aside, WHEN an operator invokes the function to replay THEN the run says what it did
    summary = monitor_handler.handler({"setAside": "replay"}, None)
    assert summary["replayed"] == [] and summary["still_set_aside"] == 0 and summary["heartbeat"]


def test_an_unknown_operator_input_is_refused_and_changes_nothing(lambda_env: MonitorWorld, capfd: Any) -> None:
    from keyrot.monitor.run import MonitorInputError

    # GIVEN a state, WHEN the function is invoked with an input it does not know
    lambda_env.run()
    before = lambda_env.state()
    with pytest.raises(MonitorInputError, match="setAside must be one of replay, drop"):
        monitor_handler.handler({"setAside": "everything"}, None)
    # THEN it failed saying why, and the state is as it was
    (failure,) = [line for line in _lines(capfd.readouterr().out) if line.get("message") == "monitor run failed"]
    assert failure["error_class"] == "MonitorInputError" and lambda_env.state() == before
