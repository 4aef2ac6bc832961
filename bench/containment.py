"""Benchmark 7, time to contain: from `keyrot rotate --emergency --yes` until OpenAI rejects every key of the secret
but the new one, with 50 ms injected on every stand-in call.

The real CLI runs in this process (typer's runner, as an operator's shell would run it) against moto's server on
127.0.0.1 and the OpenAI stand-in; RotateSecret is answered as Secrets Manager does (lab.rotation_service), invoking
the rotation function's engine with the deployed function's settings (production validation: 6 probes 2 s apart,
slept for real if ever needed). Three leaks:

- current: the key applications use leaked (the previous one already revoked, the steady state);
- previous: the previous key, still in its grace period, leaked (the current one is live too);
- pushed out: an older key leaked that a fast rotation pushed out of AWSPREVIOUS while its revocation failed (the
  janitor has not retried it yet), so three keys of the secret are live.

The secret is contained when OpenAI rejects every key of the secret that was live when the command started, except
the new one (the stand-in records the moment each key stops authenticating). Time to contain is measured from the
command's start to that moment; calls made are the OpenAI requests keyrot (CLI and rotation function) sent in that
window and its AWS calls. Every `time.sleep` in the process is recorded with its caller, so a sleep on the success
path shows by name. Meanwhile an application (the README snippet, `keyrot.client.openai_client(secret)` with its
shipped 5-minute TTL, SDK retries off) sends chat completions; its failed requests are reported per case.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from bench.common import REGION, AwsCallCounter, BenchResult, fmt_seconds, median, moto_server, sandbox_env, stopwatch

LATENCY_SECONDS = 0.05
WALL_GOAL = 1.5  # x the sum of injected latencies
CASES = ("current", "previous", "pushed out")
CASE_LABELS = {
    "current": "(a) the current key leaked",
    "previous": "(b) the previous key, in its grace, leaked",
    "pushed out": "(c) an older key a fast rotation pushed out leaked",
}
APP_WARM_UP_SECONDS = 0.3  # the application reads and caches the current key before the leak is handled
APP_TAIL_SECONDS = 0.3  # and keeps sending after the command returned
REPEATS = 3
FOLLOWER_WAIT = "keyrot.cli.follow:run"  # `keyrot rotate` waiting for the rotation function between checks
ENVIRONMENT = "bench"
_KEYROT_SOURCE = os.sep + os.path.join("lambdas", "keyrot") + os.sep
_STANDIN_SOURCE = os.sep + os.path.join("lab", "openai_standin") + os.sep


@dataclass(frozen=True)
class Sleep:
    seconds: float
    where: str  # "keyrot", "stand-in latency" or "other"
    caller: str  # module:function


class SleepLog:
    """Every `time.sleep` while installed: called through `time.sleep`, or injected where keyrot takes a sleep."""

    def __init__(self) -> None:
        self.sleeps: list[Sleep] = []
        self._lock = threading.Lock()
        self._real = time.sleep

    def sleep(self, seconds: float) -> None:
        """A sleep function to inject: recorded with its caller, then slept for real."""
        self._record(seconds, sys._getframe(1))
        self._real(seconds)

    def keyrot(self) -> list[Sleep]:
        return [sleep for sleep in self.sleeps if sleep.where == "keyrot"]

    @contextmanager
    def installed(self) -> Iterator[SleepLog]:
        """Route `time.sleep` through the log (keyrot's captured defaults are injected separately)."""
        time.sleep = self.sleep
        try:
            yield self
        finally:
            time.sleep = self._real

    def _record(self, seconds: float, frame: Any) -> None:
        filename = frame.f_code.co_filename
        where = (
            "keyrot" if _KEYROT_SOURCE in filename else "stand-in latency" if _STANDIN_SOURCE in filename else "other"
        )
        caller = f"{frame.f_globals.get('__name__', '?')}:{frame.f_code.co_name}"
        with self._lock:
            self.sleeps.append(Sleep(seconds, where, caller))


@dataclass
class CaseRun:
    """One emergency rotation of one case, as measured."""

    case: str
    contained: bool
    seconds_to_contain: float
    command_seconds: float
    openai_calls: Counter[str]
    aws_calls: Counter[str]
    keys_live_before: int
    keys_live_after: int
    requests_sent: int
    requests_failed: int
    rejections_absorbed: int
    keyrot_sleeps: list[Sleep] = field(default_factory=list)
    exit_code: int = 0
    latency_seconds: float = LATENCY_SECONDS
    # Seconds from the command's start: RotateSecret answered (the rotation function starts), the rotation function
    # done, the leak contained.
    rotation_started: float = 0.0
    rotation_finished: float = 0.0

    @property
    def injected_seconds(self) -> float:
        return sum(self.openai_calls.values()) * self.latency_seconds

    @property
    def ratio(self) -> float:
        return self.seconds_to_contain / self.injected_seconds if self.injected_seconds else float("inf")


def run(smoke: bool = False) -> BenchResult:
    result = BenchResult("containment", "7. Time to contain", smoke=smoke)
    elapsed = stopwatch()
    timed: list[CaseRun] = []
    local: list[CaseRun] = []
    observed: list[CaseRun] = []
    with sandbox_env(), moto_server() as endpoint, sandbox_env(AWS_ENDPOINT_URL=endpoint):
        import boto3

        from keyrot.constants import ENV_OPENAI_ADMIN_BASE_URL
        from lab.openai_standin import OpenAIStandIn
        from lab.rotation_service import RotationService, installed
        from lab.scenario import ROTATION_LAMBDA_ARN, RotationWorld

        with OpenAIStandIn() as openai:
            os.environ[ENV_OPENAI_ADMIN_BASE_URL] = openai.base_url
            session = boto3.session.Session(region_name=REGION)
            world = RotationWorld.create(
                openai,
                session.client("secretsmanager", endpoint_url=endpoint),
                environment=ENVIRONMENT,
                validation_attempts=6,
                validation_delay_seconds=2.0,
            )
            lambda_aws = AwsCallCounter()
            lambda_client = lambda_aws.attach(session.client("secretsmanager", endpoint_url=endpoint))
            sleeps = SleepLog()
            service = RotationService()
            service.register(ROTATION_LAMBDA_ARN, _rotation_function(world, lambda_client, sleeps))
            contain = partial(_contain, world, service, sleeps, lambda_aws)
            with installed(service):
                # Timing runs have no application in this interpreter (it would compete for the same cores and
                # lock); the application's view is a run of its own per case. Smoke: the application runs only.
                for index in range(0 if smoke else REPEATS):
                    for case in CASES:
                        timed.append(contain(case, f"t{index + 1}", latency=LATENCY_SECONDS))
                        local.append(contain(case, f"l{index + 1}", latency=0.0))
                for case in CASES:
                    observed.append(contain(case, "app", latency=LATENCY_SECONDS, application=True))
    _report(result, timed or observed, local, observed)
    result.seconds = elapsed()
    return result


# --- one case ------------------------------------------------------------------------------------------------------


def _rotation_function(world: Any, client: Any, sleeps: SleepLog) -> Callable[[dict[str, Any]], Any]:
    """The rotation function as the handler runs it (a fresh context per invocation), with its sleeps recorded."""
    from keyrot.openai_admin import OpenAITransport
    from keyrot.rotation import RotationRequest, run_rotation_step
    from keyrot.rotation.context import build_rotation_context

    def invoke(event: dict[str, Any]) -> Any:
        transport = OpenAITransport(world.settings.openai_base_url, sleep=sleeps.sleep)
        context = build_rotation_context(world.settings, client, transport=transport, sleep=sleeps.sleep)
        return run_rotation_step(RotationRequest.from_event(event), context)

    return invoke


def _set_up(world: Any, case: str, run_id: str) -> tuple[str, str]:
    """A secret in the state the case starts from (driven through the engine, no latency); (arn, key name)."""
    from keyrot.rotation import revoke_previous
    from lab.openai_standin import Fault

    key_name = f"leak-{case.replace(' ', '-')}-{run_id}"
    arn = world.create_managed_secret(key_name)
    driver = world.driver()
    for _ in range(2):
        if not driver.rotate(arn).succeeded:
            raise RuntimeError(f"set-up rotation of {key_name} failed")
    if case == "current":  # steady state: the janitor revoked the previous key after its grace
        if revoke_previous(world.context(), arn).status != "revoked":
            raise RuntimeError(f"set-up revocation of {key_name} failed")
    elif case == "pushed out":  # a fast rotation inside the grace period, whose cleanup failed
        fault = world.openai.faults.add(Fault(endpoint="delete_service_account", status=500))
        try:
            if not driver.rotate(arn).succeeded:
                raise RuntimeError(f"set-up fast rotation of {key_name} failed")
        finally:
            world.openai.faults.clear()
        del fault
    return arn, key_name


def _secret_keys(world: Any, key_name: str) -> list[Any]:
    prefix = f"keyrot:{world.environment}:{key_name}:"
    state = world.openai.state
    with state.lock:
        return [key for key in state.keys.values() if key.owner_name.startswith(prefix)]


def _contain(
    world: Any,
    service: Any,
    sleeps: SleepLog,
    lambda_aws: AwsCallCounter,
    case: str,
    run_id: str,
    *,
    latency: float,
    application: bool = False,
) -> CaseRun:
    """Set the case up, then run `keyrot rotate --emergency --yes` with `latency` on every stand-in call."""
    from typer.testing import CliRunner

    from keyrot.cli.app import app

    arn, key_name = _set_up(world, case, run_id)
    state = world.openai.state
    live_before = [key.id for key in _secret_keys(world, key_name) if state.key_is_live(key.id)]
    user = _Application(arn, world.openai.base_url).start() if application else None
    if user is not None:
        time.sleep(APP_WARM_UP_SECONDS)
    cli_aws = AwsCallCounter()
    lambda_aws.calls.clear()
    first_call, first_event = len(world.openai.calls), len(service.events)
    sleeps.sleeps.clear()
    world.openai.faults.default_latency_seconds = latency
    args = ["rotate", "--env", world.environment, "--key", key_name, "--emergency", "--yes"]
    try:
        with sleeps.installed(), _cli_instrumented(cli_aws, sleeps):
            started = time.time()
            outcome = CliRunner().invoke(app, args)
            returned = time.time()
        service.wait(timeout=30)
        if user is not None:
            time.sleep(APP_TAIL_SECONDS)
    finally:
        world.openai.faults.default_latency_seconds = 0.0
        if user is not None:
            user.stop()
    if outcome.exception is not None and not isinstance(outcome.exception, SystemExit):
        raise RuntimeError(f"keyrot rotate crashed: {outcome.exception!r}\n{outcome.output}")
    _no_key_in(world, outcome.output)
    current = world.current(arn).key_id
    others = [key for key in _secret_keys(world, key_name) if key.id in live_before and key.id != current]
    still_live = [key.id for key in others if state.key_is_live(key.id)]
    contained = outcome.exit_code == 0 and not still_live and bool(others)
    contained_at = max((key.revoked_at for key in others if key.revoked_at is not None), default=returned)
    calls = [
        call
        for call in world.openai.calls[first_call:]
        if not call.endpoint.startswith("chat") and call.started < contained_at
    ]
    events = {event.name: event.at for event in service.events[first_event:]}
    return CaseRun(
        case=case,
        contained=contained,
        seconds_to_contain=contained_at - started,
        command_seconds=returned - started,
        openai_calls=Counter(call.endpoint for call in calls),
        aws_calls=cli_aws.calls + lambda_aws.calls,
        keys_live_before=len(live_before),
        keys_live_after=sum(1 for key in _secret_keys(world, key_name) if state.key_is_live(key.id)),
        requests_sent=user.sent if user else 0,
        requests_failed=user.failed if user else 0,
        rejections_absorbed=user.rejected.count if user else 0,
        keyrot_sleeps=sleeps.keyrot(),
        exit_code=outcome.exit_code,
        latency_seconds=latency,
        rotation_started=events.get("RotationStarted", started) - started,
        rotation_finished=events.get("RotationSucceeded", returned) - started,
    )


@contextmanager
def _cli_instrumented(counter: AwsCallCounter, sleeps: SleepLog) -> Iterator[None]:
    """Count the CLI's AWS calls and hand keyrot's captured `time.sleep` defaults the recording sleep."""
    from keyrot.cli import context as cli_context
    from keyrot.cli.commands import rotate as rotate_command

    saved = (
        cli_context.new_session,
        cli_context.build_rotation_context,
        cli_context.OpenAITransport,
        rotate_command.RotationFollower,
    )
    original_session = cli_context.new_session

    def session(profile: str | None, region: str | None) -> Any:
        created = original_session(profile, region)
        created.events.register("after-call.*.*", counter._after)
        created.events.register("after-call-error.*.*", counter._after_error)
        return created

    cli_context.new_session = session
    cli_context.build_rotation_context = partial(saved[1], sleep=sleeps.sleep)  # type: ignore[assignment]
    cli_context.OpenAITransport = partial(saved[2], sleep=sleeps.sleep)  # type: ignore[assignment,misc]
    rotate_command.RotationFollower = partial(saved[3], sleep=sleeps.sleep)  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        (
            cli_context.new_session,
            cli_context.build_rotation_context,
            cli_context.OpenAITransport,
            rotate_command.RotationFollower,
        ) = saved


def _no_key_in(world: Any, text: str) -> None:
    for value in world.openai.state.minted_values:
        if value in text:
            raise RuntimeError("a key value reached the CLI's output")


class _Application:
    """The README snippet under load: `openai_client(secret)` with shipped defaults; SDK retries off."""

    def __init__(self, arn: str, base_url: str) -> None:
        import openai

        from bench.zero_downtime import App, RejectionCounter
        from keyrot.client import KeyProvider, openai_client

        self.rejected = RejectionCounter()
        http = openai.DefaultHttpxClient(event_hooks={"response": [self.rejected]})
        provider = KeyProvider(arn)  # what openai_client(arn) builds; named here only to read its key id
        client = openai_client(provider, base_url=base_url, max_retries=0, timeout=10, http_client=http)
        self._app = App(client, lambda: provider.key_id)

    def start(self) -> _Application:
        self._app.start()
        return self

    def stop(self) -> None:
        self._app.stop()

    @property
    def sent(self) -> int:
        return self._app.sent

    @property
    def failed(self) -> int:
        return self._app.failed


# --- report --------------------------------------------------------------------------------------------------------


def _report(result: BenchResult, timed: list[CaseRun], local: list[CaseRun], observed: list[CaseRun]) -> None:
    every = [*timed, *local, *observed]
    contained = sum(run.contained for run in every)
    result.target(
        f"emergency rotations that contained the leak ({len(CASES)} cases, with and without latency and load)",
        f"{contained} of {len(every)}; keys of the secret live afterwards: at most "
        f"{max(run.keys_live_after for run in every)} (the new one)",
        "all contained (only the new key live)",
        contained == len(every),
    )
    figures: dict[str, Any] = {}
    for case in CASES:
        runs = [run for run in timed if run.case == case]
        baseline = [run.seconds_to_contain for run in local if run.case == case]
        typical = sorted(runs, key=lambda run: run.ratio)[len(runs) // 2]
        ratio = median([run.ratio for run in runs])
        wall = median([run.seconds_to_contain for run in runs])
        excess = wall - median(baseline) - typical.injected_seconds if baseline else None
        result.target(
            f"{CASE_LABELS[case]}: time to contain (median of {len(runs)})",
            f"{fmt_seconds(wall)} = {ratio:.2f}× the {fmt_seconds(typical.injected_seconds)} injected "
            f"({sum(typical.openai_calls.values())} OpenAI + {sum(typical.aws_calls.values())} AWS calls)",
            f"≤ {WALL_GOAL}×",
            ratio <= WALL_GOAL,
        )
        seen = next(run for run in observed if run.case == case)
        figures[case] = {
            "seconds_to_contain": [run.seconds_to_contain for run in runs],
            "median_seconds_to_contain": wall,
            "command_seconds": [run.command_seconds for run in runs],
            "injected_seconds": typical.injected_seconds,
            "ratio": [run.ratio for run in runs],
            "median_ratio": ratio,
            "local_seconds_to_contain": baseline,
            "excess_seconds": excess,
            "phases_seconds": {
                "before_rotate_secret": median([run.rotation_started for run in runs]),
                "rotation_function": median([run.rotation_finished - run.rotation_started for run in runs]),
                "after_rotation_until_contained": median(
                    [run.seconds_to_contain - run.rotation_finished for run in runs]
                ),
            },
            "openai_calls": dict(typical.openai_calls),
            "aws_calls": dict(typical.aws_calls),
            "keys_live_before": typical.keys_live_before,
            "application": {
                "requests_sent": seen.requests_sent,
                "requests_failed": seen.requests_failed,
                "rejections_absorbed": seen.rejections_absorbed,
                "contained": seen.contained,
            },
            "keyrot_sleeps": [[(s.seconds, s.caller) for s in run.keyrot_sleeps] for run in every if run.case == case],
        }
    waits = [s for run in every for s in run.keyrot_sleeps if s.caller == FOLLOWER_WAIT]
    other = [s for run in every for s in run.keyrot_sleeps if s.caller != FOLLOWER_WAIT]
    by_caller = Counter(s.caller for s in other)
    result.target(
        "keyrot sleeps on the success path besides `keyrot rotate` waiting for the rotation function",
        f"{len(other)}" + (f" ({', '.join(f'{c} ×{n}' for c, n in by_caller.items())})" if by_caller else ""),
        "0",
        not other,
    )
    result.row(
        "`keyrot rotate` waiting for the rotation function (polls grow with the rotation's age, ≤ 25% of it)",
        f"{len(waits)} waits in {len(every)} runs, {fmt_seconds(sum(s.seconds for s in waits) / max(1, len(every)))}"
        " per run while the function works",
    )
    if local:
        result.row(
            "time to contain without injected latency (local processing: CLI, rotation function, moto, stand-in "
            "in one interpreter), and what is left beyond it and the injected latency",
            "; ".join(
                f"{case} {fmt_seconds(median(figures[case]['local_seconds_to_contain']))}, "
                f"excess {fmt_seconds(max(0.0, figures[case]['excess_seconds']))}"
                for case in CASES
            ),
        )
    result.row(
        "where the time goes (median): before RotateSecret / rotation function / until the last key is rejected",
        "; ".join(
            f"{case} " + " / ".join(fmt_seconds(v) for v in figures[case]["phases_seconds"].values()) for case in CASES
        ),
    )
    result.row(
        "what the application saw (README snippet, 2 threads, shipped 5-minute TTL, SDK retries off)",
        "; ".join(
            f"{case}: {figures[case]['application']['requests_failed']} failed of "
            f"{figures[case]['application']['requests_sent']:,} ({figures[case]['application']['rejections_absorbed']}"
            " rejected and sent again with the new key)"
            for case in CASES
        ),
    )
    result.figures = {
        "latency_seconds_per_openai_call": LATENCY_SECONDS,
        "cases": figures,
        "all_contained": contained == len(every),
        "keyrot_sleeps_besides_follower": len(other),
        "follower_waits": len(waits),
        "application_requests_failed": sum(run.requests_failed for run in observed),
        "application_requests_sent": sum(run.requests_sent for run in observed),
    }
    result.notes.append(
        f"Time to contain: from `keyrot rotate --emergency --yes` (run in this process) until the stand-in stops "
        f"accepting the last key of the secret other than the new one; {LATENCY_SECONDS * 1000:.0f} ms on every "
        "stand-in call, none on AWS calls (moto on 127.0.0.1). Calls counted are keyrot's (CLI and rotation "
        "function) in that window. What is beyond the injected latency is local processing: creating the CLI's "
        "boto3 clients and some 45 AWS calls, in one interpreter shared by the CLI, the rotation function, moto and "
        "the stand-in (on AWS the CLI and the function run on different machines, and every AWS call has latency "
        "of its own). The application runs in separate runs, one per case."
    )
