"""The Pulumi program, run under mocks from Pulumi.dev.yaml and Pulumi.prod.yaml: what each stack declares."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest
from infra_harness import Deployment, Recorded, deployed, keyrot_config

from keyrot import constants as c
from keyrot import metric_names as m
from keyrot.settings import MonitorSettings, RotationSettings
from lab.pulumi_program import unsecret

pytestmark = pytest.mark.timeout(120)

KNOWN_ENV_NAMES = {getattr(c, n) for n in dir(c) if n.startswith("ENV_")}
# What the deployment declares to both functions (never read from a writable tag).
DEPLOYMENT_VARIABLES = (c.ENV_PROJECT_ID, c.ENV_MANAGED_SECRETS, c.ENV_SHARED_ENVIRONMENTS)
SECRET = "aws:secretsmanager/secret:Secret"
FUNCTION = "aws:lambda/function:Function"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
TOPIC = "aws:sns/topic:Topic"


def function(d: Deployment, purpose: str) -> Recorded:
    (found,) = d.find(FUNCTION, lambda r: r.inputs["name"] == f"keyrot-{d.stack}-{purpose}")
    return found


def managed_secrets(d: Deployment) -> list[Recorded]:
    return d.find(SECRET, lambda r: c.TAG_KEY_NAME in r.inputs.get("tags", {}))


# --- shape ------------------------------------------------------------------------------------------------------


def test_resource_counts_scale_with_keys(deployment: Deployment) -> None:
    config = keyrot_config(deployment)
    keys = len(config.keys)
    readers = sum(len(k.reader_roles) for k in config.keys)
    counts = Counter(r.type for r in deployment.resources)
    owns_admin = config.existing_admin_key_secret_arn is None
    # Declared guardrails add their function, its role and log group, the document's parameter, the deploy-time
    # apply, the check's schedule and role, and two alarms.
    guarded = config.guardrails is not None
    # Rotating the admin key adds its function, role and log group, the admin secret's rotation and invoke
    # permission, the cleanup's schedule and role, and five alarms.
    admin = config.admin_key_rotation is not None
    assert counts[SECRET] == keys + owns_admin
    assert counts["aws:secretsmanager/secretPolicy:SecretPolicy"] == keys + owns_admin
    assert counts["aws:secretsmanager/secretRotation:SecretRotation"] == keys + admin
    assert counts["aws:lambda/permission:Permission"] == keys + admin
    assert counts["aws:iam/policy:Policy"] == keys
    assert counts["aws:iam/rolePolicyAttachment:RolePolicyAttachment"] == readers
    assert counts["aws:cloudwatch/metricAlarm:MetricAlarm"] == 10 + 2 * guarded + 5 * admin + 2 * keys
    assert counts[FUNCTION] == counts[LOG_GROUP] == 2 + guarded + admin
    assert counts["aws:kms/key:Key"] == 1 and counts["aws:kms/alias:Alias"] == 1
    # rotation, monitor, the monitor's scheduler (and each optional function with its schedule's role)
    assert counts["aws:iam/role:Role"] == counts["aws:iam/rolePolicy:RolePolicy"] == 3 + 2 * guarded + 2 * admin
    assert counts["aws:scheduler/schedule:Schedule"] == 1 + guarded + admin
    assert counts["aws:lambda/invocation:Invocation"] == guarded
    assert counts["aws:cloudwatch/eventRule:EventRule"] == 1 and counts["aws:cloudwatch/eventTarget:EventTarget"] == 1
    assert counts[TOPIC] == 1 and counts["aws:sns/topicPolicy:TopicPolicy"] == 1
    assert counts["aws:sns/topicSubscription:TopicSubscription"] == len(config.oncall_emails)
    assert counts["aws:cloudwatch/dashboard:Dashboard"] == 1
    assert counts["aws:ssm/parameter:Parameter"] == 1 + 2 * guarded  # monitor state (declared guardrails, their state)
    # No key value ever passes through Pulumi.
    assert counts["aws:secretsmanager/secretVersion:SecretVersion"] == 0


def test_components_follow_house_style(deployment: Deployment) -> None:
    components = [r for r in deployment.resources if not r.custom]
    # One KeyrotEnvironment at the top, everything else inside it.
    (environment,) = [r for r in components if r.type == "keyrot:index:KeyrotEnvironment"]
    assert environment.parent.endswith("::pulumi:pulumi:Stack::keyrot-" + deployment.stack)
    assert all(r.parent != environment.parent for r in deployment.resources if r is not environment)
    assert {r.type for r in components} == {
        "keyrot:index:KeyrotEnvironment",
        "keyrot:index:Encryption",
        "keyrot:index:LambdaRole",
        "keyrot:index:KeySecrets",
        "keyrot:index:Notifications",
        "keyrot:index:KeyRotation",
        "keyrot:index:UsageMonitor",
        "keyrot:index:Function",
        "keyrot:index:Alarms",
        "keyrot:index:Dashboard",
        *(["keyrot:index:Guardrails"] if keyrot_config(deployment).guardrails is not None else []),
        *(["keyrot:index:AdminRotation"] if keyrot_config(deployment).admin_key_rotation is not None else []),
    }
    # Every AWS resource belongs to a component and is named after it.
    for resource in deployment.resources:
        if not resource.custom:
            continue
        parent = deployment.by_urn(resource.parent)
        assert not parent.custom, resource.name
        assert resource.name.startswith(f"{parent.name}-"), (resource.name, parent.name)


def test_every_component_registers_useful_outputs(deployment: Deployment) -> None:
    for component in (r for r in deployment.resources if not r.custom):
        outputs = deployment.component_outputs.get(component.urn)
        assert outputs, f"{component.name} never called register_outputs with outputs"
        assert all(value not in (None, "", {}, []) for value in outputs.values()), component.name


def test_every_taggable_resource_carries_the_environment_tag(deployment: Deployment) -> None:
    for resource in deployment.resources:
        if resource.custom and "tags" in resource.inputs:
            assert resource.inputs["tags"].get(c.TAG_ENVIRONMENT) == deployment.stack, resource.name


# --- KMS --------------------------------------------------------------------------------------------------------


def test_kms_key_rotates_and_is_aliased_per_environment(deployment: Deployment) -> None:
    (key,) = deployment.of_type("aws:kms/key:Key")
    (alias,) = deployment.of_type("aws:kms/alias:Alias")
    assert key.inputs["enableKeyRotation"] is True
    assert alias.inputs["name"] == f"alias/keyrot-{deployment.stack}"
    assert alias.inputs["targetKeyId"] == key.outputs["keyId"]


def test_secrets_topic_and_log_groups_use_the_environment_key(deployment: Deployment) -> None:
    (key,) = deployment.of_type("aws:kms/key:Key")
    key_arn = key.outputs["arn"]
    for secret in deployment.of_type(SECRET):
        assert secret.inputs["kmsKeyId"] == key_arn, secret.name
    for topic in deployment.of_type(TOPIC):
        assert topic.inputs["kmsMasterKeyId"] == key_arn
    for group in deployment.of_type(LOG_GROUP):
        assert group.inputs["kmsKeyId"] == key_arn


# --- secrets ----------------------------------------------------------------------------------------------------


def test_managed_secrets_are_named_and_tagged_per_key(deployment: Deployment) -> None:
    config = keyrot_config(deployment)
    secrets = {r.inputs["tags"][c.TAG_KEY_NAME]: r for r in managed_secrets(deployment)}
    assert sorted(secrets) == sorted(config.key_names)
    for name, secret in secrets.items():
        assert secret.inputs["name"] == c.managed_secret_name(deployment.stack, name)
        assert secret.inputs["tags"] == {
            c.TAG_ENVIRONMENT: deployment.stack,
            c.TAG_KEY_NAME: name,
            c.TAG_PROJECT_ID: config.openai_project_id,
        }


def test_dev_creates_an_empty_admin_key_secret(dev: Deployment) -> None:
    (admin,) = dev.find(SECRET, lambda r: c.TAG_ADMIN_SECRET in r.inputs["tags"])
    assert admin.inputs["name"] == c.admin_secret_name("dev")
    assert admin.inputs["tags"] == {c.TAG_ENVIRONMENT: "dev", c.TAG_ADMIN_SECRET: "dev"}
    assert dev.outputs["adminKeySecretArn"] == admin.outputs["arn"]


def test_prod_uses_the_existing_admin_key_secret(prod: Deployment) -> None:
    config = keyrot_config(prod)
    assert not prod.find(SECRET, lambda r: c.TAG_ADMIN_SECRET in r.inputs["tags"])
    assert prod.outputs["adminKeySecretArn"] == config.existing_admin_key_secret_arn
    for purpose in ("rotation", "monitor"):
        env = function(prod, purpose).inputs["environment"]["variables"]
        assert env[c.ENV_ADMIN_SECRET_ARN] == config.existing_admin_key_secret_arn


def key_rotations(d: Deployment) -> list[Recorded]:
    """The managed secrets' rotation configurations (not the admin-key secret's own)."""
    return d.find(
        "aws:secretsmanager/secretRotation:SecretRotation",
        lambda r: r.inputs["secretId"] != d.outputs["adminKeySecretArn"],
    )


def key_invoke_permissions(d: Deployment) -> list[Recorded]:
    return d.find("aws:lambda/permission:Permission", lambda r: r.inputs["sourceArn"] != d.outputs["adminKeySecretArn"])


def test_rotation_rules_per_secret(deployment: Deployment) -> None:
    config = keyrot_config(deployment)
    rotation_fn = function(deployment, "rotation")
    arns = {r.outputs["arn"] for r in managed_secrets(deployment)}
    rotations = key_rotations(deployment)
    assert {r.inputs["secretId"] for r in rotations} == arns
    for rotation in rotations:
        assert rotation.inputs["rotationLambdaArn"] == rotation_fn.outputs["arn"]
        assert rotation.inputs["rotationRules"] == {
            "scheduleExpression": config.rotation_schedule,
            "duration": config.rotation_window,
        }
        # Rotate at once only when an admin key already exists (prod); dev waits for the operator.
        assert rotation.inputs["rotateImmediately"] is (config.existing_admin_key_secret_arn is not None)


def test_rotation_waits_for_its_invoke_permission_and_role_policy(deployment: Deployment) -> None:
    permissions = {r.inputs["sourceArn"]: r for r in key_invoke_permissions(deployment)}
    (role_policy,) = deployment.find(
        "aws:iam/rolePolicy:RolePolicy", lambda r: r.name == "keyrot-rotation-lambda-permissions"
    )
    for rotation in key_rotations(deployment):
        permission = permissions[rotation.inputs["secretId"]]
        assert permission.urn in rotation.dependencies
        assert role_policy.urn in rotation.dependencies


def test_secrets_manager_may_invoke_rotation_for_each_secret_only(deployment: Deployment) -> None:
    rotation_fn = function(deployment, "rotation")
    arns = sorted(r.outputs["arn"] for r in managed_secrets(deployment))
    permissions = key_invoke_permissions(deployment)
    assert sorted(p.inputs["sourceArn"] for p in permissions) == arns
    for permission in permissions:
        assert permission.inputs["action"] == "lambda:InvokeFunction"
        assert permission.inputs["principal"] == "secretsmanager.amazonaws.com"
        assert permission.inputs["sourceAccount"] == deployment.account
        assert permission.inputs["function"] == rotation_fn.inputs["name"]


def test_reader_policies_are_attached_to_each_reader_role_by_name(deployment: Deployment) -> None:
    config = keyrot_config(deployment)
    policies = {r.inputs["tags"][c.TAG_KEY_NAME]: r for r in deployment.of_type("aws:iam/policy:Policy")}
    attachments = deployment.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    for key in config.keys:
        policy_arn = policies[key.name].outputs["arn"]
        attached = sorted(a.inputs["role"] for a in attachments if a.inputs["policyArn"] == policy_arn)
        # Names, not ARNs, and without the IAM path (role/service/batch-embeddings-dev -> batch-embeddings-dev).
        assert attached == sorted(arn.rsplit("/", 1)[1] for arn in key.reader_role_arns)
        assert deployment.outputs["readerPolicyArns"][key.name] == policy_arn


# --- functions --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("purpose", "handler", "timeout"), [("rotation", c.ROTATION_HANDLER, 120), ("monitor", c.MONITOR_HANDLER, 300)]
)
def test_function_configuration(deployment: Deployment, purpose: str, handler: str, timeout: int) -> None:
    fn = function(deployment, purpose)
    inputs = fn.inputs
    assert inputs["handler"] == handler
    assert inputs["runtime"] == "python3.14"
    assert inputs["architectures"] == ["arm64"]
    assert inputs["memorySize"] == 256
    assert inputs["timeout"] == timeout
    assert inputs["role"] == f"arn:aws:iam::{deployment.account}:role/keyrot-{deployment.stack}-{purpose}"
    assert inputs["loggingConfig"]["logGroup"] == f"/aws/lambda/keyrot-{deployment.stack}-{purpose}"
    # The archive Pulumi uploads is the content-addressed build, and its hash is declared.
    archive = Path(inputs["code"].path)
    digest = hashlib.sha256(archive.read_bytes()).digest()
    assert archive.name == f"lambda-{digest.hex()}.zip"
    assert inputs["sourceCodeHash"] == base64.b64encode(digest).decode()
    assert deployment.outputs["lambdaCodeSha256"] == digest.hex()


def test_log_groups_exist_before_functions_with_retention(deployment: Deployment) -> None:
    config = keyrot_config(deployment)
    groups = {g.inputs["name"]: g for g in deployment.of_type(LOG_GROUP)}
    for purpose in ("rotation", "monitor"):
        fn = function(deployment, purpose)
        group = groups[f"/aws/lambda/{fn.inputs['name']}"]
        assert group.inputs["retentionInDays"] == config.log_retention_days
        assert group.urn in fn.dependencies


def test_rotation_environment_is_what_rotation_settings_reads(deployment: Deployment) -> None:
    config = keyrot_config(deployment)
    variables = function(deployment, "rotation").inputs["environment"]["variables"]
    assert set(variables) == {
        c.ENV_ENVIRONMENT,
        c.ENV_ADMIN_SECRET_ARN,
        c.ENV_GRACE_PERIOD_SECONDS,
        c.ENV_KEY_EXPIRY_SECONDS,
        c.ENV_MAX_GRACE_PERIOD_SECONDS,
        c.ENV_ROTATION_INTERVAL_SECONDS,
        *DEPLOYMENT_VARIABLES,
    }
    settings = RotationSettings.from_env(variables)
    assert settings.environment == deployment.stack
    assert settings.admin_secret_arn == deployment.outputs["adminKeySecretArn"]
    assert settings.grace_period_seconds == config.grace_period_hours * 3600
    assert settings.key_expiry_seconds == config.key_expiry_hours * 3600 > 0
    assert settings.max_grace_period_seconds == config.max_grace_period_hours * 3600
    # The longest gap between two scheduled rotations.
    assert settings.rotation_interval_seconds == config.rotation_max_interval_hours * 3600 > 0
    _check_deployment_settings(settings, deployment)


def _check_deployment_settings(settings: RotationSettings | MonitorSettings, deployment: Deployment) -> None:
    """What the deployment tells a function it manages: exactly its environment's secrets, project and peers."""
    config = keyrot_config(deployment)
    assert settings.project_id == config.openai_project_id
    assert dict(settings.managed_secrets or {}) == deployment.outputs["keySecretArns"]
    assert settings.shared_environments == tuple(sorted(config.shared_project_environments))


def test_monitor_environment_is_what_monitor_settings_reads(deployment: Deployment) -> None:
    config = keyrot_config(deployment)
    variables = function(deployment, "monitor").inputs["environment"]["variables"]
    assert set(variables) == {
        c.ENV_ENVIRONMENT,
        c.ENV_ADMIN_SECRET_ARN,
        c.ENV_PROJECT_ID,
        c.ENV_TOPIC_ARN,
        c.ENV_STATE_PARAMETER,
        c.ENV_GRACE_PERIOD_SECONDS,
        c.ENV_MAX_GRACE_PERIOD_SECONDS,
        c.ENV_QUIET_WINDOW_SECONDS,
        c.ENV_IN_USE_POLICY,
        c.ENV_SETTLE_DELAY_SECONDS,
        c.ENV_USAGE_KINDS,
        c.ENV_RUNBOOK_URL,
        c.ENV_DASHBOARD_METRICS,
        c.ENV_ANOMALY_METRICS,
        *DEPLOYMENT_VARIABLES,
    }
    settings = MonitorSettings.from_env(variables)
    # The dashboard-only per-key metrics are published exactly when the stack has the dashboard that shows them.
    assert settings.dashboard_metrics is config.dashboard
    assert settings.anomaly_metrics == tuple(m.ANOMALY_SIGNALS[signal] for signal in config.anomaly_alarms)
    _check_deployment_settings(settings, deployment)
    assert settings.runbook_url == config.runbook_url
    assert settings.environment == deployment.stack
    assert settings.project_id == config.openai_project_id
    assert settings.topic_arn == deployment.outputs["oncallTopicArn"]
    assert settings.state_parameter == c.state_parameter_name(deployment.stack)
    assert settings.grace_period_seconds == config.grace_period_hours * 3600
    assert settings.max_grace_period_seconds == config.max_grace_period_hours * 3600
    assert settings.quiet_window_seconds == config.quiet_window_minutes * 60
    assert settings.in_use_policy == config.in_use_policy
    assert settings.settle_delay_seconds == config.settle_delay_minutes * 60
    assert settings.usage_kinds == config.usage_kinds


def test_no_service_name_and_no_secret_in_function_environments(deployment: Deployment) -> None:
    for fn in deployment.of_type(FUNCTION):
        variables = fn.inputs["environment"]["variables"]
        # A `service` dimension on every EMF metric would break the alarms.
        assert "POWERTOOLS_SERVICE_NAME" not in variables
        for name, value in variables.items():
            assert not re.search(r"sk-[A-Za-z0-9_-]{8,}|admin_key|api_key", value), name
            # Every name is one keyrot.settings reads (a constant, so it cannot drift).
            assert name in KNOWN_ENV_NAMES, name


def test_monitor_runs_on_a_fixed_schedule_through_its_own_role(deployment: Deployment) -> None:
    config = keyrot_config(deployment)
    (schedule,) = deployment.find(
        "aws:scheduler/schedule:Schedule", lambda r: r.inputs["name"] == f"keyrot-{deployment.stack}-monitor"
    )
    monitor_fn = function(deployment, "monitor")
    (role,) = deployment.find("aws:iam/role:Role", lambda r: r.inputs["name"].endswith("-monitor-scheduler"))
    minutes = config.monitor_interval_minutes
    assert schedule.inputs["scheduleExpression"] == f"rate({minutes} minutes)"
    assert schedule.inputs["flexibleTimeWindow"] == {"mode": "OFF"}
    assert schedule.inputs["target"]["arn"] == monitor_fn.outputs["arn"]
    assert schedule.inputs["target"]["roleArn"] == role.outputs["arn"]
    assert schedule.inputs["target"]["retryPolicy"] == {
        "maximumEventAgeInSeconds": minutes * 60,
        "maximumRetryAttempts": 2,
    }


# --- outputs and isolation --------------------------------------------------------------------------------------


def test_outputs_are_names_and_arns(deployment: Deployment) -> None:
    config = keyrot_config(deployment)
    outputs = deployment.outputs
    optional = {"guardrailsFunctionName"} if config.guardrails is not None else set()
    assert set(outputs) == optional | {
        "environment",
        "keySecretArns",
        "keySecretNames",
        "readerPolicyArns",
        "adminKeySecretArn",
        "oncallTopicArn",
        "rotationFunctionName",
        "monitorFunctionName",
        "kmsKeyArn",
        "lambdaCodeSha256",
        "dashboardUrl",
    }
    assert outputs["keySecretNames"] == {k: c.managed_secret_name(deployment.stack, k) for k in config.key_names}
    assert set(outputs["keySecretArns"]) == set(config.key_names)
    assert outputs["rotationFunctionName"] == f"keyrot-{deployment.stack}-rotation"
    assert outputs["monitorFunctionName"] == f"keyrot-{deployment.stack}-monitor"
    assert outputs["dashboardUrl"].endswith(f"#dashboards/dashboard/keyrot-{deployment.stack}")


def test_outputs_hold_nothing_secret_shaped(deployment: Deployment) -> None:
    text = json.dumps(deployment.outputs)
    assert not re.search(r"sk-[A-Za-z0-9_-]{8,}", text)
    assert "api_key" not in text and "admin_key" not in text
    for value in _leaves(deployment.outputs):
        assert (
            value.startswith(("arn:aws:", "keyrot", "https://"))
            or value == deployment.stack
            or re.fullmatch(r"[0-9a-f]{64}", value)
        ), value


def _leaves(value: object) -> list[str]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    return [str(value)]


@pytest.mark.parametrize(("stack", "other"), [("dev", "prod"), ("prod", "dev")])
def test_stacks_never_reference_each_other(stack: str, other: str) -> None:
    # GIVEN everything one stack declares (inputs and outputs, names and ARNs)
    this, that = deployed(stack), deployed(other)
    text = json.dumps([[r.inputs, r.outputs] for r in this.resources] + [this.outputs], default=str)
    # THEN the other stack's account, environment names, secret names and project never appear
    assert that.account not in text
    for marker in (
        f"keyrot/{other}/",
        f"keyrot-{other}",
        f"/keyrot/{other}/",
        f'"{other}"',
        keyrot_config(that).openai_project_id,
    ):
        assert marker not in text, marker
    for secret in managed_secrets(that):
        assert secret.outputs["arn"] not in text


def test_the_monitor_state_parameter_is_declared_with_a_first_run_placeholder(deployment: Deployment) -> None:
    env = deployment.stack
    (parameter,) = deployment.find(
        "aws:ssm/parameter:Parameter", lambda r: r.inputs["name"] == c.state_parameter_name(env)
    )
    assert parameter.inputs["name"] == c.state_parameter_name(env)
    assert (parameter.inputs["type"], parameter.inputs["tier"]) == ("String", "Intelligent-Tiering")
    assert unsecret(parameter.inputs["value"]) == c.STATE_PARAMETER_PLACEHOLDER
    assert parameter.inputs["tags"] == {c.TAG_ENVIRONMENT: env}
    # The monitor's role may read and write exactly this parameter
    variables = function(deployment, "monitor").inputs["environment"]["variables"]
    assert variables[c.ENV_STATE_PARAMETER] == parameter.inputs["name"]
