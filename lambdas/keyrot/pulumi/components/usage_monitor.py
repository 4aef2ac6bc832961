"""The monitor function (usage metrics, unknown and retired keys, the janitor) and the schedule that runs it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from keyrot.constants import MONITOR_HANDLER, STATE_PARAMETER_PLACEHOLDER, TAG_ENVIRONMENT, state_parameter_name
from keyrot.pulumi import policies
from keyrot.pulumi.components._util import child, policy_json, vpc_statements
from keyrot.pulumi.components.function import KeyrotFunction, KeyrotFunctionArgs
from keyrot.pulumi.components.scheduled import ScheduleArgs, rate_minutes, schedule_function

__all__ = ["MONITOR_TIMEOUT_SECONDS", "UsageMonitor", "UsageMonitorArgs", "rate_minutes", "state_parameter_arn"]

# Several paginated OpenAI usage reads with retries, plus a possible revocation with validation delays.
MONITOR_TIMEOUT_SECONDS = 300
# One run at a time, whatever the schedule or a retry does: two overlapping runs would both publish usage.
RESERVED_CONCURRENCY: int | None = 1


def state_parameter_arn(*, partition: str, region: str, account_id: str, environment: str) -> str:
    # The name starts with "/", so it follows "parameter" directly.
    return f"arn:{partition}:ssm:{region}:{account_id}:parameter{state_parameter_name(environment)}"


@dataclass
class UsageMonitorArgs:
    environment: str
    account_id: str
    partition: str
    region: str
    role_arn: pulumi.Input[str]
    role_name: pulumi.Input[str]
    secret_arns: Mapping[str, pulumi.Input[str]]
    admin_secret_arn: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    topic_arn: pulumi.Input[str]
    # True when the on-call topic is ours (encrypted with the environment key); false for an existing topic.
    topic_encrypted_with_key: bool
    archive_path: str
    source_code_hash: str
    environment_variables: Mapping[str, pulumi.Input[str]]
    interval_minutes: int
    log_retention_days: int
    # VPC subnets and security groups for the function (both empty: no VPC).
    subnet_ids: Sequence[pulumi.Input[str]] = ()
    security_group_ids: Sequence[pulumi.Input[str]] = ()


class UsageMonitor(pulumi.ComponentResource):
    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    schedule_name: pulumi.Output[str]

    def __init__(self, name: str, args: UsageMonitorArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keyrot:index:UsageMonitor", name, None, opts)
        env = args.environment
        secret_arns = list(args.secret_arns.values())
        parameter_arn = state_parameter_arn(
            partition=args.partition, region=args.region, account_id=args.account_id, environment=env
        )
        # Declared here (tagged, removed with the stack) with a placeholder the monitor reads as "first run". The
        # monitor owns the value from then on: `pulumi up` must never reset it (that would re-publish or skip
        # usage), and Intelligent-Tiering lets it grow past 4 KB when it must, so the tier is the monitor's too.
        aws.ssm.Parameter(
            f"{name}-state",
            name=state_parameter_name(env),
            type="String",
            tier="Intelligent-Tiering",
            value=STATE_PARAMETER_PLACEHOLDER,
            description=f"keyrot {env} monitor state: usage watermark, publish plan, lease, notification digests",
            tags={TAG_ENVIRONMENT: env},
            opts=child(self, ignore_changes=["value", "tier"]),
        )
        function = KeyrotFunction(
            f"{name}-lambda",
            KeyrotFunctionArgs(
                environment=env,
                purpose="monitor",
                description=f"keyrot {env}: OpenAI usage metrics, unknown and retired keys, previous-key janitor",
                handler=MONITOR_HANDLER,
                role_arn=args.role_arn,
                role_name=args.role_name,
                role_policy=lambda log_group_arn: policy_json(
                    policies.monitor_role_policy,
                    managed_secret_arns=secret_arns,
                    admin_secret_arn=args.admin_secret_arn,
                    kms_key_arn=args.kms_key_arn,
                    log_group_arn=log_group_arn,
                    state_parameter_arn=parameter_arn,
                    topic_arn=args.topic_arn,
                    topic_encrypted_with_key=args.topic_encrypted_with_key,
                    region=args.region,
                    vpc=_vpc(args),
                ),
                archive_path=args.archive_path,
                source_code_hash=args.source_code_hash,
                environment_variables=args.environment_variables,
                timeout_seconds=MONITOR_TIMEOUT_SECONDS,
                kms_key_arn=args.kms_key_arn,
                log_retention_days=args.log_retention_days,
                subnet_ids=args.subnet_ids,
                security_group_ids=args.security_group_ids,
                reserved_concurrency=RESERVED_CONCURRENCY,
            ),
            opts=child(self),
        )
        schedule = schedule_function(
            self,
            name,
            ScheduleArgs(
                environment=env,
                account_id=args.account_id,
                schedule_name=f"keyrot-{env}-monitor",
                role_name=f"keyrot-{env}-monitor-scheduler",
                description=f"Run the keyrot {env} monitor every {args.interval_minutes} min",
                role_description=f"invoke keyrot {env} monitor",
                expression=rate_minutes(args.interval_minutes),
                function_arn=function.function_arn,
                sid="InvokeMonitor",
                maximum_event_age_seconds=max(60, args.interval_minutes * 60),
            ),
        )
        self.function_name = function.function_name
        self.function_arn = function.function_arn
        self.schedule_name = schedule.name
        self.register_outputs(
            {
                "functionName": function.function_name,
                "functionArn": function.function_arn,
                "scheduleName": schedule.name,
                "stateParameterArn": parameter_arn,
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
