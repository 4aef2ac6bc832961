"""Every IAM, KMS, SNS and Secrets Manager policy document the program declares, as plain builder functions.

Builders take plain strings (ARNs, names) and return dicts, so tests (and a later least-privilege check against the
AWS calls the Lambda code makes) can inspect them directly. Components call them inside `Output.apply`.

Rule: each Lambda role gets exactly the actions its code calls, on exactly this environment's resources. The few
`"Resource": "*"` grants say why next to them; `WILDCARD_JUSTIFICATIONS` lists them for the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keyrot import metric_names
from keyrot.constants import TAG_PROMOTED

VERSION = "2012-10-17"
Policy = dict[str, Any]

# (policy, Sid) -> why its Resource is "*". Tests fail on any other "*".
WILDCARD_JUSTIFICATIONS: dict[tuple[str, str], str] = {
    ("monitor", "ListManagedSecrets"): "secretsmanager:ListSecrets has no resource-level permissions",
    ("monitor", "PublishKeyrotMetrics"): "cloudwatch:PutMetricData has no resource-level permissions; "
    "the cloudwatch:namespace condition limits it to keyrot's namespace",
    ("monitor", "ReadKeyrotMetrics"): "cloudwatch:GetMetricData has no resource-level permissions",
    ("rotation", "FindVpcNetworkInterfaces"): "ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets have no "
    "resource-level permissions (only with vpcSubnetIds: Lambda manages the function's interfaces with them)",
    ("monitor", "FindVpcNetworkInterfaces"): "ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets have no "
    "resource-level permissions (only with vpcSubnetIds: Lambda manages the function's interfaces with them)",
    ("guardrails", "FindVpcNetworkInterfaces"): "ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets have no "
    "resource-level permissions (only with vpcSubnetIds: Lambda manages the function's interfaces with them)",
    ("admin-rotation", "FindVpcNetworkInterfaces"): "ec2:DescribeNetworkInterfaces and ec2:DescribeSubnets have no "
    "resource-level permissions (only with vpcSubnetIds: Lambda manages the function's interfaces with them)",
}

# Every Secrets Manager action that changes a secret's value, a version label, its rotation, its policy, its
# replication or its very existence, grouped by who needs it. The secrets' resource policies deny each group to
# everyone else. tests/infra/test_secret_policies.py derives the write actions from botocore's service model, so an
# action AWS adds fails the test until it is placed here. (CreateSecret is absent: it creates another secret, and an
# existing secret's policy is never consulted for it.)
VALUE_WRITES: tuple[str, ...] = ("secretsmanager:PutSecretValue",)
LABEL_WRITES: tuple[str, ...] = ("secretsmanager:UpdateSecretVersionStage",)
MANAGEMENT_WRITES: tuple[str, ...] = (
    # Replication to another account copies the key out of this account's policies' reach.
    "secretsmanager:AssociateCrossAccountReplica",
    "secretsmanager:CancelRotateSecret",
    "secretsmanager:DeleteResourcePolicy",
    "secretsmanager:DeleteSecret",
    "secretsmanager:DisassociateCrossAccountReplica",
    "secretsmanager:PutResourcePolicy",
    "secretsmanager:RemoveRegionsFromReplication",
    "secretsmanager:ReplicateSecretToRegions",
    "secretsmanager:RestoreSecret",
    "secretsmanager:RotateSecret",
    "secretsmanager:StopReplicationToReplica",
    "secretsmanager:UpdateSecret",
)
TAG_WRITES: tuple[str, ...] = ("secretsmanager:TagResource", "secretsmanager:UntagResource")
# The tags that say what a secret is for: only the deployers and administrators set or remove them (and the rotation
# function one of them, TAG_PROMOTED, when it promotes a key).
KEYROT_TAG_PATTERN = "keyrot:*"


def _statement(sid: str, actions: Sequence[str], resources: Sequence[str] | str, **extra: Any) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(actions),
        "Resource": resources if isinstance(resources, str) else sorted(resources),
        **extra,
    }


def _via(service: str, region: str) -> dict[str, Any]:
    return {"StringEquals": {"kms:ViaService": f"{service}.{region}.amazonaws.com"}}


def log_stream_resources(log_group_arn: str) -> list[str]:
    """CreateLogStream acts on the group, PutLogEvents on its streams: `<group arn>:*` covers both."""
    return [f"{log_group_arn}:*"]


def lambda_trust_policy() -> Policy:
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "LambdaAssumesRole",
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }


def vpc_statements(
    *, subnet_arns: Sequence[str], security_group_arns: Sequence[str], region: str, account_id: str, partition: str
) -> list[dict[str, Any]]:
    """What Lambda does with a function's role to attach it to VPC subnets (empty without subnets)."""
    if not subnet_arns:
        return []
    interfaces = f"arn:{partition}:ec2:{region}:{account_id}:network-interface/*"
    return [
        # Resource "*": these describe calls have no resource-level permissions.
        _statement("FindVpcNetworkInterfaces", ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"], "*"),
        _statement(
            "ManageVpcNetworkInterfaces",
            [
                "ec2:AssignPrivateIpAddresses",
                "ec2:CreateNetworkInterface",
                "ec2:DeleteNetworkInterface",
                "ec2:UnassignPrivateIpAddresses",
            ],
            [interfaces, *subnet_arns, *security_group_arns],
        ),
    ]


def rotation_role_policy(
    *,
    managed_secret_arns: Sequence[str],
    admin_secret_arn: str,
    kms_key_arn: str,
    log_group_arn: str,
    region: str,
    vpc: Sequence[dict[str, Any]] = (),
) -> Policy:
    """What keyrot.handlers.rotate calls: the four rotation steps on the managed secrets, the promotion tag, the
    admin key, logs (and, in a VPC, what Lambda needs for the function's network interfaces)."""
    return {
        "Version": VERSION,
        "Statement": [
            _statement(
                "RotateManagedSecrets",
                [
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:UpdateSecretVersionStage",
                ],
                managed_secret_arns,
            ),
            # finishSecret records when it promotes a version, on this one tag and no other.
            _statement(
                "TagPromotion",
                ["secretsmanager:TagResource"],
                managed_secret_arns,
                Condition={"ForAllValues:StringEquals": {"aws:TagKeys": [TAG_PROMOTED]}},
            ),
            _statement("ReadAdminKey", ["secretsmanager:GetSecretValue"], [admin_secret_arn]),
            _statement(
                "UseSecretsKey",
                ["kms:Decrypt", "kms:GenerateDataKey"],
                [kms_key_arn],
                Condition=_via("secretsmanager", region),
            ),
            # No logs:CreateLogGroup: the group is created (with retention and KMS) by the program.
            _statement(
                "WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], log_stream_resources(log_group_arn)
            ),
            *vpc,
        ],
    }


def monitor_role_policy(
    *,
    managed_secret_arns: Sequence[str],
    admin_secret_arn: str,
    kms_key_arn: str,
    log_group_arn: str,
    state_parameter_arn: str,
    topic_arn: str,
    topic_encrypted_with_key: bool,
    region: str,
    vpc: Sequence[dict[str, Any]] = (),
) -> Policy:
    """What the monitor calls: find and read the managed secrets, mark revoked versions, metrics, state, notify."""
    statements = [
        # Resource "*": ListSecrets has no resource-level permissions (the monitor filters by keyrot tags).
        _statement("ListManagedSecrets", ["secretsmanager:ListSecrets"], "*"),
        _statement(
            "InspectManagedSecrets",
            [
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetSecretValue",
                "secretsmanager:UpdateSecretVersionStage",
            ],
            managed_secret_arns,
        ),
        # ListSecretVersionIds: the tripwire reads the admin key ids of the secret's past versions (keyrot_actors.py)
        _statement(
            "ReadAdminKey", ["secretsmanager:GetSecretValue", "secretsmanager:ListSecretVersionIds"], [admin_secret_arn]
        ),
        _statement("UseSecretsKey", ["kms:Decrypt"], [kms_key_arn], Condition=_via("secretsmanager", region)),
        _statement("MonitorState", ["ssm:GetParameter", "ssm:PutParameter"], [state_parameter_arn]),
        # Resource "*": PutMetricData has no resource-level permissions; the namespace condition narrows it.
        _statement(
            "PublishKeyrotMetrics",
            ["cloudwatch:PutMetricData"],
            "*",
            Condition={"StringEquals": {"cloudwatch:namespace": metric_names.NAMESPACE}},
        ),
        # Resource "*": GetMetricData has no resource-level permissions.
        _statement("ReadKeyrotMetrics", ["cloudwatch:GetMetricData"], "*"),
        _statement("NotifyOncall", ["sns:Publish"], [topic_arn]),
    ]
    if topic_encrypted_with_key:
        statements.append(
            _statement(
                "PublishToEncryptedTopic",
                ["kms:Decrypt", "kms:GenerateDataKey*"],
                [kms_key_arn],
                Condition=_via("sns", region),
            )
        )
    statements.append(
        _statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], log_stream_resources(log_group_arn))
    )
    statements.extend(vpc)
    return {"Version": VERSION, "Statement": statements}


def guardrails_role_policy(
    *,
    admin_secret_arn: str,
    kms_key_arn: str,
    parameter_arn: str,
    state_parameter_arn: str,
    topic_arn: str,
    topic_encrypted_with_key: bool,
    log_group_arn: str,
    region: str,
    vpc: Sequence[dict[str, Any]] = (),
) -> Policy:
    """What keyrot.handlers.guardrails calls in AWS: the admin key (OpenAI is called with it), the declared document's
    parameter (read only), its own memory of what it told on-call, the on-call topic (and the topic's key when keyrot
    encrypts it), logs (its metrics are EMF lines in them). Nothing else: no key secret, no monitor state."""
    statements = [
        _statement("ReadAdminKey", ["secretsmanager:GetSecretValue"], [admin_secret_arn]),
        _statement("UseSecretsKey", ["kms:Decrypt"], [kms_key_arn], Condition=_via("secretsmanager", region)),
        _statement("ReadDeclaredGuardrails", ["ssm:GetParameter"], [parameter_arn]),
        _statement("GuardrailsState", ["ssm:GetParameter", "ssm:PutParameter"], [state_parameter_arn]),
        _statement("NotifyOncall", ["sns:Publish"], [topic_arn]),
    ]
    if topic_encrypted_with_key:
        statements.append(
            _statement(
                "PublishToEncryptedTopic",
                ["kms:Decrypt", "kms:GenerateDataKey*"],
                [kms_key_arn],
                Condition=_via("sns", region),
            )
        )
    statements.append(
        _statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], log_stream_resources(log_group_arn))
    )
    statements.extend(vpc)
    return {"Version": VERSION, "Statement": statements}


def admin_rotation_role_policy(
    *,
    admin_secret_arn: str,
    kms_key_arn: str,
    log_group_arn: str,
    region: str,
    vpc: Sequence[dict[str, Any]] = (),
) -> Policy:
    """What keyrot.handlers.rotate_admin calls in AWS: the four rotation steps and the cleanup's KEYROT_REVOKED label
    on the admin-key secret alone, the promotion tag, its KMS key through Secrets Manager, its logs (EMF metrics)."""
    return {
        "Version": VERSION,
        "Statement": [
            _statement(
                "RotateAdminKey",
                [
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:ListSecretVersionIds",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:UpdateSecretVersionStage",
                ],
                [admin_secret_arn],
            ),
            # finishSecret records when it promotes a version, on this one tag and no other.
            _statement(
                "TagPromotion",
                ["secretsmanager:TagResource"],
                [admin_secret_arn],
                Condition={"ForAllValues:StringEquals": {"aws:TagKeys": [TAG_PROMOTED]}},
            ),
            _statement(
                "UseSecretsKey",
                ["kms:Decrypt", "kms:GenerateDataKey"],
                [kms_key_arn],
                Condition=_via("secretsmanager", region),
            ),
            _statement(
                "WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], log_stream_resources(log_group_arn)
            ),
            *vpc,
        ],
    }


def reader_policy(*, secret_arn: str, kms_key_arn: str, region: str) -> Policy:
    """For an application role: read one key's secret (DescribeSecret too, as the AWS caching client needs)."""
    return {
        "Version": VERSION,
        "Statement": [
            _statement("ReadKey", ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"], [secret_arn]),
            _statement("DecryptKey", ["kms:Decrypt"], [kms_key_arn], Condition=_via("secretsmanager", region)),
        ],
    }


def secret_resource_policy(
    *,
    reader_role_arns: Sequence[str],
    rotation_role_arn: str,
    monitor_role_arn: str,
    administrator_arns: Sequence[str],
    deployer_arns: Sequence[str] = (),
) -> Policy:
    """Deny-only resource policy on a managed secret: who may read the key, and who may change anything about it.

    It grants nothing (IAM policies do), it only caps: a principal outside the lists is denied even if some broad
    IAM policy (an AdministratorAccess, a `secretsmanager:*`) would allow it. Every write action is capped
    (VALUE_WRITES, LABEL_WRITES, MANAGEMENT_WRITES, and TAG_WRITES of a `keyrot:*` tag), each to the functions that
    need it, the deployers (`pulumi up`/`destroy` manage the secret, its policy, its rotation and its tags) and the
    administrators. Requests made by AWS services themselves (no principal ARN) are left alone by the
    PrincipalIsAWSService check.
    """
    admins = list(administrator_arns)
    deployers = [*deployer_arns, *admins]
    readers = _unique([*reader_role_arns, rotation_role_arn, monitor_role_arn, *admins])
    return {
        "Version": VERSION,
        "Statement": [
            _deny_all_but("OnlyReadersGetTheKey", ["secretsmanager:GetSecretValue"], readers),
            _deny_all_but("OnlyRotationWritesTheKey", list(VALUE_WRITES), _unique([rotation_role_arn, *admins])),
            _deny_all_but(
                "OnlyKeyrotMovesLabels", list(LABEL_WRITES), _unique([rotation_role_arn, monitor_role_arn, *admins])
            ),
            _deny_all_but("OnlyDeployersManageTheSecret", list(MANAGEMENT_WRITES), _unique(deployers)),
            *_keyrot_tag_statements(deployers=deployers, promoter_arn=rotation_role_arn),
        ],
    }


def admin_secret_resource_policy(
    *,
    rotation_role_arn: str,
    monitor_role_arn: str,
    administrator_arns: Sequence[str],
    deployer_arns: Sequence[str] = (),
    guardrails_role_arn: str | None = None,
    admin_rotation_role_arn: str | None = None,
) -> Policy:
    """Deny-only resource policy on the admin-key secret keyrot creates: only the functions that call the admin API
    (rotation, monitor and, when deployed, the guardrails and admin rotation functions) and `administratorArns`
    (break-glass, and the CLI's audit and revocations) may read the admin key; only the deployers and administrators
    may manage it (policy, rotation, replication, deletion) or change its `keyrot:*` tags; moving its labels is theirs
    too, and the admin rotation function's, which may also set the one tag `keyrot:promoted`.

    Putting a new admin key (PutSecretValue) is NOT capped: `keyrot admin-key set` is run by whoever the platform
    team's IAM allows (administratorArns may be empty), a put discloses nothing, and the put key must pass validation
    first. Reading is what an attacker with a broad IAM policy would want, and that is what this policy takes away.
    """
    admins = list(administrator_arns)
    deployers = _unique([*deployer_arns, *admins])
    optional = [arn for arn in (guardrails_role_arn, admin_rotation_role_arn) if arn]
    readers = _unique([rotation_role_arn, monitor_role_arn, *optional, *admins])
    if admin_rotation_role_arn is None:
        return {
            "Version": VERSION,
            "Statement": [
                _deny_all_but("OnlyKeyrotReadsTheAdminKey", ["secretsmanager:GetSecretValue"], readers),
                _deny_all_but("OnlyDeployersManageTheSecret", [*LABEL_WRITES, *MANAGEMENT_WRITES], deployers),
                *_keyrot_tag_statements(deployers=deployers, promoter_arn=None),
            ],
        }
    return {
        "Version": VERSION,
        "Statement": [
            _deny_all_but("OnlyKeyrotReadsTheAdminKey", ["secretsmanager:GetSecretValue"], readers),
            _deny_all_but(
                "OnlyAdminRotationMovesLabels", list(LABEL_WRITES), _unique([*deployers, admin_rotation_role_arn])
            ),
            _deny_all_but("OnlyDeployersManageTheSecret", list(MANAGEMENT_WRITES), deployers),
            *_keyrot_tag_statements(deployers=deployers, promoter_arn=admin_rotation_role_arn),
        ],
    }


def _keyrot_tag_statements(*, deployers: Sequence[str], promoter_arn: str | None) -> list[dict[str, Any]]:
    """Deny setting or removing a `keyrot:*` tag to all but the deployers (and, for setting only the promotion
    tag, the rotation function)."""
    touches_keyrot_tag = {"ForAnyValue:StringLike": {"aws:TagKeys": [KEYROT_TAG_PATTERN]}}
    if promoter_arn is None:
        return [
            _deny_all_but("OnlyDeployersChangeKeyrotTags", list(TAG_WRITES), _unique(deployers), touches_keyrot_tag)
        ]
    return [
        _deny_all_but(
            "OnlyDeployersRemoveKeyrotTags", ["secretsmanager:UntagResource"], _unique(deployers), touches_keyrot_tag
        ),
        _deny_all_but(
            "OnlyDeployersAndRotationSetKeyrotTags",
            ["secretsmanager:TagResource"],
            _unique([*deployers, promoter_arn]),
            touches_keyrot_tag,
        ),
        # The rotation function may set exactly one tag, the promotion record: nothing else, keyrot's or not.
        {
            "Sid": "RotationSetsOnlyThePromotionTag",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "secretsmanager:TagResource",
            "Resource": "*",
            "Condition": {
                "ArnLike": {"aws:PrincipalArn": [promoter_arn]},
                "ForAnyValue:StringNotEquals": {"aws:TagKeys": [TAG_PROMOTED]},
            },
        },
    ]


def _deny_all_but(
    sid: str, actions: Sequence[str], principal_arns: Sequence[str], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Deny `actions` on the secret to every principal outside `principal_arns` (AWS services themselves excepted),
    when the `extra` conditions hold too."""
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": actions[0] if len(actions) == 1 else list(actions),
        "Resource": "*",
        "Condition": {
            "ArnNotLike": {"aws:PrincipalArn": list(principal_arns)},
            "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
            **(extra or {}),
        },
    }


def alarm_arn_pattern(*, partition: str, region: str, account_id: str, environment: str) -> str:
    """Every alarm of the environment (they are all named keyrot-<env>-...)."""
    return f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:keyrot-{environment}-*"


def rotation_failure_rule_arn(*, partition: str, region: str, account_id: str, environment: str) -> str:
    return f"arn:{partition}:events:{region}:{account_id}:rule/keyrot-{environment}-rotation-failures"


def kms_key_policy(
    *, account_id: str, partition: str, region: str, log_group_arns: Sequence[str], environment: str
) -> Policy:
    """Customer-managed key for the secrets, the on-call topic and the log groups."""
    root = f"arn:{partition}:iam::{account_id}:root"
    alarms = alarm_arn_pattern(partition=partition, region=region, account_id=account_id, environment=environment)
    rule = rotation_failure_rule_arn(partition=partition, region=region, account_id=account_id, environment=environment)
    return {
        "Version": VERSION,
        "Statement": [
            # In a key policy "Resource": "*" means this key. The account-root statement lets IAM policies grant
            # use of the key (every keyrot role gets kms:* actions only through its IAM policy, with conditions).
            {
                "Sid": "AccountAdministersKey",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": "kms:*",
                "Resource": "*",
            },
            # Same shape as the AWS-managed aws/secretsmanager key: principals of this account, only through
            # Secrets Manager in this region. Who may read a secret is decided by IAM and the secret's policy.
            {
                "Sid": "SecretsManagerUse",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": [
                    "kms:Decrypt",
                    "kms:DescribeKey",
                    "kms:Encrypt",
                    "kms:GenerateDataKey*",
                    "kms:ReEncrypt*",
                    "kms:CreateGrant",
                ],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:CallerAccount": account_id,
                        "kms:ViaService": f"secretsmanager.{region}.amazonaws.com",
                    }
                },
            },
            {
                "Sid": "CloudWatchLogsEncryptsKeyrotLogGroups",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{region}.amazonaws.com"},
                # (AWS's example also lists kms:Describe*, but DescribeKey carries no encryption context, so under
                # this condition it could never be allowed: left out.)
                "Action": ["kms:Decrypt*", "kms:Encrypt*", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
                "Resource": "*",
                # The context key is a string; exact ARNs of the two function log groups.
                "Condition": {"StringEquals": {"kms:EncryptionContext:aws:logs:arn": sorted(log_group_arns)}},
            },
            # Alarms and the EventBridge rule publish to the encrypted on-call topic as these service principals:
            # only this environment's alarms and rule, of this account (aws:SourceAccount / aws:SourceArn, the
            # confused-deputy conditions AWS documents for service principals; `make verify-aws` checks an alarm
            # still reaches the topic through them).
            {
                "Sid": "CloudWatchAlarmsPublishToTopic",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": alarms},
                },
            },
            {
                "Sid": "EventBridgePublishesToTopic",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnEquals": {"aws:SourceArn": rule},
                },
            },
        ],
    }


def topic_policy(*, topic_arn: str, account_id: str, rule_arn: str) -> Policy:
    """Who besides this account's IAM principals may publish: this account's alarms and the rotation-failure rule."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "CloudWatchAlarmsOfThisAccount",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            },
            {
                "Sid": "RotationFailureRule",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            },
        ],
    }


def scheduler_trust_policy(*, account_id: str) -> Policy:
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "SchedulerAssumesRole",
                "Effect": "Allow",
                "Principal": {"Service": "scheduler.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        ],
    }


def scheduler_role_policy(*, function_arn: str, sid: str = "InvokeMonitor") -> Policy:
    """A schedule's role: invoke its one function."""
    return {"Version": VERSION, "Statement": [_statement(sid, ["lambda:InvokeFunction"], [function_arn])]}


def _unique(values: Sequence[str]) -> list[str]:
    return sorted(dict.fromkeys(values))
