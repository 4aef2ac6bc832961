"""Least privilege, proven: the AWS calls keyrot's code makes against the policies the Pulumi program declares.

One lab (moto, the OpenAI stand-in, one manual clock) named exactly like the dev stack (environment `dev`, keys
`chat-backend` and `batch-embeddings`, `keyrot/dev/openai-admin-key`, `/keyrot/dev/monitor-state`,
`keyrot-dev-oncall`) runs every path of each function with the suite-wide recorder on (tests/support/aws_actions.py):

- rotation, through the real handler: two first rotations, a second one, a failed one resumed, an emergency one that
  revokes, steps replayed after the end, and the rotations `keyrot rotate` starts;
- monitor, through the real handler and `run_monitor`: usage metrics, a notification, a failed janitor revocation,
  two janitor revocations, a publish interrupted by a crash and resumed;
- the application, through KeyProvider; the operator, through every CLI command.

Then, against the dev stack's documents as the program declares them (tests/infra/infra_harness.py):

- every call is granted, on the resource it touched, by its actor's policy (resources seen in the emulator's account
  are mapped to the dev account; a secret to the declared secret of the same name, whose ARN has its own suffix);
- every grant is used, or listed below with the reason no keyrot code calls it;
- the CLI calls only what docs/cli.md documents for operators, all granted by its example policy.

parliament's lint of the same documents, with severities, is tests/infra/test_iam.py (not repeated here).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from keyrot import observability
from keyrot.aws.clients import aws_client
from keyrot.cli import interaction
from keyrot.cli.app import app
from keyrot.cli.follow import rotation_log_group
from keyrot.client import KeyProvider
from keyrot.handlers import monitor as monitor_handler
from keyrot.handlers import rotate as rotate_handler
from keyrot.monitor import ledger, publisher
from keyrot.monitor.run import run_monitor
from lab.monitor_scenario import MonitorWorld
from lab.moto_gaps import patched_moto
from lab.openai_standin import ManualClock, OpenAIStandIn, server_error
from lab.remote_calls import SimulatedCrash
from lab.rotation_driver import RotationDriver
from lab.rotation_service import RotationService, installed
from lab.scenario import ROTATION_LAMBDA_ARN
from tests.functional.monitor.tripwire_support import another_admin, record_admin_key_id
from tests.prove.faultkit import FIGURES
from tests.support.aws_actions import (
    EMULATOR_ACCOUNT,
    Call,
    Recording,
    actor_policies,
    dev_policies_by_type,
    harness,
    recording,
    role_policy,
    session_violations,
    ungranted,
)
from tests.support.iam_eval import Policy, Request, action_matches, arn_matches, condition_holds

pytestmark = pytest.mark.timeout(300)

GRACE = 300
SETTLE = 600
KEYS = ("chat-backend", "batch-embeddings")

# (policy, Sid, action) granted but called by no keyrot code, and why it is granted all the same.
NOT_CALLED_BY_KEYROT: dict[tuple[str, str, str], str] = {
    ("rotation", "UseSecretsKey", "kms:Decrypt"): "Secrets Manager decrypts on the function's behalf when it reads a "
    "value (kms:ViaService=secretsmanager)",
    ("rotation", "UseSecretsKey", "kms:GenerateDataKey"): "Secrets Manager encrypts on the function's behalf when "
    "PutSecretValue stores the new key",
    ("rotation", "WriteOwnLogs", "logs:CreateLogStream"): "the Lambda runtime creates the function's log stream",
    ("rotation", "WriteOwnLogs", "logs:PutLogEvents"): "the Lambda runtime ships the function's stdout (logs, EMF)",
    ("monitor", "UseSecretsKey", "kms:Decrypt"): "Secrets Manager decrypts on the function's behalf when it reads",
    ("monitor", "PublishToEncryptedTopic", "kms:Decrypt"): "SNS calls KMS on the publisher's behalf for the "
    "KMS-encrypted on-call topic",
    ("monitor", "PublishToEncryptedTopic", "kms:GenerateDataKey*"): "SNS calls KMS on the publisher's behalf for the "
    "KMS-encrypted on-call topic",
    ("monitor", "WriteOwnLogs", "logs:CreateLogStream"): "the Lambda runtime creates the function's log stream",
    ("monitor", "WriteOwnLogs", "logs:PutLogEvents"): "the Lambda runtime ships the function's stdout (logs, EMF)",
    ("reader", "ReadKey", "secretsmanager:DescribeSecret"): "AWS's caching client (aws-secretsmanager-caching) "
    "describes the secret before reading it; KeyProvider does not",
    ("reader", "DecryptKey", "kms:Decrypt"): "Secrets Manager decrypts on the reader's behalf",
    ("scheduler", "InvokeMonitor", "lambda:InvokeFunction"): "EventBridge Scheduler assumes the role to invoke the "
    "monitor; no keyrot code calls it",
}
# Documented operator actions (docs/cli.md) the CLI does not call itself.
CLI_NOT_CALLED: dict[str, str] = {
    "lambda:InvokeFunction": "Secrets Manager requires it of whoever calls RotateSecret (on the rotation function)",
}


# --- the lab --------------------------------------------------------------------------------------------------------


class DevLab:
    """The dev stack's names in moto, the stand-in on a manual clock, and each function run through its real code."""

    def __init__(self, openai: OpenAIStandIn, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
        self.openai, self.clock, self.mp = openai, clock, monkeypatch
        self.world = MonitorWorld.create(
            openai,
            clock,
            environment="dev",
            grace_period_seconds=GRACE,
            quiet_window_seconds=GRACE,
            max_grace_period_seconds=12 * GRACE,
            usage_kinds=("completions", "embeddings"),
        )
        self.secrets = self.world.rotation.secrets
        self.arns = {key: self.world.rotation.create_managed_secret(key) for key in KEYS}
        settings = self.world.settings
        for name, value in {
            "KEYROT_ENVIRONMENT": "dev",
            "KEYROT_ADMIN_SECRET_ARN": settings.admin_secret_arn,
            "KEYROT_OPENAI_PROJECT_ID": settings.project_id,
            "KEYROT_TOPIC_ARN": settings.topic_arn,
            "KEYROT_STATE_PARAMETER": settings.state_parameter,
            "OPENAI_BASE_URL": settings.openai_base_url,
            "KEYROT_OPENAI_ADMIN_BASE_URL": settings.openai_base_url,  # the CLI's own variable
            "KEYROT_VALIDATION_ATTEMPTS": "2",
            "KEYROT_VALIDATION_DELAY_SECONDS": "0.01",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }.items():
            monkeypatch.setenv(name, value)
        self.driver = RotationDriver(self.secrets, lambda event: rotate_handler.handler(event, None))

    def rotate(self, key: str, **options: Any) -> Any:
        return self.driver.rotate(self.arns[key], **options)

    # --- rotation ----------------------------------------------------------------------------------------------

    def rotation_paths(self) -> None:
        for key in KEYS:  # first rotations: nothing current yet
            assert self.rotate(key).succeeded
        assert self.rotate("chat-backend").succeeded  # a second rotation: AWSCURRENT moves, AWSPREVIOUS appears
        # a failed rotation (the new key never authenticates), then Secrets Manager's retry with the same token
        self.openai.state.activation_delay_seconds = 3600
        failed = self.rotate("chat-backend", max_attempts=1)
        assert not failed.succeeded and failed.failures[0][0] == "testSecret"
        self.openai.state.activation_delay_seconds = 0
        assert self.rotate("chat-backend", token=failed.token).succeeded
        # steps replayed after the rotation finished
        for step in ("createSecret", "finishSecret"):
            self.driver.step(self.arns["chat-backend"], failed.token, step)
        # an emergency rotation (grace 0) revokes the previous key in finishSecret; then a normal one
        self.mp.setenv("KEYROT_GRACE_PERIOD_SECONDS", "0")
        assert self.rotate("batch-embeddings").succeeded
        self.mp.delenv("KEYROT_GRACE_PERIOD_SECONDS")
        assert any("KEYROT_REVOKED" in s for s in self.world.rotation.stages(self.arns["batch-embeddings"]).values())
        assert self.rotate("batch-embeddings").succeeded

    # --- monitor -----------------------------------------------------------------------------------------------

    def monitor_paths(self) -> None:
        world = self.world
        summary = monitor_handler.handler({}, None)  # the real handler: admin key from its secret, state created
        assert summary["skipped"] is None
        current = {key: world.rotation.current(arn).key_id for key, arn in self.arns.items()}
        unmanaged, _ = self.openai.state.add_user_key(world.rotation.project_id)
        for minute in (1, 2, 3):
            for key_id in current.values():
                self._usage(key_id, minute, 3)
            self._usage(unmanaged, minute, 2, kind="embeddings")
        self.clock.advance(5 * 60 + SETTLE)
        # usage published, the unmanaged key notified, both revocations fail (OpenAI answers 500)
        self.openai.faults.add(server_error("delete_service_account"))
        report = world.run()
        assert report.usage_datums and report.notifications_sent and len(report.revocation_failures) == 2
        self.openai.faults.clear()
        # an admin key keyrot never held mints an account: the tripwire reads the admin-key secret's past versions
        record_admin_key_id(world)
        stranger, _ = another_admin(world, "eve@example.com")
        stranger.create_service_account(world.rotation.project_id, "shadow")
        # the next run revokes both previous keys
        self.clock.advance(300)
        assert len(world.run().revoked) == 2
        # a publish interrupted by a crash after its first PutMetricData, resumed by a later run
        for minute in (30, 31, 32):
            for key_id in current.values():
                self._usage(key_id, minute, 1)
        self.clock.advance(40 * 60)
        self.mp.setattr(publisher, "USAGE_DATUMS_PER_CALL", 4)
        crashing = boto3.client("cloudwatch", region_name=world.cloudwatch.meta.region_name)
        crashing.meta.events.register("after-call.monitoring.PutMetricData", _crash_once())
        with pytest.raises(SimulatedCrash):
            run_monitor(world.dependencies(cloudwatch=crashing))
        self.clock.advance(360)
        assert world.run().resumed_intent in ("republished", "committed")

    def _usage(self, key_id: str, minute: int, requests: int, kind: str = "completions") -> None:
        at = self.world.start + minute * 60 + 5
        self.openai.state.record_usage(key_id, kind, at=at, num_model_requests=requests, input_tokens=requests * 10)

    # --- application and operator --------------------------------------------------------------------------------

    def app_paths(self) -> None:
        for key in KEYS:
            provider = KeyProvider(f"keyrot/dev/{key}", client=boto3.client("secretsmanager", region_name="us-east-1"))
            assert provider().startswith("sk-")
            assert provider.key_rejected() is True  # OpenAI said 401: read again at once

    def cli_paths(self) -> None:
        logs = boto3.client("logs", region_name="us-east-1")
        logs.create_log_group(logGroupName=rotation_log_group("dev"))
        service = RotationService()
        service.register(ROTATION_LAMBDA_ARN, lambda event: rotate_handler.handler(event, None))
        fast = ("--poll-interval", "0.02")
        with installed(service):
            self._cli(0, "status", "--env", "dev")
            self._cli(0, "rotate", "--env", "dev", "--key", "chat-backend", *fast)
            # a stuck rotation, discarded and started again
            self.openai.state.activation_delay_seconds = 3600
            self.secrets.rotate_secret(SecretId=self.arns["chat-backend"])
            service.wait()
            self.openai.state.activation_delay_seconds = 0
            self._cli(0, "rotate", "--env", "dev", "--key", "chat-backend", "--discard-pending", "--yes", *fast)
            self._cli(0, "rotate", "--env", "dev", "--key", "batch-embeddings", "--emergency", "--yes", *fast)
            self._cli(0, "revoke-previous", "--env", "dev", "--key", "chat-backend", "--yes")
            self._cli((0, 1), "audit", "--env", "dev")
            self._cli(0, "admin-key", "set", "--env", "dev", input=f"{self.world.rotation.admin_key}\n")
            self._cli(0, "exec", "--env", "dev", "--key", "chat-backend", "--", sys.executable, "-c", "pass")
            self._cli((0, 1), "doctor", "--env", "dev", "--key", "chat-backend")

    @staticmethod
    def _cli(expected: int | tuple[int, ...], *args: str, input: str | None = None) -> None:
        result = CliRunner().invoke(app, list(args), input=input, env={"COLUMNS": "200"})
        codes = expected if isinstance(expected, tuple) else (expected,)
        assert result.exit_code in codes, f"keyrot {' '.join(args[:3])}: exit {result.exit_code}"


def _crash_once() -> Any:
    fired: list[bool] = []

    def crash(**_: Any) -> None:
        if not fired:
            fired.append(True)
            raise SimulatedCrash("the monitor died after its first PutMetricData")

    return crash


@pytest.fixture(scope="module")
def observed() -> Iterator[Recording]:
    """Run every path once, with recording on; the AWS calls each part of keyrot made."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("AWS_", "KEYROT_", "MOTO_")) or name == "OPENAI_BASE_URL":
                mp.delenv(name)
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }.items():
            mp.setenv(name, value)
        mp.setattr(observability._CurrentStdoutHandler, "emit", lambda handler, record: None)  # Lambda's stdout
        mp.setattr(interaction, "stdin_is_tty", lambda: False)
        aws_client.cache_clear()
        ledger.clear_cache()
        now = int(time.time())
        clock = ManualClock(now - now % 60)
        try:
            lambda_stdout = io.StringIO()  # the functions' EMF lines: Lambda's stdout, not the terminal's
            with (
                contextlib.redirect_stdout(lambda_stdout),
                mock_aws(),
                patched_moto(),
                OpenAIStandIn(clock=clock) as openai,
                recording() as recorded,
            ):
                lab = DevLab(openai, clock, mp)
                lab.rotation_paths()
                lab.monitor_paths()
                lab.app_paths()
                lab.cli_paths()
        finally:
            aws_client.cache_clear()
            ledger.clear_cache()
    yield recorded


# --- the dev stack, and observed resources mapped onto it ------------------------------------------------------------


@dataclass(frozen=True)
class Dev:
    deployment: Any
    policies: dict[str, Policy]  # policy name (actor, or "reader:<key>", "scheduler") -> document

    def to_dev(self, resource: str) -> str:
        """An observed resource as the dev stack names it: the emulator's account is dev's; a secret by its name."""
        d = self.deployment
        parts = resource.split(":", 5)
        if len(parts) == 6 and parts[4] == EMULATOR_ACCOUNT and parts[3] == d.region:
            parts[4] = d.account
        arn = ":".join(parts)
        prefix = f"arn:aws:secretsmanager:{d.region}:{d.account}:secret:"
        if arn.startswith(prefix):
            name = arn[len(prefix) :]
            declared = {r.inputs["name"]: r.outputs["arn"] for r in d.of_type("aws:secretsmanager/secret:Secret")}
            for candidate in (name, name[:-7] if len(name) > 7 and name[-7] == "-" else name):  # suffix, or none
                if candidate in declared:
                    return str(declared[candidate])
        return arn


@pytest.fixture(scope="module")
def dev() -> Dev:
    d = harness().deployed("dev")
    found = actor_policies(d)
    policies = {"rotation": found["rotation"][0], "monitor": found["monitor"][0]}
    for reader in d.of_type("aws:iam/policy:Policy"):
        policies[f"reader:{reader.inputs['tags']['keyrot:key-name']}"] = json.loads(reader.inputs["policy"])
    policies["scheduler"] = role_policy(d, "keyrot-dev-monitor-scheduler")
    return Dev(d, policies)


def granted_actions(policy: Policy) -> set[str]:
    return {a for s in policy["Statement"] if s["Effect"] == "Allow" for a in _list(s["Action"])}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def unused_grants(policy: Policy, calls: list[Call], dev: Dev) -> set[tuple[str, str, str]]:
    """(Sid, action, resource) of each grant no observed call used (with its conditions holding)."""
    requests = [Request(r.action, dev.to_dev(r.resource), r.context) for call in calls for r in call.requests()]
    unused = set()
    for statement in policy["Statement"]:
        for action in _list(statement["Action"]):
            for resource in _list(statement["Resource"]):
                if not any(
                    action_matches(action, r.action)
                    and arn_matches(resource, r.resource)
                    and condition_holds(statement.get("Condition") or {}, r.context)
                    for r in requests
                ):
                    unused.add((statement["Sid"], action, resource))
    return unused


def unexplained(name: str, policy: Policy, calls: list[Call], dev: Dev) -> list[tuple[str, str, str]]:
    reasons = {(sid, action) for (policy_name, sid, action) in NOT_CALLED_BY_KEYROT if policy_name == name}
    return sorted(grant for grant in unused_grants(policy, calls, dev) if grant[:2] not in reasons)


def stale_reasons(name: str, policy: Policy, calls: list[Call], dev: Dev) -> list[tuple[str, str]]:
    """Reasons for grants that do not exist, or that some call does use after all."""
    unused = {(sid, action) for sid, action, _ in unused_grants(policy, calls, dev)}
    listed = {(sid, action) for (policy_name, sid, action) in NOT_CALLED_BY_KEYROT if policy_name == name}
    return sorted(listed - unused)


# --- rotation, monitor, application ----------------------------------------------------------------------------------


@pytest.mark.parametrize("actor", ["rotation", "monitor"])
def test_every_call_of_the_function_is_granted_on_the_resource_it_touched(
    observed: Recording, dev: Dev, actor: str
) -> None:
    calls = observed.by_actor(actor)
    assert calls, f"the lab made no {actor} call"
    assert [u.describe() for u in ungranted(calls, [dev.policies[actor]], dev.to_dev)] == []


@pytest.mark.parametrize("actor", ["rotation", "monitor"])
def test_every_grant_of_the_function_is_used_or_explained(observed: Recording, dev: Dev, actor: str) -> None:
    calls = observed.by_actor(actor)
    assert unexplained(actor, dev.policies[actor], calls, dev) == []
    assert stale_reasons(actor, dev.policies[actor], calls, dev) == []


def test_the_application_reads_only_through_the_reader_policy(observed: Recording, dev: Dev) -> None:
    calls = observed.by_actor("app")
    assert {call.action for call in calls} == {"secretsmanager:GetSecretValue"}
    for key in KEYS:
        secret = dev.deployment.outputs["keySecretArns"][key]
        mine = [call for call in calls if dev.to_dev(call.resources[0]) == secret]
        assert mine, f"the lab's application never read {key}"
        assert ungranted(mine, [dev.policies[f"reader:{key}"]], dev.to_dev) == []
        assert unexplained("reader", dev.policies[f"reader:{key}"], mine, dev) == []
        assert stale_reasons("reader", dev.policies[f"reader:{key}"], mine, dev) == []
        # and another key's reader policy does not let it read this one
        other = next(k for k in KEYS if k != key)
        assert ungranted(mine, [dev.policies[f"reader:{other}"]], dev.to_dev) != []


def test_the_scheduler_role_is_used_by_the_scheduler_only(observed: Recording, dev: Dev) -> None:
    assert unexplained("scheduler", dev.policies["scheduler"], [], dev) == []
    assert not any(call.action.startswith("lambda:") for call in observed.calls)


def test_calls_are_attributed_by_the_call_stack(observed: Recording, dev: Dev) -> None:
    # the janitor revokes through keyrot.rotation.revoke: still the monitor's call; the CLI's revocations are the CLI's
    assert "secretsmanager:UpdateSecretVersionStage" in observed.actions("monitor")
    assert "secretsmanager:UpdateSecretVersionStage" in observed.actions("cli")
    # the rotations `keyrot rotate` starts run in the (emulated) Lambda: their writes are the rotation function's
    cli_puts = {
        dev.to_dev(r) for c in observed.by_actor("cli") if c.action.endswith("PutSecretValue") for r in c.resources
    }
    assert cli_puts == {dev.deployment.outputs["adminKeySecretArn"]}  # admin-key set, nothing else
    # set-up (creating secrets, topics, queues, log groups) is nobody's
    made = {call.action for call in observed.calls}
    assert not made & {"secretsmanager:CreateSecret", "sns:CreateTopic", "sqs:CreateQueue", "logs:CreateLogGroup"}
    assert observed.ignored["secretsmanager:CreateSecret"] >= len(KEYS) + 1


# --- the matcher can fail ---------------------------------------------------------------------------------------------


def _without(policy: Policy, sid: str, *, action: str | None = None, resource: str | None = None) -> Policy:
    statements = []
    for statement in policy["Statement"]:
        statement = dict(statement)
        if statement["Sid"] == sid and action:
            statement["Action"] = [a for a in _list(statement["Action"]) if a != action]
        if statement["Sid"] == sid and resource:
            statement["Resource"] = [r for r in _list(statement["Resource"]) if r != resource]
        statements.append(statement)
    return {**policy, "Statement": statements}


def test_removing_a_grant_makes_the_matcher_report_the_call(observed: Recording, dev: Dev) -> None:
    monitor = observed.by_actor("monitor")
    parameter = f"arn:aws:ssm:{dev.deployment.region}:{dev.deployment.account}:parameter/keyrot/dev/monitor-state"
    shrunk = _without(dev.policies["monitor"], "MonitorState", action="ssm:PutParameter")
    assert {u.describe() for u in ungranted(monitor, [shrunk], dev.to_dev)} == {
        f"monitor: ssm:PutParameter on {parameter}"
    }
    batch = dev.deployment.outputs["keySecretArns"]["batch-embeddings"]
    narrowed = _without(dev.policies["rotation"], "RotateManagedSecrets", resource=batch)
    reported = ungranted(observed.by_actor("rotation"), [narrowed], dev.to_dev)
    assert reported and {u.resource for u in reported} == {batch}
    # and an unused grant is reported as such
    extra = {**dev.policies["rotation"], "Statement": [*dev.policies["rotation"]["Statement"], _extra_grant()]}
    assert unexplained("rotation", extra, observed.by_actor("rotation"), dev) == [
        ("Extra", "secretsmanager:DeleteSecret", "*")
    ]


def _extra_grant() -> dict[str, Any]:
    return {"Sid": "Extra", "Effect": "Allow", "Action": ["secretsmanager:DeleteSecret"], "Resource": "*"}


def test_the_session_check_reports_what_the_dev_policies_do_not_grant() -> None:
    recorded = Recording()
    secret = f"arn:aws:secretsmanager:us-east-1:{EMULATOR_ACCOUNT}:secret:keyrot/x/y-AbCdEf"
    recorded.add(Call("monitor", "secretsmanager:GetSecretValue", (secret,)))
    recorded.add(Call("monitor", "cloudwatch:PutMetricData", ("*",), (("cloudwatch:namespace", "Keyrot"),)))
    assert session_violations(recorded, dev_policies_by_type()) == []
    recorded.add(Call("monitor", "secretsmanager:DeleteSecret", (secret,)))
    recorded.add(Call("monitor", "cloudwatch:PutMetricData", ("*",), (("cloudwatch:namespace", "AWS/Lambda"),)))
    recorded.add(Call("app", "secretsmanager:PutSecretValue", (secret,)))
    recorded.add(Call("rotation", "ssm:GetParameter", ("arn:aws:ssm:us-east-1:1:parameter/keyrot/x",)))
    recorded.add(Call("cli", "secretsmanager:DeleteSecret", (secret,)))  # the CLI is checked against docs/cli.md
    assert sorted(v.describe() for v in session_violations(recorded, dev_policies_by_type())) == [
        f"app: secretsmanager:PutSecretValue on {secret}",
        "monitor: cloudwatch:PutMetricData on * [cloudwatch:namespace=AWS/Lambda]",
        f"monitor: secretsmanager:DeleteSecret on {secret}",
        "rotation: ssm:GetParameter on arn:aws:ssm:us-east-1:1:parameter/keyrot/x",
    ]


# --- the operator CLI against docs/cli.md -----------------------------------------------------------------------------


def _operator_section() -> str:
    text = (harness().REPO_ROOT / "docs" / "cli.md").read_text()
    return text.split("## IAM permissions for operators", 1)[1].split("\n## ", 1)[0]


def documented_cli_actions() -> set[str]:
    """Every action the operator table names (bare names are Secrets Manager's, as the table abbreviates them)."""
    table = [line for line in _operator_section().splitlines() if line.startswith("|")]
    actions = set()
    for token in re.findall(r"`([^`]+)`", "\n".join(table)):
        if re.fullmatch(r"[a-z0-9-]+:[A-Za-z]+", token):
            actions.add(token)
        elif re.fullmatch(r"[A-Z][A-Za-z]+", token):
            actions.add(f"secretsmanager:{token}")
    return actions


def documented_operator_policy(dev: Dev) -> Policy:
    """The example policy of docs/cli.md, for environment dev in the dev stack's account and region."""
    block = _operator_section().split("```json", 1)[1].split("```", 1)[0]
    d = dev.deployment
    text = block.replace("eu-west-1", d.region).replace("123456789012", d.account)
    return dict(json.loads(text.replace("keyrot/prod/", "keyrot/dev/").replace("keyrot-prod-", "keyrot-dev-")))


def test_the_cli_calls_only_what_docs_cli_md_documents(observed: Recording) -> None:
    documented = documented_cli_actions()
    assert "secretsmanager:RotateSecret" in documented and "sts:GetCallerIdentity" in documented
    assert observed.actions("cli") - documented == set()
    assert documented - observed.actions("cli") == set(CLI_NOT_CALLED)


def test_the_documented_example_policy_grants_every_cli_call(observed: Recording, dev: Dev) -> None:
    policy = documented_operator_policy(dev)
    assert granted_actions(policy) == documented_cli_actions()
    assert [u.describe() for u in ungranted(observed.by_actor("cli"), [policy], dev.to_dev)] == []


# --- the figures ------------------------------------------------------------------------------------------------------


def test_least_privilege_summary(observed: Recording, dev: Dev) -> None:
    checks = {
        "rotation": ([dev.policies["rotation"]], observed.by_actor("rotation")),
        "monitor": ([dev.policies["monitor"]], observed.by_actor("monitor")),
        "app": ([p for name, p in dev.policies.items() if name.startswith("reader:")], observed.by_actor("app")),
        "cli": ([documented_operator_policy(dev)], observed.by_actor("cli")),
    }
    parts, total = [], 0
    for actor, (policies, calls) in checks.items():
        total += len(ungranted(calls, policies, dev.to_dev))
        granted = set().union(*(granted_actions(p) for p in policies))
        noun = "documented" if actor == "cli" else "granted"
        parts.append(f"{actor} {len({c.action for c in calls})} actions used/{len(granted)} {noun}")
    line = f"least privilege: {', '.join(parts)}, {total} ungranted"
    print(f"\n{line}")
    if line not in FIGURES:
        FIGURES.append(line)
    assert total == 0
