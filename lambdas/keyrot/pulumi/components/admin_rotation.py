"""The admin key's own rotation (issue 14.1): a function of its own, the admin-key secret's rotation schedule, and the
scheduled cleanup that deletes the previous admin key once no function can hold it.

The function (keyrot.handlers.rotate_admin) is the only keyrot function that writes the admin-key secret: the four
rotation steps, the `keyrot:promoted` tag, and the cleanup's KEYROT_REVOKED label. Secrets Manager invokes it for
this one secret; the schedule sends it `{"keyrot": "admin-key-cleanup"}` every 5 minutes. Nothing is rotated at
deploy time: the secret keyrot creates is empty until an operator puts the first (bootstrap) admin key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from keyrot.constants import (
    ADMIN_CLEANUP_EVENT_FIELD,
    ADMIN_CLEANUP_EVENT_VALUE,
    ADMIN_CLEANUP_SCHEDULE,
    ADMIN_ROTATION_HANDLER,
    ADMIN_ROTATION_PURPOSE,
    ADMIN_ROTATION_TIMEOUT_SECONDS,
)
from keyrot.names import RESOURCE_PREFIX
from keyrot.pulumi import policies
from keyrot.pulumi.components._util import child, policy_json, vpc_statements
from keyrot.pulumi.components.function import KeyrotFunction, KeyrotFunctionArgs
from keyrot.pulumi.components.scheduled import ScheduleArgs, schedule_function

PURPOSE = ADMIN_ROTATION_PURPOSE
CLEANUP_INPUT = json.dumps({ADMIN_CLEANUP_EVENT_FIELD: ADMIN_CLEANUP_EVENT_VALUE})
# Seconds between two scheduled cleanups (ADMIN_CLEANUP_SCHEDULE is "rate(5 minutes)").
CLEANUP_INTERVAL_SECONDS = 300


@dataclass
class AdminRotationArgs:
    environment: str
    account_id: str
    partition: str
    region: str
    role_arn: pulumi.Input[str]
    role_name: pulumi.Input[str]
    admin_secret_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    archive_path: str
    source_code_hash: str
    environment_variables: Mapping[str, pulumi.Input[str]]
    schedule_expression: str
    window: str
    log_retention_days: int
    subnet_ids: Sequence[pulumi.Input[str]] = ()
    security_group_ids: Sequence[pulumi.Input[str]] = ()
    # What the rotation configuration must wait for besides the function: the admin-key secret's policy, which
    # must admit the role before Secrets Manager first invokes it.
    rotate_after: Sequence[pulumi.Resource] = field(default_factory=list)


class AdminRotation(pulumi.ComponentResource):
    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]

    def __init__(self, name: str, args: AdminRotationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keyrot:index:AdminRotation", name, None, opts)
        env = args.environment
        function = KeyrotFunction(
            f"{name}-lambda",
            KeyrotFunctionArgs(
                environment=env,
                purpose=PURPOSE,
                description=f"keyrot {env}: rotation of the OpenAI admin key (and deletion of the previous one)",
                handler=ADMIN_ROTATION_HANDLER,
                role_arn=args.role_arn,
                role_name=args.role_name,
                role_policy=lambda log_group_arn: policy_json(
                    policies.admin_rotation_role_policy,
                    admin_secret_arn=args.admin_secret_arn,
                    kms_key_arn=args.kms_key_arn,
                    log_group_arn=log_group_arn,
                    region=args.region,
                    vpc=vpc_statements(
                        subnet_ids=args.subnet_ids,
                        security_group_ids=args.security_group_ids,
                        partition=args.partition,
                        region=args.region,
                        account_id=args.account_id,
                    ),
                ),
                archive_path=args.archive_path,
                source_code_hash=args.source_code_hash,
                environment_variables=args.environment_variables,
                # The cleanup tells an abandoned attempt's admin key from one being minted by this timeout.
                timeout_seconds=ADMIN_ROTATION_TIMEOUT_SECONDS,
                kms_key_arn=args.kms_key_arn,
                log_retention_days=args.log_retention_days,
                subnet_ids=args.subnet_ids,
                security_group_ids=args.security_group_ids,
            ),
            opts=child(self),
        )
        # Secrets Manager may invoke it for the admin-key secret only, from this account only.
        permission = aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=function.function_name,
            principal="secretsmanager.amazonaws.com",
            source_account=args.account_id,
            source_arn=args.admin_secret_arn,
            opts=child(self),
        )
        rotation = aws.secretsmanager.SecretRotation(
            f"{name}-schedule",
            secret_id=args.admin_secret_arn,
            rotation_lambda_arn=function.function_arn,
            rotation_rules={"schedule_expression": args.schedule_expression, "duration": args.window},
            # The secret is empty until the operator puts the bootstrap admin key: never rotate at deploy.
            rotate_immediately=False,
            opts=child(self, depends_on=[permission, function.role_policy, *args.rotate_after]),
        )
        cleanup = schedule_function(
            self,
            f"{name}-cleanup",
            ScheduleArgs(
                environment=env,
                account_id=args.account_id,
                schedule_name=f"{RESOURCE_PREFIX}-{env}-admin-key-cleanup",
                # (keyrot-<env>-admin-key-cleanup-scheduler would pass IAM's 64 characters for a long environment)
                role_name=f"{RESOURCE_PREFIX}-{env}-admin-scheduler",
                description=f"Delete keyrot {env}'s previous admin key once its grace has passed (every 5 min)",
                role_description=f"invoke keyrot {env} admin-key cleanup",
                expression=ADMIN_CLEANUP_SCHEDULE,
                function_arn=function.function_arn,
                sid="InvokeAdminKeyCleanup",
                maximum_event_age_seconds=CLEANUP_INTERVAL_SECONDS,
                input=CLEANUP_INPUT,
            ),
        )
        self.function_name = function.function_name
        self.function_arn = function.function_arn
        self.register_outputs(
            {
                "functionName": function.function_name,
                "rotationId": rotation.id,
                "cleanupScheduleName": cleanup.name,
            }
        )
