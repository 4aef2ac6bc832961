"""One keyrot Lambda: its log group (created first, with retention and the KMS key), the function, its permissions."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from keyrot.constants import TAG_ENVIRONMENT
from keyrot.names import function_name, log_group_name
from keyrot.pulumi.components._util import child

__all__ = ["KeyrotFunction", "KeyrotFunctionArgs", "function_name", "log_group_arn", "log_group_name"]

RUNTIME = "python3.14"
ARCHITECTURE = "arm64"
MEMORY_MB = 256


def log_group_arn(*, partition: str, region: str, account_id: str, environment: str, purpose: str) -> str:
    """The group's ARN, known before it exists (the KMS key policy must name it before the group is created).

    Names (function, log group) come from keyrot.names, where the CLI finds them too; the group is created here so
    retention and encryption are ours."""
    return f"arn:{partition}:logs:{region}:{account_id}:log-group:{log_group_name(environment, purpose)}"


@dataclass
class KeyrotFunctionArgs:
    environment: str
    purpose: str  # "rotation" | "monitor" | "guardrails" | "admin-rotation": keyrot-<env>-<purpose>
    description: str
    handler: str
    role_arn: pulumi.Input[str]
    role_name: pulumi.Input[str]
    # Renders the role's permissions (JSON) from the log group's ARN; attached inline, so the role holds nothing else.
    role_policy: Callable[[pulumi.Output[str]], pulumi.Input[str]]
    archive_path: str
    source_code_hash: str
    environment_variables: Mapping[str, pulumi.Input[str]]
    timeout_seconds: int
    kms_key_arn: pulumi.Input[str]
    log_retention_days: int
    # Run in these VPC subnets with these security groups (both empty: no VPC).
    subnet_ids: Sequence[pulumi.Input[str]] = ()
    security_group_ids: Sequence[pulumi.Input[str]] = ()
    # Reserved concurrency (None: the account's unreserved pool). 1 makes runs of the function strictly one at a time.
    reserved_concurrency: int | None = None


class KeyrotFunction(pulumi.ComponentResource):
    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    log_group_arn: pulumi.Output[str]
    role_policy: aws.iam.RolePolicy

    def __init__(self, name: str, args: KeyrotFunctionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keyrot:index:Function", name, None, opts)
        tags = {TAG_ENVIRONMENT: args.environment}
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=log_group_name(args.environment, args.purpose),
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            tags=tags,
            opts=child(self),
        )
        self.role_policy = aws.iam.RolePolicy(
            f"{name}-permissions",
            name=f"keyrot-{args.environment}-{args.purpose}",
            role=args.role_name,
            policy=args.role_policy(log_group.arn),
            opts=child(self),
        )
        extra: dict[str, Any] = {}
        if args.subnet_ids:
            extra["vpc_config"] = {
                "subnet_ids": list(args.subnet_ids),
                "security_group_ids": list(args.security_group_ids),
            }
        if args.reserved_concurrency is not None:
            extra["reserved_concurrent_executions"] = args.reserved_concurrency
        function = aws.lambda_.Function(
            f"{name}-function",
            name=function_name(args.environment, args.purpose),
            description=args.description,
            role=args.role_arn,
            runtime=RUNTIME,
            architectures=[ARCHITECTURE],
            handler=args.handler,
            code=pulumi.FileArchive(args.archive_path),
            source_code_hash=args.source_code_hash,
            memory_size=MEMORY_MB,
            timeout=args.timeout_seconds,
            # Only names, ARNs and numbers: no secret ever goes in an environment variable.
            environment={"variables": dict(args.environment_variables)},
            logging_config={"log_format": "Text", "log_group": log_group.name},
            tags=tags,
            opts=child(self, depends_on=[log_group, self.role_policy]),
            **extra,
        )
        self.function_name = function.name
        self.function_arn = function.arn
        self.log_group_arn = log_group.arn
        self.register_outputs(
            {"functionName": function.name, "functionArn": function.arn, "logGroupName": log_group.name}
        )
