"""On-call's inbox in the emulator: an SQS queue subscribed to the stack's on-call topic (SNS sends no e-mail here)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

INBOX_QUEUE = "keyrot-{stack}-oncall-inbox"


@dataclass(frozen=True)
class Notification:
    """One message on-call received: the subject (the e-mail's subject line) and the text."""

    subject: str
    message: str
    raw: dict[str, Any]

    def headline(self) -> list[str]:
        """The lines on-call reads first: what happened (with its indented details) and who did it."""
        shown: list[str] = []
        details = False
        for line in self.message.splitlines():
            if line.startswith(("What happened:", "Created by")):
                shown.append(line)
                details = line.startswith("What happened:")
            elif details and line.startswith("    ") and line.strip():
                shown.append(line)
            else:
                details = False
        return shown


@dataclass(frozen=True)
class OnCallInbox:
    sqs: Any
    queue_url: str

    @classmethod
    def subscribe(cls, aws: Any, stack: str, queue: str = INBOX_QUEUE) -> OnCallInbox:
        """Create the inbox queue (`queue`, formatted with the stack) and subscribe it to `keyrot-<stack>-oncall`
        (`aws` is an AwsEmulator). Each queue subscribed receives every notification."""
        sqs, sns = aws.client("sqs"), aws.client("sns")
        queue_url = sqs.create_queue(QueueName=queue.format(stack=stack))["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        topics = [topic["TopicArn"] for topic in sns.list_topics()["Topics"]]
        topic = next(arn for arn in topics if arn.endswith(f":keyrot-{stack}-oncall"))
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        return cls(sqs, str(queue_url))

    @classmethod
    def existing(cls, sqs: Any, stack: str) -> OnCallInbox:
        """The inbox a sandbox subscribed, from any process (`sqs` is a client for the emulator)."""
        return cls(sqs, str(sqs.get_queue_url(QueueName=INBOX_QUEUE.format(stack=stack))["QueueUrl"]))

    def drain(self) -> list[Notification]:
        """Every notification delivered so far, oldest first; each is read once."""
        found: list[Notification] = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                body = json.loads(message["Body"])
                found.append(Notification(str(body.get("Subject") or ""), str(body.get("Message") or ""), body))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
