"""Fault matrix, monitor: every remote call of a monitor run x every fault kind, then the next scheduled run.

The run is recorded once (a cold Lambda: the ledger reads every secret value) and covers usage publication with its
intent and marker, the cost and inventory reads, a notification (an unmanaged key was used) and the janitor
revoking an idle previous key. Each scenario gets its own environment on one shared moto and stand-in, and the
clock set back to the same start. Invariants:

- the fault either fails the run with keyrot's typed error, or (inside the janitor's revocation) is reported as a
  revocation failure with a notification naming the error; a crash is a crash;
- right after the failed run no bucket is counted twice (every per-bucket sum is at most the usage);
- after the next scheduled run every bucket is counted exactly once and none is skipped (exact per-bucket sums,
  watermark past the usage, no pending intent), and the previous key is revoked (dead, KEYROT_REVOKED), never lost;
- the current key is never touched.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
import uuid
from typing import Any

import boto3
import pytest

from keyrot import metric_names as m
from keyrot.constants import STAGE_REVOKED, state_parameter_name
from keyrot.errors import AwsCallError, KeyrotError
from keyrot.monitor import ledger, publisher
from keyrot.monitor import run as monitor_run
from keyrot.monitor.run import MonitorDependencies, MonitorReport, run_monitor
from keyrot.monitor.state import MonitorState
from keyrot.openai_admin import NO_RETRY, KeyStatus, OpenAIKeyProbe, OpenAITransport
from keyrot.secret_model import ManagedKey
from keyrot.testing.monitor_scenario import MonitorWorld
from keyrot.testing.openai_standin import ManualClock, OpenAIStandIn
from keyrot.testing.remote_calls import SimulatedCrash
from keyrot.testing.scenario import FAST_RETRY, RotationWorld
from tests.prove.faultkit import (
    TALLIES,
    AwsFaultKind,
    Call,
    Checks,
    CrashKind,
    FaultKind,
    FaultLog,
    Relay,
    disarm,
    inject,
    sequence,
)

KEY_NAME = "chat-backend"
ATTEMPTS = FAST_RETRY.max_attempts
SETTLE = 600
GRACE = 300
JANITOR_PHASE = "janitor revocation"
SCHEDULE_SECONDS = 300
SPACING = 45 * 60  # a scenario spans about 35 minutes; their metrics never share a minute
SCHEDULED_RUNS = 3
# minute -> (requests by the current key, by the previous key, by an unmanaged key)
USAGE = {1: (3, 2, 0), 2: (4, 0, 5), 3: (6, 1, 0)}
REQUESTS = {minute: current + previous for minute, (current, previous, _) in USAGE.items()}
UNMANAGED = {minute: unmanaged for minute, (_, _, unmanaged) in USAGE.items() if unmanaged}


@dataclasses.dataclass
class Prepared:
    world: MonitorWorld
    arn: str
    current: ManagedKey
    previous: ManagedKey


class Matrix:
    """A fresh environment per scenario, on one moto, one stand-in and one clock, and shared (instrumented) clients.

    Each scenario's clock starts SPACING before the previous one's, so their metrics never share a minute.
    """

    def __init__(self, openai: OpenAIStandIn, clock: ManualClock) -> None:
        self.openai, self.clock = openai, clock
        now = int(time.time())
        self.base = now - now % 60 - 3600
        self.probe = OpenAIKeyProbe(OpenAITransport(openai.base_url, retry=NO_RETRY))
        self._count = itertools.count(1)
        self.clock.set(self.base)
        self.template = MonitorWorld.create(openai, clock, environment="mon-0")
        self.relay = Relay()
        region = self.template.cloudwatch.meta.region_name
        self.clients = {
            name: self.relay.attach(boto3.client(name, region_name=region))
            for name in ("secretsmanager", "cloudwatch", "ssm", "sns")
        }

    def prepare(self) -> Prepared:
        """A secret rotated twice (its previous key idle past the grace period), usage in three minutes by both of
        its keys and by an unmanaged key, and the monitor's watermark at the start: ready for one run."""
        number = next(self._count)
        self.clock.set(self.base - number * SPACING)
        world = self._world(f"mon-{number}")
        arn = world.rotation.create_managed_secret(KEY_NAME)
        previous, current = (self._mint(world, arn) for _ in range(2))
        world.ssm.put_parameter(
            Name=world.settings.state_parameter, Value=MonitorState(watermark=world.start).to_json(), Type="String"
        )
        unmanaged, _ = world.rotation.openai.state.add_user_key(world.rotation.project_id)
        for minute, (by_current, by_previous, by_unmanaged) in USAGE.items():
            for key_id, requests in ((current.key_id, by_current), (previous.key_id, by_previous)):
                if requests:
                    self._usage(world, key_id, minute, requests)
            if by_unmanaged:
                self._usage(world, unmanaged, minute, by_unmanaged, kind="embeddings")
        self.clock.advance(5 * 60 + SETTLE)
        self.openai.faults.clear()
        self.openai.reset_calls()
        ledger.clear_cache()
        return Prepared(world, arn, current, previous)

    def _world(self, environment: str) -> MonitorWorld:
        """MonitorWorld.create's environment (project, admin key, topic and inbox), with the template's clients."""
        template = self.template
        rotation = RotationWorld.create(
            self.openai, template.rotation.secrets, environment=environment, now=template.rotation.now
        )
        topic_arn = template.sns.create_topic(Name=f"keyrot-{environment}-oncall")["TopicArn"]
        queue_url = template.sqs.create_queue(QueueName=f"oncall-inbox-{environment}")["QueueUrl"]
        attributes = template.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        template.sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=attributes["Attributes"]["QueueArn"])
        settings = dataclasses.replace(
            template.settings,
            environment=environment,
            admin_secret_arn=rotation.admin_secret_arn,
            project_id=rotation.project_id,
            topic_arn=topic_arn,
            state_parameter=state_parameter_name(environment),
            grace_period_seconds=GRACE,
            quiet_window_seconds=GRACE,
            usage_kinds=("completions", "embeddings"),
        )
        return dataclasses.replace(
            template,
            rotation=rotation,
            topic_arn=topic_arn,
            queue_url=queue_url,
            settings=settings,
            start=int(self.clock()),
        )

    def dependencies(self, world: MonitorWorld, log: FaultLog) -> MonitorDependencies:
        """What `MonitorWorld.recorded_dependencies` builds, on the shared instrumented clients."""
        self.relay.log = log
        clients = self.clients
        rotation = dataclasses.replace(world.rotation, secrets=clients["secretsmanager"], session_factory=log.session)
        recorded = dataclasses.replace(world, rotation=rotation)
        return recorded.dependencies(cloudwatch=clients["cloudwatch"], ssm=clients["ssm"], sns=clients["sns"])

    def _mint(self, world: MonitorWorld, arn: str) -> ManagedKey:
        """A rotation's outcome, written directly: a keyrot service account and its key, stored as AWSCURRENT
        (AWSPREVIOUS follows). The monitor, not the rotation, is under test here."""
        rotation = world.rotation
        token = str(uuid.uuid4())
        name = f"keyrot:{rotation.environment}:{KEY_NAME}:{token}"
        account, key = rotation.openai.state.create_service_account(
            rotation.project_id, name, with_key=True, expires_in=None
        )
        assert key is not None
        value = ManagedKey(
            api_key=key.value,
            key_id=key.id,
            service_account_id=account.id,
            project_id=rotation.project_id,
            environment=rotation.environment,
            key_name=KEY_NAME,
            created_at=world.now(),
        )
        rotation.secrets.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=value.to_json())
        return value

    @staticmethod
    def _usage(world: MonitorWorld, key_id: str, minute: int, requests: int, kind: str = "completions") -> None:
        world.rotation.openai.state.record_usage(
            key_id, kind, at=world.start + minute * 60 + 5, num_model_requests=requests, input_tokens=requests * 10
        )

    def status(self, api_key: str) -> KeyStatus:
        return self.probe.check(api_key).status


@pytest.fixture
def phases(monkeypatch: pytest.MonkeyPatch) -> dict[str, FaultLog]:
    """Marks the calls the janitor's revocation makes (its failures are reported, not raised)."""
    active: dict[str, FaultLog] = {}
    revoke = monitor_run.revoke_previous

    def revoke_previous(*args: Any, **kwargs: Any) -> Any:
        log = active.get("log")
        if log is not None:
            log.step = JANITOR_PHASE
        try:
            return revoke(*args, **kwargs)
        finally:
            if log is not None:
                log.step = None

    monkeypatch.setattr(monitor_run, "revoke_previous", revoke_previous)
    return active


def _sums(world: MonitorWorld) -> tuple[dict[int, float], dict[int, float], dict[int, float]]:
    t, env = world.start, world.settings.environment
    window = (t - SETTLE, t + 15 * 60)
    return (
        world.sums(m.REQUESTS, m.key_dimensions(env, KEY_NAME), *window),
        world.sums(m.INPUT_TOKENS, m.key_dimensions(env, KEY_NAME), *window),
        world.sums(m.UNMANAGED_KEY_REQUESTS, m.environment_dimensions(env), *window),
    )


def _expected(world: MonitorWorld) -> tuple[dict[int, float], dict[int, float], dict[int, float]]:
    t = world.start
    return (
        {t + minute * 60: float(n) for minute, n in REQUESTS.items()},
        {t + minute * 60: float(n * 10) for minute, n in REQUESTS.items()},
        {t + minute * 60: float(n) for minute, n in UNMANAGED.items()},
    )


def record(matrix: Matrix, phases: dict[str, FaultLog]) -> list[Call]:
    prepared = matrix.prepare()
    log = FaultLog()
    phases["log"] = log
    report = run_monitor(matrix.dependencies(prepared.world, log))
    assert report.revoked == [prepared.previous.key_id] and report.unmanaged_keys, report
    assert _sums(prepared.world) == _expected(prepared.world)
    return sequence(log, matrix.openai)


def run_scenario(matrix: Matrix, phases: dict[str, FaultLog], call: Call, kind: FaultKind) -> Checks:
    prepared = matrix.prepare()
    world = prepared.world
    checks = Checks(f"monitor {call.label()} x {kind.name}")
    log = FaultLog()
    phases["log"] = log

    # WHEN the fault hits the call
    inject(log, matrix.openai, call, kind, ATTEMPTS)
    report: MonitorReport | None = None
    error: BaseException | None = None
    try:
        report = run_monitor(matrix.dependencies(world, log))
    except SimulatedCrash as crash:
        error = crash
    except Exception as exc:  # noqa: BLE001 - any failure is an outcome to check
        error = exc

    # THEN it surfaces, typed, where it was injected
    if isinstance(kind, CrashKind):
        checks.check(isinstance(error, SimulatedCrash) and log.calls[-1:] == [call.name], "the crash point moved")
    elif call.step == JANITOR_PHASE:
        _check_revocation_failure(checks, world, prepared, kind, report, error)
    else:
        checks.check(report is None, "the run completed although a call failed")
        checks.check(isinstance(error, KeyrotError), f"untyped error {type(error).__name__}: {error}")
        checks.check(type(error).__name__ == kind.expected_error, f"{type(error).__name__}, not {kind.expected_error}")
        if isinstance(kind, AwsFaultKind):
            code = error.code if isinstance(error, AwsCallError) else None
            checks.check(code == kind.code, f"AWS error code {code} instead of {kind.code}")
    expected = _expected(world)
    for metric, sums, wanted in zip(("Requests", "InputTokens", "Unmanaged"), _sums(world), expected, strict=True):
        over = {bucket: value for bucket, value in sums.items() if value > wanted.get(bucket, 0)}
        checks.check(not over, f"after the failed run, {metric} counted twice: {over}")
    checks.check(matrix.status(prepared.current.api_key) is KeyStatus.VALID, "the current key was cut off")

    # AND the next scheduled runs (every five minutes), once faults are gone, converge
    disarm(log, matrix.openai, call, kind)
    phases.pop("log")
    try:
        later = _next_runs(matrix, world)
    except Exception as exc:  # noqa: BLE001 - a failing later run is a violation, reported with the others
        checks.check(False, f"the next run failed: {type(exc).__name__}: {exc}")
        return checks
    checks.check(later.skipped is None, f"still skipped after {SCHEDULED_RUNS} scheduled runs: {later.skipped}")
    checks.check(not later.revocation_failures, f"the next run could not revoke: {later.revocation_failures}")
    checks.check(_sums(world) == expected, f"sums after the next run: {_sums(world)} instead of {expected}")
    state = world.state() or {}
    checks.check(state.get("intent") is None, "an intent is left pending")
    checks.check(state.get("watermark", 0) >= world.start + 4 * 60, "the watermark does not cover the usage")
    checks.check(matrix.status(prepared.previous.api_key) is KeyStatus.DEAD, "the previous key is still alive")
    stages = world.rotation.stages(prepared.arn)
    revoked = [version for version, labels in stages.items() if STAGE_REVOKED in labels]
    checks.check(len(revoked) == 1 and "AWSPREVIOUS" in stages[revoked[0]], f"revocation not recorded: {stages}")
    checks.check(matrix.status(prepared.current.api_key) is KeyStatus.VALID, "the current key was cut off")
    return checks


def _next_runs(matrix: Matrix, world: MonitorWorld) -> MonitorReport:
    """Scheduled runs, every five minutes, until one is not skipped (a dead run's lease lapses on its own)."""
    for _ in range(SCHEDULED_RUNS):
        matrix.clock.advance(SCHEDULE_SECONDS)
        ledger.clear_cache()  # each run may land on a fresh Lambda container
        report = world.run()
        if report.skipped is None:
            break
    return report


def _check_revocation_failure(
    checks: Checks,
    world: MonitorWorld,
    prepared: Prepared,
    kind: FaultKind,
    report: MonitorReport | None,
    error: BaseException | None,
) -> None:
    """A failed revocation is reported and retried on the next run; the run itself completes."""
    if not checks.check(report is not None, f"the run failed instead of reporting the revocation: {error!r}"):
        return
    assert report is not None
    checks.check(report.revocation_failures == [prepared.previous.key_id], f"failures {report.revocation_failures}")
    texts = [note["message"] for note in world.notifications()]
    failed = [text for text in texts if "could not revoke" in text]
    checks.check(
        len(failed) == 1 and f"{kind.expected_error}:" in failed[0],
        f"no revocation-failed notification naming {kind.expected_error}",
    )


def test_a_fault_at_any_call_of_a_monitor_run_loses_and_doubles_nothing(
    aws: None, phases: dict[str, FaultLog], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publisher, "USAGE_DATUMS_PER_CALL", 3)  # usage goes out in three calls: partial publishes
    clock = ManualClock(0)
    with OpenAIStandIn(clock=clock) as openai:
        # GIVEN the remote calls of a monitor run that publishes usage, notifies and revokes, recorded
        matrix = Matrix(openai, clock)
        calls = record(matrix, phases)
        names = [call.name for call in calls]
        assert {"aws:PutParameter", "aws:Publish", "aws:UpdateSecretVersionStage"} <= set(names)
        assert names.count("aws:PutMetricData") == 4  # three usage batches, then the gauges
        assert any(call.step == JANITOR_PHASE and call.endpoint == "delete_service_account" for call in calls)
        # WHEN each kind of fault hits each call in turn, THEN every invariant holds
        tally = TALLIES["monitor"]
        violations: list[str] = []
        for call in calls:
            for kind in call.kinds():
                violations += run_scenario(matrix, phases, call, kind).violations
                tally.scenarios["one run"] += 1
        tally.violations += violations
    assert not violations, f"{len(violations)} invariant violation(s):\n" + "\n".join(violations[:40])
