"""OpenAI guardrails as code: the declared document, the function that applies and checks it, and when it runs.

The program never calls OpenAI and never holds the admin key (docs/guardrails.md). It writes the validated block's
document to the SSM parameter `/keyrot/<env>/guardrails`, gives the guardrails function the document's digest in its
configuration, and declares an `aws.lambda_.Invocation` whose input is `{"action": "apply", "guardrails": <document>}`:
`pulumi up` applies it (the function reads the admin key from its secret), `pulumi preview` shows a changed document as
a change of that input. A schedule sends `{"action": "check"}` every monitor interval: drift is published as
`GuardrailDrift` (and restored with `enforce: restore`) and told to the on-call topic once per occurrence, as is the
hard spend limit reached; the function remembers what it told in `/keyrot/<env>/guardrails-state`, declared here with
a placeholder and the function's from then on. The invocation's stored result (ids, amounts, e-mail addresses) is all
Pulumi keeps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from keyrot.constants import (
    GUARDRAILS_HANDLER,
    GUARDRAILS_STATE_PLACEHOLDER,
    TAG_ENVIRONMENT,
    guardrails_parameter_name,
    guardrails_state_parameter_name,
)
from keyrot.names import function_name
from keyrot.pulumi import policies
from keyrot.pulumi.components._util import child, policy_json, vpc_statements
from keyrot.pulumi.components.function import KeyrotFunction, KeyrotFunctionArgs
from keyrot.pulumi.components.scheduled import ScheduleArgs, rate_minutes, schedule_function

PURPOSE = "guardrails"
# The four reads, the changing calls and the audit log's rate-limit events, each with OpenAI retries.
GUARDRAILS_TIMEOUT_SECONDS = 120
# An apply and a check (which may restore) never run at once: their changing calls would interleave.
RESERVED_CONCURRENCY = 1
APPLY = "apply"
CHECK = "check"
# Pulumi's CRUD-scoped invocation: create and update invoke with the input (plus `tf`), destroy with
# {"tf": {"action": "delete"}}, which the function answers by changing nothing (destroy leaves guardrails as they are).
LIFECYCLE_SCOPE = "CRUD"


def parameter_arn(*, partition: str, region: str, account_id: str, environment: str) -> str:
    # The name starts with "/", so it follows "parameter" directly.
    return f"arn:{partition}:ssm:{region}:{account_id}:parameter{guardrails_parameter_name(environment)}"


def state_parameter_arn(*, partition: str, region: str, account_id: str, environment: str) -> str:
    return f"arn:{partition}:ssm:{region}:{account_id}:parameter{guardrails_state_parameter_name(environment)}"


def apply_input(document: Mapping[str, Any]) -> str:
    """The deploy-time invocation's input: the declared document itself (never the admin key, nor the project)."""
    return json.dumps({"action": APPLY, "guardrails": dict(document)}, sort_keys=True, separators=(",", ":"))


CHECK_INPUT = json.dumps({"action": CHECK})


@dataclass
class GuardrailsArgs:
    environment: str
    account_id: str
    partition: str
    region: str
    role_arn: pulumi.Input[str]
    role_name: pulumi.Input[str]
    admin_secret_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    # The on-call topic the check notifies; True when it is keyrot's own (encrypted with the environment key).
    topic_arn: pulumi.Input[str]
    topic_encrypted_with_key: bool
    # The declared document (keyrot.guardrails.to_document) and its text as the parameter holds it (document_json).
    document: Mapping[str, Any]
    document_text: str
    archive_path: str
    source_code_hash: str
    environment_variables: Mapping[str, pulumi.Input[str]]
    check_interval_minutes: int
    log_retention_days: int
    subnet_ids: Sequence[pulumi.Input[str]] = ()
    security_group_ids: Sequence[pulumi.Input[str]] = ()
    # What the invocation must wait for besides the function and the parameter (the admin-key secret's policy,
    # which must admit the function's role before it reads the admin key).
    apply_after: Sequence[pulumi.Resource] = field(default_factory=list)


class Guardrails(pulumi.ComponentResource):
    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    parameter_name: pulumi.Output[str]

    def __init__(self, name: str, args: GuardrailsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keyrot:index:Guardrails", name, None, opts)
        env = args.environment
        arn = parameter_arn(partition=args.partition, region=args.region, account_id=args.account_id, environment=env)
        parameter = aws.ssm.Parameter(
            f"{name}-declared",
            name=guardrails_parameter_name(env),
            type="String",
            # Advanced (up to 8 KB) only when the document needs it.
            tier="Intelligent-Tiering",
            value=args.document_text,
            description=f"keyrot {env}: declared OpenAI guardrails (pulumi up writes them, the function reads them)",
            tags={TAG_ENVIRONMENT: env},
            opts=child(self),
        )
        state_arn = state_parameter_arn(
            partition=args.partition, region=args.region, account_id=args.account_id, environment=env
        )
        # The function owns the value from its first check: `pulumi up` must not reset it (that would tell on-call
        # again of a drift it was told of).
        aws.ssm.Parameter(
            f"{name}-state",
            name=guardrails_state_parameter_name(env),
            type="String",
            value=GUARDRAILS_STATE_PLACEHOLDER,
            description=f"keyrot {env}: what the guardrails check told on-call (digests only)",
            tags={TAG_ENVIRONMENT: env},
            opts=child(self, ignore_changes=["value"]),
        )
        function = KeyrotFunction(
            f"{name}-lambda",
            KeyrotFunctionArgs(
                environment=env,
                purpose=PURPOSE,
                description=f"keyrot {env}: apply the declared OpenAI guardrails and check them for drift",
                handler=GUARDRAILS_HANDLER,
                role_arn=args.role_arn,
                role_name=args.role_name,
                role_policy=lambda log_group_arn: policy_json(
                    policies.guardrails_role_policy,
                    admin_secret_arn=args.admin_secret_arn,
                    kms_key_arn=args.kms_key_arn,
                    parameter_arn=arn,
                    state_parameter_arn=state_arn,
                    topic_arn=args.topic_arn,
                    topic_encrypted_with_key=args.topic_encrypted_with_key,
                    log_group_arn=log_group_arn,
                    region=args.region,
                    vpc=_vpc(args),
                ),
                archive_path=args.archive_path,
                source_code_hash=args.source_code_hash,
                environment_variables=args.environment_variables,
                timeout_seconds=GUARDRAILS_TIMEOUT_SECONDS,
                kms_key_arn=args.kms_key_arn,
                log_retention_days=args.log_retention_days,
                subnet_ids=args.subnet_ids,
                security_group_ids=args.security_group_ids,
                reserved_concurrency=RESERVED_CONCURRENCY,
            ),
            opts=child(self),
        )
        # `pulumi up` applies the declared document; a changed document is a change of this input in the preview.
        invocation = aws.lambda_.Invocation(
            f"{name}-apply",
            function_name=function.function_name,
            input=apply_input(args.document),
            lifecycle_scope=LIFECYCLE_SCOPE,
            opts=child(self, depends_on=[function, parameter, *args.apply_after]),
        )
        schedule = schedule_function(
            self,
            f"{name}-check",
            ScheduleArgs(
                environment=env,
                account_id=args.account_id,
                schedule_name=f"{function_name(env, PURPOSE)}-check",
                role_name=f"{function_name(env, PURPOSE)}-scheduler",
                description=f"Check keyrot {env}'s OpenAI guardrails for drift every {args.check_interval_minutes} min",
                role_description=f"invoke keyrot {env} guardrails check",
                expression=rate_minutes(args.check_interval_minutes),
                function_arn=function.function_arn,
                sid="InvokeGuardrailsCheck",
                maximum_event_age_seconds=max(60, args.check_interval_minutes * 60),
                input=CHECK_INPUT,
            ),
        )
        self.function_name = function.function_name
        self.function_arn = function.function_arn
        self.parameter_name = parameter.name
        self.register_outputs(
            {
                "functionName": function.function_name,
                "parameterName": parameter.name,
                "parameterArn": arn,
                "stateParameterArn": state_arn,
                "scheduleName": schedule.name,
                "applyInvocation": invocation.id,
            }
        )


def _vpc(args: Any) -> Any:
    return vpc_statements(
        subnet_ids=args.subnet_ids,
        security_group_ids=args.security_group_ids,
        partition=args.partition,
        region=args.region,
        account_id=args.account_id,
    )
