"""The guardrails function (keyrot.handlers.guardrails.handler) as deployed: moto holds the admin-key secret and the
declared parameter, the function's configuration carries the project and the digest, OpenAI is the stand-in.

Shaped like its callers: Pulumi's deploy-time invocation, the scheduled check, an operator invoking it by hand with a
document of their own, someone who can write the SSM parameter, and `pulumi destroy`."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from keyrot import metric_names as m
from keyrot.constants import ENV_GUARDRAILS_PARAMETER, ENV_GUARDRAILS_SHA256, guardrails_parameter_name
from keyrot.guardrails import DeclaredStateError, GuardrailsRestoreError, document_digest, to_document
from keyrot.handlers import guardrails as guardrails_handler
from lab.openai_standin import Fault
from lab.scenario import RotationWorld

from .conftest import BLOCK, WRITE_ENDPOINTS, declare, json_lines

REGION = "us-east-1"


@pytest.fixture
def ssm(world: RotationWorld) -> Any:
    return boto3.client("ssm", region_name=REGION)


def rails(world: RotationWorld) -> Any:
    return world.openai.state.guardrails_for(world.project_id)


def writes(world: RotationWorld) -> list[str]:
    return [call.endpoint for call in world.openai.calls if call.endpoint in WRITE_ENDPOINTS]


def metrics(output: str) -> dict[str, float]:
    """Every EMF metric value printed, by name."""
    found: dict[str, float] = {}
    for line in json_lines(output):
        for directive in line.get("_aws", {}).get("CloudWatchMetrics", []):
            assert directive["Dimensions"] == [[m.DIM_ENVIRONMENT]]
            for metric in directive["Metrics"]:
                value = line[metric["Name"]]
                found[metric["Name"]] = value[0] if isinstance(value, list) else value
    return found


def test_the_deploy_time_invocation_applies_the_declared_document(
    world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch, capfd: Any
) -> None:
    # GIVEN a deployment declaring the block
    declared = declare(world, ssm, monkeypatch, BLOCK)
    # WHEN Pulumi invokes the function with the declared document as its input
    result = guardrails_handler.handler({"action": "apply", "guardrails": to_document(declared)}, None)
    # THEN the project has the guardrails, and the result lists the six changes with the digest applied
    assert rails(world).spend_limit_cents == 10_000
    assert result["action"] == "apply" and len(result["changes"]) == 6
    assert result["declared_sha256"] == document_digest(to_document(declared))
    assert metrics(capfd.readouterr().out) == {m.GUARDRAILS_CHANGED: 6.0}


def test_an_apply_with_a_document_other_than_the_declared_one_changes_nothing(
    world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch, capfd: Any
) -> None:
    # GIVEN a deployment declaring a $100 hard limit
    declared = declare(world, ssm, monkeypatch, BLOCK)
    # WHEN someone allowed to invoke the function sends a document of their own (no hard limit, every model)
    forged = to_document(declared) | {"spendLimitUsd": 1_000_000}
    del forged["models"]
    with pytest.raises(DeclaredStateError, match="not the ones this deployment declared"):
        guardrails_handler.handler({"action": "apply", "guardrails": forged}, None)
    # THEN OpenAI received no changing call and the failure is counted and logged
    assert writes(world) == [] and rails(world).spend_limit_cents is None
    out = capfd.readouterr().out
    assert metrics(out) == {m.GUARDRAILS_APPLY_FAILED: 1.0}
    (failure,) = [line for line in json_lines(out) if line.get("message") == "guardrails failed"]
    assert failure["error_class"] == "DeclaredStateError"


def test_a_parameter_rewritten_outside_the_deployment_is_refused_by_the_check(
    world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the block applied with enforce: restore, then the parameter rewritten to declare a $1M limit
    declared = declare(world, ssm, monkeypatch, {**BLOCK, "enforce": "restore"})
    guardrails_handler.handler({"action": "apply", "guardrails": to_document(declared)}, None)
    forged = json.dumps(to_document(declared) | {"spendLimitUsd": 1_000_000})
    ssm.put_parameter(Name=guardrails_parameter_name(world.environment), Value=forged, Type="String", Overwrite=True)
    world.openai.reset_calls()
    # WHEN the scheduled check runs
    with pytest.raises(DeclaredStateError, match="changed outside `pulumi up`"):
        guardrails_handler.handler({"action": "check"}, None)
    # THEN it "restored" nothing to the forged values: OpenAI was not even asked
    assert world.openai.calls == [] and rails(world).spend_limit_cents == 10_000


def test_the_check_publishes_the_drift_gauge_and_notify_changes_nothing(
    world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch, capfd: Any
) -> None:
    declared = declare(world, ssm, monkeypatch, BLOCK)
    guardrails_handler.handler({"action": "apply", "guardrails": to_document(declared)}, None)
    world.openai.console.set_spend_limit(world.project_id, 99_900)
    capfd.readouterr()
    world.openai.reset_calls()
    result = guardrails_handler.handler({"action": "check"}, None)
    assert result["drift"]["drift"][0]["setting"] == "spendLimitUsd" and result["changes"] == []
    assert writes(world) == [] and rails(world).spend_limit_cents == 99_900
    assert metrics(capfd.readouterr().out) == {
        m.GUARDRAIL_DRIFT: 1.0,
        m.GUARDRAILS_RESTORED: 0.0,
        m.SPEND_MONTH_TO_DATE_USD: 0.0,
    }


def test_the_check_with_enforce_restore_puts_the_declared_value_back(
    world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch, capfd: Any
) -> None:
    declared = declare(world, ssm, monkeypatch, {**BLOCK, "enforce": "restore"})
    guardrails_handler.handler({"action": "apply", "guardrails": to_document(declared)}, None)
    world.openai.console.update_rate_limit(world.project_id, "gpt-4o-mini", max_requests_per_1_minute=1)
    capfd.readouterr()
    result = guardrails_handler.handler({"action": "check"}, None)
    assert result["changes"] == ["rate limits of gpt-4o-mini: max_requests_per_1_minute 1 -> 500"]
    assert rails(world).rate_limits["rl-gpt-4o-mini"].values["max_requests_per_1_minute"] == 500
    assert metrics(capfd.readouterr().out) == {
        m.GUARDRAIL_DRIFT: 1.0,
        m.GUARDRAILS_RESTORED: 1.0,
        m.SPEND_MONTH_TO_DATE_USD: 0.0,
    }


def test_a_restore_that_openai_refuses_fails_the_function_after_publishing_the_drift(
    world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch, capfd: Any
) -> None:
    # GIVEN restore mode, a console change, and an admin key OpenAI no longer lets set spend limits
    declared = declare(world, ssm, monkeypatch, {**BLOCK, "enforce": "restore"})
    guardrails_handler.handler({"action": "apply", "guardrails": to_document(declared)}, None)
    world.openai.console.delete_spend_limit(world.project_id)
    world.openai.faults.add(Fault("set_spend_limit", status=403, error_type="invalid_request_error", message="no"))
    capfd.readouterr()
    # WHEN the check runs
    with pytest.raises(GuardrailsRestoreError, match="PermissionDeniedError"):
        guardrails_handler.handler({"action": "check"}, None)
    # THEN the drift was still published, and the failure counted
    assert metrics(capfd.readouterr().out) == {
        m.GUARDRAIL_DRIFT: 1.0,
        m.GUARDRAILS_RESTORED: 0.0,
        m.SPEND_MONTH_TO_DATE_USD: 0.0,
        m.GUARDRAILS_APPLY_FAILED: 1.0,
    }


def test_pulumi_destroy_leaves_the_guardrails_as_they_are(
    world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    declared = declare(world, ssm, monkeypatch, BLOCK)
    guardrails_handler.handler({"action": "apply", "guardrails": to_document(declared)}, None)
    world.openai.reset_calls()
    event = {"action": "apply", "guardrails": to_document(declared), "tf": {"action": "delete", "prev_input": {}}}
    assert guardrails_handler.handler(event, None)["action"] == "none"
    assert world.openai.calls == [] and rails(world).spend_limit_cents == 10_000


def test_a_deployment_without_guardrails_checks_nothing_and_applies_nothing(
    world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    declare(world, ssm, monkeypatch, BLOCK)
    monkeypatch.delenv(ENV_GUARDRAILS_PARAMETER)
    monkeypatch.delenv(ENV_GUARDRAILS_SHA256)
    assert guardrails_handler.handler({"action": "check"}, None)["declared"] is False
    with pytest.raises(DeclaredStateError, match="declares no guardrails"):
        guardrails_handler.handler({"action": "apply", "guardrails": {"version": 1, "enforce": "notify"}}, None)
    assert world.openai.calls == []


def test_no_key_material_in_the_functions_logs_results_or_errors(
    world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch, capfd: Any
) -> None:
    # GIVEN an apply, a check with drift and a refused apply (OpenAI's 400 echoes the request)
    declared = declare(world, ssm, monkeypatch, BLOCK)
    results = [guardrails_handler.handler({"action": "apply", "guardrails": to_document(declared)}, None)]
    world.openai.console.update_rate_limit(world.project_id, "gpt-4o-mini", max_requests_per_1_minute=3)
    results.append(guardrails_handler.handler({"action": "check"}, None))
    errors = []
    monkeypatch.setenv(ENV_GUARDRAILS_SHA256, "0" * 64)
    with pytest.raises(DeclaredStateError) as caught:
        guardrails_handler.handler({"action": "check"}, None)
    errors.append(str(caught.value))
    # THEN neither the admin key nor any key the stand-in issued appears in what the function printed or returned
    texts = [capfd.readouterr().out, json.dumps(results), *errors]
    secrets = [world.admin_key, *world.openai.state.minted_values]
    assert not [secret for secret in secrets for text in texts if secret in text]
    assert all("sk-" not in text for text in texts)
