"""One run of the monitor, as its schedule would start it, and what on-call received: `python -m lab.sandbox tick`.

It goes through the emulator's Lambda Invoke API, like `aws lambda invoke`, and reads on-call's inbox (an SQS queue
subscribed to the on-call topic). Notifications are read once: the next tick shows only new ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lab.demo.inbox import Notification, OnCallInbox
from lab.sandbox.state import SandboxError, SandboxState


@dataclass
class Tick:
    """The monitor's report of its run and the notifications on-call received since the last tick."""

    report: dict[str, Any]
    notifications: list[Notification] = field(default_factory=list)

    def lines(self) -> list[str]:
        """What the run did, for a person: counts first, then every notification as on-call would read it."""
        report = self.report
        if report.get("skipped"):
            return [f"monitor run skipped: {report['skipped']}"]
        window = report.get("window")
        published = int(report.get("usage_datums") or 0)
        lines = [
            f"usage datapoints published: {published}"
            + ("" if window else " (usage is published per minute once the minute has closed)"),
            f"unmanaged keys: {', '.join(report.get('unmanaged_keys') or []) or 'none'}",
            f"previous keys revoked by the janitor: {', '.join(report.get('revoked') or []) or 'none'}",
        ]
        if report.get("kept_in_use"):
            lines.append(f"kept although past the maximum grace (in use): {', '.join(report['kept_in_use'])}")
        if report.get("revocation_failures"):
            lines.append(f"revocations that failed: {', '.join(report['revocation_failures'])}")
        suppressed = int(report.get("notifications_suppressed") or 0)
        lines.append(
            f"notifications sent: {int(report.get('notifications_sent') or 0)}"
            + (f" ({suppressed} repeats suppressed)" if suppressed else "")
        )
        for note in self.notifications:
            lines.append("")
            lines.append(f"✉ {note.subject}")
            lines.extend(f"    {line}" for line in note.message.splitlines())
        return lines


def tick(state: SandboxState) -> Tick:
    """Invoke the monitor once and read on-call's inbox. Raises SandboxError if the monitor failed."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id=state.environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=state.environment["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=state.environment.get("AWS_SESSION_TOKEN"),
        region_name=state.environment["AWS_REGION"],
    )
    function = f"keyrot-{state.stack}-monitor"
    response = session.client("lambda", endpoint_url=state.aws_endpoint).invoke(FunctionName=function, Payload=b"{}")
    payload = json.loads(response["Payload"].read() or b"{}")
    if response.get("FunctionError"):
        raise SandboxError(
            f"the monitor failed: {payload.get('errorType')}: {payload.get('errorMessage')} "
            f"(its log is in the emulator's CloudWatch Logs, group /aws/lambda/{function})"
        )
    inbox = OnCallInbox.existing(session.client("sqs", endpoint_url=state.aws_endpoint), state.stack)
    return Tick(payload, inbox.drain())
