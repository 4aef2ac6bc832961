"""An execution role for one keyrot function. Its permissions are attached by the component that knows the resources."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from keyrot.constants import TAG_ENVIRONMENT
from keyrot.pulumi import policies
from keyrot.pulumi.components._util import child, policy_json


@dataclass
class LambdaRoleArgs:
    environment: str
    # "rotation" or "monitor": the role is named keyrot-<environment>-<purpose>.
    purpose: str


class LambdaRole(pulumi.ComponentResource):
    arn: pulumi.Output[str]
    role_name: pulumi.Output[str]

    def __init__(self, name: str, args: LambdaRoleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keyrot:index:LambdaRole", name, None, opts)
        # A fixed name keeps the role recognisable in CloudTrail and in the secrets' resource policies.
        role = aws.iam.Role(
            f"{name}-role",
            name=f"keyrot-{args.environment}-{args.purpose}",
            description=f"keyrot {args.environment} {args.purpose} Lambda",
            assume_role_policy=policy_json(policies.lambda_trust_policy),
            tags={TAG_ENVIRONMENT: args.environment},
            opts=child(self),
        )
        self.arn = role.arn
        self.role_name = role.name
        self.register_outputs({"arn": role.arn, "name": role.name})
