"""The rotation function and, per managed secret, the permission for Secrets Manager to invoke it and the schedule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

# ROTATION_TIMEOUT_SECONDS: four steps, each may wait for OpenAI (validation retries with delays) and retry AWS calls.
# createSecret relies on it to tell an abandoned account from one a running invocation is about to store.
from keyrot.constants import ROTATION_HANDLER, ROTATION_TIMEOUT_SECONDS
from keyrot.pulumi import policies
from keyrot.pulumi.components._util import child, policy_json, vpc_statements
from keyrot.pulumi.components.function import KeyrotFunction, KeyrotFunctionArgs

# Secrets Manager invokes rotation per secret; several secrets may rotate at once.
RESERVED_CONCURRENCY: int | None = None


@dataclass
class KeyRotationArgs:
    environment: str
    account_id: str
    region: str
    role_arn: pulumi.Input[str]
    role_name: pulumi.Input[str]
    secret_arns: Mapping[str, pulumi.Input[str]]
    admin_secret_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    archive_path: str
    source_code_hash: str
    environment_variables: Mapping[str, pulumi.Input[str]]
    schedule_expression: str
    window: str
    # True only when the admin key already exists (an existing admin-key secret): otherwise the first rotation
    # would fail for want of an admin key, and the operator triggers it after putting the key.
    rotate_immediately: bool
    log_retention_days: int
    # VPC subnets and security groups for the function (both empty: no VPC); `partition` names their ARNs.
    subnet_ids: Sequence[pulumi.Input[str]] = ()
    security_group_ids: Sequence[pulumi.Input[str]] = ()
    partition: str = "aws"


class KeyRotation(pulumi.ComponentResource):
    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]

    def __init__(self, name: str, args: KeyRotationArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keyrot:index:KeyRotation", name, None, opts)
        secret_arns = list(args.secret_arns.values())
        function = KeyrotFunction(
            f"{name}-lambda",
            KeyrotFunctionArgs(
                environment=args.environment,
                purpose="rotation",
                description=f"keyrot {args.environment}: Secrets Manager rotation of OpenAI API keys",
                handler=ROTATION_HANDLER,
                role_arn=args.role_arn,
                role_name=args.role_name,
                role_policy=lambda log_group_arn: policy_json(
                    policies.rotation_role_policy,
                    managed_secret_arns=secret_arns,
                    admin_secret_arn=args.admin_secret_arn,
                    kms_key_arn=args.kms_key_arn,
                    log_group_arn=log_group_arn,
                    region=args.region,
                    vpc=_vpc(args),
                ),
                archive_path=args.archive_path,
                source_code_hash=args.source_code_hash,
                environment_variables=args.environment_variables,
                timeout_seconds=ROTATION_TIMEOUT_SECONDS,
                kms_key_arn=args.kms_key_arn,
                log_retention_days=args.log_retention_days,
                subnet_ids=args.subnet_ids,
                security_group_ids=args.security_group_ids,
                reserved_concurrency=RESERVED_CONCURRENCY,
            ),
            opts=child(self),
        )
        for key_name, secret_arn in args.secret_arns.items():
            # Secrets Manager may invoke the function for this one secret, from this account only.
            permission = aws.lambda_.Permission(
                f"{name}-{key_name}-invoke",
                action="lambda:InvokeFunction",
                function=function.function_name,
                principal="secretsmanager.amazonaws.com",
                source_account=args.account_id,
                source_arn=secret_arn,
                opts=child(self),
            )
            aws.secretsmanager.SecretRotation(
                f"{name}-{key_name}-schedule",
                secret_id=secret_arn,
                rotation_lambda_arn=function.function_arn,
                rotation_rules={"schedule_expression": args.schedule_expression, "duration": args.window},
                rotate_immediately=args.rotate_immediately,
                opts=child(self, depends_on=[permission, function.role_policy]),
            )
        self.function_name = function.function_name
        self.function_arn = function.function_arn
        self.register_outputs({"functionName": function.function_name, "functionArn": function.function_arn})


def _vpc(args: Any) -> Any:
    return vpc_statements(
        subnet_ids=args.subnet_ids,
        security_group_ids=args.security_group_ids,
        partition=args.partition,
        region=args.region,
        account_id=args.account_id,
    )
