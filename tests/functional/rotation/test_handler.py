"""The Lambda entry point: settings from the environment, EMF metrics the alarms can match, JSON logs, no secrets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyrot import metric_names as m
from keyrot.errors import AdminKeyError, RotationEventError
from keyrot.handlers import rotate
from keyrot.rotation import UndeclaredSecretError
from lab.openai_standin import Fault
from lab.rotation_driver import RotationDriver
from lab.scenario import RotationWorld


@pytest.fixture
def lambda_env(world: RotationWorld, monkeypatch: pytest.MonkeyPatch) -> RotationWorld:
    monkeypatch.setenv("KEYROT_ENVIRONMENT", world.environment)
    monkeypatch.setenv("KEYROT_ADMIN_SECRET_ARN", world.admin_secret_arn)
    monkeypatch.setenv("OPENAI_BASE_URL", world.openai.base_url)
    monkeypatch.setenv("KEYROT_VALIDATION_DELAY_SECONDS", "0.01")
    return world


def _lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def _emf(lines: list[dict[str, Any]]) -> dict[str, tuple[list[list[str]], dict[str, Any]]]:
    """metric name -> (dimension sets, the whole EMF document)."""
    found: dict[str, tuple[list[list[str]], dict[str, Any]]] = {}
    for line in lines:
        for directive in line.get("_aws", {}).get("CloudWatchMetrics", []):
            assert directive["Namespace"] == m.NAMESPACE
            for metric in directive["Metrics"]:
                found.setdefault(metric["Name"], (directive["Dimensions"], line))
    return found


def test_handler_rotates_and_emits_metrics_with_the_alarm_dimensions(lambda_env: RotationWorld, capfd: Any) -> None:
    world = lambda_env
    arn = world.create_managed_secret("chat-backend")
    run = RotationDriver(world.secrets, lambda event: rotate.handler(event, None)).rotate(arn)
    assert run.succeeded, run.failures
    out = capfd.readouterr().out
    metrics = _emf(_lines(out))
    assert metrics[m.ROTATION_STARTED][0] == [[m.DIM_ENVIRONMENT]]
    assert metrics[m.ROTATION_SUCCEEDED][0] == [[m.DIM_ENVIRONMENT]]
    assert metrics[m.ROTATION_SUCCEEDED][1][m.DIM_ENVIRONMENT] == "dev"
    assert metrics[m.ROTATION_STEP_DURATION][0] == [[m.DIM_ENVIRONMENT, m.DIM_STEP]]
    assert m.ROTATION_FAILED not in metrics
    steps = [line["step"] for line in _lines(out) if line.get("message") == "rotation step succeeded"]
    assert steps == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    assert world.current(arn).api_key not in out


def test_handler_reports_a_failed_step_with_its_error_class(
    lambda_env: RotationWorld, capfd: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = lambda_env
    empty_admin = world.secrets.create_secret(Name="keyrot/dev/empty-admin")["ARN"]
    monkeypatch.setenv("KEYROT_ADMIN_SECRET_ARN", empty_admin)
    arn = world.create_managed_secret("chat-backend")
    driver = RotationDriver(world.secrets, lambda event: rotate.handler(event, None))
    token = driver.start(arn)
    with pytest.raises(AdminKeyError):
        driver.step(arn, token, "createSecret")
    lines = _lines(capfd.readouterr().out)
    failure = next(line for line in lines if line.get("message") == "rotation step failed")
    assert (failure["step"], failure["error_class"], failure["key_name"]) == (
        "createSecret",
        "AdminKeyError",
        "chat-backend",
    )
    metrics = _emf(lines)
    dims, document = metrics[m.ROTATION_FAILED]
    assert dims == [[m.DIM_ENVIRONMENT]]
    assert (document["step"], document["error_class"]) == ("createSecret", "AdminKeyError")


def test_handler_rejects_a_malformed_event_and_counts_it(lambda_env: RotationWorld, capfd: Any) -> None:
    with pytest.raises(RotationEventError, match="unknown rotation step 'rotate'"):
        rotate.handler({"Step": "rotate", "SecretId": "x", "ClientRequestToken": "t" * 36}, None)
    lines = _lines(capfd.readouterr().out)
    _, document = _emf(lines)[m.ROTATION_FAILED]
    assert document["step"] == "invalid-event"


def _deploy(world: RotationWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """The function's environment as the infrastructure sets it, its managed secrets declared."""
    for name, value in world.environment_variables().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KEYROT_VALIDATION_DELAY_SECONDS", "0.01")


def test_handler_refuses_a_secret_the_deployment_does_not_declare_and_counts_it(
    lambda_env: RotationWorld, capfd: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a deployment declaring chat-backend, and a decoy tagged like a keyrot secret pointed at the function
    world = lambda_env
    world.create_managed_secret("chat-backend")
    decoy = world.create_managed_secret("decoy", declare=False)
    _deploy(world, monkeypatch)
    driver = RotationDriver(world.secrets, lambda event: rotate.handler(event, None))
    token = driver.start(decoy)
    # WHEN the function is invoked for the decoy
    with pytest.raises(UndeclaredSecretError):
        driver.step(decoy, token, "createSecret")
    # THEN it is refused and counted through the failure path, and nothing was minted
    _, document = _emf(_lines(capfd.readouterr().out))[m.ROTATION_FAILED]
    assert (document["step"], document["error_class"]) == ("createSecret", "UndeclaredSecretError")
    assert world.openai.calls_to("create_service_account") == []


def test_handler_counts_a_displaced_key_it_could_not_revoke_and_keeps_the_promotion(
    lambda_env: RotationWorld, capfd: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a declared secret with a current and a previous key, and OpenAI failing every deletion
    world = lambda_env
    arn = world.create_managed_secret("chat-backend")
    _deploy(world, monkeypatch)
    driver = RotationDriver(world.secrets, lambda event: rotate.handler(event, None))
    assert driver.rotate(arn).succeeded and driver.rotate(arn).succeeded
    capfd.readouterr()
    world.openai.faults.add(Fault(endpoint="delete_service_account", status=500))
    # WHEN a rotation displaces the previous key
    run = driver.rotate(arn)
    # THEN the rotation succeeded, and the key it could not revoke is logged and counted in RevocationFailed
    assert run.succeeded, run.failures
    lines = _lines(capfd.readouterr().out)
    metrics = _emf(lines)
    assert m.REVOCATION_FAILED in metrics and m.ROTATION_SUCCEEDED in metrics
    assert any(line.get("message") == "displaced key not revoked" for line in lines)


def test_handler_without_configuration_fails_clearly(world: RotationWorld) -> None:
    from keyrot.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="KEYROT_ENVIRONMENT is not set"):
        rotate.handler({}, None)
