"""Fault matrix, monitor: every remote call of a monitor run x every fault kind, then the next scheduled run.

The run is recorded once (a cold Lambda: the secrets part reads every secret value) and covers usage publication with
its intent and marker, the cost and inventory reads, a notification (an unmanaged key was used) and the janitor
confirming an idle previous key's quiet window and revoking it. Each scenario gets its own environment on one shared
moto and stand-in, and the clock set back to the same start. Every call is marked with the part of the run that made
it (lease, secrets, inventory, usage, findings, costs, janitor, state, gauges). Invariants:

- the fault either fails the run with keyrot's typed error, or (inside the janitor's revocation) is reported as a
  revocation failure with a notification naming the error, or (inside the janitor's quiet-window check) leaves the
  key unrevoked for that run, which completes, or (in the best-effort costs) is reported as the costs part's failure
  in a run that completes with its heartbeat and publishes no spend; a crash is a crash; a fault on the wire does so
  only after the function's AWS client (built by the production factory, with its retry configuration) made every
  attempt it is configured to make;
- a failed part is the only part named failed; every other part ran (the janitor and the key-age gauge too), except
  those that need an input (secrets, inventory) that failed; the heartbeat is published exactly when the run
  completes;
- right after the failed run no bucket is counted twice (every per-bucket sum is at most the usage);
- after the next scheduled run every bucket is counted exactly once and none is skipped (exact per-bucket sums,
  watermark past the usage, no pending intent), and the previous key is revoked (dead, KEYROT_REVOKED), never lost;
- the current key is never touched.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
import requests

from keyrot import inventory
from keyrot import metric_names as m
from keyrot.constants import STAGE_REVOKED
from keyrot.errors import AwsCallError, KeyrotError
from keyrot.monitor import audit_watch, publisher
from keyrot.monitor import run as monitor_run
from keyrot.monitor.run import MonitorReport, MonitorRun, run_monitor
from keyrot.monitor.state import POISON_STRIKES
from keyrot.openai_admin import KeyStatus
from lab.monitor_scenario import MonitorWorld
from lab.openai_standin import ManualClock, OpenAIStandIn
from lab.remote_calls import SimulatedCrash
from lab.scenario import FAST_RETRY
from tests.prove.faultkit import (
    OPENAI_FAULTS,
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
from tests.prove.monitor_lab import SPEND, MonitorLab, Prepared, expected_sums, gauge_points, published_sums

ATTEMPTS = FAST_RETRY.max_attempts
JANITOR_PHASE = "janitor revocation"
JANITOR_CHECK_PHASE = "janitor quiet-window check"
# The methods of MonitorRun that make each part's calls; the janitor's two phases above are nested in "janitor".
PART_METHODS = {
    "lease": "_take_lease",
    "secrets": "_read_secrets",
    "inventory": "_take_inventory",
    "usage": "publish_usage",
    "findings": "report_findings",
    "tripwire": "watch_audit_log",
    "costs": "read_costs",
    "janitor": "run_janitor",
    "state": "_release",
    "gauges": "publish_gauges",
}
NEED_INVENTORY = ["usage", "findings", "janitor"]
SCHEDULE_SECONDS = 300
SCHEDULED_RUNS = 3


@pytest.fixture
def phases(monkeypatch: pytest.MonkeyPatch) -> dict[str, FaultLog]:
    """Marks the calls of each part of the run, and within the janitor its quiet-window check (a failure means no
    revocation this run) and its revocation (failures are reported, not raised)."""
    active: dict[str, FaultLog] = {}

    def marked(phase: str, function: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            log = active.get("log")
            outer = log.step if log is not None else None
            if log is not None:
                log.step = phase
            try:
                return function(*args, **kwargs)
            finally:
                if log is not None:
                    log.step = outer

        return call

    for part, method in PART_METHODS.items():
        monkeypatch.setattr(monitor_run.MonitorRun, method, marked(part, getattr(monitor_run.MonitorRun, method)))
    # The audit log is read (and keys read again) inside the inventory part; those calls' failures are the tripwire's
    for method in ("_read", "_apply", "_refresh_held", "_judge"):
        watch = audit_watch.AuditWatch
        monkeypatch.setattr(watch, method, marked("tripwire", getattr(watch, method)))
    monkeypatch.setattr(monitor_run, "carry_out", marked(JANITOR_PHASE, monitor_run.carry_out))
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
    run = MonitorRun(matrix.dependencies(world, log))
    try:
        report = run.execute()
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
    elif call.step == "costs":
        _check_costs_failure(checks, world, prepared, report, error)
    else:
        checks.check(report is None, "the run completed although a call failed")
        checks.check(isinstance(error, KeyrotError), f"untyped error {type(error).__name__}: {error}")
        checks.check(type(error).__name__ == kind.expected_error, f"{type(error).__name__}, not {kind.expected_error}")
        if isinstance(kind, AwsFaultKind):
            code = error.code if isinstance(error, AwsCallError) else None
            checks.check(code == kind.code, f"AWS error code {code} instead of {kind.code}")
        if call.step != "lease":
            _check_other_parts_ran(checks, world, run.report, call.step)
    if not isinstance(kind, CrashKind):
        # The heartbeat rides on the gauges call: a fault after that call landed leaves a beat from a run that did
        # its whole job but could not hear so
        landed = call.step == "gauges" and getattr(kind, "after_effect", False)
        beats = len(gauge_points(world, m.MONITOR_HEARTBEAT, None))
        outcome = "failed" if error else "completed"
        checks.check(beats == (error is None or landed), f"{beats} heartbeat(s) from a run that {outcome}")
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
    checks.check(later.heartbeat and not later.failed_parts, f"the next run was partial: {later.failed_parts}")
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
        inventory.clear_cache()  # each run may land on a fresh Lambda container
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


def _check_costs_failure(
    checks: Checks, world: MonitorWorld, prepared: Prepared, report: MonitorReport | None, error: BaseException | None
) -> None:
    """Costs are best-effort: the run completes, names the costs failure, revokes and publishes the key age, and
    publishes no spend (never a made-up 0)."""
    if not checks.check(report is not None, f"the run failed on the costs: {error!r}"):
        return
    assert report is not None
    checks.check(list(report.failed_parts) == ["costs"], f"failed parts {report.failed_parts}")
    checks.check(report.revoked == [prepared.previous.key_id], f"the janitor revoked {report.revoked}")
    checks.check(len(gauge_points(world, m.KEY_AGE_HOURS)) == 1, "no KeyAgeHours from the run")
    checks.check(gauge_points(world, m.SPEND_TODAY_USD, None) == [], "SpendTodayUSD published without costs")


def _check_other_parts_ran(checks: Checks, world: MonitorWorld, report: MonitorReport, part: str | None) -> None:
    """The failed part is the only one named; the others ran, unless their input (secrets, inventory) failed."""
    checks.check(list(report.failed_parts) == [part], f"failed parts {list(report.failed_parts)}, not [{part}]")
    wanted_not_run = {"secrets": ["inventory", *NEED_INVENTORY], "inventory": NEED_INVENTORY}.get(part or "", [])
    checks.check(report.parts_not_run == wanted_not_run, f"parts not run {report.parts_not_run}")
    if part not in ("secrets", "gauges"):
        checks.check(len(gauge_points(world, m.KEY_AGE_HOURS)) == 1, f"no KeyAgeHours after the {part} failed")
        # The key-age alarm's own metric, the oldest key's age, goes out with the key ages.
        checks.check(
            len(gauge_points(world, m.OLDEST_KEY_AGE_HOURS, None)) == 1, f"no OldestKeyAgeHours after the {part} failed"
        )
    if part != "gauges":
        checks.check(gauge_points(world, m.SPEND_TODAY_USD, None) == [SPEND], f"no spend after the {part} failed")


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


# --- the costs, best-effort: an outage over several runs, and lines in another currency -----------------------------

COSTS_OUTAGE_RUNS = 3
# A cost line's currency as the Costs API might spell it: anything but USD is refused (never summed into USD)
FOREIGN_CURRENCIES: tuple[Any, ...] = ("eur", "EUR", "gbp", "jpy", "usd ", "", None, 840)


class CurrencySession(requests.Session):
    """Costs answers carry a second line, in `currency`, for the current key."""

    def __init__(self, currency: Any) -> None:
        super().__init__()
        self.currency = currency

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().request(method, url, *args, **kwargs)
        if "/organization/costs" in str(url) and response.status_code == 200:
            page = response.json()
            for bucket in page["data"]:
                bucket["results"].append({"amount": {"value": 1.0, "currency": self.currency}, "api_key_id": None})
            response._content = json.dumps(page).encode()
        return response


def _costs_best_effort(checks: Checks, matrix: MonitorLab, prepared: Prepared, runs: int, rerun: Any) -> None:
    """`runs` runs (every five minutes) without readable costs: each completes with every other part done and its
    heartbeat, publishes no spend while the costs are unreadable, and loses no usage; the first revokes."""
    world = prepared.world
    for number in range(1, runs + 1):
        try:
            report = rerun()
        except Exception as exc:  # noqa: BLE001 - a failing run is a violation, reported with the others
            checks.check(False, f"run {number} failed: {type(exc).__name__}: {exc}")
            return
        checks.check(list(report.failed_parts) == ["costs"], f"run {number}: failed parts {report.failed_parts}")
        checks.check(report.heartbeat, f"run {number}: no heartbeat")
        checks.check(len(gauge_points(world, m.KEY_AGE_HOURS)) == number, f"run {number}: KeyAgeHours missing")
        checks.check(gauge_points(world, m.SPEND_TODAY_USD, None) == [], f"run {number}: spend without costs")
        if number == 1:
            checks.check(report.revoked == [prepared.previous.key_id], f"the janitor revoked {report.revoked}")
        matrix.clock.advance(SCHEDULE_SECONDS)
        inventory.clear_cache()
    checks.check(published_sums(world) == expected_sums(world), f"usage: {published_sums(world)}")
    checks.check(matrix.status(prepared.previous.api_key) is KeyStatus.DEAD, "the previous key is alive")


def test_a_costs_api_outage_over_several_runs_stops_nothing_but_the_spend(aws: None) -> None:
    clock = ManualClock(0)
    tally = TALLIES["monitor"]
    violations: list[str] = []
    with OpenAIStandIn(clock=clock) as openai:
        matrix = MonitorLab(openai, clock)
        for kind in (kind for kind in OPENAI_FAULTS if not kind.short_read_timeout):
            # GIVEN a Costs API failing every call with `kind` for three scheduled runs
            prepared = matrix.prepare()
            world = prepared.world
            checks = Checks(f"monitor costs outage x {kind.name}")
            openai.faults.add(kind.make("costs", range(1, 1000)))
            # WHEN the monitor runs THEN every run does everything else; spend comes back with the costs
            _costs_best_effort(checks, matrix, prepared, COSTS_OUTAGE_RUNS, world.run)
            openai.faults.clear()
            checks.check(world.run().heartbeat, "no heartbeat once the costs are back")
            checks.check(gauge_points(world, m.SPEND_TODAY_USD, None) == [SPEND], "no spend once the costs are back")
            violations += checks.violations
            tally.scenarios["costs outage"] += 1
    tally.violations += violations
    assert not violations, "\n".join(violations[:40])


def test_a_cost_line_in_another_currency_stops_nothing_but_the_spend(aws: None) -> None:
    clock = ManualClock(0)
    tally = TALLIES["monitor"]
    violations: list[str] = []
    with OpenAIStandIn(clock=clock) as openai:
        matrix = MonitorLab(openai, clock)
        for currency in FOREIGN_CURRENCIES:
            # GIVEN Costs answers holding a line in `currency`
            prepared = matrix.prepare()
            world = prepared.world
            checks = Checks(f"monitor cost line in {currency!r}")
            foreign = dataclasses.replace(
                world,
                rotation=dataclasses.replace(world.rotation, session_factory=lambda c=currency: CurrencySession(c)),
            )
            # WHEN the monitor runs THEN the run does everything else and adds nothing in another currency to USD
            _costs_best_effort(checks, matrix, prepared, 1, foreign.run)
            violations += checks.violations
            tally.scenarios["foreign currency"] += 1
    tally.violations += violations
    assert not violations, "\n".join(violations[:40])


# --- a poison bucket: set aside after POISON_STRIKES runs, everything else published, replayed exactly once ----------

POISON_VALUES: tuple[Any, ...] = (None, "4", 4.5, -1, True, [4], 2**60)


class PoisonSession(requests.Session):
    """The completions of one minute carry `value` as their request count."""

    def __init__(self, bucket: int, value: Any) -> None:
        super().__init__()
        self.bucket, self.value = bucket, value

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().request(method, url, *args, **kwargs)
        if "/organization/usage/completions" in str(url) and response.status_code == 200:
            page = response.json()
            for bucket in page["data"]:
                if bucket["start_time"] == self.bucket:
                    for result in bucket["results"]:
                        result["num_model_requests"] = self.value
            response._content = json.dumps(page).encode()
        return response


def _poison_scenario(matrix: MonitorLab, value: Any) -> Checks:
    prepared = matrix.prepare()
    world = prepared.world
    checks = Checks(f"monitor poison bucket {value!r}")
    minute = world.start + 120
    poisoned = dataclasses.replace(
        world, rotation=dataclasses.replace(world.rotation, session_factory=lambda: PoisonSession(minute, value))
    )
    requests_wanted, tokens_wanted, unmanaged_wanted = expected_sums(world)
    for number in range(1, POISON_STRIKES):
        # the first runs fail on it, publish no usage, and still run the janitor and the gauges
        run = MonitorRun(poisoned.dependencies())
        try:
            run.execute()
            checks.check(False, f"run {number} completed on a poison bucket")
        except KeyrotError as exc:
            checks.check(type(exc).__name__ == "MalformedUsageError", f"run {number}: {type(exc).__name__}")
        checks.check(published_sums(world) == ({}, {}, {}), f"run {number} published {published_sums(world)}")
        checks.check(list(run.report.failed_parts) == ["usage"], f"run {number}: {run.report.failed_parts}")
        checks.check(len(gauge_points(world, m.KEY_AGE_HOURS)) == number, f"run {number}: no KeyAgeHours")
        matrix.clock.advance(SCHEDULE_SECONDS)
    report = MonitorRun(poisoned.dependencies()).execute()
    checks.check(len(report.set_aside) == 1 and report.heartbeat, f"not set aside: {report}")
    without = {bucket: value for bucket, value in requests_wanted.items() if bucket != minute}
    checks.check(published_sums(world)[0] == without, f"requests {published_sums(world)[0]}, not {without}")
    checks.check(published_sums(world)[2] == unmanaged_wanted, f"unmanaged {published_sums(world)[2]}")
    notes = [note["subject"] for note in world.notifications() if "set aside" in note["subject"]]
    checks.check(len(notes) == 1, f"set-aside notifications: {notes}")
    checks.check(matrix.status(prepared.previous.api_key) is KeyStatus.DEAD, "the janitor did not revoke")
    # AND once OpenAI answers properly, the operator's replay publishes the minute exactly once (asked twice)
    for _ in range(2):
        matrix.clock.advance(SCHEDULE_SECONDS)
        MonitorRun(world.dependencies(), set_aside_action="replay").execute()
    checks.check(
        published_sums(world) == (requests_wanted, tokens_wanted, unmanaged_wanted), f"{published_sums(world)}"
    )
    checks.check((world.state() or {}).get("set_aside") == [], "still set aside after the replay")
    return checks


def test_a_poison_bucket_is_set_aside_and_everything_else_published(aws: None) -> None:
    clock = ManualClock(0)
    tally = TALLIES["monitor"]
    violations: list[str] = []
    with OpenAIStandIn(clock=clock) as openai:
        matrix = MonitorLab(openai, clock)
        for value in POISON_VALUES:
            # GIVEN minute 2's completions with a count that fails the checks, WHEN the scheduled runs read it,
            # THEN every invariant holds
            violations += _poison_scenario(matrix, value).violations
            tally.scenarios["poison bucket"] += 1
    tally.violations += violations
    assert not violations, "\n".join(violations[:40])
