"""Fault matrix, monitor: every remote call of a monitor run x every fault kind, then the next scheduled run.

The run is recorded once (a cold Lambda: the ledger reads every secret value) and covers usage publication with its
intent and marker, the cost and inventory reads, a notification (an unmanaged key was used) and the janitor
confirming an idle previous key's quiet window and revoking it. Each scenario gets its own environment on one shared
moto and stand-in, and the clock set back to the same start. Invariants:

- the fault either fails the run with keyrot's typed error, or (inside the janitor's revocation) is reported as a
  revocation failure with a notification naming the error, or (inside the janitor's quiet-window check) leaves the
  key unrevoked for that run, which completes; a crash is a crash; a fault on the wire does so only after the
  function's AWS client (built by the production factory, with its retry configuration) made every attempt it is
  configured to make;
- right after the failed run no bucket is counted twice (every per-bucket sum is at most the usage);
- after the next scheduled run every bucket is counted exactly once and none is skipped (exact per-bucket sums,
  watermark past the usage, no pending intent), and the previous key is revoked (dead, KEYROT_REVOKED), never lost;
- the current key is never touched.
"""

from __future__ import annotations

from typing import Any

import pytest

from keyrot.constants import STAGE_REVOKED
from keyrot.errors import AwsCallError, KeyrotError
from keyrot.monitor import ledger, publisher
from keyrot.monitor import run as monitor_run
from keyrot.monitor.run import MonitorReport, run_monitor
from keyrot.openai_admin import KeyStatus
from lab.monitor_scenario import MonitorWorld
from lab.openai_standin import ManualClock, OpenAIStandIn
from lab.remote_calls import SimulatedCrash
from lab.scenario import FAST_RETRY
from tests.prove.faultkit import (
    TALLIES,
    AwsFaultKind,
    Call,
    Checks,
    CrashKind,
    FaultKind,
    FaultLog,
    disarm,
    inject,
    max_attempts,
    sequence,
    skip_botocore_backoff,
)
from tests.prove.monitor_lab import MonitorLab, Prepared, expected_sums, published_sums

ATTEMPTS = FAST_RETRY.max_attempts
JANITOR_PHASE = "janitor revocation"
JANITOR_CHECK_PHASE = "janitor quiet-window check"
SCHEDULE_SECONDS = 300
SCHEDULED_RUNS = 3


@pytest.fixture
def phases(monkeypatch: pytest.MonkeyPatch) -> dict[str, FaultLog]:
    """Marks the calls the janitor makes: its quiet-window check (a failure means no revocation this run) and its
    revocation (failures are reported, not raised)."""
    active: dict[str, FaultLog] = {}

    def marked(phase: str, function: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            log = active.get("log")
            if log is not None:
                log.step = phase
            try:
                return function(*args, **kwargs)
            finally:
                if log is not None:
                    log.step = None

        return call

    monkeypatch.setattr(monitor_run, "revoke_previous", marked(JANITOR_PHASE, monitor_run.revoke_previous))
    monkeypatch.setattr(
        monitor_run.MonitorRun, "_recent_use", marked(JANITOR_CHECK_PHASE, monitor_run.MonitorRun._recent_use)
    )
    return active


def record(matrix: MonitorLab, phases: dict[str, FaultLog]) -> list[Call]:
    prepared = matrix.prepare()
    log = FaultLog()
    phases["log"] = log
    report = run_monitor(matrix.dependencies(prepared.world, log))
    assert report.revoked == [prepared.previous.key_id] and report.unmanaged_keys, report
    assert published_sums(prepared.world) == expected_sums(prepared.world)
    return sequence(log, matrix.openai)


def run_scenario(
    matrix: MonitorLab, phases: dict[str, FaultLog], call: Call, kind: FaultKind, backoff: list[float]
) -> Checks:
    prepared = matrix.prepare()
    world = prepared.world
    checks = Checks(f"monitor {call.label()} x {kind.name}")
    log = FaultLog()
    phases["log"] = log

    # WHEN the fault hits the call
    inject(log, matrix.openai, call, kind, ATTEMPTS)
    report: MonitorReport | None = None
    error: BaseException | None = None
    backed_off = len(backoff)
    try:
        report = run_monitor(matrix.dependencies(world, log))
    except SimulatedCrash as crash:
        error = crash
    except Exception as exc:  # noqa: BLE001 - any failure is an outcome to check
        error = exc

    # THEN it surfaces, typed, where it was injected (once botocore has retried a fault on the wire)
    if isinstance(kind, AwsFaultKind) and kind.wire is not None:
        # Each service's client as the handler builds it: CloudWatch makes one attempt (PutMetricData is not
        # idempotent: the intent and markers recover it on the next run), the others retry
        client = next(c for c in matrix.clients.values() if c.meta.service_model.operation_names.count(call.name[4:]))
        attempts, configured = log.wire_attempts, max_attempts(client)
        checks.check(attempts == configured, f"botocore made {attempts} attempts, not {configured}")
        waits = len(backoff) - backed_off
        checks.check(waits == attempts - 1, f"botocore backed off {waits} times in {attempts} attempts")
    if isinstance(kind, CrashKind):
        checks.check(isinstance(error, SimulatedCrash) and log.calls[-1:] == [call.name], "the crash point moved")
    elif call.step == JANITOR_PHASE:
        _check_revocation_failure(checks, world, prepared, kind, report, error)
    elif call.step == JANITOR_CHECK_PHASE:
        # The quiet window could not be read: the run completes and revokes nothing on a guess
        if checks.check(report is not None, f"the run failed on the janitor's check: {error!r}"):
            checks.check(report.revoked == [], f"revoked without a confirmed quiet window: {report.revoked}")
        checks.check(matrix.status(prepared.previous.api_key) is KeyStatus.VALID, "the previous key was revoked")
    else:
        checks.check(report is None, "the run completed although a call failed")
        checks.check(isinstance(error, KeyrotError), f"untyped error {type(error).__name__}: {error}")
        checks.check(type(error).__name__ == kind.expected_error, f"{type(error).__name__}, not {kind.expected_error}")
        if isinstance(kind, AwsFaultKind):
            code = error.code if isinstance(error, AwsCallError) else None
            checks.check(code == kind.code, f"AWS error code {code} instead of {kind.code}")
    expected = expected_sums(world)
    for metric, found, wanted in zip(
        ("Requests", "InputTokens", "Unmanaged"), published_sums(world), expected, strict=True
    ):
        over = {bucket: value for bucket, value in found.items() if value > wanted.get(bucket, 0)}
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
    checks.check(
        published_sums(world) == expected, f"sums after the next run: {published_sums(world)} instead of {expected}"
    )
    state = world.state() or {}
    checks.check(state.get("intent") is None, "an intent is left pending")
    checks.check(state.get("watermark", 0) >= world.start + 4 * 60, "the watermark does not cover the usage")
    checks.check(matrix.status(prepared.previous.api_key) is KeyStatus.DEAD, "the previous key is still alive")
    stages = world.rotation.stages(prepared.arn)
    revoked = [version for version, labels in stages.items() if STAGE_REVOKED in labels]
    checks.check(len(revoked) == 1 and "AWSPREVIOUS" in stages[revoked[0]], f"revocation not recorded: {stages}")
    checks.check(matrix.status(prepared.current.api_key) is KeyStatus.VALID, "the current key was cut off")
    return checks


def _next_runs(matrix: MonitorLab, world: MonitorWorld) -> MonitorReport:
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
    backoff = skip_botocore_backoff(monkeypatch)
    clock = ManualClock(0)
    with OpenAIStandIn(clock=clock) as openai:
        # GIVEN the remote calls of a monitor run that publishes usage, notifies and revokes, recorded
        matrix = MonitorLab(openai, clock)
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
                violations += run_scenario(matrix, phases, call, kind, backoff).violations
                tally.scenarios["one run"] += 1
        tally.violations += violations
    assert not violations, f"{len(violations)} invariant violation(s):\n" + "\n".join(violations[:40])
