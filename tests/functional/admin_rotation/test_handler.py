"""The admin rotation function's entry point: settings from the environment, the metrics its alarms match, step lines
`keyrot rotate --admin` follows, the scheduled cleanup event, and no key in any output."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyrot import metric_names as m
from keyrot.admin_rotation import UndeclaredAdminSecretError
from keyrot.constants import ADMIN_CLEANUP_EVENT_FIELD, ADMIN_CLEANUP_EVENT_VALUE
from keyrot.errors import AdminKeyError, RotationEventError
from keyrot.handlers import rotate_admin
from keyrot.names import STEP_SUCCEEDED
from lab.rotation_driver import RotationDriver

from .world import AdminWorld

CLEANUP_EVENT = {ADMIN_CLEANUP_EVENT_FIELD: ADMIN_CLEANUP_EVENT_VALUE}


@pytest.fixture
def deployed(admin_world: AdminWorld, monkeypatch: pytest.MonkeyPatch) -> AdminWorld:
    """The function's environment as the infrastructure sets it."""
    for name, value in admin_world.environment_variables().items():
        monkeypatch.setenv(name, value)
    return admin_world


def _lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def _emf(lines: list[dict[str, Any]]) -> dict[str, list[tuple[list[list[str]], dict[str, Any]]]]:
    """metric name -> [(dimension sets, the whole EMF document)]."""
    found: dict[str, list[tuple[list[list[str]], dict[str, Any]]]] = {}
    for line in lines:
        for directive in line.get("_aws", {}).get("CloudWatchMetrics", []):
            assert directive["Namespace"] == m.NAMESPACE
            for metric in directive["Metrics"]:
                found.setdefault(metric["Name"], []).append((directive["Dimensions"], line))
    return found


def _values(value: Any) -> list[float]:
    return list(value) if isinstance(value, list) else [value]


def _driver() -> RotationDriver:
    import boto3

    return RotationDriver(boto3.client("secretsmanager"), lambda event: rotate_admin.handler(event, None))


def test_the_handler_rotates_and_emits_the_admin_metrics(deployed: AdminWorld, capfd: Any) -> None:
    # GIVEN the deployed function
    world = deployed
    # WHEN Secrets Manager rotates the admin-key secret through it
    run = _driver().rotate(world.arn)
    # THEN the rotation succeeded, counted with the Environment dimension the alarms use
    assert run.succeeded, run.failures
    out = capfd.readouterr().out
    metrics = _emf(_lines(out))
    for name in (m.ADMIN_ROTATION_STARTED, m.ADMIN_ROTATION_SUCCEEDED, m.ADMIN_KEYS_LIVE, m.ADMIN_KEY_AGE_HOURS):
        [(dimensions, document)] = metrics[name]
        assert dimensions == [[m.DIM_ENVIRONMENT]] and document[m.DIM_ENVIRONMENT] == "dev", name
    assert _values(metrics[m.ADMIN_KEYS_LIVE][0][1][m.ADMIN_KEYS_LIVE]) == [1]
    assert metrics[m.ADMIN_ROTATION_STEP_DURATION][0][0] == [[m.DIM_ENVIRONMENT, m.DIM_STEP]]
    assert m.ADMIN_ROTATION_FAILED not in metrics and m.ROTATION_FAILED not in metrics
    # AND every step logged the line `keyrot rotate` follows, naming the secret
    steps = [(line["step"], line["secret"]) for line in _lines(out) if line.get("message") == STEP_SUCCEEDED]
    assert [step for step, _ in steps] == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    assert {secret for _, secret in steps} <= {world.arn, "keyrot/dev/openai-admin-key"}
    # AND no admin key value appears
    assert world.current().admin_key not in out and world.bootstrap_key not in out


def test_a_failed_step_is_counted_with_its_step_and_error_class(
    deployed: AdminWorld, capfd: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a current admin key OpenAI no longer accepts
    world = deployed
    world.openai.state.revoke_admin_key(world.bootstrap_key)
    driver = _driver()
    token = driver.start(world.arn)
    # WHEN createSecret runs
    with pytest.raises(AdminKeyError):
        driver.step(world.arn, token, "createSecret")
    # THEN AdminRotationFailed carries the step and the error class, and the log says the same
    lines = _lines(capfd.readouterr().out)
    [(dimensions, document)] = _emf(lines)[m.ADMIN_ROTATION_FAILED]
    assert dimensions == [[m.DIM_ENVIRONMENT]]
    assert (document["step"], document["error_class"]) == ("createSecret", "AdminKeyError")
    failure = next(line for line in lines if line.get("message") == "rotation step failed")
    assert (failure["step"], failure["error_class"]) == ("createSecret", "AdminKeyError")


def test_a_malformed_event_is_refused_and_counted(deployed: AdminWorld, capfd: Any) -> None:
    # WHEN the function gets an event that is neither a rotation step nor the cleanup
    with pytest.raises(RotationEventError):
        rotate_admin.handler({"keyrot": "rotate-everything"}, None)
    # THEN it is counted as a failed admin rotation, step invalid-event
    [(_, document)] = _emf(_lines(capfd.readouterr().out))[m.ADMIN_ROTATION_FAILED]
    assert document["step"] == "invalid-event"


def test_a_secret_other_than_the_declared_admin_key_secret_is_never_touched(deployed: AdminWorld) -> None:
    # GIVEN another secret pointed at the admin rotation function
    world = deployed
    decoy = world.secrets.create_secret(Name="keyrot/dev/decoy", SecretString='{"admin_key": "sk-x"}')["ARN"]
    from lab.moto_gaps import enable_rotation

    enable_rotation("us-east-1", decoy, "arn:aws:lambda:us-east-1:123456789012:function:keyrot-dev-admin-rotation")
    driver = _driver()
    token = driver.start(decoy)
    # WHEN the function is invoked for it THEN it refuses, and nothing was minted or called
    with pytest.raises(UndeclaredAdminSecretError):
        driver.step(decoy, token, "createSecret")
    assert world.openai.calls == []


def test_the_scheduled_cleanup_deletes_the_previous_key_and_counts_it(
    deployed: AdminWorld, capfd: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a rotated admin key, the bootstrap key AWSPREVIOUS, deleteBootstrapKey on, no grace left
    world = deployed
    monkeypatch.setenv("KEYROT_ADMIN_DELETE_BOOTSTRAP_KEY", "true")
    monkeypatch.setenv("KEYROT_ADMIN_KEY_GRACE_SECONDS", "0")
    world.rotate()
    capfd.readouterr()
    # WHEN the schedule's cleanup event arrives
    result = rotate_admin.handler(dict(CLEANUP_EVENT), None)
    # THEN the bootstrap key is deleted, reported by id, and counted
    assert result == {"deleted": [f"{world.bootstrap_key_id} (bootstrap)"], "failures": 0}
    assert not world.authenticates(world.bootstrap_key)
    metrics = _emf(_lines(capfd.readouterr().out))
    assert _values(metrics[m.ADMIN_KEY_DELETED][0][1][m.ADMIN_KEY_DELETED]) == [1]
    assert m.ADMIN_KEY_CLEANUP_FAILED not in metrics


def test_a_cleanup_that_cannot_run_is_counted_and_raised(deployed: AdminWorld, capfd: Any) -> None:
    # GIVEN a current admin key OpenAI rejects
    world = deployed
    world.openai.state.revoke_admin_key(world.bootstrap_key)
    # WHEN the scheduled cleanup runs THEN it fails loudly: counted, logged by class, raised (Lambda's Errors)
    with pytest.raises(AdminKeyError):
        rotate_admin.handler(dict(CLEANUP_EVENT), None)
    lines = _lines(capfd.readouterr().out)
    assert _emf(lines)[m.ADMIN_KEY_CLEANUP_FAILED]
    assert any(line.get("message") == "admin key cleanup failed" for line in lines)
