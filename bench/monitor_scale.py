"""Benchmark 3, monitor scale: one monitor run over 10 to 5,000 managed keys that all have usage.

Secrets are set up directly (a service account and key in the stand-in, its ManagedKey JSON as AWSCURRENT with the
keyrot tags) instead of rotating thousands of keys. AWS is moto in process; the OpenAI stand-in answers every call
after 50 ms. Per size, runs over consecutive 15-minute windows (each key active in two minutes of each): a cold run
(empty ledger cache, as in a new Lambda container) and a warm run, repeated TIMED_PAIRS times, each reported as the
median of its samples; the pair is then run once more under tracemalloc for peak memory, since tracing slows
everything down.
"""

from __future__ import annotations

import dataclasses
import gc
import random
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.common import (
    AwsCallCounter,
    BenchResult,
    fmt_seconds,
    loglog_slope,
    median,
    moto_in_process,
    sandbox_env,
    stopwatch,
)

SIZES = (10, 100, 1000, 5000)
TIMED_PAIRS = 3  # cold + warm runs per size; times are the medians
SMOKE_SIZES = (3, 6)
LATENCY_SECONDS = 0.05
WINDOW_MINUTES = 15  # the default monitor interval
ACTIVE_MINUTES_PER_KEY = 2
SETTLE_SECONDS = 600  # MonitorSettings' default settle delay
TARGET_KEYS = 1000
TARGET_SECONDS = 20.0
# In-process moto answers in about a millisecond; from a Lambda function an AWS call takes longer. One more cold run at
# TARGET_KEYS adds this much to every AWS call, to show what the cold ledger (one read per secret version) costs.
AWS_LATENCY_SECONDS = 0.01


@dataclass
class RunFigures:
    keys: int
    kind: str  # "cold" or "warm"
    seconds: float
    openai_calls: int
    openai_by_endpoint: dict[str, int]
    put_metric_data: int
    aws_calls: dict[str, int]
    usage_datums: int
    peak_bytes: int = 0
    client_seconds: float = 0.0  # profiled run: time outside moto and the stand-in (keyrot, botocore, requests)
    samples: tuple[float, ...] = ()  # every timed run of this kind; `seconds` is their median


def run(smoke: bool = False) -> BenchResult:
    result = BenchResult("monitor_scale", "3. Monitor scale", smoke=smoke)
    elapsed = stopwatch()
    sizes = SMOKE_SIZES if smoke else SIZES
    latency = 0.0 if smoke else LATENCY_SECONDS
    runs: list[RunFigures] = []
    for keys in sizes:
        runs.extend(_measure(keys, latency))
    _report(result, runs, sizes, latency)
    result.seconds = elapsed()
    return result


# --- one size ------------------------------------------------------------------------------------------------------


def _measure(keys: int, latency: float) -> list[RunFigures]:
    from keyrot.monitor import ledger
    from lab.monitor_scenario import MonitorWorld
    from lab.openai_standin import ManualClock, OpenAIStandIn

    start = (int(datetime.now(UTC).timestamp()) // 86400) * 86400 + 6 * 3600  # 06:00 UTC today, minute-aligned
    clock = ManualClock(start)
    with sandbox_env(), moto_in_process(), OpenAIStandIn(clock=clock) as openai:
        world = MonitorWorld.create(openai, clock, environment="bench", settle_delay_seconds=SETTLE_SECONDS)
        counter = AwsCallCounter()
        for client in (world.rotation.secrets, world.cloudwatch, world.ssm, world.sns):
            counter.attach(client)
        key_ids, declared = _populate(world, keys)
        # Declared as the program declares them (KEYROT_MANAGED_SECRETS): else the monitor reports their keys as
        # unmanaged, and the benchmark measures notifications instead of a steady environment
        managed = {**(world.settings.managed_secrets or {}), **declared}
        world = world.with_settings(managed_secrets=managed)
        world.rotation.settings = dataclasses.replace(world.rotation.settings, managed_secrets=managed)
        _start_state(world, start)
        pairs = 1 if not latency else TIMED_PAIRS
        plan = [("cold", False), ("warm", False)] * pairs + [("cold", True), ("warm", True)]
        timed: dict[str, list[RunFigures]] = {"cold": [], "warm": []}
        for window, (kind, traced) in enumerate(plan):
            window_start = start + window * WINDOW_MINUTES * 60
            clock.set(window_start + WINDOW_MINUTES * 60 + SETTLE_SECONDS)
            _record_usage(openai, key_ids, window_start, seed=keys * 10 + window)
            if kind == "cold":
                ledger.clear_cache()
            openai.faults.default_latency_seconds = 0.0 if traced else latency
            measured = _one_run(world, openai, counter, keys, kind, traced)
            if traced:
                timed[kind][0].peak_bytes = measured.peak_bytes
            else:
                timed[kind].append(measured)
        figures = [_median_run(timed["cold"]), _median_run(timed["warm"])]
        # One more window, profiled and without latency: how much of a warm run is the emulators' work.
        window = len(plan)
        window_start = start + window * WINDOW_MINUTES * 60
        clock.set(window_start + WINDOW_MINUTES * 60 + SETTLE_SECONDS)
        _record_usage(openai, key_ids, window_start, seed=keys * 10 + window)
        openai.faults.default_latency_seconds = 0.0
        figures[-1].client_seconds = _client_seconds(world, openai, counter, keys)
        if keys == TARGET_KEYS and latency:
            window_start = start + (window + 1) * WINDOW_MINUTES * 60
            clock.set(window_start + WINDOW_MINUTES * 60 + SETTLE_SECONDS)
            _record_usage(openai, key_ids, window_start, seed=keys * 10 + window + 1)
            ledger.clear_cache()
            openai.faults.default_latency_seconds = latency
            with _aws_latency(world, AWS_LATENCY_SECONDS):
                figures.append(_one_run(world, openai, counter, keys, "cold, AWS latency", traced=False))
        openai.faults.default_latency_seconds = 0.0
        ledger.clear_cache()
    return figures


def _median_run(runs: list[RunFigures]) -> RunFigures:
    """The first run's call counts (the same every run) with the median of all runs' times."""
    samples = tuple(run.seconds for run in runs)
    first = runs[0]
    first.samples, first.seconds = samples, median(list(samples))
    return first


def _client_seconds(world: Any, openai: Any, counter: AwsCallCounter, keys: int) -> float:
    """A warm run under cProfile: its time minus moto's (in-process, inside botocore's send) and minus the wait for
    the stand-in's answers (socket reads). What is left runs in the Lambda function: keyrot, botocore, requests."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        _one_run(world, openai, counter, keys, "warm", traced=False)
    finally:
        profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(
        entry[3]
        for (path, _, name), entry in stats.items()
        if path.endswith("monitor/run.py") and name == "run_monitor"
    )
    emulator = sum(
        entry[3]
        for (path, _, name), entry in stats.items()
        if path.endswith("botocore_stubber.py") and name == "__call__"
    )
    waiting = sum(entry[2] for (_, _, name), entry in stats.items() if "recv_into" in name)
    return max(0.0, total - emulator - waiting)


@contextmanager
def _aws_latency(world: Any, seconds: float) -> Iterator[None]:
    """Every AWS call of the monitor's clients waits `seconds` before moto answers it."""

    def wait(**_: Any) -> None:
        time.sleep(seconds)

    clients = (world.rotation.secrets, world.cloudwatch, world.ssm, world.sns)
    for client in clients:
        client.meta.events.register("before-call.*.*", wait, unique_id="bench-aws-latency")
    try:
        yield
    finally:
        for client in clients:
            client.meta.events.unregister("before-call.*.*", unique_id="bench-aws-latency")


def _one_run(world: Any, openai: Any, counter: AwsCallCounter, keys: int, kind: str, traced: bool) -> RunFigures:
    before = len(openai.calls)
    counter.calls.clear()
    gc.collect()
    if traced:
        tracemalloc.start()
    clock = stopwatch()
    try:
        report = world.run()
        seconds = clock()
        peak = tracemalloc.get_traced_memory()[1] if traced else 0
    finally:
        if traced:
            tracemalloc.stop()
    if report.skipped or report.window is None:
        raise RuntimeError(f"benchmark monitor run published nothing: {report}")
    calls = openai.calls[before:]
    endpoints: dict[str, int] = {}
    for call in calls:
        endpoints[call.endpoint] = endpoints.get(call.endpoint, 0) + 1
    return RunFigures(
        keys=keys,
        kind=kind,
        seconds=seconds,
        openai_calls=len(calls),
        openai_by_endpoint=endpoints,
        put_metric_data=report.metric_calls,
        aws_calls=dict(counter.calls),
        usage_datums=report.usage_datums,
        peak_bytes=peak,
    )


# --- the world -----------------------------------------------------------------------------------------------------


def _populate(world: Any, keys: int) -> tuple[list[str], dict[str, str]]:
    """`keys` managed secrets, each holding a live stand-in key as AWSCURRENT (its service account named for that
    version, as a rotation names it), tagged as the infrastructure tags. Returns the key ids and the secrets by key
    name, to declare."""
    from keyrot.constants import TAG_ENVIRONMENT, TAG_KEY_NAME, TAG_PROJECT_ID, managed_secret_name
    from keyrot.rotation.naming import ServiceAccountName
    from keyrot.secret_model import ManagedKey

    rotation = world.rotation
    state = rotation.openai.state
    created_at = datetime.fromtimestamp(world.clock() - 86400, UTC)
    key_ids, declared = [], {}
    for index in range(keys):
        key_name = f"key-{index:05d}"
        token = str(uuid.uuid4())
        account_name = str(ServiceAccountName(rotation.environment, key_name, token))
        account, key = state.create_service_account(rotation.project_id, account_name, with_key=True, expires_in=None)
        value = ManagedKey(
            api_key=key.value,
            key_id=key.id,
            service_account_id=account.id,
            project_id=rotation.project_id,
            environment=rotation.environment,
            key_name=key_name,
            created_at=created_at,
        )
        created = rotation.secrets.create_secret(
            Name=managed_secret_name(rotation.environment, key_name),
            ClientRequestToken=token,
            SecretString=value.to_json(),
            Tags=[
                {"Key": TAG_ENVIRONMENT, "Value": rotation.environment},
                {"Key": TAG_KEY_NAME, "Value": key_name},
                {"Key": TAG_PROJECT_ID, "Value": rotation.project_id},
            ],
        )
        key_ids.append(key.id)
        declared[key_name] = str(created["ARN"])
    return key_ids, declared


def _start_state(world: Any, watermark: int) -> None:
    from keyrot.monitor.state import MonitorState, StateStore

    StateStore(world.ssm, world.settings.state_parameter).save(MonitorState(watermark=watermark))


def _record_usage(openai: Any, key_ids: list[str], window_start: int, *, seed: int) -> None:
    """Each key active in ACTIVE_MINUTES_PER_KEY minutes of the window, with a cost; older records dropped."""
    state = openai.state
    choose = random.Random(seed)
    with state.lock:
        # Earlier windows are published; keep the stand-in's own work (it scans every record) to this window.
        state.usage = [record for record in state.usage if record.at >= window_start]
        state.costs = []
    for key_id in key_ids:
        for minute in choose.sample(range(WINDOW_MINUTES), ACTIVE_MINUTES_PER_KEY):
            at = window_start + minute * 60 + 7
            state.record_usage(key_id, "completions", at=at, input_tokens=120, output_tokens=30)
        state.record_cost(key_id, 0.0125, at=window_start)


# --- report --------------------------------------------------------------------------------------------------------


def _report(result: BenchResult, runs: list[RunFigures], sizes: tuple[int, ...], latency: float) -> None:
    cold = {run.keys: run for run in runs if run.kind == "cold"}
    warm = {run.keys: run for run in runs if run.kind == "warm"}
    for keys in sizes:
        c, w = cold[keys], warm[keys]
        result.row(
            f"{keys:,} keys: cold run / warm run (median of {len(c.samples)})",
            f"{fmt_seconds(c.seconds)} / {fmt_seconds(w.seconds)}; OpenAI calls {c.openai_calls} / {w.openai_calls}; "
            f"PutMetricData {c.put_metric_data} / {w.put_metric_data}; GetSecretValue "
            f"{c.aws_calls.get('GetSecretValue', 0)} / {w.aws_calls.get('GetSecretValue', 0)}; peak memory "
            f"{c.peak_bytes / 2**20:.1f} / {w.peak_bytes / 2**20:.1f} MiB",
        )
    usage_calls = {keys: _usage_and_cost_calls(cold[keys]) for keys in sizes}
    listing = {keys: cold[keys].openai_by_endpoint.get("list_project_api_keys", 0) for keys in sizes}
    constant = len(set(usage_calls.values())) == 1
    result.target(
        "OpenAI usage + costs calls per run, by key count",
        " / ".join(f"{keys:,}: {calls}" for keys, calls in usage_calls.items()),
        "independent of key count",
        constant,
    )
    total = {keys: cold[keys].openai_calls for keys in sizes}
    result.target(
        "OpenAI calls per run in all (usage + costs + key inventory pages)",
        " / ".join(f"{keys:,}: {calls}" for keys, calls in total.items()),
        "independent of key count",
        len(set(total.values())) == 1,
    )
    result.notes.append(
        "Monitor OpenAI calls: usage (one call per usage kind, 6 by default, while a window fits one 1440-bucket "
        "page) and costs (1) never depend on the key count; the key inventory (GET project api_keys, "
        f"100 per page, OpenAI's maximum) takes ceil(project keys / 100) pages: {listing}."
    )
    if TARGET_KEYS in cold:
        for kind, run_at_target in (("cold", cold[TARGET_KEYS]), ("warm", warm[TARGET_KEYS])):
            result.target(
                f"{TARGET_KEYS:,} keys, {kind} run, {latency * 1000:.0f} ms per OpenAI call",
                f"{fmt_seconds(run_at_target.seconds)} (median of {len(run_at_target.samples)})",
                f"< {TARGET_SECONDS:.0f} s",
                run_at_target.seconds < TARGET_SECONDS,
            )
    slow = [run for run in runs if run.kind == "cold, AWS latency"]
    if slow:
        result.row(
            f"{TARGET_KEYS:,} keys, cold run with {AWS_LATENCY_SECONDS * 1000:.0f} ms per AWS call as well",
            f"{fmt_seconds(slow[0].seconds)} ({sum(slow[0].aws_calls.values()):,} AWS calls, "
            f"{slow[0].aws_calls.get('GetSecretValue', 0):,} of them GetSecretValue, one after another)",
        )
    xs = list(sizes)
    slope_cold = loglog_slope(xs, [cold[keys].seconds for keys in xs])
    slope_warm = loglog_slope(xs, [warm[keys].seconds for keys in xs])
    result.row("growth exponent of run time vs keys (log-log slope)", f"cold {slope_cold:.2f}, warm {slope_warm:.2f}")
    client = [warm[keys].client_seconds for keys in xs]
    slope_client = loglog_slope(xs, client)
    result.row(
        "warm run without moto's and the stand-in's share (profiled, no latency)",
        " / ".join(f"{keys:,}: {fmt_seconds(seconds)}" for keys, seconds in zip(xs, client, strict=True))
        + f"; growth exponent {slope_client:.2f}",
    )
    large = [keys for keys in xs if keys >= 100]
    if len(large) >= 2:
        tail_cold = loglog_slope(large, [cold[keys].seconds for keys in large])
        tail_warm = loglog_slope(large, [warm[keys].seconds for keys in large])
        result.row("growth exponent from 100 keys up", f"cold {tail_cold:.2f}, warm {tail_warm:.2f}")
    result.figures = {
        "latency_seconds_per_openai_call": latency,
        "window_minutes": WINDOW_MINUTES,
        "active_minutes_per_key": ACTIVE_MINUTES_PER_KEY,
        "runs": [run.__dict__ for run in runs],
        "growth_exponent": {"cold": slope_cold, "warm": slope_warm, "warm_without_emulators": slope_client},
    }
    result.notes.append(
        "Monitor wall times include the in-process emulators' own work (moto answering ListSecrets, GetSecretValue "
        "and PutMetricData; the stand-in grouping usage); peak memory is tracemalloc's for the whole process during "
        "the run, emulators included."
    )


def _usage_and_cost_calls(run: RunFigures) -> int:
    return run.openai_by_endpoint.get("usage", 0) + run.openai_by_endpoint.get("costs", 0)
