"""On-call hears of guardrail drift from the scheduled check, as deployed: the function (keyrot.handlers.guardrails)
in moto with the on-call topic (read through an SQS subscription, as an inbox), its state parameter and the
declared document; OpenAI is the stand-in, changed in its "console" as a person would.

Shaped like on-call at 3 a.m.: one message per console change, saying what differs (declared against found), who
changed it or why OpenAI's audit log cannot say, whether keyrot put it back, and the runbook section; no message
again while nothing changes, even when the restore keeps failing; the hard spend limit reached, once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from keyrot import metric_names as m
from keyrot.constants import ENV_GUARDRAILS_STATE_PARAMETER, ENV_RUNBOOK_URL, ENV_TOPIC_ARN
from keyrot.errors import AwsCallError
from keyrot.guardrails import GuardrailsRestoreError, to_document
from keyrot.handlers import guardrails as guardrails_handler
from lab.openai_standin import Fault
from lab.scenario import RotationWorld

from .conftest import BLOCK, declare
from .test_handler import metrics

REGION = "us-east-1"
RUNBOOK = "https://runbooks.example.com/keyrot/runbook.md"


@dataclass
class Inbox:
    """The on-call topic, with a queue subscribed to it (raw delivery off: SNS's envelope, as e-mail gets)."""

    sqs: Any
    queue_url: str
    sns: Any
    topic: str

    def subscribe(self) -> None:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        self.sns.subscribe(TopicArn=self.topic, Protocol="sqs", Endpoint=attributes["Attributes"]["QueueArn"])

    def drain(self) -> list[dict[str, str]]:
        found: list[dict[str, str]] = []
        while messages := self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                envelope = json.loads(message["Body"])
                found.append({"subject": envelope.get("Subject", ""), "message": envelope["Message"]})
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return found


@pytest.fixture
def inbox(world: RotationWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name=f"keyrot-{world.environment}-oncall")["TopicArn"]
    inbox = Inbox(sqs, sqs.create_queue(QueueName="oncall-inbox")["QueueUrl"], sns, topic)
    inbox.subscribe()
    monkeypatch.setenv(ENV_TOPIC_ARN, topic)
    monkeypatch.setenv(ENV_GUARDRAILS_STATE_PARAMETER, f"/keyrot/{world.environment}/guardrails-state")
    monkeypatch.setenv(ENV_RUNBOOK_URL, RUNBOOK)
    yield inbox


@pytest.fixture
def ssm(world: RotationWorld) -> Any:
    return boto3.client("ssm", region_name=REGION)


def deployed(world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch, inbox: Inbox, **block: Any) -> None:
    """The block declared and applied at deploy (no message: that is `pulumi up`, not drift)."""
    declared = declare(world, ssm, monkeypatch, {**BLOCK, **block})
    guardrails_handler.handler({"action": "apply", "guardrails": to_document(declared)}, None)
    assert inbox.drain() == []


def check() -> dict[str, Any]:
    return guardrails_handler.handler({"action": "check"}, None)


def test_a_console_change_reaches_on_call_once_naming_who_changed_what(
    world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch, inbox: Inbox
) -> None:
    # GIVEN the block applied, then bob raises gpt-4o-mini's request limit in the console
    deployed(world, ssm, monkeypatch, inbox)
    bob = world.openai.console.as_user("bob@example.com", user_id="user_bob")
    bob.update_rate_limit(world.project_id, "gpt-4o-mini", max_requests_per_1_minute=9_000)
    # WHEN the scheduled check runs four times
    results = [check() for _ in range(4)]
    # THEN on-call got one message: the setting, declared against found, bob, what keyrot did, the runbook
    (message,) = inbox.drain()
    assert message["subject"] == f"[keyrot {world.environment}] OpenAI guardrails drift: 1 setting(s) differ"
    body = message["message"]
    assert "rateLimits.gpt-4o-mini.max_requests_per_1_minute: declared 500, actual 9000" in body
    assert "changed by bob@example.com" in body
    assert "enforce: notify. keyrot changed nothing" in body
    assert body.rstrip().endswith(f"Runbook: {RUNBOOK}#guardrail-drift")
    # AND each check said what it did about it
    assert [len(r["oncall"]["sent"]) for r in results] == [1, 0, 0, 0]
    assert [len(r["oncall"]["held_back"]) for r in results] == [0, 1, 1, 1]


def test_settings_the_audit_log_cannot_attribute_say_so(
    world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch, inbox: Inbox
) -> None:
    # GIVEN someone removes the hard limit and a spend alert in the console
    deployed(world, ssm, monkeypatch, inbox)
    world.openai.console.delete_spend_limit(world.project_id)
    world.openai.console.create_spend_alert(world.project_id, 2_000, ["someone@example.com"])
    check()
    # THEN the message names neither, and says OpenAI's audit log has no event for them
    (message,) = inbox.drain()
    assert message["message"].count("OpenAI's audit log has no event for spend limits") == 2
    assert "changed by" not in message["message"]


def test_with_audit_logging_off_the_message_says_the_log_could_not_be_read(
    world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch, inbox: Inbox
) -> None:
    deployed(world, ssm, monkeypatch, inbox)
    world.openai.console.update_rate_limit(world.project_id, "gpt-4o-mini", max_requests_per_1_minute=7)
    world.openai.state.audit.enabled = False
    check()
    (message,) = inbox.drain()
    assert "who: unknown, OpenAI's audit log could not be read" in message["message"]


def test_with_enforce_restore_each_console_change_is_told_as_put_back(
    world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch, inbox: Inbox
) -> None:
    # GIVEN enforce: restore, and someone who lowers the same limit to the same value twice
    deployed(world, ssm, monkeypatch, inbox, enforce="restore")
    told = []
    for _ in range(2):
        world.openai.console.update_rate_limit(world.project_id, "gpt-4o-mini", max_requests_per_1_minute=1)
        check()
        check()  # the next check finds the project as declared
        told.append(inbox.drain())
    # THEN each change got one message saying keyrot put the declared value back
    assert [len(messages) for messages in told] == [1, 1]
    assert "keyrot put the declared values back" in told[1][0]["message"]
    assert "max_requests_per_1_minute 1 -> 500" in told[1][0]["message"]


def test_a_restore_that_keeps_failing_pages_once_not_every_check(
    world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch, inbox: Inbox
) -> None:
    # GIVEN enforce: restore, the hard limit removed, and an admin key OpenAI no longer lets set spend limits
    deployed(world, ssm, monkeypatch, inbox, enforce="restore")
    world.openai.console.delete_spend_limit(world.project_id)
    world.openai.faults.add(Fault("set_spend_limit", status=403, error_type="invalid_request_error", message="no"))
    # WHEN three checks fail to restore it
    for _ in range(3):
        with pytest.raises(GuardrailsRestoreError):
            check()
    # THEN on-call got one message saying restoring failed and why
    (message,) = inbox.drain()
    assert "restoring failed: PermissionDeniedError" in message["message"]


def test_the_hard_spend_limit_reached_is_told_once_with_the_months_spend_published(
    world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch, inbox: Inbox, capfd: Any
) -> None:
    # GIVEN the declared $100 hard limit, and $100.50 spent this month
    deployed(world, ssm, monkeypatch, inbox)
    world.openai.state.record_cost(None, 100.50, project_id=world.project_id)
    capfd.readouterr()
    # WHEN two checks run
    first, second = check(), check()
    # THEN on-call heard it once, with the runbook section for it
    (message,) = inbox.drain()
    assert message["subject"] == f"[keyrot {world.environment}] OpenAI hard spend limit reached: $100.50 of $100.00"
    assert message["message"].rstrip().endswith(f"Runbook: {RUNBOOK}#hard-spend-limit-reached")
    assert first["spend"]["reached"] and second["oncall"]["held_back"]
    # AND the month's spend is a metric, beside the count of messages sent
    published = metrics(capfd.readouterr().out)
    assert published[m.SPEND_MONTH_TO_DATE_USD] == 100.5 and published[m.GUARDRAILS_NOTIFIED] == 1.0


def test_costs_that_cannot_be_read_cost_the_spend_figure_never_the_drift_message(
    world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch, inbox: Inbox
) -> None:
    # GIVEN a console change, and the Costs API failing
    deployed(world, ssm, monkeypatch, inbox)
    world.openai.console.set_spend_limit(world.project_id, 99_900)
    world.openai.faults.add(Fault("costs", status=500))
    # WHEN the check runs
    result = check()
    # THEN the drift still reached on-call, and the result says why the spend is missing
    assert len(inbox.drain()) == 1
    assert result["spend"] == {"unread": "ServerError"}


def test_a_state_parameter_rewritten_by_hand_costs_at_most_a_repeat(
    world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch, inbox: Inbox
) -> None:
    # GIVEN a drift told, then the state parameter overwritten with something else
    deployed(world, ssm, monkeypatch, inbox)
    world.openai.console.set_spend_limit(world.project_id, 99_900)
    check()
    inbox.drain()
    name = f"/keyrot/{world.environment}/guardrails-state"
    ssm.put_parameter(Name=name, Value="not json", Type="String", Overwrite=True)
    # WHEN the next checks run
    check()
    check()
    # THEN the drift is told once more (never lost), then not again
    assert len(inbox.drain()) == 1


def test_a_message_sns_refuses_still_publishes_the_drift_gauge_and_the_next_check_sends_it(
    world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch, inbox: Inbox, capfd: Any
) -> None:
    # GIVEN a console change, and the on-call topic gone when the check runs
    deployed(world, ssm, monkeypatch, inbox)
    world.openai.console.set_spend_limit(world.project_id, 99_900)
    inbox.sns.delete_topic(TopicArn=inbox.topic)
    capfd.readouterr()
    # WHEN the check runs, THEN it fails naming SNS, after publishing the drift gauge (its alarm pages on-call)
    with pytest.raises(AwsCallError) as caught:
        check()
    assert caught.value.operation == "Publish"
    published = metrics(capfd.readouterr().out)
    assert published[m.GUARDRAIL_DRIFT] == 1.0 and published[m.GUARDRAILS_APPLY_FAILED] == 1.0
    # AND once the topic is back, the next check sends the message, once
    assert inbox.sns.create_topic(Name=inbox.topic.rsplit(":", 1)[1])["TopicArn"] == inbox.topic
    inbox.subscribe()
    check()
    check()
    assert len(inbox.drain()) == 1


def test_no_key_material_in_what_on_call_is_told(
    world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch, inbox: Inbox
) -> None:
    # GIVEN a drift by a person and one by an admin key, and the hard limit reached
    deployed(world, ssm, monkeypatch, inbox)
    world.openai.console.as_user("bob@example.com").update_rate_limit(
        world.project_id, "gpt-4o-mini", max_requests_per_1_minute=42
    )
    world.openai.console.set_spend_limit(world.project_id, 99_900)
    world.openai.state.record_cost(None, 150.0, project_id=world.project_id)
    check()
    # THEN neither message carries the admin key, nor any key the stand-in issued, nor anything key-shaped
    messages = inbox.drain()
    assert len(messages) == 2
    texts = [f"{note['subject']}\n{note['message']}" for note in messages]
    secrets = [world.admin_key, *world.openai.state.minted_values]
    assert not [secret for secret in secrets for text in texts if secret in text]
    assert all("sk-" not in text for text in texts)


def test_a_restore_whose_message_sns_refused_is_told_by_the_next_check(
    world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch, inbox: Inbox
) -> None:
    # GIVEN enforce: restore, a console change, and the on-call topic gone when the check restores it
    deployed(world, ssm, monkeypatch, inbox, enforce="restore")
    world.openai.console.update_rate_limit(world.project_id, "gpt-4o-mini", max_requests_per_1_minute=1)
    inbox.sns.delete_topic(TopicArn=inbox.topic)
    with pytest.raises(AwsCallError):
        check()
    # WHEN the topic is back and the next check finds the project as declared
    inbox.sns.create_topic(Name=inbox.topic.rsplit(":", 1)[1])
    inbox.subscribe()
    check()
    check()
    # THEN on-call heard, once, which setting keyrot put back without telling them
    (message,) = inbox.drain()
    assert "OpenAI guardrails drift restored before you were told: 1 setting(s)" in message["subject"]
    assert "rateLimits.gpt-4o-mini.max_requests_per_1_minute" in message["message"]
