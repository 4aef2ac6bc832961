"""Benchmark 2, the rotation critical path: remote calls per rotation and per revocation, and the time a rotation
takes when every OpenAI call costs 50 ms.

The rotation function's own calls are recorded (Secrets Manager's side, which creates the pending version and
invokes each step, is not), every attempt counted, failed ones included (a read that finds no pending value is a
call too). Each recorded call is matched against the list of calls a rotation needs (`REQUIRED`) and the extra
calls keyrot makes on purpose (`JUSTIFIED`, each with its reason); anything else is reported as avoidable.
Timing uses real sleeps, so a sleep or poll on the success path would show in the wall time.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

from bench.common import REGION, BenchResult, fmt_seconds, median, moto_in_process, sandbox_env, stopwatch
from lab.remote_calls import openai_call_name

LATENCY_SECONDS = 0.05
WALL_GOAL = 1.2  # x the sum of injected latencies

# (step, call) -> why a rotation cannot do without it. "admin key" is the GetSecretValue of the admin-key secret.
REQUIRED: dict[tuple[str, str], str] = {
    ("*", "aws:DescribeSecret"): "guard before every step (rotation enabled, token is AWSPENDING), as AWS's template",
    ("createSecret", "aws:GetSecretValue AWSPENDING"): "idempotency: a retried createSecret must not mint twice",
    ("createSecret", "aws:GetSecretValue admin key"): "the admin key, to mint (kept out of the environment)",
    ("createSecret", "openai:POST /organization/projects/{project}/service_accounts"): "mint the new key",
    ("createSecret", "aws:PutSecretValue"): "store it as AWSPENDING",
    ("testSecret", "aws:GetSecretValue AWSPENDING"): "the key to test",
    ("testSecret", "openai:GET /models"): "the probe: the new key authenticates",
    ("finishSecret", "aws:UpdateSecretVersionStage AWSCURRENT move"): "promote",
}
JUSTIFIED: dict[tuple[str, str], str] = {
    ("createSecret", "openai:GET /organization/projects/{project}/service_accounts"): (
        "sweep: find accounts named for this token left by a crashed or duplicate attempt (their keys are lost)"
    ),
    ("testSecret", "aws:GetSecretValue admin key"): (
        "the admin key again, for the membership check (each step is its own Lambda invocation)"
    ),
    ("testSecret", "openai:GET /organization/projects/{project}/api_keys/{key}"): (
        "admin retrieve: the key is in the configured project and owned by the new service account (a probe "
        "cannot tell which project a key belongs to)"
    ),
    ("finishSecret", "aws:GetSecretValue AWSPENDING"): "never promote an empty or foreign version",
    ("finishSecret", "aws:TagResource"): (
        "the promotion record (keyrot:promoted tag, written before AWSCURRENT moves): the grace period and the "
        "inventory count from when a key became current"
    ),
    ("finishSecret", "aws:GetSecretValue admin key"): (
        "the admin key again, to find keys the promotion displaced (each step is its own Lambda invocation)"
    ),
    ("finishSecret", "openai:GET /organization/projects/{project}/service_accounts"): (
        "find displaced keys: a key pushed out of AWSPREVIOUS before its grace ended, or one labelled revoked that "
        "OpenAI still lists, is revoked at once"
    ),
    ("finishSecret", "aws:UpdateSecretVersionStage AWSPENDING remove"): (
        "one unambiguous end state: AWS sources disagree on whether finishSecret strips AWSPENDING, and a stray one "
        "blocks the next rotation"
    ),
}
# (step, call) -> (how many times the step may make it, why the repeat is needed). Any other repeat is unexplained.
JUSTIFIED_REPEATS: dict[tuple[str, str], tuple[int, str]] = {
    ("finishSecret", "aws:DescribeSecret"): (
        2,
        "the labels again after the promotion, for the cleanup: which key is now AWSPREVIOUS and which were pushed "
        "out is only known once AWSCURRENT has moved",
    ),
}
REVOCATION_REQUIRED: dict[str, str] = {
    "aws:DescribeSecret": "find the AWSPREVIOUS version and whether it is already KEYROT_REVOKED",
    "aws:GetSecretValue AWSPREVIOUS": "the previous key's service account",
    "aws:GetSecretValue admin key": "the admin key, to delete",
    "openai:DELETE /organization/projects/{project}/service_accounts/{sa}": "revoke (delete its service account)",
    "openai:GET /models": "confirm OpenAI rejects the old key",
    "aws:UpdateSecretVersionStage KEYROT_REVOKED move": "record the revocation on the version",
}
REVOCATION_JUSTIFIED: dict[str, str] = {
    "aws:GetSecretValue AWSCURRENT": "refuse if the current key shares the account (never revoke a live key)",
    "aws:GetSecretValue AWSPENDING": "the same for a pending key, when a rotation is under way",
    "openai:GET /organization/projects/{project}/service_accounts": (
        "the name check: the account to delete exists in the project and is named for this secret's key"
    ),
    "openai:GET /organization/projects/{project}/api_keys/{key}": (
        "the ownership check: the key belongs to that service account (never delete an account for a forged value)"
    ),
}


class CallRecorder:
    """Ordered names of every remote call: AWS attempts (with the stage read or moved) and OpenAI requests."""

    def __init__(self, admin_secret_arn: str) -> None:
        self.calls: list[str] = []
        self._admin = admin_secret_arn
        self._params = threading.local()
        self._lock = threading.Lock()

    def attach(self, client: Any) -> Any:
        client.meta.events.register("provide-client-params.secrets-manager.*", self._remember)
        client.meta.events.register("after-call.secrets-manager.*", self._after)
        client.meta.events.register("after-call-error.secrets-manager.*", self._after)
        return client

    def session(self) -> requests.Session:
        recorder = self

        class RecordingSession(requests.Session):
            def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
                try:
                    return super().request(method, url, *args, **kwargs)
                finally:
                    recorder._add(openai_call_name(str(method), str(url)))

        return RecordingSession()

    def _remember(self, params: Any = None, model: Any = None, **_: Any) -> None:
        self._params.value = (model.name, dict(params or {}))

    def _after(self, model: Any = None, **_: Any) -> None:
        name, params = getattr(self._params, "value", (model.name, {}))
        self._add(f"aws:{self._label(name, params)}")

    def _label(self, name: str, params: dict[str, Any]) -> str:
        if name == "GetSecretValue":
            return f"{name} {'admin key' if params.get('SecretId') == self._admin else params.get('VersionStage')}"
        if name == "UpdateSecretVersionStage":
            return f"{name} {params.get('VersionStage')} {'move' if params.get('MoveToVersionId') else 'remove'}"
        return name

    def _add(self, name: str) -> None:
        with self._lock:
            self.calls.append(name)


@dataclass
class StepCalls:
    step: str
    calls: list[str]
    seconds: float


@dataclass
class RotationRecord:
    steps: list[StepCalls] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    @property
    def calls(self) -> list[tuple[str, str]]:
        return [(step.step, call) for step in self.steps for call in step.calls]

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.steps)

    def count(self, prefix: str) -> int:
        return sum(1 for _, call in self.calls if call.startswith(prefix))


def run(smoke: bool = False) -> BenchResult:
    result = BenchResult("rotation_path", "2. Rotation critical path", smoke=smoke)
    elapsed = stopwatch()
    timed_rotations = 2 if smoke else 9
    with sandbox_env(), moto_in_process():
        import boto3

        from lab.openai_standin import OpenAIStandIn
        from lab.scenario import RotationWorld

        with OpenAIStandIn() as openai:
            secrets = boto3.client("secretsmanager", region_name=REGION)
            world = RotationWorld.create(openai, secrets, environment="bench")
            # Production validation settings: 6 probes 2 s apart, slept for real if they were ever needed.
            world = world.with_settings(validation_attempts=6, validation_delay_seconds=2.0)
            arn = world.create_managed_secret("rotation-path")
            # One recorded client for the whole run, as a warm Lambda container keeps one (keyrot.aws.clients).
            recorder = CallRecorder(world.admin_secret_arn)
            client = recorder.attach(boto3.client("secretsmanager", region_name=REGION))
            first = _rotate(world, arn, client, recorder)
            later = _rotate(world, arn, client, recorder)
            revocation = _revoke(world, arn, client, recorder)
            timed: list[tuple[RotationRecord, int]] = []
            baseline: list[RotationRecord] = []
            for _ in range(timed_rotations):  # alternate: with latency, then the same rotation without
                openai.faults.default_latency_seconds = LATENCY_SECONDS
                before = len(openai.calls)
                record = _rotate(world, arn, client, recorder)
                timed.append((record, len(openai.calls) - before))
                openai.faults.default_latency_seconds = 0.0
                baseline.append(_rotate(world, arn, client, recorder))
    _report(result, first, later, revocation, timed, baseline)
    result.seconds = elapsed()
    return result


# --- driving -------------------------------------------------------------------------------------------------------


def _context(world: Any, client: Any, recorder: CallRecorder, sleeps: list[float]) -> Any:
    """A fresh context per invocation, as the handler builds one (new transport and HTTP session), real sleeps."""
    from keyrot.openai_admin import OpenAITransport
    from keyrot.rotation.context import build_rotation_context

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    transport = OpenAITransport(world.settings.openai_base_url, session=recorder.session(), sleep=sleep)
    return build_rotation_context(world.settings, client, transport=transport, sleep=sleep)


def _rotate(world: Any, arn: str, client: Any, recorder: CallRecorder) -> RotationRecord:
    from keyrot.rotation import RotationRequest, run_rotation_step
    from lab.rotation_driver import RotationDriver

    record = RotationRecord()

    def invoke(event: dict[str, Any]) -> Any:
        start, clock = len(recorder.calls), stopwatch()
        context = _context(world, client, recorder, record.sleeps)
        try:
            return run_rotation_step(RotationRequest.from_event(event), context)
        finally:
            record.steps.append(StepCalls(event["Step"], recorder.calls[start:], clock()))

    run = RotationDriver(world.secrets, invoke).rotate(arn)
    if not run.succeeded or run.attempts != 1:
        raise RuntimeError(f"benchmark rotation did not succeed at once: {run.failures}")
    return record


def _revoke(world: Any, arn: str, client: Any, recorder: CallRecorder) -> RotationRecord:
    from keyrot.rotation import revoke_previous

    record = RotationRecord()
    start, clock = len(recorder.calls), stopwatch()
    outcome = revoke_previous(_context(world, client, recorder, record.sleeps), arn)
    record.steps.append(StepCalls("revoke", recorder.calls[start:], clock()))
    if outcome.status != "revoked":
        raise RuntimeError(f"benchmark revocation did not revoke: {outcome.status}")
    return record


# --- classification ------------------------------------------------------------------------------------------------


def classify_rotation(record: RotationRecord) -> tuple[Counter[str], Counter[str], list[str]]:
    """(required calls, justified extra calls, unexplained calls) of one rotation.

    Each listed call is expected once per step; a repeat is justified only up to the count JUSTIFIED_REPEATS gives
    it, and every call beyond that is unexplained, so the three counts always add up to the calls made.
    """
    required: Counter[str] = Counter()
    justified: Counter[str] = Counter()
    unexplained: list[str] = []
    for step in record.steps:
        seen: Counter[str] = Counter()
        for call in step.calls:
            seen[call] += 1
            if seen[call] > 1:
                allowed, _ = JUSTIFIED_REPEATS.get((step.step, call), (1, ""))
                if seen[call] <= allowed:
                    justified[f"{step.step}: {call} (again)"] += 1
                else:
                    unexplained.append(f"{step.step}: {call} (repeated)")
            elif ("*", call) in REQUIRED or (step.step, call) in REQUIRED:
                required[call] += 1
            elif (step.step, call) in JUSTIFIED:
                justified[f"{step.step}: {call}"] += 1
            else:
                unexplained.append(f"{step.step}: {call}")
    return required, justified, unexplained


def classify_revocation(record: RotationRecord) -> tuple[Counter[str], Counter[str], list[str]]:
    required: Counter[str] = Counter()
    justified: Counter[str] = Counter()
    unexplained: list[str] = []
    seen: Counter[str] = Counter()
    for _, call in record.calls:
        seen[call] += 1
        if seen[call] > 1:
            unexplained.append(f"{call} (repeated)")
        elif call in REVOCATION_REQUIRED:
            required[call] += 1
        elif call in REVOCATION_JUSTIFIED:
            justified[call] += 1
        else:
            unexplained.append(call)
    return required, justified, unexplained


# --- report --------------------------------------------------------------------------------------------------------


def _report(
    result: BenchResult,
    first: RotationRecord,
    later: RotationRecord,
    revocation: RotationRecord,
    timed: list[tuple[RotationRecord, int]],
    baseline: list[RotationRecord],
) -> None:
    summaries: dict[str, Any] = {}
    for label, record, classify in (
        ("first rotation", first, classify_rotation),
        ("later rotation", later, classify_rotation),
        ("revocation", revocation, classify_revocation),
    ):
        required, justified, unexplained = classify(record)
        aws, openai = record.count("aws:"), record.count("openai:")
        minimum = sum(required.values())
        result.target(
            f"calls per {label}: AWS + OpenAI (minimum + justified extra)",
            f"{aws} + {openai} = {aws + openai} ({minimum} + {sum(justified.values())})",
            "no avoidable call (0 unexplained)",
            not unexplained,
        )
        if unexplained:
            result.notes.append(f"{label}: avoidable or unexplained calls: {', '.join(unexplained)}")
        summaries[label] = {
            "aws_calls": aws,
            "openai_calls": openai,
            "minimum": minimum,
            "justified_extra": dict(justified),
            "unexplained": unexplained,
            "sequence": [f"{step}: {call}" for step, call in record.calls],
            "sleeps": list(record.sleeps),
        }
    _justification_notes(result)
    walls = [record.seconds for record, _ in timed]
    injected = [calls * LATENCY_SECONDS for _, calls in timed]
    ratios = [wall / latency for wall, latency in zip(walls, injected, strict=True)]
    records = [first, later, revocation, *baseline, *(record for record, _ in timed)]
    sleeps = sum(len(record.sleeps) for record in records)
    ratio = median(ratios)
    result.target(
        f"rotation wall time with {LATENCY_SECONDS * 1000:.0f} ms per OpenAI call (median of {len(timed)})",
        f"{fmt_seconds(median(walls))} = {ratio:.2f}× the {fmt_seconds(median(injected))} injected",
        f"≤ {WALL_GOAL}×",
        ratio <= WALL_GOAL,
    )
    local = median([record.seconds for record in baseline])
    result.row(
        "same rotation without injected latency (local processing: keyrot, botocore, moto, stand-in)",
        f"{fmt_seconds(local)}; excess beyond it and the injected latency "
        f"{fmt_seconds(max(0.0, median(walls) - local - median(injected)))}",
    )
    result.target("sleeps on the success path (rotations and revocation)", str(sleeps), "0", sleeps == 0)
    per_step = {
        step: median([next(s.seconds for s in record.steps if s.step == step) for record, _ in timed])
        for step in ("createSecret", "setSecret", "testSecret", "finishSecret")
    }
    result.row(
        "median time per step (with latency)",
        ", ".join(f"{step} {fmt_seconds(seconds)}" for step, seconds in per_step.items()),
    )
    result.figures = {
        "latency_seconds_per_openai_call": LATENCY_SECONDS,
        "calls": summaries,
        "timed_rotations": [
            {"wall_seconds": wall, "openai_calls": calls, "injected_seconds": calls * LATENCY_SECONDS}
            for (_, calls), wall in zip(timed, walls, strict=True)
        ],
        "median_wall_seconds": median(walls),
        "median_wall_over_injected": ratio,
        "median_wall_seconds_without_latency": local,
        "median_step_seconds": per_step,
        "sleeps": sleeps,
    }


def _justification_notes(result: BenchResult) -> None:
    def lines(table: dict[Any, str]) -> str:
        return "; ".join(f"{' '.join(key) if isinstance(key, tuple) else key} — {why}" for key, why in table.items())

    result.notes.append(f"Rotation, required calls: {lines(REQUIRED)}.")
    result.notes.append(f"Rotation, justified extra calls: {lines(JUSTIFIED)}.")
    repeats = {key: f"up to {times} times: {why}" for key, (times, why) in JUSTIFIED_REPEATS.items()}
    result.notes.append(f"Rotation, justified repeated calls: {lines(repeats)}.")
    result.notes.append(f"Revocation, required calls: {lines(REVOCATION_REQUIRED)}.")
    result.notes.append(f"Revocation, justified extra calls: {lines(REVOCATION_JUSTIFIED)}.")
