"""Every policy document the program declares: exact actions, exact resources, conditions, and parliament's lint.

Least privilege here means: each Lambda role may call exactly the AWS actions its code calls, on exactly this
environment's resources. The only `"Resource": "*"` grants are the ones in policies.WILDCARD_JUSTIFICATIONS.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import parliament
import pytest
from infra_harness import Deployment, Recorded, keyrot_config

from keyrot import constants as c
from keyrot import metric_names
from keyrot.pulumi import policies
from tests.support.secretsmanager_actions import operations

pytestmark = pytest.mark.timeout(120)

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
VPC_ONLY_WILDCARDS = {
    (purpose, "FindVpcNetworkInterfaces") for purpose in ("rotation", "monitor", "guardrails", "admin-rotation")
}


def doc(resource: Recorded, key: str = "policy") -> dict[str, Any]:
    return json.loads(resource.inputs[key])


def statements(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {s["Sid"]: s for s in document["Statement"]}
    assert len(found) == len(document["Statement"]), "every statement has a distinct Sid"
    return found


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def allowed_actions(document: dict[str, Any]) -> set[str]:
    return {a for s in document["Statement"] if s["Effect"] == "Allow" for a in as_list(s["Action"])}


def role_policy(d: Deployment, name: str) -> dict[str, Any]:
    (resource,) = d.find(ROLE_POLICY, lambda r: r.name == name)
    return doc(resource)


def secret_arns(d: Deployment) -> list[str]:
    return sorted(d.outputs["keySecretArns"].values())


def key_arn(d: Deployment) -> str:
    return d.outputs["kmsKeyArn"]


def log_stream_arn(d: Deployment, purpose: str) -> list[str]:
    return [f"arn:aws:logs:{d.region}:{d.account}:log-group:/aws/lambda/keyrot-{d.stack}-{purpose}:*"]


def via(service: str, d: Deployment) -> dict[str, Any]:
    return {"StringEquals": {"kms:ViaService": f"{service}.{d.region}.amazonaws.com"}}


# --- Lambda roles -----------------------------------------------------------------------------------------------


def test_rotation_role_may_do_exactly_what_rotation_does(deployment: Deployment) -> None:
    document = role_policy(deployment, "keyrot-rotation-lambda-permissions")
    assert statements(document) == {
        "RotateManagedSecrets": {
            "Sid": "RotateManagedSecrets",
            "Effect": "Allow",
            "Action": [
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetSecretValue",
                "secretsmanager:PutSecretValue",
                "secretsmanager:UpdateSecretVersionStage",
            ],
            "Resource": secret_arns(deployment),
        },
        # finishSecret records the promotion on its secret: that one tag, nothing else.
        "TagPromotion": {
            "Sid": "TagPromotion",
            "Effect": "Allow",
            "Action": ["secretsmanager:TagResource"],
            "Resource": secret_arns(deployment),
            "Condition": {"ForAllValues:StringEquals": {"aws:TagKeys": [c.TAG_PROMOTED]}},
        },
        "ReadAdminKey": {
            "Sid": "ReadAdminKey",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": [deployment.outputs["adminKeySecretArn"]],
        },
        "UseSecretsKey": {
            "Sid": "UseSecretsKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": [key_arn(deployment)],
            "Condition": via("secretsmanager", deployment),
        },
        "WriteOwnLogs": {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": log_stream_arn(deployment, "rotation"),
        },
    }


def test_monitor_role_may_do_exactly_what_the_monitor_does(deployment: Deployment) -> None:
    document = role_policy(deployment, "keyrot-monitor-lambda-permissions")
    found = statements(document)
    parameter = (
        f"arn:aws:ssm:{deployment.region}:{deployment.account}:parameter{c.state_parameter_name(deployment.stack)}"
    )
    expected = {
        "ListManagedSecrets": (["secretsmanager:ListSecrets"], "*"),
        "InspectManagedSecrets": (
            [
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetSecretValue",
                "secretsmanager:UpdateSecretVersionStage",
            ],
            secret_arns(deployment),
        ),
        "ReadAdminKey": (
            ["secretsmanager:GetSecretValue", "secretsmanager:ListSecretVersionIds"],
            [deployment.outputs["adminKeySecretArn"]],
        ),
        "UseSecretsKey": (["kms:Decrypt"], [key_arn(deployment)]),
        "MonitorState": (["ssm:GetParameter", "ssm:PutParameter"], [parameter]),
        "PublishKeyrotMetrics": (["cloudwatch:PutMetricData"], "*"),
        "ReadKeyrotMetrics": (["cloudwatch:GetMetricData"], "*"),
        "NotifyOncall": (["sns:Publish"], [deployment.outputs["oncallTopicArn"]]),
        "PublishToEncryptedTopic": (["kms:Decrypt", "kms:GenerateDataKey*"], [key_arn(deployment)]),
        "WriteOwnLogs": (["logs:CreateLogStream", "logs:PutLogEvents"], log_stream_arn(deployment, "monitor")),
    }
    assert {sid: (s["Action"], s["Resource"]) for sid, s in found.items()} == expected
    assert found["UseSecretsKey"]["Condition"] == via("secretsmanager", deployment)
    assert found["PublishToEncryptedTopic"]["Condition"] == via("sns", deployment)
    assert found["PublishKeyrotMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": metric_names.NAMESPACE}
    }
    # Writes to key versions are the rotation function's: the monitor only moves labels (KEYROT_REVOKED).
    assert "secretsmanager:PutSecretValue" not in allowed_actions(document)


def test_lambda_roles_trust_only_lambda(deployment: Deployment) -> None:
    for purpose in ("rotation", "monitor"):
        (role,) = deployment.find(
            "aws:iam/role:Role", lambda r, p=purpose: r.inputs["name"] == f"keyrot-{deployment.stack}-{p}"
        )
        assert doc(role, "assumeRolePolicy")["Statement"] == [
            {
                "Sid": "LambdaAssumesRole",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ]
        # Nothing attached besides its own inline policy.
        assert "managedPolicyArns" not in role.inputs


def test_scheduler_role_only_invokes_the_monitor(deployment: Deployment) -> None:
    (role,) = deployment.find(
        "aws:iam/role:Role", lambda r: r.inputs["name"] == f"keyrot-{deployment.stack}-monitor-scheduler"
    )
    trust = doc(role, "assumeRolePolicy")["Statement"]
    assert trust == [
        {
            "Sid": "SchedulerAssumesRole",
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": deployment.account}},
        }
    ]
    document = role_policy(deployment, "keyrot-monitor-scheduler-permissions")
    monitor_arn = f"arn:aws:lambda:{deployment.region}:{deployment.account}:function:keyrot-{deployment.stack}-monitor"
    assert document["Statement"] == [
        {"Sid": "InvokeMonitor", "Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": [monitor_arn]}
    ]


def test_every_wildcard_resource_is_justified(deployment: Deployment) -> None:
    # GIVEN every identity policy the program declares
    prefix = f"keyrot-{deployment.stack}-"
    named = {
        r.inputs["name"].removeprefix(prefix): doc(r) for r in deployment.of_type(ROLE_POLICY)
    }  # rotation, monitor, monitor-scheduler (and guardrails, guardrails-scheduler)
    assert {"rotation", "monitor", "monitor-scheduler"} <= set(named)
    for reader in deployment.of_type("aws:iam/policy:Policy"):
        named[reader.name] = doc(reader)
    wildcards = {
        (policy, s["Sid"])
        for policy, document in named.items()
        for s in document["Statement"]
        if "*" in as_list(s["Resource"])
        or any(r.endswith(":*") and ":log-group:" not in r for r in as_list(s["Resource"]))
    }
    # THEN the only "*" resources are the justified ones (services without resource-level permissions); the VPC
    # ones only for functions in a VPC (tests/infra/test_component_options.py)
    assert wildcards == {k for k in policies.WILDCARD_JUSTIFICATIONS if k not in VPC_ONLY_WILDCARDS}


# --- readers and secrets ----------------------------------------------------------------------------------------


def test_reader_policy_reads_one_secret(deployment: Deployment) -> None:
    for reader in deployment.of_type("aws:iam/policy:Policy"):
        key_name = reader.inputs["tags"][c.TAG_KEY_NAME]
        assert reader.inputs["name"] == f"keyrot-{deployment.stack}-{key_name}-reader"
        assert doc(reader)["Statement"] == [
            {
                "Sid": "ReadKey",
                "Effect": "Allow",
                "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
                "Resource": [deployment.outputs["keySecretArns"][key_name]],
            },
            {
                "Sid": "DecryptKey",
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Resource": [key_arn(deployment)],
                "Condition": via("secretsmanager", deployment),
            },
        ]


def test_secret_resource_policies_cap_reads_to_the_keys_readers(deployment: Deployment) -> None:
    config_keys = json.loads(deployment.config["keyrot:keys"])
    administrators = json.loads(deployment.config["keyrot:administratorArns"])
    rotation_role = f"arn:aws:iam::{deployment.account}:role/keyrot-{deployment.stack}-rotation"
    monitor_role = f"arn:aws:iam::{deployment.account}:role/keyrot-{deployment.stack}-monitor"
    policies_by_secret = {
        p.inputs["secretArn"]: p for p in deployment.of_type("aws:secretsmanager/secretPolicy:SecretPolicy")
    }
    admin_secret = deployment.outputs["adminKeySecretArn"]
    created_admin_secret = keyrot_config(deployment).existing_admin_key_secret_arn is None
    assert sorted(policies_by_secret) == sorted([*secret_arns(deployment), *([admin_secret] * created_admin_secret)])
    for key in config_keys:
        policy = policies_by_secret[deployment.outputs["keySecretArns"][key["name"]]]
        assert policy.inputs["blockPublicPolicy"] is True
        found = statements(doc(policy))
        read = found["OnlyReadersGetTheKey"]
        assert (read["Effect"], read["Principal"], read["Action"], read["Resource"]) == (
            "Deny",
            "*",
            "secretsmanager:GetSecretValue",
            "*",
        )
        assert read["Condition"]["ArnNotLike"]["aws:PrincipalArn"] == sorted(
            {*key["readerRoleArns"], rotation_role, monitor_role, *administrators}
        )
        # Readers of this key are not writers; other keys' readers are not readers here.
        writers = {
            arn
            for statement in found.values()
            if statement is not read
            for arn in statement["Condition"].get("ArnNotLike", {}).get("aws:PrincipalArn", [])
        }
        assert not set(key["readerRoleArns"]) & writers
        for other in config_keys:
            if other["name"] != key["name"]:
                for arn in set(other["readerRoleArns"]) - set(key["readerRoleArns"]):
                    assert arn not in read["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
        # Deny-only: nothing is granted here, and AWS services acting themselves are left alone.
        assert {s["Effect"] for s in found.values()} == {"Deny"}
        for statement in found.values():
            assert "secretsmanager:*" not in as_list(statement["Action"])
            if statement["Sid"] != "RotationSetsOnlyThePromotionTag":
                assert statement["Condition"]["BoolIfExists"] == {"aws:PrincipalIsAWSService": "false"}


def test_admin_key_secret_keyrot_creates_is_read_only_by_keyrot_and_administrators(deployment: Deployment) -> None:
    policies_by_secret = {
        p.inputs["secretArn"]: p for p in deployment.of_type("aws:secretsmanager/secretPolicy:SecretPolicy")
    }
    admin_secret = deployment.outputs["adminKeySecretArn"]
    if keyrot_config(deployment).existing_admin_key_secret_arn is not None:
        # The platform team's own secret: keyrot must not overwrite a policy it does not own.
        assert admin_secret not in policies_by_secret
        return
    policy = policies_by_secret[admin_secret]
    assert policy.inputs["blockPublicPolicy"] is True
    statement = statements(doc(policy))["OnlyKeyrotReadsTheAdminKey"]
    administrators = json.loads(deployment.config["keyrot:administratorArns"])
    account, env = deployment.account, deployment.stack
    guarded = keyrot_config(deployment).guardrails is not None
    rotated = keyrot_config(deployment).admin_key_rotation is not None
    assert statement == {
        "Sid": "OnlyKeyrotReadsTheAdminKey",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "*",
        "Condition": {
            "ArnNotLike": {
                "aws:PrincipalArn": sorted(
                    {
                        f"arn:aws:iam::{account}:role/keyrot-{env}-rotation",
                        f"arn:aws:iam::{account}:role/keyrot-{env}-monitor",
                        # The guardrails function reads the admin key too, when guardrails are declared, and the
                        # admin rotation function, which rotates it.
                        *([f"arn:aws:iam::{account}:role/keyrot-{env}-guardrails"] * guarded),
                        *([f"arn:aws:iam::{account}:role/keyrot-{env}-admin-rotation"] * rotated),
                        *administrators,
                    }
                )
            },
            "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
        },
    }
    # No application reader may read the admin key, whatever its own IAM policies say.
    for key in json.loads(deployment.config["keyrot:keys"]):
        assert not set(key["readerRoleArns"]) & set(statement["Condition"]["ArnNotLike"]["aws:PrincipalArn"])


# --- KMS and SNS ------------------------------------------------------------------------------------------------


def test_kms_key_policy(deployment: Deployment) -> None:
    (key,) = deployment.of_type("aws:kms/key:Key")
    found = statements(doc(key))
    region, account, env = deployment.region, deployment.account, deployment.stack
    assert found["AccountAdministersKey"]["Principal"] == {"AWS": f"arn:aws:iam::{account}:root"}
    assert found["SecretsManagerUse"]["Condition"] == {
        "StringEquals": {"kms:CallerAccount": account, "kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}
    }
    logs = found["CloudWatchLogsEncryptsKeyrotLogGroups"]
    assert logs["Principal"] == {"Service": f"logs.{region}.amazonaws.com"}
    config = keyrot_config(deployment)
    purposes = [
        "monitor",
        "rotation",
        *(["guardrails"] if config.guardrails is not None else []),
        *(["admin-rotation"] if config.admin_key_rotation is not None else []),
    ]
    assert logs["Condition"] == {
        "StringEquals": {
            "kms:EncryptionContext:aws:logs:arn": sorted(
                f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/keyrot-{env}-{purpose}" for purpose in purposes
            )
        }
    }
    for sid, service in (("CloudWatchAlarmsPublishToTopic", "cloudwatch"), ("EventBridgePublishesToTopic", "events")):
        assert found[sid]["Principal"] == {"Service": f"{service}.amazonaws.com"}
        assert found[sid]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    # Only this environment's alarms and rotation-failure rule, of this account, may use the key (confused deputy).
    assert found["CloudWatchAlarmsPublishToTopic"]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": account},
        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudwatch:{region}:{account}:alarm:keyrot-{env}-*"},
    }
    (rule,) = deployment.of_type("aws:cloudwatch/eventRule:EventRule")
    assert found["EventBridgePublishesToTopic"]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": account},
        "ArnEquals": {"aws:SourceArn": rule.outputs["arn"]},
    }
    alarms = [a.outputs["arn"] for a in deployment.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")]
    pattern = found["CloudWatchAlarmsPublishToTopic"]["Condition"]["ArnLike"]["aws:SourceArn"]
    assert alarms and all(fnmatch.fnmatchcase(arn, pattern) for arn in alarms)
    # The log groups it names are the ones the program creates.
    groups = {g.outputs["arn"] for g in deployment.of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert groups == set(logs["Condition"]["StringEquals"]["kms:EncryptionContext:aws:logs:arn"])


def test_topic_policy_lets_only_this_accounts_alarms_and_the_rule_publish(deployment: Deployment) -> None:
    (policy,) = deployment.of_type("aws:sns/topicPolicy:TopicPolicy")
    (rule,) = deployment.of_type("aws:cloudwatch/eventRule:EventRule")
    topic = deployment.outputs["oncallTopicArn"]
    assert policy.inputs["arn"] == topic
    assert doc(policy)["Statement"] == [
        {
            "Sid": "CloudWatchAlarmsOfThisAccount",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic,
            "Condition": {"StringEquals": {"aws:SourceAccount": deployment.account}},
        },
        {
            "Sid": "RotationFailureRule",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic,
            "Condition": {"ArnEquals": {"aws:SourceArn": rule.outputs["arn"]}},
        },
    ]


# --- parliament -------------------------------------------------------------------------------------------------

# Findings we accept, with the reason. Keyed by (document, issue); a document is "<resource>.<input>".
ACCEPTED_FINDINGS: dict[tuple[str, str], str] = {
    # parliament lints every document as an identity policy; trust policies never have a Resource.
    **{
        (f"{role}.assumeRolePolicy", "MALFORMED"): "a role trust policy has no Resource element"
        for role in (
            "keyrot-rotation-identity-role",
            "keyrot-monitor-identity-role",
            "keyrot-monitor-scheduler-role",
            "keyrot-guardrails-identity-role",
            "keyrot-guardrails-check-scheduler-role",
            "keyrot-admin-rotation-identity-role",
            "keyrot-admin-rotation-cleanup-scheduler-role",
        )
    },
    # kms:* for the account root is the key policy's administration statement: without it the key could become
    # unmanageable; every keyrot role still gets KMS use only through its own IAM policy, with conditions.
    ("keyrot-encryption-key.policy", "PERMISSIONS_MANAGEMENT_ACTIONS"): "account-root administration of the key",
}
# Actions newer than parliament's IAM database: botocore's Secrets Manager model and AWS's API reference have them
# (the secrets' policies cap them: replication to another account would copy a key out of their reach).
ACCEPTED_UNKNOWN_ACTIONS = {
    "secretsmanager:AssociateCrossAccountReplica",
    "secretsmanager:DisassociateCrossAccountReplica",
}
# Reported whatever their severity: a typo'd action or condition key silently grants nothing.
ALWAYS_SERIOUS = {"UNKNOWN_ACTION", "UNKNOWN_PREFIX", "UNKNOWN_CONDITION_FOR_ACTION", "MISMATCHED_TYPE"}


# As `parliament --include-community-auditors` does: the community auditors' findings need their severities too.
parliament.override_config(str(Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml"))


def lint(document: dict[str, Any]) -> list[Any]:
    """parliament's findings with their severities (the library leaves severity empty; the CLI enhances them)."""
    analysed = parliament.analyze_policy_string(json.dumps(document), include_community_auditors=True)
    return [parliament.enhance_finding(finding) for finding in analysed.findings]


def every_policy_document(d: Deployment) -> dict[str, dict[str, Any]]:
    documents: dict[str, dict[str, Any]] = {}
    for resource in d.resources:
        for key in ("policy", "assumeRolePolicy"):
            if resource.custom and isinstance(resource.inputs.get(key), str):
                documents[f"{resource.name}.{key}"] = json.loads(resource.inputs[key])
    return documents


def test_parliament_finds_nothing_serious(deployment: Deployment) -> None:
    documents = every_policy_document(deployment)
    # Identity policies, trust policies and resource policies, all of them linted.
    assert {
        "keyrot-encryption-key.policy",
        "keyrot-rotation-lambda-permissions.policy",
        "keyrot-monitor-lambda-permissions.policy",
    } <= set(documents)
    assert len(documents) >= 10
    serious = []
    for name, document in documents.items():
        for finding in lint(document):
            accepted = (name, finding.issue) in ACCEPTED_FINDINGS or (
                finding.issue == "UNKNOWN_ACTION"
                and str(finding.detail).removeprefix("Unknown action ") in ACCEPTED_UNKNOWN_ACTIONS
            )
            serious_kind = finding.severity in ("CRITICAL", "HIGH", "MEDIUM") or finding.issue in ALWAYS_SERIOUS
            if serious_kind and not accepted:
                serious.append((name, finding.issue, finding.severity, finding.detail))
    assert serious == []


def test_the_actions_parliament_does_not_know_are_real() -> None:
    # The accepted unknown actions are operations of Secrets Manager's service model, not typos.
    assert {a.split(":", 1)[1] for a in ACCEPTED_UNKNOWN_ACTIONS} <= set(operations())


def test_parliament_would_catch_a_broken_policy() -> None:
    # Guard against a silently inert linter: a typo'd action is a finding.
    findings = lint(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValues", "Resource": "*"}],
        }
    )
    assert [(f.issue, f.severity) for f in findings] == [("UNKNOWN_ACTION", "LOW")]
