"""Fault matrix, rotation: every remote call of a rotation x every fault kind, then Secrets Manager's retry.

The calls come from a recorded successful rotation, so a call added to the engine is covered without editing this
file. Four starting points: a secret's first rotation, a secret in steady state (a current key, the previous one
revoked), the same in emergency mode (grace period 0), and the same for a key declared with scopes (its key minted in
two calls: a keyless account, then the scoped key). All scenarios share one moto and one stand-in; each variant
keeps to its own environments (OpenAI project, admin key, secrets). Invariants, checked in every scenario:

- at every moment (after each remote call): AWSCURRENT holds a key that authenticates, and no more than two keyrot
  keys of the secret are live besides those being minted for the rotation in flight;
- the fault surfaces as a failure of the step that made the call, with keyrot's typed error, a RotationFailed
  metric and a log line naming the step and error class (a crashed process reports nothing), and no key material;
  except a fault in finishSecret's cleanup after the promotion (revoking the key it displaced): that never undoes
  the promotion, so the step succeeds and the fault surfaces as a RevocationFailed metric and a log line (in
  emergency mode containment must complete, so there too the step fails);
  a fault on the wire does so only after the function's AWS client (built by the production factory, with its
  retry configuration) made every attempt it is configured to make;
- right after the failure: AWSCURRENT still authenticates (checked over HTTP), the previous key's grace period is
  not cut short, and AWSPENDING is where the next attempt can resume from (or clear);
- Secrets Manager's retry with the same token succeeds at once, and leaves the new key current and working, no
  AWSPENDING, the previous key as it should be (valid, or revoked in emergency mode), the key it pushed out of
  AWSPREVIOUS revoked, and no orphan account.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
from collections import Counter
from contextlib import redirect_stdout
from typing import Any

import boto3
import pytest

from keyrot import metric_names as m
from keyrot.aws.clients import aws_client
from keyrot.constants import STAGE_CURRENT, STAGE_PENDING, STAGE_PREVIOUS, STAGE_REVOKED
from keyrot.errors import AwsCallError, KeyrotError, SecretContractError
from keyrot.handlers import rotate
from keyrot.handlers.rotate import report_cleanup
from keyrot.observability import PowertoolsRotationTelemetry, flush_metrics
from keyrot.openai_admin import NO_RETRY, KeyStatus, OpenAIKeyProbe, OpenAITransport
from keyrot.rotation import RotationRequest, run_rotation_step
from keyrot.secret_model import ManagedKey
from lab.moto_gaps import moto_secret
from lab.openai_standin import OpenAIStandIn
from lab.openai_standin.state import ISSUED_SECRETS
from lab.remote_calls import SimulatedCrash
from lab.scenario import FAST_RETRY, RotationWorld
from tests.prove.faultkit import (
    RETRY_AFTER_SECONDS,
    TALLIES,
    ArnDriver,
    AwsFaultKind,
    Call,
    Checks,
    CrashKind,
    FaultKind,
    FaultLog,
    OpenAIFaultKind,
    Relay,
    disarm,
    failure_logs,
    failure_metrics,
    inject,
    json_lines,
    max_attempts,
    sequence,
    skip_botocore_backoff,
)

REGION = "us-east-1"
KEY_NAME = "chat-backend"
ATTEMPTS = FAST_RETRY.max_attempts  # the transport's attempts per logical OpenAI call


@dataclasses.dataclass(frozen=True)
class Variant:
    """Where the secret stands before the faulted rotation, and how that state is restored after each scenario."""

    name: str
    rotated: bool  # False: a secret with no value yet; True: a current key and a previous key
    emergency: bool  # grace period 0: finishSecret revokes the previous key (else it is live, in its grace period)
    scopes: tuple[str, ...] | None = None  # the key's declared scopes: minted as a keyless account, then a scoped key

    @property
    def settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {"grace_period_seconds": 0} if self.emergency else {}
        if self.scopes is not None:
            settings["key_scopes"] = {KEY_NAME: self.scopes}
        return settings


VARIANTS = (
    Variant("first-rotation", rotated=False, emergency=False),
    Variant("steady-state", rotated=True, emergency=False),
    Variant("emergency", rotated=True, emergency=True),
    Variant("scoped", rotated=True, emergency=False, scopes=("api.model.read", "model.request")),
)


class Matrix:
    """One variant's scenarios on a shared moto and stand-in.

    A first rotation gets a fresh environment (OpenAI project, admin key, secret) per scenario. The other variants
    keep rotating one long-lived secret. Steady state starts every scenario with a current key and a previous key
    still live (in its grace period), so the faulted rotation runs with the most keys a secret ever has, and its
    finishSecret revokes the key it pushes out of AWSPREVIOUS. In emergency mode finishSecret revokes every key but
    the new one. A scenario with violations is followed by a fresh environment.
    """

    def __init__(self, openai: OpenAIStandIn, variant: Variant) -> None:
        self.openai = openai
        self.variant = variant
        self.secrets = boto3.client("secretsmanager", region_name=REGION)  # Secrets Manager's side, and checks
        self.relay = Relay()
        # The function's client as the handler builds it: the production factory's, with its retry configuration
        self.function_secrets = self.relay.attach(aws_client("secretsmanager", REGION))
        self.aws_attempts = max_attempts(self.function_secrets)
        self.backoff: list[float] = []  # botocore's sleeps between retries, recorded (see skip_botocore_backoff)
        self.probe = OpenAIKeyProbe(OpenAITransport(openai.base_url, retry=NO_RETRY))
        self._count = itertools.count(1)
        self._kept: tuple[RotationWorld, str] | None = None
        self.cleanup_calls: set[int] = set()  # indices of finishSecret's calls after the promotion, before it ends

    def world(self) -> tuple[RotationWorld, str]:
        if self._kept is None:
            self._kept = self._fresh()
        world, arn = self._kept
        if not self.variant.rotated:
            self._kept = None
        self.openai.faults.clear()
        self.openai.reset_calls()
        return world, arn

    def discard(self) -> None:
        """Start the next scenario from a fresh environment."""
        self._kept = None

    def _fresh(self) -> tuple[RotationWorld, str]:
        environment = f"{self.variant.name[:5]}-{next(self._count)}"
        world = RotationWorld.create(self.openai, self.secrets, environment=environment, **self.variant.settings)
        arn = world.create_managed_secret(KEY_NAME)
        if self.variant.rotated:
            for _ in range(2):
                assert world.driver().rotate(arn).succeeded
        return world, arn

    def lambda_driver(self, world: RotationWorld, log: FaultLog) -> tuple[ArnDriver, list[str]]:
        """Secrets Manager's side plain; the function's own calls go through `log`. Returns the stdout of each step."""
        self.relay.use(log)
        function_world = dataclasses.replace(world, secrets=self.function_secrets, session_factory=log.session)
        rotate.metrics.default_dimensions.clear()  # one Lambda per environment: drop the previous scenario's
        rotate.metrics.clear_metrics()
        telemetry = PowertoolsRotationTelemetry(rotate.metrics, rotate.logger, world.environment)
        outputs: list[str] = []

        def invoke(event: dict[str, Any]) -> Any:
            # As the handler does: one context per invocation, telemetry, metrics flushed however the step ends.
            log.step = event["Step"]
            buffer = io.StringIO()
            try:
                with redirect_stdout(buffer), flush_metrics(rotate.metrics):
                    context = function_world.context()
                    outcome = run_rotation_step(RotationRequest.from_event(event), context, telemetry)
                    report_cleanup(rotate.metrics, rotate.logger, outcome)
                    return outcome
            finally:
                outputs.append(buffer.getvalue())

        return ArnDriver(world.secrets, invoke), outputs

    def record(self) -> list[Call]:
        world, arn = self.world()
        log = FaultLog()
        driver, _ = self.lambda_driver(world, log)
        run = driver.rotate(arn, token=driver.start(arn))
        assert run.succeeded and run.attempts == 1, run.failures
        calls = sequence(log, self.openai)
        stage_moves = [c.index for c in calls if c.step == "finishSecret" and c.name == "aws:UpdateSecretVersionStage"]
        self.cleanup_calls = {c.index for c in calls if c.step == "finishSecret" and min(stage_moves) < c.index}
        self.cleanup_calls -= {max(stage_moves)}  # the last move (AWSPENDING off) ends the step after the cleanup
        return calls

    def status(self, api_key: str) -> KeyStatus:
        return self.probe.check(api_key).status


# --- state read straight from moto and the stand-in (no remote calls, so it can run after every call) -------------


def _moto_value(arn: str, stage: str) -> ManagedKey | None:
    for version in moto_secret(REGION, arn).versions.values():
        if stage in version["version_stages"] and "secret_string" in version:
            return ManagedKey.from_json(version["secret_string"])
    return None


def _moto_stages(arn: str) -> dict[str, list[str]]:
    return {vid: list(version["version_stages"]) for vid, version in moto_secret(REGION, arn).versions.items()}


def _moto_current(arn: str) -> ManagedKey:
    current = _moto_value(arn, STAGE_CURRENT)
    assert current is not None, "the secret has no AWSCURRENT value"
    return current


def _live_keys_by_token(world: RotationWorld) -> Counter[str]:
    state = world.openai.state
    prefix = f"keyrot:{world.environment}:{KEY_NAME}:"
    with state.lock:
        keys = [k for k in state.keys.values() if k.project_id == world.project_id and k.owner_name.startswith(prefix)]
    return Counter(key.owner_name[len(prefix) :] for key in keys if state.key_is_live(key.id))


class Watch:
    """Runs after every remote call of the function."""

    def __init__(self, world: RotationWorld, arn: str, checks: Checks) -> None:
        self.world, self.arn, self.checks = world, arn, checks
        self.token: str | None = None
        self._failed: set[str] = set()  # report each invariant once per scenario, at the first call that broke it

    def __call__(self, name: str) -> None:
        state = self.world.openai.state
        current = _moto_value(self.arn, STAGE_CURRENT)
        if current is not None:
            key = state.keys.get(current.key_id)
            works = key is not None and key.value == current.api_key and state.key_is_live(current.key_id)
            self._check("current", works, f"after {name}: the AWSCURRENT key does not authenticate")
        live = _live_keys_by_token(self.world)
        in_flight = live.pop(self.token, 0) if self.token else 0
        others = sum(live.values())
        self._check("others", others <= 2, f"after {name}: {others} keys live besides the one being minted")
        # Keys minted for the rotation in flight: the one being minted, plus at most one whose create failed after it
        # may have taken effect (its answer lost: the transport never retries such a create), until the retry's
        # createSecret sweeps all but the stored one.
        self._check("twins", in_flight <= 2, f"after {name}: {in_flight} keys live for the rotation in flight")

    def _check(self, invariant: str, condition: bool, message: str) -> None:
        if invariant not in self._failed and not self.checks.check(condition, message):
            self._failed.add(invariant)


# --- one scenario -------------------------------------------------------------------------------------------------


def run_scenario(matrix: Matrix, call: Call, kind: FaultKind) -> Checks:
    openai, variant = matrix.openai, matrix.variant
    world, arn = matrix.world()
    checks = Checks(f"{variant.name} {call.label()} x {kind.name}")
    before = _moto_value(arn, STAGE_CURRENT)
    previous_before = _moto_value(arn, STAGE_PREVIOUS)
    watch = Watch(world, arn, checks)
    log = FaultLog(watch)
    driver, outputs = matrix.lambda_driver(world, log)
    token = driver.start(arn)
    watch.token = token
    slept, backed_off = len(world.sleeps), len(matrix.backoff)

    # WHEN the fault hits the call
    inject(log, openai, call, kind, ATTEMPTS)
    try:
        run = driver.rotate(arn, token=token, max_attempts=1)
    except SimulatedCrash:
        run = None

    # THEN it surfaces where it was injected, typed and reported (or, for a crash, not reported at all)
    lines = json_lines("".join(outputs))
    if isinstance(kind, CrashKind):
        checks.check(run is None and log.calls[-1:] == [call.name], f"the crash point moved: {log.calls[-3:]}")
        checks.check(not failure_metrics(lines) and not failure_logs(lines), "a crashed process reported a failure")
    elif call.index in matrix.cleanup_calls and not variant.emergency:
        _check_cleanup_failure(checks, run, json_lines(outputs[-1]) if outputs else [])
    else:
        _check_failure(checks, call, kind, run, json_lines(outputs[-1]) if outputs else [])
    if isinstance(kind, AwsFaultKind) and kind.wire is not None:
        attempts, waits = log.wire_attempts, len(matrix.backoff) - backed_off
        checks.check(attempts == matrix.aws_attempts, f"botocore made {attempts} attempts, not {matrix.aws_attempts}")
        checks.check(waits == attempts - 1, f"botocore backed off {waits} times in {attempts} attempts")
    if isinstance(kind, OpenAIFaultKind) and kind.expected_error == "RateLimitedError":
        waits = world.sleeps[slept:].count(RETRY_AFTER_SECONDS)
        checks.check(waits == ATTEMPTS - 1, f"Retry-After honoured {waits} times, not {ATTEMPTS - 1}")
    leaked = ISSUED_SECRETS.found_in("".join(outputs))
    checks.check(not leaked, f"{len(leaked)} key value(s) in the function's logs or metrics")

    # Secrets Manager retries minutes later: requests the function gave up on have landed by then
    disarm(log, openai, call, kind)
    _check_resumable(checks, matrix, world, arn, token, before)

    # AND Secrets Manager's retry with the same token converges
    outputs.clear()
    retry = driver.rotate(arn, token=token)
    checks.check(retry.succeeded and retry.attempts == 1, f"the retry did not succeed at once: {retry.failures}")
    checks.check(not failure_metrics(json_lines("".join(outputs))), "the retry reported a failure")
    if retry.succeeded:
        _check_converged(checks, matrix, world, arn, token, before, previous_before)
    if checks.violations:
        matrix.discard()
    return checks


def _check_failure(checks: Checks, call: Call, kind: FaultKind, run: Any, lines: list[dict[str, Any]]) -> None:
    if not checks.check(run is not None and not run.succeeded and len(run.failures) == 1, f"no failure: {run}"):
        return
    step, error = run.failures[0]
    error_class = type(error).__name__
    checks.check(step == call.step, f"failed in {step}, not in {call.step} which made the call")
    checks.check(isinstance(error, KeyrotError), f"untyped error {error_class}")
    checks.check(error_class == kind.expected_error, f"{error_class} instead of {kind.expected_error}")
    if isinstance(kind, AwsFaultKind):
        code = error.code if isinstance(error, AwsCallError) else None
        checks.check(code == kind.code, f"AWS error code {code} instead of {kind.code}")
    metrics = failure_metrics(lines)
    checks.check(
        [(d.get("step"), d.get("error_class")) for d in metrics] == [(step, error_class)],
        f"RotationFailed metric metadata {[(d.get('step'), d.get('error_class')) for d in metrics]}",
    )
    logs = failure_logs(lines)
    checks.check(
        [(d.get("step"), d.get("error_class")) for d in logs] == [(step, error_class)],
        f"failure log lines {[(d.get('step'), d.get('error_class')) for d in logs]}",
    )


def _check_cleanup_failure(checks: Checks, run: Any, lines: list[dict[str, Any]]) -> None:
    """A fault while finishSecret revokes what its promotion displaced: the rotation stands, the fault is reported."""
    checks.check(run is not None and run.succeeded, f"a failed cleanup failed the rotation: {run}")
    checks.check(not failure_metrics(lines), "a failed cleanup reported the rotation as failed")
    revocation_failed = [line for line in lines if _has_metric(line, m.REVOCATION_FAILED)]
    checks.check(len(revocation_failed) == 1, f"{len(revocation_failed)} RevocationFailed metric(s), not 1")
    logged = [line for line in lines if line.get("message") == "displaced key not revoked"]
    checks.check(bool(logged), "the failed cleanup was not logged")


def _has_metric(line: dict[str, Any], name: str) -> bool:
    directives = line.get("_aws", {}).get("CloudWatchMetrics", [])
    return any(metric["Name"] == name for directive in directives for metric in directive["Metrics"])


def _check_resumable(
    checks: Checks, matrix: Matrix, world: RotationWorld, arn: str, token: str, before: ManagedKey | None
) -> None:
    stages = _moto_stages(arn)
    promoted = STAGE_CURRENT in stages.get(token, [])
    if before is not None:
        current = _moto_current(arn)
        checks.check(matrix.status(current.api_key) is KeyStatus.VALID, "mid-scenario: AWSCURRENT does not work")
        if not (promoted and matrix.variant.emergency):
            checks.check(matrix.status(before.api_key) is KeyStatus.VALID, "mid-scenario: the old key was cut off")
    pending = [version for version, labels in stages.items() if STAGE_PENDING in labels]
    checks.check(pending in ([token], [] if promoted else [token]), f"mid-scenario: AWSPENDING on {pending}")
    if promoted or pending != [token]:
        return
    try:
        value = _moto_value(arn, STAGE_PENDING)
    except SecretContractError as exc:
        checks.check(False, f"mid-scenario: the pending value cannot be read: {exc}")
        return
    if value is not None:
        identity = (value.environment, value.key_name, value.project_id)
        checks.check(identity == (world.environment, KEY_NAME, world.project_id), "mid-scenario: foreign pending")
        checks.check(world.openai.state.key_is_live(value.key_id), "mid-scenario: the pending key is dead")


def _check_converged(
    checks: Checks,
    matrix: Matrix,
    world: RotationWorld,
    arn: str,
    token: str,
    before: ManagedKey | None,
    previous_before: ManagedKey | None,
) -> None:
    stages = _moto_stages(arn)
    current = _moto_current(arn)
    checks.check(STAGE_CURRENT in stages.get(token, []), "the rotated version is not AWSCURRENT")
    checks.check(matrix.status(current.api_key) is KeyStatus.VALID, "the new current key does not work")
    checks.check(not any(STAGE_PENDING in labels for labels in stages.values()), f"AWSPENDING left: {stages}")
    previous = _moto_value(arn, STAGE_PREVIOUS)
    expected = {current.service_account_id}
    if before is None:
        checks.check(previous is None, "a first rotation has a previous key")
    elif checks.check(previous is not None and previous.key_id == before.key_id, "AWSPREVIOUS is not the old key"):
        old = matrix.status(before.api_key)
        if matrix.variant.emergency:
            checks.check(old is KeyStatus.DEAD, f"emergency mode left the old key {old.value}")
            revoked = [version for version, labels in stages.items() if STAGE_REVOKED in labels]
            checks.check(revoked and STAGE_CURRENT not in stages[revoked[0]], "the revocation is not recorded")
        else:
            checks.check(old is KeyStatus.VALID, "the old key lost its grace period")
            expected.add(before.service_account_id)
            if previous_before is not None:
                # pushed out of AWSPREVIOUS by this rotation: no label accounts for it, finishSecret revokes it
                live = world.openai.state.key_is_live(previous_before.key_id)
                checks.check(not live, "the key pushed out of AWSPREVIOUS is still live")
    live = {account.id for account in world.keyrot_accounts()}
    checks.check(live == expected, f"orphan or missing accounts: {len(live - expected)} extra, {expected - live}")


# --- the matrix ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=[variant.name for variant in VARIANTS])
@pytest.mark.timeout(1800)  # hundreds of scenarios of a whole rotation each; bounded, but not by the suite default
def test_a_fault_at_any_call_leaves_a_working_key_and_the_retry_converges(
    aws: None, openai_standin: OpenAIStandIn, variant: Variant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the remote calls of a successful rotation, recorded
    matrix = Matrix(openai_standin, variant)
    matrix.backoff = skip_botocore_backoff(monkeypatch)
    calls = matrix.record()
    names = {call.name for call in calls}
    assert {"aws:PutSecretValue", "aws:UpdateSecretVersionStage", "openai:GET /models"} <= names, names
    assert any(call.endpoint == "create_service_account" for call in calls)
    if variant.scopes is not None:
        assert any(call.endpoint == "create_service_account_key" for call in calls)
    # WHEN each kind of fault hits each call in turn, THEN every invariant holds
    tally = TALLIES["rotation"]
    violations: list[str] = []
    for call in calls:
        for kind in call.kinds():
            violations += run_scenario(matrix, call, kind).violations
            tally.scenarios[variant.name] += 1
    tally.violations += violations
    assert not violations, f"{len(violations)} invariant violation(s):\n" + "\n".join(violations[:40])
