"""Fault matrix, guardrails: every remote call of the guardrails function x every fault kind, then the next run.

Two runs are recorded, each against a project far from its declared guardrails (a rate limit to raise back, one to
lower, a hard limit to change, an alert to update, one to create, a twin and a stray to delete, model permissions to
set): the deploy-time `apply` (the admin key from Secrets Manager, four reads, eight changing calls) and the scheduled
`check` with `enforce: restore` (the declared parameter from SSM as well, the audit log for who changed the rate
limit, the month's spend from the Costs API, then on-call told through SNS and that remembered in the check's state
parameter). Each scenario gets a fresh project on one moto and one stand-in; AWS clients are the production factory's.
Invariants:

- the fault surfaces as keyrot's typed error (AWS: AwsCallError with the fault's code; OpenAI: the transport's typed
  error, or GuardrailsRestoreError naming it when a restore call failed), or the run succeeds when the call is
  best-effort (the audit log read: the drift is then reported without an actor; the costs read: the month's spend is
  then missing from the result); a crash is a crash;
- on-call hears of the check's drift at least once and at most twice across the failed run and the next (twice only
  when the fault hit between the message and its memory, or a restore half-done): as found, or, when the failed run
  restored it and could not say so (SNS refused, or the process died), as restored before they were told; and of
  the hard limit reached, likewise;
- right after the failed run every setting holds its old or its declared value, and no threshold has more alerts
  than before (no twin from a create that landed but was not answered);
- the next run, once the fault is gone, converges: the project has exactly the declared guardrails, and a further
  apply makes no changing call.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from keyrot.aws.clients import aws_client
from keyrot.aws.secrets import SecretStore
from keyrot.constants import guardrails_parameter_name, guardrails_state_parameter_name
from keyrot.errors import AwsCallError, KeyrotError
from keyrot.guardrails import (
    DeclaredGuardrails,
    GuardrailsDependencies,
    GuardrailsOutcome,
    GuardrailsRequest,
    GuardrailsRestoreError,
    GuardrailsSettings,
    compare,
    document_digest,
    document_json,
    parse_guardrails,
    read_actual,
    run_request,
    to_document,
)
from keyrot.openai_admin import OpenAIAdminClient, OpenAITransport, load_admin_client
from keyrot.secret_model import AdminCredentials
from lab.openai_standin import OpenAIStandIn
from lab.remote_calls import SimulatedCrash, openai_call_name
from lab.scenario import FAST_RETRY
from tests.prove import faultkit
from tests.prove.faultkit import (
    TALLIES,
    AwsFaultKind,
    Call,
    Checks,
    CrashKind,
    FaultKind,
    FaultLog,
    Relay,
    Tally,
    disarm,
    inject,
    sequence,
    skip_botocore_backoff,
)

ENVIRONMENT = "gr"
BLOCK: dict[str, Any] = {
    "rateLimits": {
        "gpt-4o-mini": {"max_requests_per_1_minute": 500},
        "gpt-4.1": {"max_tokens_per_1_minute": 1_000_000},
    },
    "spendLimitUsd": 100,
    "spendAlerts": [
        {"thresholdUsd": 50, "recipients": ["finance@example.com"]},
        {"thresholdUsd": 80, "recipients": ["oncall@example.com"]},
    ],
    "models": {"allow": ["gpt-4o-mini", "gpt-4.1"]},
    "enforce": "restore",
}
WRITES = frozenset(
    {
        "update_rate_limit",
        "set_spend_limit",
        "delete_spend_limit",
        "create_spend_alert",
        "update_spend_alert",
        "delete_spend_alert",
        "set_model_permissions",
        "delete_model_permissions",
    }
)
BEST_EFFORT = frozenset({"list_audit_logs", "costs"})
# The check's write-ahead record of what it is about to restore (keyrot.guardrails.oncall, Oncall.expect): its read of
# the state parameter (the 2nd GetParameter: the 1st is the declared document) and its write (the 1st PutParameter).
# Best-effort: failing costs the record, never the restore.
BEST_EFFORT_AWS = frozenset({("aws:GetParameter", 2), ("aws:PutParameter", 1)})


@dataclass
class Lab:
    """One stand-in, one moto, the function's instrumented clients, the declared document in its parameter."""

    openai: OpenAIStandIn
    relay: Relay
    admin_secret_arn: str
    declared: DeclaredGuardrails
    digest: str
    sleeps: list[float]
    topic_arn: str = ""
    sqs: Any = None
    queue_url: str = ""

    def told(self) -> list[str]:
        """Drain the on-call inbox: the subjects sent since the last call."""
        subjects = []
        while messages := self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                subjects.append(json.loads(message["Body"]).get("Subject", ""))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return subjects

    @property
    def parameter(self) -> str:
        return guardrails_parameter_name(ENVIRONMENT)

    def project(self) -> tuple[str, dict[str, Any]]:
        """A fresh project far from the declared guardrails; returns it and its settings' values."""
        state = self.openai.state
        project = state.add_project()
        console = self.openai.console.as_user("bob@example.com", user_id="user_bob")
        console.update_rate_limit(project, "gpt-4o-mini", max_requests_per_1_minute=100)
        console.set_spend_limit(project, 20_000)
        for cents, address in ((5_000, "old@example.com"), (5_000, "old@example.com"), (7_000, "stray@example.com")):
            console.create_spend_alert(project, cents, [address])
        state.record_cost(None, 150.0, project_id=project)  # past the declared $100 hard limit: on-call is told
        return project, snapshot(self.openai, project)

    def dependencies(self, project: str, log: FaultLog) -> GuardrailsDependencies:
        self.relay.use(log)
        settings = GuardrailsSettings(
            environment=ENVIRONMENT,
            admin_secret_arn=self.admin_secret_arn,
            project_id=project,
            openai_base_url=self.openai.base_url,
            parameter_name=self.parameter,
            declared_digest=self.digest,
            topic_arn=self.topic_arn,
            state_parameter=guardrails_state_parameter_name(f"{ENVIRONMENT}-{project}"),
        )
        transport = OpenAITransport(
            self.openai.base_url, session=log.session(), retry=FAST_RETRY, sleep=self.sleeps.append
        )
        store = SecretStore(aws_client("secretsmanager"))
        return GuardrailsDependencies(
            settings,
            aws_client("ssm"),
            admin=lambda: load_admin_client(store, settings, transport),
            sns=aws_client("sns"),
        )

    def admin(self) -> OpenAIAdminClient:
        """An admin client outside the scenario (no faults, nothing recorded)."""
        return load_admin_client(
            SecretStore(aws_client("secretsmanager")),
            GuardrailsSettings(ENVIRONMENT, self.admin_secret_arn, "proj_x", self.openai.base_url),
            OpenAITransport(self.openai.base_url, sleep=self.sleeps.append),
        )


def snapshot(openai: OpenAIStandIn, project: str) -> dict[str, Any]:
    rails = openai.state.guardrails_for(project)
    return {
        "limits": {limit.model: dict(limit.values) for limit in rails.rate_limits.values()},
        "spend": rails.spend_limit_cents,
        "alerts": Counter(alert["threshold_amount"] for alert in rails.spend_alerts.values()),
        "models": rails.model_permissions,
    }


def request(variant: str, lab: Lab) -> GuardrailsRequest:
    if variant == "apply":
        return GuardrailsRequest("apply", to_document(lab.declared))
    return GuardrailsRequest("check")


def run(variant: str, lab: Lab, project: str, log: FaultLog) -> GuardrailsOutcome:
    """One invocation, as the handler makes it (a failed restore or on-call message raised after the report)."""
    outcome = run_request(request(variant, lab), lab.dependencies(project, log))
    outcome.raise_for_failure()
    return outcome


# Alert ids differ in every scenario's project: a call is named by its endpoint, not by the alert it names (the
# read-timeout kind finds its call by name). lab/remote_calls.py normalises the other id segments the same way.
_GUARDRAIL_IDS = ((re.compile(r"/spend_alerts/[^/]+"), "/spend_alerts/{alert}"),)


def _call_name(method: str, url: str) -> str:
    name = openai_call_name(method, url)
    for pattern, replacement in _GUARDRAIL_IDS:
        name = pattern.sub(replacement, name)
    return name


@pytest.fixture
def lab(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    skip_botocore_backoff(monkeypatch)
    monkeypatch.setattr(faultkit, "openai_call_name", _call_name)
    with OpenAIStandIn() as openai:
        admin_key = openai.state.add_admin_key()
        secrets, ssm = aws_client("secretsmanager"), aws_client("ssm")
        arn = secrets.create_secret(
            Name=f"keyrot/{ENVIRONMENT}/openai-admin-key", SecretString=AdminCredentials(admin_key).to_json()
        )["ARN"]
        declared = parse_guardrails(BLOCK)
        text = document_json(declared)
        ssm.put_parameter(Name=guardrails_parameter_name(ENVIRONMENT), Value=text, Type="String")
        sns, sqs = aws_client("sns"), boto3.client("sqs", region_name=aws_client("sns").meta.region_name)
        topic = sns.create_topic(Name=f"keyrot-{ENVIRONMENT}-oncall")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="oncall")["QueueUrl"]
        queue = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue)
        relay = Relay()
        relay.attach(secrets)
        relay.attach(ssm)
        relay.attach(sns)
        yield Lab(openai, relay, str(arn), declared, document_digest(text), [], topic, sqs, queue_url)


def record(variant: str, lab: Lab) -> list[Call]:
    project, _ = lab.project()
    lab.openai.reset_calls()
    lab.openai.faults.clear()
    log = FaultLog()
    outcome = run(variant, lab, project, log)
    assert outcome.changes, outcome
    lab.told()
    return sequence(log, lab.openai)


def run_scenario(variant: str, lab: Lab, call: Call, kind: FaultKind) -> Checks:
    checks = Checks(f"guardrails {variant} {call.label()} x {kind.name}")
    project, before = lab.project()
    lab.openai.faults.clear()
    lab.told()
    log = FaultLog()
    # WHEN the fault hits the call
    inject(log, lab.openai, call, kind, FAST_RETRY.max_attempts)
    error: BaseException | None = None
    try:
        run(variant, lab, project, log)
    except SimulatedCrash as crash:
        error = crash
    except Exception as exc:  # noqa: BLE001 - any failure is an outcome to check
        error = exc
    disarm(log, lab.openai, call, kind)
    lab.relay.use(FaultLog())
    # THEN it surfaces typed, or not at all for a best-effort read
    if isinstance(kind, CrashKind):
        checks.check(isinstance(error, SimulatedCrash), f"the crash became {error!r}")
    elif call.endpoint in BEST_EFFORT or (variant == "check" and (call.name, call.occurrence) in BEST_EFFORT_AWS):
        checks.check(error is None, f"the best-effort {call.name} failed the run: {error!r}")
    else:
        _check_error(checks, variant, call, kind, error)
    # AND every setting holds its old or its declared value, with no twin alert
    middle = snapshot(lab.openai, project)
    declared = snapshot_of_declared(lab.declared, before)
    for model, limits in middle["limits"].items():
        for name, value in limits.items():
            allowed = (before["limits"][model][name], declared["limits"][model][name])
            checks.check(value in allowed, f"{model}.{name} is {value}, neither of {allowed}")
    checks.check(middle["spend"] in (before["spend"], declared["spend"]), f"spend limit {middle['spend']}")
    checks.check(middle["models"] in (before["models"], declared["models"]), f"models {middle['models']}")
    for cents, count in middle["alerts"].items():
        most = max(before["alerts"].get(cents, 0), 1 if cents in declared["alerts"] else 0)
        checks.check(count <= most, f"{count} alerts at {cents} cents after the failed run (at most {most})")
    # AND the next run converges, and one more apply changes nothing
    try:
        run(variant, lab, project, FaultLog())
        if variant == "check":
            _check_told(checks, call, kind, lab.told())
        lab.openai.reset_calls()
        run("apply", lab, project, FaultLog())
    except Exception as exc:  # noqa: BLE001 - a failing next run is a violation, reported with the others
        checks.check(False, f"the next run failed: {type(exc).__name__}: {exc}")
        return checks
    writes = [c.endpoint for c in lab.openai.calls if c.endpoint in WRITES]
    checks.check(writes == [], f"an apply after convergence still changed: {writes}")
    actual = read_actual(lab.admin(), project)
    checks.check(compare(lab.declared, actual).in_step, "the project does not have the declared guardrails")
    after = snapshot(lab.openai, project)
    checks.check(after["alerts"] == declared["alerts"], f"alerts {dict(after['alerts'])}")
    return checks


def _check_told(checks: Checks, call: Call, kind: FaultKind, told: list[str]) -> None:
    """On-call heard of the drift (as found, or as restored before they were told) and of the hard limit reached,
    each once or twice. A Publish whose every attempt landed unanswered is a message per attempt: botocore retries
    it, and a standard SNS topic has no idempotent publish (so no upper bound then)."""
    drift = [subject for subject in told if "guardrails drift" in subject]
    hard = [subject for subject in told if "hard spend limit reached" in subject]
    most = len(told) if call.name == "aws:Publish" and getattr(kind, "after_effect", False) else 2
    checks.check(1 <= len(drift) <= most, f"on-call was told the drift {len(drift)} times: {drift}")
    checks.check(1 <= len(hard) <= most, f"on-call was told the hard limit {len(hard)} times")


def snapshot_of_declared(declared: DeclaredGuardrails, before: dict[str, Any]) -> dict[str, Any]:
    limits = {model: dict(values) for model, values in before["limits"].items()}
    for model, values in declared.rate_limits.items():
        limits[model].update(values)
    models = (declared.models.mode, declared.models.model_ids) if declared.models else None
    return {
        "limits": limits,
        "spend": declared.spend_limit_cents,
        "alerts": Counter(alert.threshold_cents for alert in declared.spend_alerts),
        "models": models,
    }


def _check_error(checks: Checks, variant: str, call: Call, kind: FaultKind, error: BaseException | None) -> None:
    if not checks.check(error is not None, "the run succeeded although a call failed"):
        return
    checks.check(isinstance(error, KeyrotError), f"untyped error {type(error).__name__}: {error}")
    if isinstance(kind, AwsFaultKind):
        code = error.code if isinstance(error, AwsCallError) else None
        checks.check(code == kind.code, f"{type(error).__name__} {code} instead of AwsCallError {kind.code}")
        return
    restoring = variant == "check" and call.endpoint in WRITES
    if restoring:
        checks.check(isinstance(error, GuardrailsRestoreError), f"{type(error).__name__}, not GuardrailsRestoreError")
        checks.check(kind.expected_error in str(error), f"the restore error does not name {kind.expected_error}")
    else:
        checks.check(type(error).__name__ == kind.expected_error, f"{type(error).__name__}, not {kind.expected_error}")


@pytest.mark.parametrize("variant", ["apply", "check"])
def test_a_fault_at_any_call_of_the_guardrails_function_leaves_a_state_the_next_run_finishes(
    lab: Lab, variant: str
) -> None:
    # GIVEN the remote calls of a run that changes every kind of guardrail, recorded
    calls = record(variant, lab)
    endpoints = Counter(call.endpoint for call in calls if call.endpoint)
    names = {call.name for call in calls}
    assert "aws:GetSecretValue" in names and ("aws:GetParameter" in names) == (variant == "check")
    assert ({"aws:Publish", "aws:PutParameter"} <= names) == (variant == "check")
    if variant == "check":  # the declared document, then the write-ahead record's read and write, then the memory's
        ssm = [call.name.removeprefix("aws:") for call in calls if call.name.endswith("Parameter")]
        assert ssm == ["GetParameter", "GetParameter", "PutParameter", "GetParameter", "PutParameter"]
    assert (endpoints["costs"] == 1) == (variant == "check")
    assert endpoints["update_rate_limit"] == 2 and endpoints["delete_spend_alert"] == 2
    assert {"create_spend_alert", "update_spend_alert", "set_spend_limit", "set_model_permissions"} <= set(endpoints)
    assert (endpoints["list_audit_logs"] == 1) == (variant == "check")
    # WHEN each kind of fault hits each call in turn, THEN every invariant holds
    tally = TALLIES.setdefault("guardrails", Tally())
    violations: list[str] = []
    for call in calls:
        for kind in call.kinds():
            violations += run_scenario(variant, lab, call, kind).violations
            tally.scenarios[variant] += 1
    tally.violations += violations
    assert not violations, f"{len(violations)} invariant violation(s):\n" + "\n".join(violations[:40])


def test_the_recorded_document_is_what_the_function_trusts(lab: Lab) -> None:
    # The matrix's check runs read the parameter written at setup: the same digest the settings carry
    text = aws_client("ssm").get_parameter(Name=lab.parameter)["Parameter"]["Value"]
    assert document_digest(json.loads(text)) == lab.digest
