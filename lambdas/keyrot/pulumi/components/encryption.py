"""The environment's customer-managed KMS key: secrets, the on-call topic and the log groups use it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from keyrot.constants import TAG_ENVIRONMENT
from keyrot.pulumi import policies
from keyrot.pulumi.components._util import child, policy_json


@dataclass
class EncryptionArgs:
    environment: str
    account_id: str
    partition: str
    region: str
    # Log groups the key may encrypt (CloudWatch Logs is allowed only for these, by encryption context).
    log_group_arns: Sequence[str]
    # Refuse to delete the key (`pulumi destroy`, a removal from the program), and leave it in AWS if the
    # resource is ever dropped from the state: the secrets are unreadable without it.
    protect: bool = False


class Encryption(pulumi.ComponentResource):
    key_arn: pulumi.Output[str]
    key_id: pulumi.Output[str]
    alias_name: pulumi.Output[str]

    def __init__(self, name: str, args: EncryptionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keyrot:index:Encryption", name, None, opts)
        key = aws.kms.Key(
            f"{name}-key",
            description=f"keyrot {args.environment}: OpenAI key secrets, on-call topic, Lambda logs",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=policy_json(
                policies.kms_key_policy,
                account_id=args.account_id,
                partition=args.partition,
                region=args.region,
                log_group_arns=list(args.log_group_arns),
                environment=args.environment,
            ),
            tags={TAG_ENVIRONMENT: args.environment},
            opts=child(self, protect=args.protect, retain_on_delete=args.protect),
        )
        alias = aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/keyrot-{args.environment}",
            target_key_id=key.key_id,
            opts=child(self),
        )
        self.key_arn = key.arn
        self.key_id = key.key_id
        self.alias_name = alias.name
        self.register_outputs({"keyArn": key.arn, "keyId": key.key_id, "aliasName": alias.name})
