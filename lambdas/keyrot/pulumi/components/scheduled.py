"""A function run on a schedule: an EventBridge Scheduler schedule and the role it invokes the function with."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from keyrot.constants import TAG_ENVIRONMENT
from keyrot.pulumi import policies
from keyrot.pulumi.components._util import child, policy_json

# A failed delivery is retried twice, never past the next scheduled run.
SCHEDULER_RETRY_ATTEMPTS = 2


def rate_minutes(minutes: int) -> str:
    """EventBridge Scheduler wants the singular unit for 1."""
    return f"rate({minutes} minute{'' if minutes == 1 else 's'})"


@dataclass
class ScheduleArgs:
    environment: str
    account_id: str
    # keyrot-<env>-…, both.
    schedule_name: str
    role_name: str
    description: str
    # What the role is for, e.g. "invoke keyrot dev monitor".
    role_description: str
    expression: str
    function_arn: pulumi.Input[str]
    # The statement id of the role's one grant (InvokeFunction on the function).
    sid: str
    # How long a delivery may be retried (seconds): up to the next run.
    maximum_event_age_seconds: int
    # The event the function gets (JSON text); None: the scheduler's default, an empty object.
    input: str | None = None


def schedule_function(parent: pulumi.Resource, name: str, args: ScheduleArgs) -> aws.scheduler.Schedule:
    """Declare `<name>-scheduler-role`, `<name>-scheduler-permissions` and `<name>-schedule` under `parent`."""
    role = aws.iam.Role(
        f"{name}-scheduler-role",
        name=args.role_name,
        description=f"EventBridge Scheduler: {args.role_description}",
        assume_role_policy=policy_json(policies.scheduler_trust_policy, account_id=args.account_id),
        tags={TAG_ENVIRONMENT: args.environment},
        opts=child(parent),
    )
    permissions = aws.iam.RolePolicy(
        f"{name}-scheduler-permissions",
        name=args.role_name,
        role=role.name,
        policy=policy_json(policies.scheduler_role_policy, function_arn=args.function_arn, sid=args.sid),
        opts=child(parent),
    )
    target: aws.scheduler.ScheduleTargetArgsDict = {
        "arn": args.function_arn,
        "role_arn": role.arn,
        # A retried run must not overlap the next scheduled one.
        "retry_policy": {
            "maximum_event_age_in_seconds": args.maximum_event_age_seconds,
            "maximum_retry_attempts": SCHEDULER_RETRY_ATTEMPTS,
        },
    }
    if args.input is not None:
        target["input"] = args.input
    return aws.scheduler.Schedule(
        f"{name}-schedule",
        name=args.schedule_name,
        description=args.description,
        schedule_expression=args.expression,
        flexible_time_window={"mode": "OFF"},
        state="ENABLED",
        target=target,
        opts=child(parent, depends_on=[permissions]),
    )
