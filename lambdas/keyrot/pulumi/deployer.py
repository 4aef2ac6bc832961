"""What the identity running `pulumi up` / `pulumi destroy` needs: generated from the resource types keyrot declares.

`RESOURCE_ACTIONS` lists, per resource type the component can declare, the calls the Pulumi AWS provider makes to
create, read, update and delete it; `deployer_policy` turns the types a stack declares into an IAM policy scoped to
that environment's names (`keyrot-<env>-*`, `keyrot/<env>/*`, ...). docs/deploy.md shows the policy rendered for
placeholders, and tests/infra/test_deployer_permissions.py keeps that text, this table and the types the program
declares in step: a new resource type fails the test until its permissions are here.

[unconfirmed] The provider's exact calls per resource are taken from its documentation and behaviour, not observed
here (no AWS); `make verify-aws` deploys with the caller's own credentials and does not narrow them to this policy.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from keyrot.constants import TAG_ENVIRONMENT

VERSION = "2012-10-17"


@dataclass(frozen=True)
class Scope:
    """Where a group of actions applies, for one environment (format fields: partition, region, account, env)."""

    sid: str
    resources: tuple[str, ...]
    condition: dict[str, Any] | None = None


# Per resource type: (scope id, actions). Scopes are defined below; several types share one.
RESOURCE_ACTIONS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "aws:kms/key:Key": (
        ("CreateKeyrotKey", ("kms:CreateKey", "kms:TagResource")),
        (
            "ManageKeyrotKey",
            (
                "kms:DescribeKey",
                "kms:DisableKeyRotation",
                "kms:EnableKeyRotation",
                "kms:GetKeyPolicy",
                "kms:GetKeyRotationStatus",
                "kms:ListResourceTags",
                "kms:PutKeyPolicy",
                "kms:ScheduleKeyDeletion",
                "kms:TagResource",
                "kms:UntagResource",
                "kms:UpdateKeyDescription",
            ),
        ),
    ),
    "aws:kms/alias:Alias": (
        ("ListKeyAliases", ("kms:ListAliases",)),
        ("ManageKeyrotAlias", ("kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias")),
        ("ManageKeyrotKey", ("kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias")),
    ),
    "aws:iam/role:Role": (
        (
            "ManageKeyrotRoles",
            (
                "iam:CreateRole",
                "iam:DeleteRole",
                "iam:GetRole",
                "iam:ListAttachedRolePolicies",
                "iam:ListInstanceProfilesForRole",
                "iam:ListRolePolicies",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:UpdateRole",
                "iam:UpdateRoleDescription",
            ),
        ),
    ),
    "aws:iam/rolePolicy:RolePolicy": (
        ("ManageKeyrotRoles", ("iam:DeleteRolePolicy", "iam:GetRolePolicy", "iam:PutRolePolicy")),
    ),
    "aws:iam/policy:Policy": (
        (
            "ManageReaderPolicies",
            (
                "iam:CreatePolicy",
                "iam:CreatePolicyVersion",
                "iam:DeletePolicy",
                "iam:DeletePolicyVersion",
                "iam:GetPolicy",
                "iam:GetPolicyVersion",
                "iam:ListPolicyVersions",
                "iam:TagPolicy",
                "iam:UntagPolicy",
            ),
        ),
    ),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": (
        ("AttachReaderPolicies", ("iam:AttachRolePolicy", "iam:DetachRolePolicy")),
        ("ReadReaderRoles", ("iam:ListAttachedRolePolicies",)),
    ),
    "aws:secretsmanager/secret:Secret": (
        (
            "ManageKeyrotSecrets",
            (
                "secretsmanager:CreateSecret",
                "secretsmanager:DeleteSecret",
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetResourcePolicy",
                "secretsmanager:TagResource",
                "secretsmanager:UntagResource",
                "secretsmanager:UpdateSecret",
            ),
        ),
    ),
    "aws:secretsmanager/secretPolicy:SecretPolicy": (
        (
            "ManageKeyrotSecrets",
            (
                "secretsmanager:DeleteResourcePolicy",
                "secretsmanager:GetResourcePolicy",
                "secretsmanager:PutResourcePolicy",
            ),
        ),
    ),
    "aws:secretsmanager/secretRotation:SecretRotation": (
        (
            "ManageKeyrotSecrets",
            ("secretsmanager:CancelRotateSecret", "secretsmanager:DescribeSecret", "secretsmanager:RotateSecret"),
        ),
    ),
    "aws:lambda/function:Function": (
        (
            "ManageKeyrotFunctions",
            (
                "lambda:CreateFunction",
                "lambda:DeleteFunction",
                "lambda:DeleteFunctionConcurrency",
                "lambda:GetFunction",
                "lambda:GetFunctionCodeSigningConfig",
                "lambda:GetFunctionConcurrency",
                "lambda:ListTags",
                "lambda:ListVersionsByFunction",
                "lambda:PutFunctionConcurrency",
                "lambda:TagResource",
                "lambda:UntagResource",
                "lambda:UpdateFunctionCode",
                "lambda:UpdateFunctionConfiguration",
            ),
        ),
        ("PassKeyrotRoles", ("iam:PassRole",)),
    ),
    # The deploy-time apply of the declared guardrails: the provider invokes the function (create, update, delete).
    "aws:lambda/invocation:Invocation": (("ManageKeyrotFunctions", ("lambda:InvokeFunction",)),),
    "aws:lambda/permission:Permission": (
        ("ManageKeyrotFunctions", ("lambda:AddPermission", "lambda:GetPolicy", "lambda:RemovePermission")),
    ),
    "aws:cloudwatch/logGroup:LogGroup": (
        ("ListLogGroups", ("logs:DescribeLogGroups",)),
        (
            "ManageKeyrotLogGroups",
            (
                "logs:AssociateKmsKey",
                "logs:CreateLogGroup",
                "logs:DeleteLogGroup",
                "logs:DeleteRetentionPolicy",
                "logs:DisassociateKmsKey",
                "logs:ListTagsForResource",
                "logs:PutRetentionPolicy",
                "logs:TagResource",
                "logs:UntagResource",
            ),
        ),
    ),
    "aws:sns/topic:Topic": (
        (
            "ManageKeyrotTopic",
            (
                "sns:CreateTopic",
                "sns:DeleteTopic",
                "sns:GetTopicAttributes",
                "sns:ListTagsForResource",
                "sns:SetTopicAttributes",
                "sns:TagResource",
                "sns:UntagResource",
            ),
        ),
    ),
    "aws:sns/topicPolicy:TopicPolicy": (("ManageKeyrotTopic", ("sns:GetTopicAttributes", "sns:SetTopicAttributes")),),
    "aws:sns/topicSubscription:TopicSubscription": (
        ("ManageKeyrotTopic", ("sns:Subscribe",)),
        (
            "ManageSubscriptions",
            ("sns:GetSubscriptionAttributes", "sns:SetSubscriptionAttributes", "sns:Unsubscribe"),
        ),
    ),
    "aws:cloudwatch/eventRule:EventRule": (
        (
            "ManageKeyrotRule",
            (
                "events:DeleteRule",
                "events:DescribeRule",
                "events:DisableRule",
                "events:EnableRule",
                "events:ListTagsForResource",
                "events:PutRule",
                "events:TagResource",
                "events:UntagResource",
            ),
        ),
    ),
    "aws:cloudwatch/eventTarget:EventTarget": (
        ("ManageKeyrotRule", ("events:ListTargetsByRule", "events:PutTargets", "events:RemoveTargets")),
    ),
    "aws:scheduler/schedule:Schedule": (
        (
            "ManageKeyrotSchedule",
            (
                "scheduler:CreateSchedule",
                "scheduler:DeleteSchedule",
                "scheduler:GetSchedule",
                "scheduler:UpdateSchedule",
            ),
        ),
        ("PassKeyrotRoles", ("iam:PassRole",)),
    ),
    "aws:cloudwatch/metricAlarm:MetricAlarm": (
        (
            "ManageKeyrotAlarms",
            (
                "cloudwatch:DeleteAlarms",
                "cloudwatch:DescribeAlarms",
                "cloudwatch:ListTagsForResource",
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:TagResource",
                "cloudwatch:UntagResource",
            ),
        ),
    ),
    "aws:cloudwatch/dashboard:Dashboard": (
        (
            "ManageKeyrotDashboard",
            ("cloudwatch:DeleteDashboards", "cloudwatch:GetDashboard", "cloudwatch:PutDashboard"),
        ),
    ),
    "aws:ssm/parameter:Parameter": (
        ("DescribeParameters", ("ssm:DescribeParameters",)),
        (
            "ManageMonitorState",
            (
                "ssm:AddTagsToResource",
                "ssm:DeleteParameter",
                "ssm:GetParameter",
                "ssm:GetParameters",
                "ssm:ListTagsForResource",
                "ssm:PutParameter",
                "ssm:RemoveTagsFromResource",
            ),
        ),
    ),
}
# Calls made whatever the stack declares: the data sources (the caller's role, for its path) and, for functions in
# a VPC, what Lambda checks of the caller when attaching them.
ALWAYS: tuple[tuple[str, tuple[str, ...]], ...] = (("ReadDeployingRole", ("iam:GetRole",)),)
VPC: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("DescribeVpcNetwork", ("ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs")),
)

_ENV_TAG = {"StringEquals": {f"aws:ResourceTag/{TAG_ENVIRONMENT}": "{env}"}}
SCOPES: dict[str, Scope] = {
    # CreateKey has no resource; the key must be created with the environment tag.
    "CreateKeyrotKey": Scope(
        "CreateKeyrotKey", ("*",), {"StringEquals": {f"aws:RequestTag/{TAG_ENVIRONMENT}": "{env}"}}
    ),
    "ManageKeyrotKey": Scope("ManageKeyrotKey", ("arn:{partition}:kms:{region}:{account}:key/*",), _ENV_TAG),
    "ListKeyAliases": Scope("ListKeyAliases", ("*",)),
    "ManageKeyrotAlias": Scope("ManageKeyrotAlias", ("arn:{partition}:kms:{region}:{account}:alias/keyrot-{env}",)),
    "ManageKeyrotRoles": Scope("ManageKeyrotRoles", ("arn:{partition}:iam::{account}:role/keyrot-{env}-*",)),
    "PassKeyrotRoles": Scope("PassKeyrotRoles", ("arn:{partition}:iam::{account}:role/keyrot-{env}-*",)),
    "ManageReaderPolicies": Scope("ManageReaderPolicies", ("arn:{partition}:iam::{account}:policy/keyrot-{env}-*",)),
    # The reader roles are the applications': only keyrot's reader policies may be attached to or detached from them.
    "AttachReaderPolicies": Scope(
        "AttachReaderPolicies",
        ("arn:{partition}:iam::{account}:role/*",),
        {"ArnLike": {"iam:PolicyARN": "arn:{partition}:iam::{account}:policy/keyrot-{env}-*-reader"}},
    ),
    "ReadReaderRoles": Scope("ReadReaderRoles", ("arn:{partition}:iam::{account}:role/*",)),
    "ReadDeployingRole": Scope("ReadDeployingRole", ("arn:{partition}:iam::{account}:role/*",)),
    "ManageKeyrotSecrets": Scope(
        "ManageKeyrotSecrets", ("arn:{partition}:secretsmanager:{region}:{account}:secret:keyrot/{env}/*",)
    ),
    "ManageKeyrotFunctions": Scope(
        "ManageKeyrotFunctions", ("arn:{partition}:lambda:{region}:{account}:function:keyrot-{env}-*",)
    ),
    "ListLogGroups": Scope("ListLogGroups", ("*",)),
    "ManageKeyrotLogGroups": Scope(
        "ManageKeyrotLogGroups",
        ("arn:{partition}:logs:{region}:{account}:log-group:/aws/lambda/keyrot-{env}-*",),
    ),
    "ManageKeyrotTopic": Scope("ManageKeyrotTopic", ("arn:{partition}:sns:{region}:{account}:keyrot-{env}-oncall",)),
    "ManageSubscriptions": Scope("ManageSubscriptions", ("*",)),
    "ManageKeyrotRule": Scope("ManageKeyrotRule", ("arn:{partition}:events:{region}:{account}:rule/keyrot-{env}-*",)),
    "ManageKeyrotSchedule": Scope(
        "ManageKeyrotSchedule", ("arn:{partition}:scheduler:{region}:{account}:schedule/default/keyrot-{env}-*",)
    ),
    "ManageKeyrotAlarms": Scope(
        "ManageKeyrotAlarms", ("arn:{partition}:cloudwatch:{region}:{account}:alarm:keyrot-{env}-*",)
    ),
    "ManageKeyrotDashboard": Scope(
        "ManageKeyrotDashboard", ("arn:{partition}:cloudwatch::{account}:dashboard/keyrot-{env}",)
    ),
    "DescribeParameters": Scope("DescribeParameters", ("*",)),
    "ManageMonitorState": Scope(
        "ManageMonitorState", ("arn:{partition}:ssm:{region}:{account}:parameter/keyrot/{env}/*",)
    ),
    "DescribeVpcNetwork": Scope("DescribeVpcNetwork", ("*",)),
}
# Scopes whose Resource is "*", and why (tests hold this list to the rendered policy).
WILDCARD_SCOPES: dict[str, str] = {
    "CreateKeyrotKey": "kms:CreateKey has no resource; the request must carry the environment's tag",
    "ListKeyAliases": "kms:ListAliases has no resource-level permissions",
    "DescribeParameters": "ssm:DescribeParameters has no resource-level permissions",
    "ListLogGroups": "logs:DescribeLogGroups has no resource-level permissions",
    "ManageSubscriptions": "subscription calls have no resource-level permissions (the topic's own are scoped)",
    "DescribeVpcNetwork": "ec2 describe calls have no resource-level permissions (only with vpcSubnetIds)",
}


def deployer_policy(
    resource_types: Iterable[str],
    *,
    environment: str,
    account_id: str,
    region: str,
    partition: str = "aws",
    in_vpc: bool = False,
) -> dict[str, Any]:
    """The IAM policy a deployer of `environment` needs for a stack declaring `resource_types` (keyrot's own)."""
    actions: dict[str, set[str]] = {}
    groups = [*ALWAYS, *(VPC if in_vpc else ())]
    for resource_type in sorted(set(resource_types)):
        if resource_type.startswith("keyrot:"):
            continue  # components own no cloud resource
        if resource_type not in RESOURCE_ACTIONS:
            raise KeyError(f"no deployer permissions known for {resource_type}: add them to RESOURCE_ACTIONS")
        groups.extend(RESOURCE_ACTIONS[resource_type])
    for sid, group in groups:
        actions.setdefault(sid, set()).update(group)
    fields = {"partition": partition, "region": region, "account": account_id, "env": environment}
    statements = []
    for sid in sorted(actions):
        scope = SCOPES[sid]
        statement: dict[str, Any] = {
            "Sid": sid,
            "Effect": "Allow",
            "Action": sorted(actions[sid]),
            "Resource": [r.format(**fields) for r in scope.resources],
        }
        if scope.condition is not None:
            statement["Condition"] = json.loads(_format_condition(scope.condition, fields))
        statements.append(statement)
    return {"Version": VERSION, "Statement": statements}


def _format_condition(condition: dict[str, Any], fields: dict[str, str]) -> str:
    """The condition as JSON text with the environment's names filled in (braces of JSON itself left alone)."""
    text = json.dumps(condition)
    for name, value in fields.items():
        text = text.replace("{" + name + "}", value)
    return text


def render_markdown(resource_types: Iterable[str]) -> str:
    """The block docs/deploy.md shows: the policy for placeholders `<partition>`, `<region>`, `<account>`, `<env>`."""
    policy = deployer_policy(
        resource_types,
        environment="<env>",
        account_id="<account>",
        region="<region>",
        partition="<partition>",
        in_vpc=True,
    )
    return "```json\n" + json.dumps(policy, indent=2) + "\n```\n"


if __name__ == "__main__":
    print(render_markdown(RESOURCE_ACTIONS), end="")
