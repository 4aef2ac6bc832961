"""Benchmark 8, time to detect: from the moment abuse starts to the moment on-call is notified, or the CloudWatch
datapoint that would trip the alarm is published, at the settings the Pulumi program deploys by default.

Time is simulated: the monitor and the OpenAI stand-in share one manual clock, the benchmark places usage and costs
in exact minutes and runs the real monitor (keyrot.monitor.run, against moto and the stand-in) at each tick of its
schedule; nothing sleeps. A run's duration is its real duration here, added to the tick it started at. The settings
(monitor interval, settle delay, alarm periods and datapoints, spend limit) are read from what the program declares
under Pulumi's mocks with Pulumi.yaml's defaults, so the benchmark follows any change of a default.

- unmanaged key: a key created outside keyrot (in the dashboard): the run's findings and the audit-log tripwire
  notify on-call, with or without usage;
- retired key: usage by the previous key past its grace period (a revoked key's usage counts the same way): the
  run that reads the usage notifies on-call and publishes RetiredKeyRequests (its alarm trips on one datapoint);
- usage spike: a managed key's requests jump; the anomaly alarm needs `datapointsToAlarm` hourly datapoints above
  its band, so detection is when the minute that makes the last of them is published;
- daily spend: the day's spend crosses the limit; detection is the run that publishes SpendTodayUSD above it.

Each case starts at several moments relative to the schedule (just after a run, half-way, just before the next)
and to the hour; the worst latency is compared with the bound the settings imply.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.common import BenchResult, fmt_seconds, median, moto_in_process, sandbox_env, stopwatch

BUCKET_SECONDS = 60
CASES = ("unmanaged key", "retired key", "usage spike", "daily spend")
CASE_LABELS = {
    "unmanaged key": "(a) a key created outside keyrot",
    "retired key": "(b) use of a retired key (the previous one, past its grace)",
    "usage spike": "(c) a usage spike on a managed key",
    "daily spend": "(d) the day's spend crossing the limit",
}
# Where abuse starts: a fraction of the monitor interval after a scheduled run, and minutes into the hour.
PHASES = (0.02, 0.5, 0.98)
HOUR_OFFSETS_MINUTES = (0, 29, 58)
SMOKE_PHASES = ((0.5, 29),)
MAX_TICKS = 24  # give up after this many scheduled runs without detection
WARM_UP_TICKS = 2  # steady state before the abuse: the watermark is current, the key known
SPIKE_REQUESTS_PER_MINUTE = 500
SPEND_BEFORE_USD_FRACTION = 0.9  # of the limit, spent earlier in the day


@dataclass(frozen=True)
class Defaults:
    """The deployed defaults that bound detection, as the program declares them."""

    interval_seconds: int
    settle_seconds: int
    spend_limit_usd: float
    spend_period_seconds: int
    anomaly_period_seconds: int
    anomaly_datapoints: int
    retired_period_seconds: int
    retired_datapoints: int
    monitor_variables: dict[str, str]


@dataclass
class Detection:
    case: str
    abuse_start: int  # simulated Unix seconds
    phase: float
    hour_offset_minutes: int
    detected_at: float | None = None  # simulated: the tick of the detecting run plus its duration
    runs: int = 0  # scheduled runs from the abuse until detection
    run_seconds: list[float] = field(default_factory=list)
    how: str = ""

    @property
    def latency(self) -> float | None:
        return None if self.detected_at is None else self.detected_at - self.abuse_start


def run(smoke: bool = False) -> BenchResult:
    result = BenchResult("detection", "8. Time to detect", smoke=smoke)
    elapsed = stopwatch()
    defaults = deployed_defaults()
    starts = SMOKE_PHASES if smoke else tuple((p, h) for p in PHASES for h in HOUR_OFFSETS_MINUTES)
    detections: list[Detection] = []
    with sandbox_env(), moto_in_process():
        from lab.openai_standin import ManualClock, OpenAIStandIn

        now = int(time.time())
        clock = ManualClock(now - now % 86400 - 20 * 86400)  # a UTC midnight, three weeks ago
        with OpenAIStandIn(clock=clock) as openai:
            for index, (case, (phase, hour_offset)) in enumerate((c, s) for c in CASES for s in starts):
                detections.append(_scenario(openai, clock, defaults, case, phase, hour_offset, index))
    _report(result, defaults, detections)
    result.seconds = elapsed()
    return result


# --- the defaults, from the program ----------------------------------------------------------------------------


def deployed_defaults() -> Defaults:
    """Run the Pulumi program (mocks) with Pulumi.yaml's defaults and read what bounds detection."""
    from bench.cost import _config, _deployment, _rate_minutes

    deployment = _deployment(_config(2, defaults=True))
    (schedule,) = [
        s
        for s in deployment.of_type("aws:scheduler/schedule:Schedule")
        if str(s.inputs.get("name", "")).endswith("-monitor")
    ]
    (function,) = [
        f
        for f in deployment.of_type("aws:lambda/function:Function")
        if str(f.inputs.get("name", "")).endswith("-monitor")
    ]
    variables = {k: str(v) for k, v in (function.inputs.get("environment") or {}).get("variables", {}).items()}
    alarms = {str(a.inputs["name"]): a.inputs for a in deployment.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    spend = next(inputs for name, inputs in alarms.items() if name.endswith("-daily-spend"))
    retired = next(inputs for name, inputs in alarms.items() if name.endswith("-retired-key-requests"))
    anomaly = next(inputs for name, inputs in alarms.items() if name.endswith("-requests-anomaly"))
    anomaly_period = next(q["metric"]["period"] for q in anomaly["metricQueries"] if q.get("metric"))
    return Defaults(
        interval_seconds=int(_rate_minutes(schedule.inputs["scheduleExpression"]) * 60),
        settle_seconds=int(variables.get("KEYROT_SETTLE_DELAY_SECONDS", "600")),
        spend_limit_usd=float(spend["threshold"]),
        spend_period_seconds=int(spend["period"]),
        anomaly_period_seconds=int(anomaly_period),
        anomaly_datapoints=int(anomaly["datapointsToAlarm"]),
        retired_period_seconds=int(retired["period"]),
        retired_datapoints=int(retired["datapointsToAlarm"]),
        monitor_variables=variables,
    )


def bounds(defaults: Defaults, run_seconds: float) -> dict[str, float]:
    """The latest each case can be detected, from the settings: what bounds it, in seconds.

    unmanaged key: the next run (one interval) and its duration. Usage-based cases: the abuse's minute must end
    (one bucket) and settle before a run reads it; a spike also waits for the start of the hourly period that makes
    the alarm's last breaching datapoint. Spend: the next run.
    """
    interval, settle = defaults.interval_seconds, defaults.settle_seconds
    usage = BUCKET_SECONDS + settle + interval + run_seconds
    return {
        "unmanaged key": interval + run_seconds,
        "retired key": (defaults.retired_datapoints - 1) * defaults.retired_period_seconds + usage,
        "usage spike": (defaults.anomaly_datapoints - 1) * defaults.anomaly_period_seconds + usage,
        "daily spend": interval + run_seconds,
    }


# --- one scenario ----------------------------------------------------------------------------------------------


def _scenario(
    openai: Any, clock: Any, defaults: Defaults, case: str, phase: float, hour_offset: int, index: int
) -> Detection:
    """A fresh environment in steady state, abuse starting at the chosen moment, the monitor run on schedule until
    the abuse is detected."""
    from keyrot import inventory
    from lab.monitor_scenario import MonitorWorld

    inventory.clear_cache()
    interval = defaults.interval_seconds
    # Each scenario on a day of its own: the first scheduled run of the day falls `hour_offset` minutes (less the
    # phase) before an hour's start, so the abuse starts `hour_offset` minutes into an hour.
    day = int(clock() - clock() % 86400 + 2 * 86400)  # after the previous scenario's grace period too
    abuse = int(day + 6 * 3600 + hour_offset * 60)
    first_tick = abuse - int(phase * interval) - WARM_UP_TICKS * interval
    settings = _timing_settings(defaults)
    # Keys minted a while before; for a retired key, exactly one grace period before the abuse, so the previous key
    # is still in its grace at every run before the abuse and retired from the abuse's first minute.
    rotated_at = abuse - settings["grace_period_seconds"] if case == "retired key" else first_tick - 3 * 3600
    clock.set(rotated_at)
    world = MonitorWorld.create(openai, clock, environment=f"d{index}")
    world = world.with_settings(**settings)
    arn = world.rotation.create_managed_secret("chat-backend")
    driver = world.rotation.driver()
    for _ in range(2):
        if not driver.rotate(arn).succeeded:
            raise RuntimeError("set-up rotation failed")
    detection = Detection(case, abuse, phase, hour_offset)
    probe = PROBES[case](world, arn, defaults, abuse, day)
    # Steady state: the monitor has run before the abuse (its watermark is current, the keys are known).
    for tick in range(first_tick - interval, abuse, interval):
        clock.set(tick)
        world.run()
        world.notifications()
    clock.set(abuse)
    probe.start()
    recorded = abuse - abuse % BUCKET_SECONDS
    tick = first_tick + WARM_UP_TICKS * interval
    for _ in range(MAX_TICKS):
        tick += interval
        while recorded < tick - tick % BUCKET_SECONDS:  # every minute of abuse up to this run
            probe.minute(recorded)
            recorded += BUCKET_SECONDS
        clock.set(tick)
        clock_before = stopwatch()
        report = world.run()
        seconds = clock_before()
        detection.runs += 1
        detection.run_seconds.append(seconds)
        how = probe.check(report)
        if how:
            detection.detected_at, detection.how = tick + seconds, how
            break
    inventory.clear_cache()
    return detection


@dataclass
class Probe:
    """One case: what starts the abuse, what each minute of it leaves in OpenAI's usage, and how a run's outcome
    shows it was detected (a non-empty "how")."""

    start: Callable[[], None]
    check: Callable[[Any], str]
    minute: Callable[[int], None] = lambda minute: None


def _unmanaged_key(world: Any, arn: str, defaults: Defaults, abuse: int, day: int) -> Probe:
    """Someone creates a key in the project's dashboard: on-call's notification names it."""
    created: list[str] = []

    def start() -> None:
        key_id, _ = world.rotation.openai.state.add_user_key(world.rotation.project_id, name="laptop key")
        created.append(key_id)

    def check(report: Any) -> str:
        notes = world.notifications()
        if not any(created[0] in note["subject"] + note["message"] for note in notes):
            return ""
        return "findings (project listing)" if created[0] in report.unmanaged_keys else "audit-log tripwire"

    return Probe(start, check)


def _retired_key(world: Any, arn: str, defaults: Defaults, abuse: int, day: int) -> Probe:
    """The previous key is used past its grace period (a leak's user, or a process that never re-read the secret);
    the janitor keeps it while it is in use, as the in-use policy says."""
    old = world.rotation.previous(arn)
    if old is None:
        raise RuntimeError("set-up rotations left no previous key")
    state = world.rotation.openai.state

    def minute(moment: int) -> None:
        state.record_usage(old.key_id, at=moment + 5, num_model_requests=3, input_tokens=10, output_tokens=10)

    def check(report: Any) -> str:
        world.notifications()
        return "notification and RetiredKeyRequests" if old.key_id in report.retired_keys else ""

    return Probe(lambda: None, check, minute)


def _usage_spike(world: Any, arn: str, defaults: Defaults, abuse: int, day: int) -> Probe:
    """A managed key's requests jump far above any band: detected once the datapoints the alarm needs are out."""
    from keyrot import metric_names as m

    key_id = world.rotation.current(arn).key_id
    dims = m.key_dimensions(world.rotation.environment, "chat-backend")
    period = defaults.anomaly_period_seconds
    state = world.rotation.openai.state

    def minute(moment: int) -> None:
        state.record_usage(
            key_id, at=moment + 5, num_model_requests=SPIKE_REQUESTS_PER_MINUTE, input_tokens=1, output_tokens=1
        )

    def check(report: Any) -> str:
        world.notifications()
        published = world.sums(m.REQUESTS, dims, abuse - period, int(world.clock()) + period)
        periods = {stamp - stamp % period for stamp, value in published.items() if stamp >= abuse and value}
        return f"{len(periods)} periods' datapoints published" if len(periods) >= defaults.anomaly_datapoints else ""

    return Probe(lambda: None, check, minute)


def _daily_spend(world: Any, arn: str, defaults: Defaults, abuse: int, day: int) -> Probe:
    """Spend earlier today was under the limit; at the abuse's start it crosses it."""
    from keyrot import metric_names as m

    key_id = world.rotation.current(arn).key_id
    limit = defaults.spend_limit_usd
    state = world.rotation.openai.state
    state.record_cost(key_id, limit * SPEND_BEFORE_USD_FRACTION, at=day + 60)

    def start() -> None:
        state.record_cost(key_id, limit * (1 - SPEND_BEFORE_USD_FRACTION) + 1.0, at=abuse)

    def check(report: Any) -> str:
        world.notifications()
        published = world.maxima(m.SPEND_TODAY_USD, m.environment_dimensions(world.rotation.environment))
        return "SpendTodayUSD above the limit" if any(value > limit for value in published) else ""

    return Probe(start, check)


PROBES: dict[str, Callable[[Any, str, Defaults, int, int], Probe]] = {
    "unmanaged key": _unmanaged_key,
    "retired key": _retired_key,
    "usage spike": _usage_spike,
    "daily spend": _daily_spend,
}


def _timing_settings(defaults: Defaults) -> dict[str, Any]:
    """The monitor's settings as the program deploys them (those that bound detection or change what it sees)."""
    from keyrot.settings import MonitorSettings

    deployed = MonitorSettings.from_env(
        {
            **defaults.monitor_variables,
            "KEYROT_MANAGED_SECRETS": "{}",  # the world declares its own secrets
        }
    )
    return {
        name: getattr(deployed, name)
        for name in (
            "settle_delay_seconds",
            "grace_period_seconds",
            "max_grace_period_seconds",
            "quiet_window_seconds",
            "usage_kinds",
            "notify_dedup_seconds",
            "in_use_policy",
        )
        if hasattr(deployed, name)
    }


# --- report ----------------------------------------------------------------------------------------------------


def _report(result: BenchResult, defaults: Defaults, detections: list[Detection]) -> None:
    run_seconds = max(s for d in detections for s in d.run_seconds)
    limit = bounds(defaults, run_seconds)
    interval_bound = defaults.interval_seconds + run_seconds
    figures: dict[str, Any] = {}
    for case in CASES:
        found = [d for d in detections if d.case == case]
        latencies = [d.latency for d in found if d.latency is not None]
        missed = len(found) - len(latencies)
        worst = max(latencies) if latencies and not missed else float("inf")
        goal = interval_bound if case in ("unmanaged key", "retired key") else limit[case]
        goal_text = (
            f"≤ one monitor interval + the run ({_minutes(interval_bound)})"
            if case in ("unmanaged key", "retired key")
            else f"≤ the bound the settings imply ({_minutes(limit[case])})"
        )
        result.target(
            f"{CASE_LABELS[case]}: time to detect, worst of {len(found)} start moments",
            (f"{_minutes(worst)} (median {_minutes(median(latencies))}); " if latencies else "never detected; ")
            + f"bound {_minutes(limit[case])}"
            + (f"; {missed} not detected within {MAX_TICKS} runs" if missed else ""),
            goal_text,
            worst <= goal,
        )
        figures[case] = {
            "latency_seconds": [d.latency for d in found],
            "worst_seconds": worst if latencies and not missed else None,
            "median_seconds": median(latencies) if latencies else None,
            "bound_seconds": limit[case],
            "goal_seconds": goal,
            "starts": [
                {
                    "phase_of_interval": d.phase,
                    "minutes_into_hour": d.hour_offset_minutes,
                    "abuse_start": datetime.fromtimestamp(d.abuse_start, UTC).isoformat(),
                    "latency_seconds": d.latency,
                    "runs": d.runs,
                    "how": d.how,
                }
                for d in found
            ],
        }
    result.row(
        "settings (Pulumi.yaml defaults, as deployed)",
        f"monitor every {_minutes(defaults.interval_seconds)}, settle delay {_minutes(defaults.settle_seconds)}, "
        f"usage buckets of 1 min, anomaly alarm {defaults.anomaly_datapoints} of its "
        f"{_minutes(defaults.anomaly_period_seconds)} periods, retired-key alarm {defaults.retired_datapoints} "
        f"datapoint, spend limit {defaults.spend_limit_usd:g} USD per {_minutes(defaults.spend_period_seconds)} "
        "period",
    )
    result.row(
        "what bounds each (worst case)",
        f"(a) interval + run; (b) bucket + settle + interval + run; (c) {defaults.anomaly_datapoints - 1} anomaly "
        "period + bucket + settle + interval + run; (d) interval + run (OpenAI's own delay in reporting costs "
        "comes on top, not modelled)",
    )
    result.row("monitor run duration here (longest)", fmt_seconds(run_seconds))
    result.figures = {
        "defaults": dataclasses.asdict(defaults) | {"monitor_variables": None},
        "run_seconds_max": run_seconds,
        "cases": figures,
    }
    result.notes.append(
        "Time to detect: simulated time (one manual clock for the monitor and the stand-in); the monitor runs at "
        "each tick of its deployed schedule; a run's real duration is added to its tick. Detection: on-call's "
        "notification names the key ((a), (b)), or the datapoint that trips the alarm is published ((b), (c), (d)); "
        "CloudWatch evaluates an alarm about a minute after that. The spike is far above any band, so one minute in "
        "a period makes it breach."
    )


def _minutes(seconds: float) -> str:
    if seconds == float("inf"):
        return "never"
    return f"{seconds / 60:.1f} min"
