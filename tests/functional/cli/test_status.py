"""`keyrot status`: the table, the JSON document, alarms, pending rotations and the ways it can fail."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import boto3
import pytest

from keyrot.cli import context as cli_context
from lab.scenario import RotationWorld

from .conftest import REGION, Cli, rotated


def _alarm(name: str, state: str = "OK") -> None:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="KeyAgeHours",
        Namespace="Keyrot",
        Statistic="Maximum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    if state != "OK":
        cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="test")


def test_status_shows_current_and_previous_key_per_key(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a key rotated twice
    arn = rotated(world, "chat-backend", times=2)
    # WHEN status runs
    result = cli("status", "--env", "dev")
    # THEN the current key and the unrevoked previous key are listed by id
    assert result.exit_code == 0, result.output
    assert "chat-backend" in result.stdout
    assert world.current(arn).key_id in result.stdout
    previous = world.previous(arn)
    assert previous is not None
    assert f"{previous.key_id} (not revoked)" in result.stdout


def test_status_json_is_a_stable_document(world: RotationWorld, cli: Cli) -> None:
    arn = rotated(world, "chat-backend")
    result = cli("status", "--env", "dev", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["schema"] == "keyrot.cli.status/v1"
    assert document["region"] == REGION
    [environment] = document["environments"]
    [key] = environment["keys"]
    assert environment["environment"] == "dev"
    assert key["key_name"] == "chat-backend"
    assert key["current"]["key_id"] == world.current(arn).key_id
    assert key["pending"] is None
    assert key["previous"] is None
    assert key["rotation_enabled"] is True
    assert key["health"] == "ok"


def test_status_without_env_covers_every_tagged_environment(world: RotationWorld, cli: Cli) -> None:
    # GIVEN keys in dev and in prod
    rotated(world, "chat-backend")
    prod = RotationWorld.create(world.openai, world.secrets, environment="prod")
    rotated(prod, "batch")
    # WHEN status runs without --env
    result = cli("status", "--json")
    # THEN both environments are reported
    assert result.exit_code == 0, result.output
    names = [env["environment"] for env in json.loads(result.stdout)["environments"]]
    assert names == ["dev", "prod"]


def test_status_ignores_an_environment_that_has_only_an_admin_key_secret(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    world.secrets.create_secret(
        Name="keyrot/qa/openai-admin-key",
        Tags=[{"Key": "keyrot:environment", "Value": "qa"}, {"Key": "keyrot:admin-key", "Value": "qa"}],
    )
    result = cli("status", "--json")
    assert result.exit_code == 0, result.output
    assert [env["environment"] for env in json.loads(result.stdout)["environments"]] == ["dev"]


def test_status_unknown_environment_exits_4(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    result = cli("status", "--env", "qa")
    assert result.exit_code == 4
    assert "no keyrot secrets tagged keyrot:environment=qa in region us-east-1" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_status_in_the_wrong_region_exits_4_naming_the_region(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    result = cli("status", "--env", "dev", "--region", "eu-west-1")
    assert result.exit_code == 4
    assert "in region eu-west-1" in result.stderr


def test_status_accepts_global_options_before_the_command(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    result = cli("--region", "eu-west-1", "status", "--env", "dev")
    assert result.exit_code == 4
    assert "in region eu-west-1" in result.stderr


def test_status_flags_a_pending_rotation_older_than_30_minutes_as_stuck(
    world: RotationWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a rotation that minted its key, then stopped (testSecret never passed)
    arn = rotated(world, "chat-backend")
    driver = world.driver()
    token = driver.start(arn)
    driver.step(arn, token, "createSecret")
    # WHEN status looks an hour later
    later = cli_context.utc_now() + timedelta(hours=1)
    monkeypatch.setattr(cli_context, "utc_now", lambda: later)
    result = cli("status", "--env", "dev", "--json")
    # THEN the rotation is stuck and the key unhealthy
    assert result.exit_code == 0, result.output
    [key] = json.loads(result.stdout)["environments"][0]["keys"]
    assert key["pending"]["version_id"] == token
    assert key["pending"]["state"] == "stuck"
    assert key["pending"]["value_stored"] is True
    assert key["health"] == "fail"
    assert "STUCK" in cli("status", "--env", "dev").stdout


def test_status_reports_per_key_and_environment_alarms(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a firing per-key alarm (of the longer of two overlapping key names) and an environment alarm
    rotated(world, "chat")
    rotated(world, "chat-backend")
    _alarm("keyrot-dev-chat-backend-requests-anomaly", "ALARM")
    _alarm("keyrot-dev-chat-requests-anomaly")
    _alarm("keyrot-dev-rotation-failed")
    # WHEN status runs
    result = cli("status", "--env", "dev", "--json")
    # THEN each alarm is attributed to its own key, the rest summarised for the environment
    environment = json.loads(result.stdout)["environments"][0]
    alarms = {key["key_name"]: key["alarms"] for key in environment["keys"]}
    assert alarms["chat-backend"] == [{"name": "keyrot-dev-chat-backend-requests-anomaly", "state": "ALARM"}]
    assert alarms["chat"] == [{"name": "keyrot-dev-chat-requests-anomaly", "state": "OK"}]
    assert environment["alarms"]["environment_wide"] == [{"name": "keyrot-dev-rotation-failed", "state": "OK"}]
    assert environment["alarms"]["firing"] == ["keyrot-dev-chat-backend-requests-anomaly"]
    assert "Environment alarms: 1 OK" in cli("status", "--env", "dev").stdout


def test_status_without_alarm_permission_still_lists_keys(
    world: RotationWorld, cli: Cli, deny: Callable[[str], None]
) -> None:
    arn = rotated(world, "chat-backend")
    deny("DescribeAlarms")
    result = cli("status", "--env", "dev")
    assert result.exit_code == 0, result.output
    assert world.current(arn).key_id in result.stdout
    assert "Alarms unavailable: access denied: this identity may not call cloudwatch:DescribeAlarms" in result.stdout


def test_status_access_denied_exits_5_naming_the_action(
    world: RotationWorld, cli: Cli, deny: Callable[[str], None]
) -> None:
    rotated(world, "chat-backend")
    deny("ListSecrets")
    result = cli("status", "--env", "dev")
    assert result.exit_code == 5
    assert "access denied: this identity may not call secretsmanager:ListSecrets" in result.stderr
    assert "Traceback" not in result.output


def test_status_without_credentials_exits_3(world: RotationWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = cli("status", "--env", "dev")
    assert result.exit_code == 3
    assert "no usable AWS credentials" in result.stderr
