"""The on-call topic (or an existing one) and the EventBridge rule that reports failed or abandoned rotations (of the
managed keys' secrets and, with the admin key's own rotation, of the admin-key secret)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from keyrot.constants import ADMIN_ROTATION_PURPOSE, TAG_ENVIRONMENT
from keyrot.names import log_group_name, rotation_log_group
from keyrot.pulumi import policies
from keyrot.pulumi.components._util import child, policy_json
from keyrot.pulumi.runbook import runbook_link
from keyrot.settings import DEFAULT_RUNBOOK_URL

ROTATION_EVENTS = ("RotationFailed", "RotationAbandoned")


def rotation_event_pattern(secret_arns: Sequence[str]) -> dict[str, Any]:
    """Secrets Manager's CloudTrail service events for this environment's secrets only.

    Field names: `detail.eventName` and `detail.additionalEventData.SecretId` (the secret ARN) appear in published
    RotationFailed/RotationSucceeded events. [unconfirmed] Some reports show the ARN under
    `detail.serviceEventDetails.secretId` instead, so both are matched.
    """
    arns = sorted(secret_arns)
    return {
        "source": ["aws.secretsmanager"],
        "detail-type": ["AWS Service Event via CloudTrail"],
        "detail": {
            "eventSource": ["secretsmanager.amazonaws.com"],
            "eventName": list(ROTATION_EVENTS),
            "$or": [
                {"additionalEventData": {"SecretId": arns}},
                {"serviceEventDetails": {"secretId": arns}},
            ],
        },
    }


def rotation_event_input_transformer(
    environment: str, runbook_url: str = DEFAULT_RUNBOOK_URL, *, admin_rotation: bool = False
) -> aws.cloudwatch.EventTargetInputTransformerArgsDict:
    """A short human message for email and chat: what happened, to which secret, and where to look (with the admin
    key's own rotation, its log group too: the rule then also matches the admin-key secret)."""
    admin = (
        f" (the admin key's: {log_group_name(environment, ADMIN_ROTATION_PURPOSE)}, "
        f"{runbook_link('admin-rotation-failed', runbook_url)})"
        if admin_rotation
        else ""
    )
    template = (
        f"keyrot {environment}: <eventName> for <secretId> at <time>. Error: <errorMessage>. "
        f"Rotation Lambda logs: {rotation_log_group(environment)}.{admin} "
        f"What to do: {runbook_link('rotation-failed', runbook_url)}"
    )
    return {
        "input_paths": {
            "eventName": "$.detail.eventName",
            "secretId": "$.detail.additionalEventData.SecretId",
            "errorMessage": "$.detail.errorMessage",
            "time": "$.time",
        },
        # A JSON string literal: SNS delivers it as the plain-text message.
        "input_template": json.dumps(template),
    }


@dataclass
class NotificationsArgs:
    environment: str
    account_id: str
    kms_key_arn: pulumi.Input[str]
    secret_arns: Mapping[str, pulumi.Input[str]]
    emails: Sequence[str] = ()
    https_endpoints: Sequence[str] = ()
    existing_topic_arn: pulumi.Input[str] | None = None
    runbook_url: str = DEFAULT_RUNBOOK_URL
    # With the admin key's own rotation: its secret, whose failed rotations are reported too.
    admin_secret_arn: pulumi.Input[str] | None = None


class Notifications(pulumi.ComponentResource):
    topic_arn: pulumi.Output[str]
    rule_arn: pulumi.Output[str]

    def __init__(self, name: str, args: NotificationsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keyrot:index:Notifications", name, None, opts)
        env = args.environment
        tags = {TAG_ENVIRONMENT: env}
        topic: aws.sns.Topic | None = None
        if args.existing_topic_arn:
            # Someone else's topic: its policy must already let cloudwatch.amazonaws.com and
            # events.amazonaws.com publish (docs/deploy.md); keyrot does not overwrite it.
            self.topic_arn = pulumi.Output.from_input(args.existing_topic_arn)
        else:
            topic = aws.sns.Topic(
                f"{name}-topic",
                name=f"keyrot-{env}-oncall",
                display_name=f"keyrot {env}",
                kms_master_key_id=args.kms_key_arn,
                tags=tags,
                opts=child(self),
            )
            self.topic_arn = topic.arn
            for index, email in enumerate(args.emails):
                aws.sns.TopicSubscription(
                    f"{name}-email-{index}",
                    topic=topic.arn,
                    protocol="email",
                    endpoint=email,
                    opts=child(self),
                )
            for index, url in enumerate(args.https_endpoints):
                aws.sns.TopicSubscription(
                    f"{name}-https-{index}",
                    topic=topic.arn,
                    protocol="https",
                    endpoint=url,
                    opts=child(self),
                )

        rule = aws.cloudwatch.EventRule(
            f"{name}-rotation-failures",
            name=f"keyrot-{env}-rotation-failures",
            description=f"keyrot {env}: Secrets Manager rotation failed or was abandoned",
            event_pattern=pulumi.Output.all(
                *args.secret_arns.values(), *([args.admin_secret_arn] if args.admin_secret_arn is not None else [])
            ).apply(lambda arns: json.dumps(rotation_event_pattern(arns))),
            state="ENABLED",
            tags=tags,
            opts=child(self),
        )
        target_opts: list[pulumi.Resource] = []
        if topic is not None:
            target_opts.append(
                aws.sns.TopicPolicy(
                    f"{name}-topic-policy",
                    arn=topic.arn,
                    policy=policy_json(
                        policies.topic_policy, topic_arn=topic.arn, account_id=args.account_id, rule_arn=rule.arn
                    ),
                    opts=child(self),
                )
            )
        transformer = rotation_event_input_transformer(
            env, args.runbook_url, admin_rotation=args.admin_secret_arn is not None
        )
        aws.cloudwatch.EventTarget(
            f"{name}-rotation-failures-target",
            rule=rule.name,
            arn=self.topic_arn,
            input_transformer=transformer,
            retry_policy={"maximum_event_age_in_seconds": 86400, "maximum_retry_attempts": 185},
            opts=child(self, depends_on=target_opts),
        )
        self.rule_arn = rule.arn
        self.register_outputs({"topicArn": self.topic_arn, "ruleArn": rule.arn})
