"""Guardrails as deployed (issue 15): the declared document, the function, its deploy-time apply and scheduled check.

Shaped like those who rely on it or would abuse it: the deployer whose `pulumi up` must apply what the stack says
and whose `pulumi preview` must show a change, on-call who must hear of drift, someone who can read the Pulumi state
(never an admin key there), and someone with ordinary permissions who invokes the function or rewrites the parameter
(the digest in the function's configuration is the only one it trusts).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from infra_harness import Deployment, Recorded, deployed, keyrot_config, run_program, stack_config

from keyrot import constants as c
from keyrot import metric_names as m
from keyrot.guardrails import GuardrailsSettings, document_digest, document_json, to_document
from lab.pulumi_program import unsecret

pytestmark = pytest.mark.timeout(180)

FUNCTION = "aws:lambda/function:Function"
INVOCATION = "aws:lambda/invocation:Invocation"
PARAMETER = "aws:ssm/parameter:Parameter"
SCHEDULE = "aws:scheduler/schedule:Schedule"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


def guardrails_function(d: Deployment) -> Recorded:
    (found,) = d.find(FUNCTION, lambda r: r.inputs["name"] == f"keyrot-{d.stack}-guardrails")
    return found


def declared_parameter(d: Deployment) -> Recorded:
    (found,) = d.find(PARAMETER, lambda r: r.inputs["name"] == c.guardrails_parameter_name(d.stack))
    return found


def statements(d: Deployment, role_name: str) -> dict[str, dict[str, Any]]:
    (policy,) = d.find(ROLE_POLICY, lambda r: r.inputs["name"] == role_name)
    return {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}


def with_guardrails(block: Any, **overrides: Any) -> Deployment:
    return run_program("dev", stack_config("dev", {"keyrot:guardrails": block, **overrides}))


# --- the declared document --------------------------------------------------------------------------------------


def test_the_declared_document_is_written_to_its_parameter(dev: Deployment) -> None:
    # GIVEN the dev stack, which declares guardrails
    declared = keyrot_config(dev).guardrails
    parameter = declared_parameter(dev)
    # THEN the parameter holds the canonical document, as a plain String (nothing in it is secret)
    assert unsecret(parameter.inputs["value"]) == document_json(declared)
    assert parameter.inputs["type"] == "String" and parameter.inputs["tier"] == "Intelligent-Tiering"
    assert parameter.inputs["tags"] == {c.TAG_ENVIRONMENT: "dev"}


def test_the_function_trusts_exactly_the_document_the_deployment_wrote(dev: Deployment) -> None:
    # GIVEN the guardrails function's configuration, read as the function reads it
    variables = guardrails_function(dev).inputs["environment"]["variables"]
    settings = GuardrailsSettings.from_env(variables)
    # THEN it reads the deployment's parameter and trusts only the digest of the text written there
    assert settings.parameter_name == c.guardrails_parameter_name("dev")
    assert settings.declared_digest == document_digest(unsecret(declared_parameter(dev).inputs["value"]))
    assert settings.project_id == keyrot_config(dev).openai_project_id
    assert settings.admin_secret_arn == dev.outputs["adminKeySecretArn"]
    assert set(variables) == {
        c.ENV_ENVIRONMENT,
        c.ENV_ADMIN_SECRET_ARN,
        c.ENV_PROJECT_ID,
        c.ENV_GUARDRAILS_PARAMETER,
        c.ENV_GUARDRAILS_SHA256,
        c.ENV_TOPIC_ARN,
        c.ENV_GUARDRAILS_STATE_PARAMETER,
        c.ENV_RUNBOOK_URL,
    }


def test_the_check_notifies_the_on_call_topic_and_remembers_what_it_told_in_its_own_parameter(
    dev: Deployment,
) -> None:
    # GIVEN the guardrails function's configuration, read as the function reads it
    settings = GuardrailsSettings.from_env(guardrails_function(dev).inputs["environment"]["variables"])
    # THEN it notifies the environment's on-call topic, linking the stack's runbook
    assert settings.topic_arn == dev.outputs["oncallTopicArn"]
    assert settings.runbook_url == keyrot_config(dev).runbook_url
    # AND remembers in a parameter declared with the placeholder it reads as "nothing told yet"
    (state,) = dev.find(PARAMETER, lambda r: r.inputs["name"] == c.guardrails_state_parameter_name("dev"))
    assert settings.state_parameter == state.inputs["name"] == "/keyrot/dev/guardrails-state"
    assert unsecret(state.inputs["value"]) == c.GUARDRAILS_STATE_PLACEHOLDER
    assert (state.inputs["type"], state.inputs["tags"]) == ("String", {c.TAG_ENVIRONMENT: "dev"})


def test_the_check_notifies_an_existing_topic_without_a_grant_on_the_environment_key() -> None:
    # GIVEN a stack that notifies the platform's own topic (not encrypted with keyrot's key)
    topic = f"arn:aws:sns:{deployed('dev').region}:{deployed('dev').account}:platform-oncall"
    block = json.loads(deployed("dev").config["keyrot:guardrails"])
    config = stack_config(
        "dev",
        {"keyrot:guardrails": block, "keyrot:oncallTopicArn": topic},
        drop=("keyrot:oncallEmails", "keyrot:oncallHttpsEndpoints"),
    )
    d = run_program("dev", config)
    variables = guardrails_function(d).inputs["environment"]["variables"]
    # THEN the check notifies that topic, and its role may publish to it but not use the key through SNS
    found = statements(d, "keyrot-dev-guardrails")
    assert variables[c.ENV_TOPIC_ARN] == topic and found["NotifyOncall"]["Resource"] == [topic]
    assert "PublishToEncryptedTopic" not in found


def test_the_function_runs_alone_with_its_own_role(dev: Deployment) -> None:
    inputs = guardrails_function(dev).inputs
    assert inputs["handler"] == c.GUARDRAILS_HANDLER
    assert inputs["timeout"] == 120
    # An apply and a check that restores never interleave their changing calls.
    assert inputs["reservedConcurrentExecutions"] == 1
    assert inputs["role"] == f"arn:aws:iam::{dev.account}:role/keyrot-dev-guardrails"
    assert inputs["loggingConfig"]["logGroup"] == "/aws/lambda/keyrot-dev-guardrails"
    assert dev.outputs["guardrailsFunctionName"] == "keyrot-dev-guardrails"


def test_the_guardrails_role_may_read_the_admin_key_and_the_document_notify_on_call_and_nothing_else(
    dev: Deployment,
) -> None:
    found = statements(dev, "keyrot-dev-guardrails")
    parameter = f"arn:aws:ssm:{dev.region}:{dev.account}:parameter{c.guardrails_parameter_name('dev')}"
    state = f"arn:aws:ssm:{dev.region}:{dev.account}:parameter{c.guardrails_state_parameter_name('dev')}"
    assert {sid: (s["Action"], s["Resource"]) for sid, s in found.items()} == {
        "ReadAdminKey": (["secretsmanager:GetSecretValue"], [dev.outputs["adminKeySecretArn"]]),
        "UseSecretsKey": (["kms:Decrypt"], [dev.outputs["kmsKeyArn"]]),
        "ReadDeclaredGuardrails": (["ssm:GetParameter"], [parameter]),
        "GuardrailsState": (["ssm:GetParameter", "ssm:PutParameter"], [state]),
        "NotifyOncall": (["sns:Publish"], [dev.outputs["oncallTopicArn"]]),
        "PublishToEncryptedTopic": (["kms:Decrypt", "kms:GenerateDataKey*"], [dev.outputs["kmsKeyArn"]]),
        "WriteOwnLogs": (
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [f"arn:aws:logs:{dev.region}:{dev.account}:log-group:/aws/lambda/keyrot-dev-guardrails:*"],
        ),
    }
    assert found["UseSecretsKey"]["Condition"] == {
        "StringEquals": {"kms:ViaService": f"secretsmanager.{dev.region}.amazonaws.com"}
    }
    assert found["PublishToEncryptedTopic"]["Condition"] == {
        "StringEquals": {"kms:ViaService": f"sns.{dev.region}.amazonaws.com"}
    }


# --- applied at deploy, shown at preview -------------------------------------------------------------------------


def test_pulumi_up_applies_the_declared_document(dev: Deployment) -> None:
    # GIVEN the deploy-time invocation
    (invocation,) = dev.of_type(INVOCATION)
    event = json.loads(invocation.inputs["input"])
    # THEN its input is the declared document itself, whose digest is the one the function trusts
    assert event == {"action": "apply", "guardrails": to_document(keyrot_config(dev).guardrails)}
    digest = guardrails_function(dev).inputs["environment"]["variables"][c.ENV_GUARDRAILS_SHA256]
    assert document_digest(event["guardrails"]) == digest
    assert invocation.inputs["functionName"] == "keyrot-dev-guardrails"
    # AND Pulumi invokes it on create, update and delete (delete changes nothing: destroy leaves guardrails be)
    assert invocation.inputs["lifecycleScope"] == "CRUD"


def test_the_apply_waits_for_the_function_the_document_and_the_admin_key_policy(dev: Deployment) -> None:
    (invocation,) = dev.of_type(INVOCATION)
    function = dev.named("keyrot-guardrails-lambda-function")
    role_policy = dev.named("keyrot-guardrails-lambda-permissions")
    (admin_policy,) = dev.find(
        "aws:secretsmanager/secretPolicy:SecretPolicy",
        lambda r: r.inputs["secretArn"] == dev.outputs["adminKeySecretArn"],
    )
    # THEN it runs after the function (with its role policy), the parameter, and the policy admitting its role
    assert {function.urn, role_policy.urn, declared_parameter(dev).urn, admin_policy.urn} <= set(
        invocation.dependencies
    )


def test_a_changed_block_is_a_change_pulumi_preview_shows(dev: Deployment) -> None:
    # GIVEN the dev stack with one rate limit lowered
    block = json.loads(dev.config["keyrot:guardrails"])
    block["rateLimits"]["gpt-4o-mini"]["max_requests_per_1_minute"] = 250
    changed = with_guardrails(block)
    # THEN the document, the digest and the invocation's input change, and nothing else about the guardrails
    before, after = (
        {r.name: r.inputs for r in d.resources if r.name.startswith("keyrot-guardrails")} for d in (dev, changed)
    )
    differ = {name for name in before if json.dumps(before[name], default=str) != json.dumps(after[name], default=str)}
    assert differ == {"keyrot-guardrails-declared", "keyrot-guardrails-lambda-function", "keyrot-guardrails-apply"}
    (invocation,) = changed.of_type(INVOCATION)
    assert json.loads(invocation.inputs["input"])["guardrails"]["rateLimits"]["gpt-4o-mini"] == {
        "max_requests_per_1_minute": 250,
        "max_tokens_per_1_minute": 200_000,
    }


def test_a_stack_without_guardrails_declares_none_of_it(prod: Deployment) -> None:
    assert keyrot_config(prod).guardrails is None
    assert not prod.of_type(INVOCATION)
    assert not prod.find(FUNCTION, lambda r: r.inputs["name"].endswith("-guardrails"))
    assert not prod.find(PARAMETER, lambda r: r.inputs["name"] == c.guardrails_parameter_name("prod"))
    assert "guardrailsFunctionName" not in prod.outputs


# --- checked for drift -------------------------------------------------------------------------------------------


def test_drift_is_checked_every_monitor_interval_through_a_role_that_invokes_only_the_function(
    dev: Deployment,
) -> None:
    config = keyrot_config(dev)
    (schedule,) = dev.find(SCHEDULE, lambda r: r.inputs["name"] == "keyrot-dev-guardrails-check")
    function = guardrails_function(dev)
    assert schedule.inputs["scheduleExpression"] == f"rate({config.monitor_interval_minutes} minutes)"
    assert json.loads(schedule.inputs["target"]["input"]) == {"action": "check"}
    assert schedule.inputs["target"]["arn"] == function.outputs["arn"]
    assert statements(dev, "keyrot-dev-guardrails-scheduler") == {
        "InvokeGuardrailsCheck": {
            "Sid": "InvokeGuardrailsCheck",
            "Effect": "Allow",
            "Action": ["lambda:InvokeFunction"],
            "Resource": [function.outputs["arn"]],
        }
    }


def test_on_call_hears_of_drift_and_of_a_failed_apply(dev: Deployment) -> None:
    config = keyrot_config(dev)
    alarms = {a.inputs["name"]: a.inputs for a in dev.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    drift, failed = alarms["keyrot-dev-guardrail-drift"], alarms["keyrot-dev-guardrails-apply-failed"]
    period = config.monitor_interval_minutes * 60
    # THEN drift pages as soon as a check sees it (a gauge: a check that could not read keeps the state)
    assert (drift["metricName"], drift["statistic"], drift["threshold"], drift["comparisonOperator"]) == (
        m.GUARDRAIL_DRIFT,
        "Maximum",
        0,
        "GreaterThanThreshold",
    )
    assert (drift["period"], drift["evaluationPeriods"], drift["treatMissingData"]) == (period, 1, "ignore")
    # AND an apply, check or restore that failed in two checks in a row pages (one OpenAI blip does not)
    assert (failed["metricName"], failed["statistic"], failed["threshold"]) == (m.GUARDRAILS_APPLY_FAILED, "Sum", 0)
    assert (failed["period"], failed["evaluationPeriods"], failed["datapointsToAlarm"]) == (period, 2, 2)
    for alarm in (drift, failed):
        assert alarm["dimensions"] == {m.DIM_ENVIRONMENT: "dev"}
        assert alarm["alarmDescription"].endswith("#guardrail-drift")
        assert alarm["alarmActions"] == alarm["okActions"] == [dev.outputs["oncallTopicArn"]]


def test_the_guardrails_log_group_is_encrypted_with_the_environment_key(dev: Deployment) -> None:
    (group,) = dev.find(
        "aws:cloudwatch/logGroup:LogGroup", lambda r: r.inputs["name"] == "/aws/lambda/keyrot-dev-guardrails"
    )
    (key,) = dev.of_type("aws:kms/key:Key")
    logs = {s["Sid"]: s for s in json.loads(key.inputs["policy"])["Statement"]}["CloudWatchLogsEncryptsKeyrotLogGroups"]
    assert group.inputs["kmsKeyId"] == dev.outputs["kmsKeyArn"]
    assert group.outputs["arn"] in logs["Condition"]["StringEquals"]["kms:EncryptionContext:aws:logs:arn"]


def test_the_committed_dev_stack_keeps_the_rehearsals_model_allowed() -> None:
    # The rehearsal's application calls gpt-4o-mini (lab/demo/app.py): an allow list without it would break it.
    declared = keyrot_config(deployed("dev")).guardrails
    assert declared.models is not None and declared.models.mode == "allow_list"
    assert "gpt-4o-mini" in declared.models.model_ids
