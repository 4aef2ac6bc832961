"""Fault matrix, admin-key rotation: every remote call of an admin rotation (and of the scheduled cleanup) x every
fault kind, then Secrets Manager's retry (or the next scheduled run).

The calls come from a recorded successful run, so a call added to the engine is covered without editing this file.
Starting points: the first rotation (the bootstrap key current), steady state (a keyrot key current, the previous one
past its grace: createSecret deletes it, with the current key, before minting), an emergency (grace 0: finishSecret's
cleanup deletes the previous key with the new one), and the scheduled cleanup of a previous key past its grace.
Invariants, checked in every scenario:

- after every remote call: AWSCURRENT holds an admin key that authenticates; at most two keyrot admin keys of the
  environment are live besides those minted for the rotation in flight, and at most two for it (a create whose
  answer was lost is never retried, so its twin lives until the retry's createSecret deletes it by name);
- the fault surfaces as a failure of the step that made the call, with keyrot's typed error, an
  AdminRotationFailed metric and a log line naming step and error class (a crashed process reports nothing), except a
  fault in finishSecret's cleanup after the promotion: the step succeeds and the fault is an AdminKeyCleanupFailed;
  a cleanup run's fault is an AdminKeyCleanupFailed, raised or reported; no output holds key material;
- right after the failure: AWSCURRENT still authenticates and the key it replaced is not cut off (but in an emergency
  after the promotion), AWSPENDING is where the next attempt resumes;
- the retry with the same token succeeds at once: the new key current and working, no AWSPENDING, AWSPREVIOUS the old
  key (live in its grace, or deleted in an emergency), exactly the expected keyrot admin keys live (no twin, no
  orphan) and no probe account; after a faulted cleanup, the next run deletes the previous key and records it.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import re
from collections import Counter
from collections.abc import Callable
from contextlib import redirect_stdout
from typing import Any

import boto3
import pytest
import requests

from keyrot import metric_names as m
from keyrot.admin_rotation import AdminKeyName, AdminKeyValue, run_admin_rotation_step
from keyrot.admin_rotation import steps as admin_steps
from keyrot.admin_rotation.cleanup import clean_up
from keyrot.admin_rotation.telemetry import CLEANUP_FAILED, PowertoolsAdminTelemetry
from keyrot.aws.clients import aws_client
from keyrot.constants import STAGE_CURRENT, STAGE_PENDING, STAGE_PREVIOUS, STAGE_REVOKED
from keyrot.errors import AwsCallError, KeyrotError
from keyrot.handlers import rotate_admin
from keyrot.observability import flush_metrics
from keyrot.rotation import RotationRequest
from lab.moto_gaps import moto_secret
from lab.openai_standin import OpenAIStandIn
from lab.openai_standin.state import ISSUED_SECRETS, ManualClock
from lab.remote_calls import SimulatedCrash, openai_call_name
from tests.functional.admin_rotation.world import FAST_RETRY, AdminWorld
from tests.prove.faultkit import (
    READ_TIMEOUT_SECONDS,
    TALLIES,
    ArnDriver,
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
    json_lines,
    max_attempts,
    sequence,
    skip_botocore_backoff,
)

REGION = "us-east-1"
ATTEMPTS = FAST_RETRY.max_attempts
TALLY = TALLIES.setdefault("admin-rotation", Tally())
CLEANUP_STEP = "cleanup"  # the step name of the scheduled cleanup's calls, and of finishSecret's after the promotion
_KEY_IN_PATH = re.compile(r"/admin_api_keys/[^/?]+")


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    rotated: bool  # False: the bootstrap key current; True: a keyrot key current, the previous one past its grace
    emergency: bool = False  # grace 0: finishSecret's cleanup deletes the previous key
    cleanup: bool = False  # the faulted run is the scheduled cleanup, not a rotation


VARIANTS = (
    Variant("first-rotation", rotated=False),
    Variant("steady-state", rotated=True),
    Variant("emergency", rotated=True, emergency=True),
    Variant("cleanup", rotated=True, cleanup=True),
)


class AdminFaultLog(FaultLog):
    """The fault log, with admin key ids taken out of call names (each scenario's keys have ids of their own)."""

    def session(self) -> requests.Session:
        log = self

        class FaultSession(requests.Session):
            def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
                name = _KEY_IN_PATH.sub("/admin_api_keys/{key}", openai_call_name(str(method), str(url)))
                number = log._count(name)
                slow = log.slow_call
                if slow is not None and slow.covers(name, number):
                    connect, _ = kwargs.get("timeout") or (2.0, None)
                    kwargs["timeout"] = (connect, READ_TIMEOUT_SECONDS)
                response = super().request(method, url, *args, **kwargs)
                log.record(name)
                return response

        return FaultSession()


class Matrix:
    """One variant's scenarios on a shared moto and stand-in; a scenario with violations gets a fresh environment."""

    def __init__(self, openai: OpenAIStandIn, variant: Variant, monkeypatch: pytest.MonkeyPatch) -> None:
        self.openai = openai
        self.variant = variant
        self.secrets = boto3.client("secretsmanager", region_name=REGION)
        self.relay = Relay()
        self.function_secrets = self.relay.attach(aws_client("secretsmanager", REGION))
        self.aws_attempts = max_attempts(self.function_secrets)
        self.backoff = skip_botocore_backoff(monkeypatch)
        self._count = itertools.count(1)
        self._kept: AdminWorld | None = None
        self._done: AdminWorld | None = None  # the last environment given up, whose keys are retired
        self.log: AdminFaultLog | None = None
        original = admin_steps.clean_up

        def traced(ctx: Any, **options: Any) -> Any:
            # finishSecret's cleanup after the promotion: its calls are named as the cleanup's
            if self.log is None or self.log.step != "finishSecret":
                return original(ctx, **options)
            self.log.step = CLEANUP_STEP
            try:
                return original(ctx, **options)
            finally:
                self.log.step = "finishSecret"

        monkeypatch.setattr(admin_steps, "clean_up", traced)

    def world(self) -> AdminWorld:
        if self._kept is None:
            self._retire()
            self._kept = self._fresh()
        world = self._kept
        if not self.variant.rotated:
            self._kept = None
            self._done = world
        if self.variant.cleanup:
            world.rotate()  # a fresh previous keyrot key ...
        world.advance(world.settings.grace_period_seconds + 1)  # ... past its grace
        self.openai.faults.clear()
        self.openai.reset_calls()
        return world

    def discard(self) -> None:
        self._done, self._kept = self._kept or self._done, None

    def _retire(self) -> None:
        """Take the last environment's admin keys out of the organization: the listing stays one page long, so each
        scenario makes the calls the recorded run made."""
        if self._done is None:
            return
        state = self.openai.state
        with state.lock:
            values = [key.value for key in state.admin_keys.values() if not key.revoked]
        for value in values:
            if value == self._done.bootstrap_key or value in {key.value for key in self._done.live_keyrot_keys()}:
                state.revoke_admin_key(value)
        self._done = None

    def _fresh(self) -> AdminWorld:
        environment = f"adm{self.variant.name[:4]}-{next(self._count)}"
        grace = {"grace_period_seconds": 0} if self.variant.emergency else {}
        world = AdminWorld.create(self.openai, self.secrets, environment=environment, **grace)
        if self.variant.rotated:
            for _ in range(2):
                world.rotate()
                world.advance(world.settings.grace_period_seconds + 1)
        return world

    def telemetry(self, world: AdminWorld) -> PowertoolsAdminTelemetry:
        rotate_admin.metrics.default_dimensions.clear()
        rotate_admin.metrics.clear_metrics()
        return PowertoolsAdminTelemetry(rotate_admin.metrics, rotate_admin.logger, world.environment, now=world.now)

    def function_world(self, world: AdminWorld, log: AdminFaultLog) -> AdminWorld:
        self.log = log
        self.relay.use(log)
        return dataclasses.replace(world, secrets=self.function_secrets, session_factory=log.session)

    def lambda_driver(self, world: AdminWorld, log: AdminFaultLog) -> tuple[ArnDriver, list[str]]:
        """The rotation function's steps, as the handler runs them. Returns the stdout of each invocation."""
        function_world = self.function_world(world, log)
        telemetry = self.telemetry(world)
        outputs: list[str] = []

        def invoke(event: dict[str, Any]) -> Any:
            log.step = event["Step"]
            buffer = io.StringIO()
            try:
                with redirect_stdout(buffer), flush_metrics(rotate_admin.metrics):
                    return run_admin_rotation_step(
                        RotationRequest.from_event(event), function_world.context(), telemetry
                    )
            finally:
                outputs.append(buffer.getvalue())

        return ArnDriver(world.secrets, invoke), outputs

    def cleanup_run(self, world: AdminWorld, log: AdminFaultLog) -> Callable[[], tuple[Any, str]]:
        """The scheduled cleanup, as the handler runs it: (the cleanup or the error it raised, its stdout)."""
        function_world = self.function_world(world, log)

        def run() -> tuple[Any, str]:
            telemetry = self.telemetry(world)
            log.step = CLEANUP_STEP
            buffer = io.StringIO()
            result: Any
            with redirect_stdout(buffer), flush_metrics(rotate_admin.metrics):
                try:
                    result = clean_up(function_world.context())
                    telemetry.cleanup_done(result)
                except Exception as exc:  # noqa: BLE001 - the handler counts, logs and raises it; here it is checked
                    telemetry.cleanup_crashed(exc)
                    result = exc
            return result, buffer.getvalue()

        return run

    def record(self) -> list[Call]:
        world = self.world()
        log = AdminFaultLog()
        if self.variant.cleanup:
            result, _ = self.cleanup_run(world, log)()
            assert not isinstance(result, Exception) and len(result.deleted) == 1 and not result.failures, result
        else:
            driver, _ = self.lambda_driver(world, log)
            run = driver.rotate(world.arn, token=driver.start(world.arn))
            assert run.succeeded and run.attempts == 1, run.failures
        self.log = None
        return sequence(log, self.openai)


# --- state read straight from moto and the stand-in (no remote calls: it runs after every call) -------------------


def _moto_value(arn: str, stage: str) -> AdminKeyValue | None:
    for version in moto_secret(REGION, arn).versions.values():
        if stage in version["version_stages"] and "secret_string" in version:
            return AdminKeyValue.from_json(version["secret_string"])
    return None


def _moto_stages(arn: str) -> dict[str, list[str]]:
    return {vid: list(version["version_stages"]) for vid, version in moto_secret(REGION, arn).versions.items()}


def _live_keys_by_token(world: AdminWorld) -> Counter[str]:
    return Counter(AdminKeyName.parse(key.name).token for key in world.live_keyrot_keys())  # type: ignore[union-attr]


class Watch:
    def __init__(self, world: AdminWorld, checks: Checks) -> None:
        self.world, self.checks = world, checks
        self.token: str | None = None
        self._failed: set[str] = set()

    def __call__(self, name: str) -> None:
        current = _moto_value(self.world.arn, STAGE_CURRENT)
        works = current is not None and self.world.authenticates(current.admin_key)
        self._check("current", works, f"after {name}: the AWSCURRENT admin key does not authenticate")
        live = _live_keys_by_token(self.world)
        in_flight = live.pop(self.token, 0) if self.token else 0
        others = sum(live.values())
        self._check("others", others <= 2, f"after {name}: {others} keyrot admin keys live besides the new one")
        self._check("twins", in_flight <= 2, f"after {name}: {in_flight} admin keys live for the rotation in flight")

    def _check(self, invariant: str, condition: bool, message: str) -> None:
        if invariant not in self._failed and not self.checks.check(condition, message):
            self._failed.add(invariant)


def _metrics(lines: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    found = []
    for line in lines:
        for directive in line.get("_aws", {}).get("CloudWatchMetrics", []):
            if any(metric["Name"] == name for metric in directive["Metrics"]):
                found.append(line)
    return found


def _expected_live(variant: Variant, world: AdminWorld, before: AdminKeyValue) -> set[str | None]:
    current = world.current()
    if variant.rotated and not variant.emergency:
        return {current.key_id, before.key_id}
    return {current.key_id}


# --- one rotation scenario ----------------------------------------------------------------------------------------


def run_rotation_scenario(matrix: Matrix, call: Call, kind: FaultKind) -> Checks:
    openai, variant = matrix.openai, matrix.variant
    world = matrix.world()
    checks = Checks(f"{variant.name} {call.label()} x {kind.name}")
    before = world.current()
    watch = Watch(world, checks)
    log = AdminFaultLog(watch)
    driver, outputs = matrix.lambda_driver(world, log)
    token = driver.start(world.arn)
    watch.token = token
    backed_off = len(matrix.backoff)

    # WHEN the fault hits the call
    inject(log, openai, call, kind, ATTEMPTS)
    try:
        run = driver.rotate(world.arn, token=token, max_attempts=1)
    except SimulatedCrash:
        run = None

    # THEN it surfaces where it was injected, typed and reported (a crashed process reports nothing)
    last = json_lines(outputs[-1]) if outputs else []
    every = json_lines("".join(outputs))
    if isinstance(kind, CrashKind):
        checks.check(run is None and log.calls[-1:] == [call.name], f"the crash point moved: {log.calls[-3:]}")
        checks.check(not _metrics(every, m.ADMIN_ROTATION_FAILED), "a crashed process reported a failure")
    elif call.step == CLEANUP_STEP:
        checks.check(run is not None and run.succeeded, f"a failed cleanup failed the rotation: {run}")
        checks.check(len(_metrics(last, m.ADMIN_KEY_CLEANUP_FAILED)) == 1, "the failed cleanup was not counted")
        checks.check(any(line.get("message") == CLEANUP_FAILED for line in last), "the failed cleanup was not logged")
    else:
        _check_failure(checks, call, kind, run, last)
    if isinstance(kind, AwsFaultKind) and kind.wire is not None:
        attempts, waits = log.wire_attempts, len(matrix.backoff) - backed_off
        checks.check(attempts == matrix.aws_attempts, f"botocore made {attempts} attempts, not {matrix.aws_attempts}")
        checks.check(waits == attempts - 1, f"botocore backed off {waits} times in {attempts} attempts")
    leaked = ISSUED_SECRETS.found_in("".join(outputs))
    checks.check(not leaked, f"{len(leaked)} key value(s) in the function's logs or metrics")

    disarm(log, openai, call, kind)
    _check_resumable(checks, variant, world, token, before)

    # AND Secrets Manager's retry with the same token converges
    outputs.clear()
    retry = driver.rotate(world.arn, token=token)
    checks.check(retry.succeeded and retry.attempts == 1, f"the retry did not succeed at once: {retry.failures}")
    checks.check(not _metrics(json_lines("".join(outputs)), m.ADMIN_ROTATION_FAILED), "the retry reported a failure")
    if retry.succeeded:
        _check_converged(checks, variant, world, token, before)
    matrix.log = None
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
    metrics = [(d.get("step"), d.get("error_class")) for d in _metrics(lines, m.ADMIN_ROTATION_FAILED)]
    checks.check(metrics == [(step, error_class)], f"AdminRotationFailed metadata {metrics}")
    logs = [(d.get("step"), d.get("error_class")) for d in lines if d.get("message") == "rotation step failed"]
    checks.check(logs == [(step, error_class)], f"failure log lines {logs}")


def _check_resumable(checks: Checks, variant: Variant, world: AdminWorld, token: str, before: AdminKeyValue) -> None:
    stages = _moto_stages(world.arn)
    promoted = STAGE_CURRENT in stages.get(token, [])
    current = _moto_value(world.arn, STAGE_CURRENT)
    checks.check(current is not None and world.authenticates(current.admin_key), "mid-scenario: AWSCURRENT is dead")
    if not (promoted and variant.emergency):
        checks.check(world.authenticates(before.admin_key), "mid-scenario: the old admin key was cut off")
    pending = [version for version, labels in stages.items() if STAGE_PENDING in labels]
    checks.check(pending in ([token], [] if promoted else [token]), f"mid-scenario: AWSPENDING on {pending}")


def _check_converged(checks: Checks, variant: Variant, world: AdminWorld, token: str, before: AdminKeyValue) -> None:
    stages = _moto_stages(world.arn)
    current = world.current()
    checks.check(STAGE_CURRENT in stages.get(token, []), "the rotated version is not AWSCURRENT")
    checks.check(world.authenticates(current.admin_key), "the new admin key does not work")
    checks.check(not any(STAGE_PENDING in labels for labels in stages.values()), f"AWSPENDING left: {stages}")
    previous = _moto_value(world.arn, STAGE_PREVIOUS)
    checks.check(previous is not None and previous.key_id == before.key_id, "AWSPREVIOUS is not the old admin key")
    if variant.emergency:
        checks.check(not world.authenticates(before.admin_key), "an emergency left the old admin key live")
    else:
        checks.check(world.authenticates(before.admin_key), "the old admin key lost its grace period")
    live = {key.id for key in world.live_keyrot_keys()}
    expected = _expected_live(variant, world, before)
    checks.check(live == expected, f"orphan or missing admin keys: {len(live - expected)} extra, {expected - live}")
    checks.check(world.probe_accounts() == [], "a probe account was left")


# --- one cleanup scenario -----------------------------------------------------------------------------------------


def run_cleanup_scenario(matrix: Matrix, call: Call, kind: FaultKind) -> Checks:
    openai = matrix.openai
    world = matrix.world()
    checks = Checks(f"cleanup {call.label()} x {kind.name}")
    previous = world.previous()
    assert previous is not None and world.authenticates(previous.admin_key)
    watch = Watch(world, checks)
    log = AdminFaultLog(watch)
    run = matrix.cleanup_run(world, log)

    # WHEN the fault hits the call
    inject(log, openai, call, kind, ATTEMPTS)
    try:
        result, output = run()
    except SimulatedCrash:
        result, output = None, ""

    # THEN a fault is never silent: the run raised a typed error or reported the failure, and counted it
    lines = json_lines(output)
    if not isinstance(kind, CrashKind):
        failed = isinstance(result, Exception) or bool(result and result.failures)
        checks.check(failed, f"the fault went unreported: {result}")
        checks.check(not isinstance(result, Exception) or isinstance(result, KeyrotError), f"untyped {result!r}")
        checks.check(len(_metrics(lines, m.ADMIN_KEY_CLEANUP_FAILED)) == 1, "the failure was not counted")
    checks.check(not ISSUED_SECRETS.found_in(output), "a key value in the cleanup's output")
    disarm(log, openai, call, kind)
    checks.check(world.authenticates(world.current().admin_key), "the current admin key was cut off")

    # AND the next scheduled run finishes the job
    matrix.log = None
    second, _ = matrix.cleanup_run(world, AdminFaultLog())()
    checks.check(not isinstance(second, Exception) and not second.failures, f"the next run failed: {second}")
    checks.check(not world.authenticates(previous.admin_key), "the previous admin key is still live")
    stages = _moto_stages(world.arn)
    previous_version = next((v for v, labels in stages.items() if STAGE_PREVIOUS in labels), None)
    checks.check(STAGE_REVOKED in stages.get(previous_version or "", []), "the deletion is not recorded")
    checks.check({key.id for key in world.live_keyrot_keys()} == {world.current().key_id}, "orphan admin keys")
    matrix.log = None
    if checks.violations:
        matrix.discard()
    return checks


# --- the matrix ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS, ids=[variant.name for variant in VARIANTS])
@pytest.mark.timeout(1800)  # hundreds of scenarios of a whole rotation each; bounded, but not by the suite default
def test_a_fault_at_any_admin_rotation_call_leaves_a_working_admin_key_and_the_retry_converges(
    aws: None, variant: Variant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN OpenAI and keyrot on one clock (grace periods pass for both), and the calls of a successful run
    with OpenAIStandIn(clock=ManualClock()) as openai:
        run_matrix(Matrix(openai, variant, monkeypatch))


def run_matrix(matrix: Matrix) -> None:
    variant = matrix.variant
    calls = matrix.record()
    endpoints = {call.endpoint for call in calls}
    if variant.cleanup:
        assert {"delete_admin_api_key", "list_admin_api_keys", "list_service_accounts"} <= endpoints, endpoints
    else:
        assert {"create_admin_api_key", "create_service_account", "list_audit_logs", "costs"} <= endpoints, endpoints
        assert {"aws:PutSecretValue", "aws:UpdateSecretVersionStage", "aws:TagResource"} <= {c.name for c in calls}
    if variant.rotated and not variant.cleanup:
        assert "delete_admin_api_key" in endpoints  # createSecret (steady) or finishSecret (emergency) deletes
    # WHEN each kind of fault hits each call in turn, THEN every invariant holds
    scenario = run_cleanup_scenario if variant.cleanup else run_rotation_scenario
    violations: list[str] = []
    for call in calls:
        for kind in call.kinds():
            violations += scenario(matrix, call, kind).violations
            TALLY.scenarios[variant.name] += 1
    TALLY.violations += violations
    assert not violations, f"{len(violations)} invariant violation(s):\n" + "\n".join(violations[:40])
