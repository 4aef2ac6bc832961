"""The secrets: the admin-key secret and one secret per managed key, with their policies and reader policies.

No `SecretVersion` is ever declared: no key value passes through Pulumi (or its state). The admin key is put by an
operator; managed keys are written only by the rotation function.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from keyrot.constants import TAG_ADMIN_SECRET, TAG_ENVIRONMENT, TAG_KEY_NAME, admin_secret_name, managed_secret_name
from keyrot.names import managed_secret_tags
from keyrot.pulumi import policies
from keyrot.pulumi.components._util import child, policy_json
from keyrot.pulumi.config import KeyConfig, RoleArn, check_resolved_reader


@dataclass
class KeySecretsArgs:
    environment: str
    openai_project_id: str
    region: str
    keys: Sequence[KeyConfig]
    kms_key_arn: pulumi.Input[str]
    rotation_role_arn: pulumi.Input[str]
    monitor_role_arn: pulumi.Input[str]
    administrator_arns: Sequence[str] = ()
    # Use this (populated) admin-key secret instead of creating an empty one.
    existing_admin_secret_arn: str | None = None
    # Who runs `pulumi up`/`destroy`: they alone (with the administrators) may manage the secrets.
    deployer_arns: Sequence[pulumi.Input[str]] = ()
    # Per key, the reader role ARNs as the program gave them (Outputs included), in the order of KeyConfig.readers.
    reader_inputs: Mapping[str, Sequence[pulumi.Input[str]]] = field(default_factory=dict)
    # The deploying account: a reader role passed as an Output must be in it (checked when it resolves).
    account_id: str = ""
    # Refuse to delete the secrets and leave them in AWS if dropped from the state (production stacks).
    protect: bool = False
    # The guardrails function's role (when guardrails are declared): it reads the admin key too.
    guardrails_role_arn: pulumi.Input[str] | None = None
    # The admin rotation function's role (with adminKeyRotation): it reads and rotates the admin key.
    admin_rotation_role_arn: pulumi.Input[str] | None = None


class KeySecrets(pulumi.ComponentResource):
    admin_secret_arn: pulumi.Output[str]
    # The admin-key secret's resource policy keyrot sets (None for an existing secret): who reads the admin key.
    admin_secret_policy: aws.secretsmanager.SecretPolicy | None
    secret_arns: dict[str, pulumi.Output[str]]
    secret_names: dict[str, pulumi.Output[str]]
    reader_policy_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: KeySecretsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keyrot:index:KeySecrets", name, None, opts)
        env = args.environment

        self.admin_secret_policy = None
        if args.existing_admin_secret_arn:
            self.admin_secret_arn = pulumi.Output.from_input(args.existing_admin_secret_arn)
            admin_secret_name_out: pulumi.Output[str] = pulumi.Output.from_input(args.existing_admin_secret_arn)
        else:
            # Created empty: the operator puts the admin key (`keyrot admin-key set --env <env>`), never Pulumi.
            admin = aws.secretsmanager.Secret(
                f"{name}-admin-key",
                name=admin_secret_name(env),
                description=f"keyrot {env}: OpenAI admin key (put by an operator; read by the keyrot functions)",
                kms_key_id=args.kms_key_arn,
                tags={TAG_ENVIRONMENT: env, TAG_ADMIN_SECRET: env},
                opts=child(self, protect=args.protect, retain_on_delete=args.protect),
            )
            optional_roles = {
                key: arn
                for key, arn in (
                    ("guardrails_role_arn", args.guardrails_role_arn),
                    ("admin_rotation_role_arn", args.admin_rotation_role_arn),
                )
                if arn is not None
            }
            self.admin_secret_policy = self._deny_policy(
                f"{name}-admin-key-policy",
                admin.arn,
                policy_json(
                    policies.admin_secret_resource_policy,
                    rotation_role_arn=args.rotation_role_arn,
                    monitor_role_arn=args.monitor_role_arn,
                    administrator_arns=list(args.administrator_arns),
                    deployer_arns=list(args.deployer_arns),
                    **optional_roles,
                ),
            )
            self.admin_secret_arn = admin.arn
            admin_secret_name_out = admin.name

        self.secret_arns = {}
        self.secret_names = {}
        self.reader_policy_arns = {}
        for key in args.keys:
            secret = aws.secretsmanager.Secret(
                f"{name}-{key.name}",
                name=managed_secret_name(env, key.name),
                description=f"keyrot {env}: OpenAI API key '{key.name}' (rotated by keyrot; read its api_key field)",
                kms_key_id=args.kms_key_arn,
                tags=managed_secret_tags(env, key.name, args.openai_project_id),
                opts=child(self, protect=args.protect, retain_on_delete=args.protect),
            )
            readers = self._readers(key, args)
            self._deny_policy(
                f"{name}-{key.name}-policy",
                secret.arn,
                policy_json(
                    policies.secret_resource_policy,
                    reader_role_arns=[arn for _, arn, _ in readers],
                    rotation_role_arn=args.rotation_role_arn,
                    monitor_role_arn=args.monitor_role_arn,
                    administrator_arns=list(args.administrator_arns),
                    deployer_arns=list(args.deployer_arns),
                ),
            )
            reader = aws.iam.Policy(
                f"{name}-{key.name}-reader",
                name=f"keyrot-{env}-{key.name}-reader",
                description=f"Read keyrot {env} OpenAI key '{key.name}' from Secrets Manager",
                policy=policy_json(
                    policies.reader_policy, secret_arn=secret.arn, kms_key_arn=args.kms_key_arn, region=args.region
                ),
                tags={TAG_ENVIRONMENT: env, TAG_KEY_NAME: key.name},
                opts=child(self),
            )
            for suffix, _, role_name in readers:
                # AttachRolePolicy takes the role NAME: the last segment of the ARN, without its path.
                aws.iam.RolePolicyAttachment(
                    f"{name}-{key.name}-reader-{suffix}",
                    role=role_name,
                    policy_arn=reader.arn,
                    opts=child(self),
                )
            self.secret_arns[key.name] = secret.arn
            self.secret_names[key.name] = secret.name
            self.reader_policy_arns[key.name] = reader.arn

        self.register_outputs(
            {
                "adminSecretArn": self.admin_secret_arn,
                "adminSecretName": admin_secret_name_out,
                "secretArns": self.secret_arns,
                "secretNames": self.secret_names,
                "readerPolicyArns": self.reader_policy_arns,
            }
        )

    @staticmethod
    def _readers(key: KeyConfig, args: KeySecretsArgs) -> list[tuple[str, pulumi.Input[str], pulumi.Input[str]]]:
        """Per reader: (attachment name suffix, role ARN, role name). A role known now is named after the role (a
        stable name, whatever the order); one the program passes as an Output by its position (`#<n>`, which no
        role name can contain), its ARN checked like a plain one when it resolves."""
        inputs = list(args.reader_inputs.get(key.name, ()))
        readers: list[tuple[str, pulumi.Input[str], pulumi.Input[str]]] = []
        for index, reader in enumerate(key.readers):
            if isinstance(reader, RoleArn):
                readers.append((reader.name, reader.arn, reader.name))
                continue
            resolved = pulumi.Output.from_input(inputs[index]).apply(
                lambda arn: check_resolved_reader(key.name, -1, arn, args.account_id)
            )
            readers.append((f"#{index}", resolved.apply(lambda role: role.arn), resolved.apply(lambda role: role.name)))
        return readers

    def _deny_policy(
        self, resource_name: str, secret_arn: pulumi.Input[str], policy: pulumi.Input[str]
    ) -> aws.secretsmanager.SecretPolicy:
        """Attach a deny-only resource policy to a secret (public policies blocked)."""
        return aws.secretsmanager.SecretPolicy(
            resource_name, secret_arn=secret_arn, block_public_policy=True, policy=policy, opts=child(self)
        )
