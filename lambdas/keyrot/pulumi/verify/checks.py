"""The verification kit's steps against a real AWS account and OpenAI project (not run by any test or CI).

Each step is small and checks one thing README's "Not verified here" lists; `build_steps` wires them into the plan
(keyrot.pulumi.verify.plan). Everything is created in a temporary, uniquely named environment with a local Pulumi
backend in a temporary directory, and torn down at the end whatever happened. Keys are held in memory only, and
every line printed is scrubbed of them.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from keyrot import constants as c
from keyrot.names import RESOURCE_PREFIX, environment_alarm_name
from keyrot.pulumi.verify.plan import Claim, Step

OPENAI_API = "https://api.openai.com/v1"
KEY = "verify"  # the one managed key of the temporary environment

CLAIMS: tuple[Claim, ...] = (
    Claim("deploy", "a real `pulumi up` creates the environment (provider-side validation)", "pulumi preview"),
    Claim("iam", "IAM and KMS as AWS evaluates them: the functions work with exactly their policies", "IAM and KMS"),
    Claim("rotation", "Secrets Manager runs a rotation through the rotation function", "Secrets Manager's own"),
    Claim(
        "failure-event",
        "a failed rotation's event reaches the on-call topic through the rule (CloudTrail/EventBridge fields)",
        "CloudTrail/EventBridge",
    ),
    Claim("new-key", "OpenAI: a new key authenticates (and how fast)", "OpenAI behaviour"),
    Claim("revocation", "OpenAI: the old key dies after an emergency revoke (and how fast)", "OpenAI behaviour"),
    Claim("alarm", "an alarm reaches the on-call topic through the KMS key's conditions", "IAM and KMS"),
    Claim("dashboard", "the dashboard is created and names every key", "pulumi preview"),
    Claim(
        "usage-lateness",
        "OpenAI: how late Usage and Costs data arrive",
        "OpenAI behaviour",
        not_checked="needs hours of traffic; the monitor's settle delay covers it",
    ),
    Claim(
        "audit-log-and-scopes",
        "OpenAI: which audit-log events the service writes for console actions, and the key scopes it accepts",
        "audit log and key scopes",
        not_checked="needs a person acting in the console; `keyrot doctor` checks the audit log can be read",
    ),
    Claim(
        "plugin",
        "`pulumi package add` generates a working SDK for another language",
        "Pulumi plugin path",
        not_checked="needs a program in that language; docs/deploy.md shows the steps",
    ),
    Claim("teardown", "`pulumi destroy` removes everything the kit created", "pulumi preview"),
)


@dataclass
class Options:
    openai_project_id: str
    notify_email: str
    region: str
    admin_key: str = field(repr=False)
    wait_seconds: int = 300


class Tools:
    """The outside world: Pulumi CLI, keyrot CLI, AWS (boto3 session) and OpenAI over HTTPS."""

    def __init__(self, session: Any, workdir: Path) -> None:
        self.session = session
        self.workdir = workdir
        self.env = {
            **os.environ,
            "PULUMI_BACKEND_URL": f"file://{workdir / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": secrets.token_urlsafe(24),
        }

    def pulumi(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603 - fixed argv
            ["pulumi", *args, "--non-interactive"],  # noqa: S607 - the user's Pulumi CLI
            cwd=self.workdir / "program",
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pulumi {args[0]} failed: {(done.stderr or done.stdout)[-1500:]}")
        return done.stdout

    def keyrot(self, *args: str, stdin: str | None = None) -> str:
        command = [str(Path(sys.executable).with_name("keyrot")), "--region", self.session.region_name, *args]
        done = subprocess.run(  # noqa: S603 - fixed argv
            command, input=stdin, capture_output=True, text=True, check=False, env=self.env
        )
        if done.returncode != 0:
            raise RuntimeError(f"keyrot {' '.join(args[:2])} exited {done.returncode}: {done.stderr[-1000:]}")
        return done.stdout

    def client(self, service: str) -> Any:
        return self.session.client(service)

    @staticmethod
    def openai_status(api_key: str) -> int:
        return requests.get(
            f"{OPENAI_API}/models", headers={"Authorization": f"Bearer {api_key}"}, timeout=30
        ).status_code


PROGRAM = '''\
"""Temporary keyrot environment deployed by `make verify-aws` (destroyed at the end)."""
import pulumi
from keyrot.pulumi import KeyrotEnvironment

config = pulumi.Config()
environment = KeyrotEnvironment("keyrot", {
    "environment": config.require("environment"),
    "openai_project_id": config.require("openaiProjectId"),
    "keys": [{"name": "verify"}],
    "oncall_emails": [config.require("notifyEmail")],
    "administrator_arns": [config.require("administrator")],
    "grace_period_hours": 1,
    "max_grace_period_hours": 2,
    "rotation_schedule": "rate(30 days)",
    "dashboard": True,  # off by default; the run checks it is created and names the key
})
for name, value in environment.outputs().items():
    pulumi.export(name, value)
'''


def _wait(check: Callable[[], bool], seconds: float, every: float = 5.0) -> float:
    """Poll `check` until true; return the seconds it took (raise TimeoutError after `seconds`)."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if check():
            return time.monotonic() - start
        time.sleep(every)
    raise TimeoutError(f"not within {seconds:.0f} s")


def _current_key(tools: Tools, secret_arn: str) -> dict[str, Any]:
    value = tools.client("secretsmanager").get_secret_value(SecretId=secret_arn, VersionStage=c.STAGE_CURRENT)
    key: dict[str, Any] = json.loads(value["SecretString"])
    return key


def build_steps(
    options: Options, tools: Tools, *, environment: str, administrator: str
) -> tuple[list[Step], list[str]]:
    """The plan for one run (deploy, rotate, check keys, alarms and events, then tear down), and the list of key
    values it will have held (for scrubbing what it prints)."""
    held: list[str] = [options.admin_key]  # every key value seen, scrubbed from output

    def deploy(ctx: dict[str, Any]) -> str:
        program = tools.workdir / "program"
        program.mkdir(parents=True, exist_ok=True)
        (tools.workdir / "state").mkdir(exist_ok=True)
        (program / "__main__.py").write_text(PROGRAM)
        (program / "Pulumi.yaml").write_text(
            textwrap.dedent(
                f"""\
                name: keyrot-verify
                runtime:
                  name: python
                  options:
                    virtualenv: {Path(sys.prefix)}
                """
            )
        )
        tools.pulumi("stack", "init", environment)
        ctx["stack"] = environment
        for key, value in (
            ("aws:region", options.region),
            ("keyrot-verify:environment", environment),
            ("keyrot-verify:openaiProjectId", options.openai_project_id),
            ("keyrot-verify:notifyEmail", options.notify_email),
            ("keyrot-verify:administrator", administrator),
        ):
            tools.pulumi("config", "set", key, value)
        started = time.monotonic()
        tools.pulumi("up", "--yes", "--skip-preview")
        ctx["outputs"] = json.loads(tools.pulumi("stack", "output", "--json"))
        return f"deployed {environment} in {time.monotonic() - started:.0f} s"

    def subscribe(ctx: dict[str, Any]) -> str:
        sqs, sns = tools.client("sqs"), tools.client("sns")
        queue_url = sqs.create_queue(QueueName=f"{environment}-verify")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        topic = ctx["outputs"]["oncallTopicArn"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
                }
            ],
        }
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
        ctx["queue_url"] = queue_url
        return "SQS queue subscribed to the on-call topic"

    def received(ctx: dict[str, Any], needle: str) -> Callable[[], bool]:
        def check() -> bool:
            sqs = tools.client("sqs")
            messages = sqs.receive_message(QueueUrl=ctx["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=5)
            return any(needle in m["Body"] for m in messages.get("Messages", []))

        return check

    def put_admin_key(ctx: dict[str, Any]) -> str:
        tools.keyrot("admin-key", "set", "--env", environment, stdin=options.admin_key + "\n")
        return "admin key validated by OpenAI and stored"

    def rotate(ctx: dict[str, Any]) -> str:
        secret = ctx["outputs"]["keySecretArns"][KEY]
        started = time.monotonic()
        tools.keyrot("rotate", "--env", environment, "--key", KEY, "--timeout", str(options.wait_seconds))
        current = _current_key(tools, secret)
        held.append(current["api_key"])
        ctx["first_key"] = current
        return f"rotated in {time.monotonic() - started:.0f} s; current key {current['key_id']}"

    def new_key_works(ctx: dict[str, Any]) -> str:
        key = ctx["first_key"]["api_key"]
        took = _wait(lambda: tools.openai_status(key) == 200, options.wait_seconds)
        return f"{ctx['first_key']['key_id']} authenticated {took:.0f} s after promotion"

    def emergency(ctx: dict[str, Any]) -> str:
        old = ctx["first_key"]
        tools.keyrot("rotate", "--env", environment, "--key", KEY, "--emergency", "--yes")
        current = _current_key(tools, ctx["outputs"]["keySecretArns"][KEY])
        held.append(current["api_key"])
        took = _wait(lambda: tools.openai_status(old["api_key"]) == 401, options.wait_seconds)
        return f"old key {old['key_id']} rejected {took:.0f} s after the emergency revoke; current {current['key_id']}"

    def alarm(ctx: dict[str, Any]) -> str:
        name = environment_alarm_name(environment, "rotation-failed")
        tools.client("cloudwatch").set_alarm_state(
            AlarmName=name, StateValue="ALARM", StateReason="make verify-aws: test of the alarm path"
        )
        took = _wait(received(ctx, name), options.wait_seconds)
        return f"{name} reached the topic in {took:.0f} s"

    def failure_event(ctx: dict[str, Any]) -> str:
        admin_secret = ctx["outputs"]["adminKeySecretArn"]
        manager = tools.client("secretsmanager")
        manager.put_secret_value(SecretId=admin_secret, SecretString=json.dumps({"admin_key": "not-an-admin-key"}))
        try:
            manager.rotate_secret(SecretId=ctx["outputs"]["keySecretArns"][KEY])
            took = _wait(received(ctx, "RotationFailed"), options.wait_seconds)
        finally:
            tools.keyrot("admin-key", "set", "--env", environment, stdin=options.admin_key + "\n")
            tools.keyrot("rotate", "--env", environment, "--key", KEY, "--discard-pending")
        return f"RotationFailed reached the topic through the rule in {took:.0f} s"

    def dashboard(ctx: dict[str, Any]) -> str:
        body = json.loads(
            tools.client("cloudwatch").get_dashboard(DashboardName=f"{RESOURCE_PREFIX}-{environment}")["DashboardBody"]
        )
        text = json.dumps(body)
        if KEY not in text:
            raise AssertionError("the dashboard does not name the key")
        return f"{len(body['widgets'])} widgets"

    def teardown(ctx: dict[str, Any]) -> str:
        done = []
        if "queue_url" in ctx:
            tools.client("sqs").delete_queue(QueueUrl=ctx["queue_url"])
            done.append("queue deleted")
        if "stack" in ctx:
            _revoke_remaining(options, environment)
            tools.pulumi("destroy", "--yes", "--skip-preview")
            for arn in (
                *ctx.get("outputs", {}).get("keySecretArns", {}).values(),
                ctx.get("outputs", {}).get("adminKeySecretArn"),
            ):
                if arn:
                    tools.client("secretsmanager").delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
            remaining = tools.client("lambda").list_functions()["Functions"]
            ours = f"{RESOURCE_PREFIX}-{environment}-"
            left = [f["FunctionName"] for f in remaining if f["FunctionName"].startswith(ours)]
            if left:
                raise AssertionError(f"still there after destroy: {left}")
            tools.pulumi("stack", "rm", "--yes")
            done.append("stack destroyed, secrets deleted without recovery window")
        return "; ".join(done) or "nothing was created"

    steps = [
        Step("deploy", deploy, claims=("deploy",)),
        Step("subscribe-topic", subscribe, needs=("deploy",)),
        Step("admin-key", put_admin_key, needs=("deploy",)),
        Step("rotate", rotate, claims=("rotation", "iam"), needs=("admin-key",)),
        Step("new-key-authenticates", new_key_works, claims=("new-key",), needs=("rotate",)),
        Step("emergency-revoke", emergency, claims=("revocation", "iam"), needs=("new-key-authenticates",)),
        Step("alarm-reaches-topic", alarm, claims=("alarm",), needs=("subscribe-topic",)),
        Step("rotation-failure-event", failure_event, claims=("failure-event",), needs=("subscribe-topic", "rotate")),
        Step("dashboard", dashboard, claims=("dashboard",), needs=("deploy",)),
        Step("teardown", teardown, claims=("teardown",), teardown=True),
    ]
    return steps, held


def _revoke_remaining(options: Options, environment: str) -> None:
    """Delete the service accounts keyrot minted for this environment in the throwaway project (live keys)."""
    base = f"{OPENAI_API}/organization/projects/{options.openai_project_id}/service_accounts"
    headers = {"Authorization": f"Bearer {options.admin_key}"}
    listed = requests.get(base, headers=headers, params={"limit": 100}, timeout=30)
    listed.raise_for_status()
    for account in listed.json().get("data", []):
        if str(account.get("name", "")).startswith(f"{c.SERVICE_ACCOUNT_NAME_PREFIX}:{environment}:"):
            requests.delete(f"{base}/{account['id']}", headers=headers, timeout=30).raise_for_status()


def temporary_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="keyrot-verify-"))
