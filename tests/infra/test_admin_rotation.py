"""The admin key's own rotation as deployed (issue 14.1): its function, the admin-key secret's rotation schedule, the
scheduled cleanup, its alarms, and what the admin-key secret's policy lets it do.

Shaped like on-call (a rotation that fails or a key past its schedule pages), the deployer (`adminKeyRotation`
validated with the rest, never on a secret keyrot does not own) and someone with a broad IAM policy in the account
(the admin-key secret's policy still keeps its labels and tags to keyrot).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from infra_harness import Deployment, Recorded, keyrot_config, stack_config

from keyrot import constants as c
from keyrot import metric_names as m
from keyrot.pulumi.config import ConfigError, parse_config
from keyrot.pulumi.environment import args_from_config, validate_args
from keyrot.settings import AdminRotationSettings
from tests.support.iam_eval import Principal, evaluate
from tests.support.secretsmanager_actions import request, write_actions

pytestmark = pytest.mark.timeout(180)

FUNCTION = "aws:lambda/function:Function"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
BROAD = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]}


def admin_function(d: Deployment) -> Recorded:
    (found,) = d.find(FUNCTION, lambda r: r.inputs["name"] == f"keyrot-{d.stack}-admin-rotation")
    return found


def statements(d: Deployment, name: str) -> dict[str, dict[str, Any]]:
    (policy,) = d.find("aws:iam/rolePolicy:RolePolicy", lambda r: r.inputs["name"] == name)
    return {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}


def raw(**overrides: Any) -> dict[str, Any]:
    merged = {k.split(":", 1)[1]: v for k, v in stack_config("dev").items() if k.startswith("keyrot:")}
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = json.dumps(value) if isinstance(value, (dict, list)) else value
    return merged


def problems(**overrides: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw(**overrides), stack="dev")
    return caught.value.problems


# --- the function --------------------------------------------------------------------------------------------------


def test_the_function_is_configured_as_admin_rotation_settings_reads_it(dev: Deployment) -> None:
    # GIVEN the dev stack, which rotates its admin key monthly
    function = admin_function(dev)
    variables = function.inputs["environment"]["variables"]
    settings = AdminRotationSettings.from_env(variables)
    # THEN it rotates exactly the environment's admin-key secret, proves new keys on its project, on its schedule
    assert settings.admin_secret_arn == dev.outputs["adminKeySecretArn"]
    assert settings.project_id == keyrot_config(dev).openai_project_id
    assert settings.rotation_interval_seconds == 30 * 86400
    assert settings.delete_bootstrap_key is False
    assert set(variables) == {
        c.ENV_ENVIRONMENT,
        c.ENV_ADMIN_SECRET_ARN,
        c.ENV_PROJECT_ID,
        c.ENV_ADMIN_ROTATION_INTERVAL_SECONDS,
        c.ENV_ADMIN_DELETE_BOOTSTRAP_KEY,
    }
    # AND it runs the admin rotation handler with the timeout the cleanup reasons with, under its own role
    assert function.inputs["handler"] == c.ADMIN_ROTATION_HANDLER
    assert function.inputs["timeout"] == c.ADMIN_ROTATION_TIMEOUT_SECONDS
    assert function.inputs["role"] == f"arn:aws:iam::{dev.account}:role/keyrot-dev-admin-rotation"
    assert function.inputs["loggingConfig"]["logGroup"] == "/aws/lambda/keyrot-dev-admin-rotation"


def test_secrets_manager_rotates_the_admin_key_on_its_schedule_never_at_deploy(dev: Deployment) -> None:
    config = keyrot_config(dev)
    admin_secret = dev.outputs["adminKeySecretArn"]
    (rotation,) = dev.find(ROTATION, lambda r: r.inputs["secretId"] == admin_secret)
    function = admin_function(dev)
    assert rotation.inputs["rotationLambdaArn"] == function.outputs["arn"]
    assert rotation.inputs["rotationRules"] == {
        "scheduleExpression": "rate(30 days)",
        "duration": config.rotation_window,
    }
    # The secret is empty until the operator puts the bootstrap admin key.
    assert rotation.inputs["rotateImmediately"] is False
    # AND Secrets Manager may invoke it for that secret only, from this account only
    (permission,) = dev.find(
        "aws:lambda/permission:Permission", lambda r: r.inputs["function"] == "keyrot-dev-admin-rotation"
    )
    assert (permission.inputs["principal"], permission.inputs["sourceArn"], permission.inputs["sourceAccount"]) == (
        "secretsmanager.amazonaws.com",
        admin_secret,
        dev.account,
    )
    # AND the rotation is configured only once the role may use the secret (its policy and the secret's)
    (secret_policy,) = dev.find(
        "aws:secretsmanager/secretPolicy:SecretPolicy", lambda r: r.inputs["secretArn"] == admin_secret
    )
    role_policy = dev.named("keyrot-admin-rotation-lambda-permissions")
    assert {permission.urn, role_policy.urn, secret_policy.urn} <= set(rotation.dependencies)


def test_the_cleanup_runs_every_five_minutes_through_a_role_that_invokes_only_the_function(dev: Deployment) -> None:
    (schedule,) = dev.find(
        "aws:scheduler/schedule:Schedule", lambda r: r.inputs["name"] == "keyrot-dev-admin-key-cleanup"
    )
    function = admin_function(dev)
    assert schedule.inputs["scheduleExpression"] == c.ADMIN_CLEANUP_SCHEDULE == "rate(5 minutes)"
    assert json.loads(schedule.inputs["target"]["input"]) == {c.ADMIN_CLEANUP_EVENT_FIELD: c.ADMIN_CLEANUP_EVENT_VALUE}
    assert schedule.inputs["target"]["arn"] == function.outputs["arn"]
    assert statements(dev, "keyrot-dev-admin-scheduler") == {
        "InvokeAdminKeyCleanup": {
            "Sid": "InvokeAdminKeyCleanup",
            "Effect": "Allow",
            "Action": ["lambda:InvokeFunction"],
            "Resource": [function.outputs["arn"]],
        }
    }


def test_the_role_may_rotate_the_admin_key_secret_and_nothing_else(dev: Deployment) -> None:
    admin_secret = dev.outputs["adminKeySecretArn"]
    found = statements(dev, "keyrot-dev-admin-rotation")
    assert {sid: (s["Action"], s["Resource"]) for sid, s in found.items()} == {
        "RotateAdminKey": (
            [
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetSecretValue",
                "secretsmanager:ListSecretVersionIds",
                "secretsmanager:PutSecretValue",
                "secretsmanager:UpdateSecretVersionStage",
            ],
            [admin_secret],
        ),
        "TagPromotion": (["secretsmanager:TagResource"], [admin_secret]),
        "UseSecretsKey": (["kms:Decrypt", "kms:GenerateDataKey"], [dev.outputs["kmsKeyArn"]]),
        "WriteOwnLogs": (
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [f"arn:aws:logs:{dev.region}:{dev.account}:log-group:/aws/lambda/keyrot-dev-admin-rotation:*"],
        ),
    }
    assert found["TagPromotion"]["Condition"] == {"ForAllValues:StringEquals": {"aws:TagKeys": [c.TAG_PROMOTED]}}


# --- the admin-key secret's policy ---------------------------------------------------------------------------------


def _admin_policy(d: Deployment) -> dict[str, Any]:
    (found,) = d.find(
        "aws:secretsmanager/secretPolicy:SecretPolicy",
        lambda r: r.inputs["secretArn"] == d.outputs["adminKeySecretArn"],
    )
    return json.loads(found.inputs["policy"])


def _role(name: str) -> Principal:
    return Principal(arn=f"arn:aws:iam::111111111111:role/{name}")


def test_the_admin_key_secret_lets_its_rotation_function_rotate_it_and_manage_nothing(dev: Deployment) -> None:
    # GIVEN the admin-key secret's policy, and the admin rotation role with a mistaken `secretsmanager:*`
    secret, policy = dev.outputs["adminKeySecretArn"], _admin_policy(dev)
    role = _role("keyrot-dev-admin-rotation")
    granted = {
        action
        for action in ("secretsmanager:GetSecretValue", *write_actions())
        if evaluate(role, request(action, secret), [BROAD], policy).allowed
    }
    # THEN the policy admits exactly the rotation's writes (a new value, its labels) besides reading; managing the
    # secret (policy, rotation, replication, deletion) and its keyrot:environment tag stay the deployers'
    assert granted == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:PutSecretValue",
        "secretsmanager:UpdateSecretVersionStage",
    }
    # AND of keyrot's tags it may set keyrot:promoted and nothing else, and remove none
    tag = "secretsmanager:TagResource"
    assert evaluate(role, request(tag, secret, tag_keys=(c.TAG_PROMOTED,)), [BROAD], policy).allowed
    assert not evaluate(role, request(tag, secret, tag_keys=(c.TAG_ENVIRONMENT,)), [BROAD], policy).allowed
    assert not evaluate(role, request(tag, secret, tag_keys=(c.TAG_PROMOTED, "x")), [BROAD], policy).allowed
    untag = request("secretsmanager:UntagResource", secret, tag_keys=(c.TAG_PROMOTED,))
    assert not evaluate(role, untag, [BROAD], policy).allowed


@pytest.mark.parametrize("name", ["keyrot-dev-rotation", "keyrot-dev-monitor", "keyrot-dev-guardrails", "developer"])
def test_no_other_role_moves_the_admin_keys_labels_or_records_a_promotion(dev: Deployment, name: str) -> None:
    secret, policy = dev.outputs["adminKeySecretArn"], _admin_policy(dev)
    role = _role(name)
    assert not evaluate(role, request("secretsmanager:UpdateSecretVersionStage", secret), [BROAD], policy).allowed
    promoted = request("secretsmanager:TagResource", secret, tag_keys=(c.TAG_PROMOTED,))
    assert not evaluate(role, promoted, [BROAD], policy).allowed


# --- on-call -------------------------------------------------------------------------------------------------------


def test_on_call_hears_of_a_failed_rotation_an_old_key_and_keys_that_should_be_gone(dev: Deployment) -> None:
    alarms = {a.inputs["name"]: a.inputs for a in dev.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}

    def shape(name: str) -> tuple[Any, ...]:
        a = alarms[f"keyrot-dev-{name}"]
        return (a["metricName"], a["statistic"], a["period"], a["evaluationPeriods"], a["datapointsToAlarm"],
                a["threshold"], a["treatMissingData"])  # fmt: skip

    # THEN a failed step pages at once; the function failing, a cleanup failing, too many live keys: twice in a row
    assert shape("admin-rotation-failed") == (m.ADMIN_ROTATION_FAILED, "Sum", 300, 1, 1, 0, "notBreaching")
    assert shape("admin-rotation-lambda-errors") == ("Errors", "Sum", 300, 2, 2, 0, "notBreaching")
    assert alarms["keyrot-dev-admin-rotation-lambda-errors"]["dimensions"] == {
        "FunctionName": "keyrot-dev-admin-rotation"
    }
    assert shape("admin-key-cleanup-failed") == (m.ADMIN_KEY_CLEANUP_FAILED, "Sum", 300, 2, 2, 0, "notBreaching")
    assert shape("admin-keys-live") == (m.ADMIN_KEYS_LIVE, "Maximum", 300, 2, 2, 2, "ignore")
    # AND an admin key older than its schedule plus a day pages (a gauge: a cleanup that could not run keeps it)
    assert shape("admin-key-too-old") == (m.ADMIN_KEY_AGE_HOURS, "Maximum", 300, 1, 1, 30 * 24 + 24, "ignore")
    for suffix, anchor in (
        ("admin-rotation-failed", "admin-rotation-failed"),
        ("admin-rotation-lambda-errors", "admin-rotation-failed"),
        ("admin-key-too-old", "admin-key-too-old"),
        ("admin-key-cleanup-failed", "admin-key-cleanup-failed"),
        ("admin-keys-live", "admin-key-cleanup-failed"),
    ):
        assert alarms[f"keyrot-dev-{suffix}"]["alarmDescription"].endswith(f"#{anchor}"), suffix


# --- configuration -------------------------------------------------------------------------------------------------


def test_an_empty_block_rotates_monthly_and_keeps_the_bootstrap_key() -> None:
    config = parse_config(raw(adminKeyRotation={}), stack="dev")
    assert config.admin_key_rotation is not None
    assert (config.admin_key_rotation.schedule, config.admin_key_rotation.max_interval_hours) == ("rate(30 days)", 720)
    assert config.admin_key_rotation.delete_bootstrap_key is False


def test_without_the_block_the_admin_key_is_not_rotated() -> None:
    assert parse_config(raw(adminKeyRotation=None), stack="dev").admin_key_rotation is None


def test_delete_bootstrap_key_reaches_the_function() -> None:
    from infra_harness import run_program

    d = run_program("dev", stack_config("dev", {"keyrot:adminKeyRotation": {"deleteBootstrapKey": "true"}}))
    variables = admin_function(d).inputs["environment"]["variables"]
    assert AdminRotationSettings.from_env(variables).delete_bootstrap_key is True


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ({"schedule": "rate(2 hours)"}, "keyrot:adminKeyRotation.schedule: Secrets Manager rotates at most every 4"),
        ({"schedule": "every month"}, "keyrot:adminKeyRotation.schedule: must be rate(N hours|days) or cron("),
        (
            {"schedule": "rate(360 days)"},
            "keyrot:adminKeyRotation.schedule: leaves up to 8640 h between rotations; each admin key expires 14 days "
            "after that and OpenAI lets an admin key live at most a year: rotate at least every 351 days",
        ),
        ({"schedule": "cron(0 22 * * ? *)"}, "keyrot:adminKeyRotation.schedule: the 4h window opening at 22:00 UTC"),
        ({"deleteBootstrapKey": "maybe"}, "keyrot:adminKeyRotation.deleteBootstrapKey: must be true or false"),
        ({"schedul": "rate(30 days)"}, "keyrot:adminKeyRotation: unknown field(s) schedul"),
        ("monthly", "keyrot:adminKeyRotation: must be an object {schedule, deleteBootstrapKey}"),
    ],
)
def test_a_bad_block_is_refused_naming_the_setting(block: Any, expected: str) -> None:
    (problem,) = problems(adminKeyRotation=block)
    assert problem.startswith(expected), problem


def test_an_existing_admin_key_secret_is_never_rotated_by_keyrot() -> None:
    (problem,) = problems(
        existingAdminKeySecretArn="arn:aws:secretsmanager:us-east-1:111111111111:secret:openai/dev/admin-Xy12Ab"
    )
    assert problem.startswith(
        "keyrot:adminKeyRotation: rotates only the admin-key secret keyrot creates, not existingAdminKeySecretArn"
    )


def test_the_component_takes_the_same_block() -> None:
    config = parse_config(raw(adminKeyRotation={"schedule": "rate(14 days)", "deleteBootstrapKey": True}), stack="dev")
    args = args_from_config(config)
    assert args["admin_key_rotation"] == {"schedule": "rate(14 days)", "delete_bootstrap_key": True}
    assert validate_args(args).admin_key_rotation == config.admin_key_rotation
