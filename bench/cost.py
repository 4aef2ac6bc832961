"""Benchmark 6, cost per environment: what the resources the Pulumi program declares cost per month.

The program runs under Pulumi's mocks (RecordingMocks) with the dev stack's configuration and 1, 5 or 20 keys, and
with Pulumi.yaml's defaults and 2 keys (the target). What it declares gives the fixed costs (secrets, KMS key,
alarms, dashboard) and the schedules (monitor interval, rotation schedule). What each invocation does is measured,
not guessed: the real handlers run against moto and the OpenAI stand-in, and their AWS calls, log output and
published metrics are counted. Prices come from bench/prices.py (one dated table).

Assumptions, all stated in the output: every key is busy (chat completions every minute, spend every day), every
monitor run starts cold (the ledger reads every secret version), one application process per key reads its key
through KeyProvider (TTL 300 s), the janitor revokes once per rotation, and free tiers are ignored.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import prices as p
from bench.common import REGION, AwsCallCounter, BenchResult, moto_in_process, sandbox_env, stopwatch

ACCOUNT = "111111111111"  # the dev stack's account (Pulumi.dev.yaml refuses any other)
STACK = "dev"
KEY_COUNTS = (1, 2, 5, 20)  # environments at the defaults; the extra key's cost is the step from 1 to 2 keys
TARGET_KEYS = 2
TARGET_USD = 8.0
PER_KEY_TARGET_USD = 1.20
# Pulumi.dev.yaml settings that differ from Pulumi.yaml's defaults and change the bill (or the schedule).
DEV_OVERRIDES = (
    "keyrot:rotationSchedule",
    "keyrot:rotationWindow",
    "keyrot:gracePeriodHours",
    "keyrot:maxGracePeriodHours",
    "keyrot:quietWindowMinutes",
    "keyrot:dailySpendLimitUsd",
    "keyrot:anomalyBandWidth",
    "keyrot:logRetentionDays",
    "keyrot:guardrails",
    "keyrot:adminKeyRotation",
    "keyrot:dashboard",
)
# Assumptions for what is not measured here.
APP_READ_TTL_SECONDS = 300  # KeyProvider's default
APP_PROCESSES_PER_KEY = 1
NOTIFICATIONS_PER_MONTH = 20  # alarm transitions and monitor notices, each to every subscription
LAMBDA_PLATFORM_LOG_BYTES = 350  # START, END and REPORT lines per invocation
AWS_CALL_SECONDS = 0.02  # billed duration per AWS call from Lambda (latency)
OPENAI_CALL_SECONDS = 0.3  # billed duration per OpenAI call
INVOCATION_OVERHEAD_SECONDS = 0.5  # init and compute per invocation
COST_GROUPS = ("secrets", "kms", "metrics", "alarms", "dashboard", "lambda", "scheduler", "logs", "sns")


@dataclass
class Declared:
    """What the program declared, reduced to what is billed."""

    secrets: int
    managed_keys: int
    kms_keys: int
    kms_rotation: bool
    alarm_metrics: list[int]  # billed metrics per alarm
    anomaly_alarm_names: list[str]
    dashboards: int
    function_memory_mb: dict[str, float]
    log_retention_days: dict[str, float]
    monitor_interval_minutes: float
    # Other scheduled functions (name -> minutes between runs): not profiled, billed as a bare invocation each run.
    other_schedule_minutes: dict[str, float]
    rotation_interval_hours: float
    subscriptions: Counter[str]
    alarm_names: list[str] = field(default_factory=list)  # parallel to alarm_metrics
    # The monitor's variables that decide which metrics it publishes, as the program set them (name, value).
    monitor_metric_variables: tuple[tuple[str, str], ...] = ()


@dataclass
class InvocationProfile:
    """One invocation's (or one rotation's) measured remote calls, log output and metrics."""

    aws_calls: Counter[str] = field(default_factory=Counter)
    openai_calls: int = 0
    invocations: int = 0
    log_bytes: int = 0
    log_gzip_bytes: int = 0
    metrics: set[tuple[str, tuple[tuple[str, str], ...]]] = field(default_factory=set)

    def calls(self, prefix: str) -> int:
        return sum(count for name, count in self.aws_calls.items() if name.startswith(prefix))


@dataclass
class Estimate:
    label: str
    declared: Declared
    usd: dict[str, float]
    volumes: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.usd.values())


def run(smoke: bool = False) -> BenchResult:
    result = BenchResult("cost", "6. Cost per environment", smoke=smoke)
    elapsed = stopwatch()
    key_counts = (1, TARGET_KEYS) if smoke else KEY_COUNTS
    rotation, revocation = _rotation_profiles()
    monitor_profiles: dict[tuple[int, int, tuple[tuple[str, str], ...]], InvocationProfile] = {}

    def monitor(declared: Declared) -> InvocationProfile:
        key = (declared.managed_keys, int(declared.monitor_interval_minutes), declared.monitor_metric_variables)
        if key not in monitor_profiles:
            monitor_profiles[key] = _monitor_profile(key[0], key[1], dict(key[2]))
        return monitor_profiles[key]

    def estimate(label: str, config: dict[str, str], **model: Any) -> Estimate:
        declared = _declared(config)
        return _model(label, declared, monitor(declared), rotation, revocation, **model)

    def option(label: str, **settings: Any) -> Option:
        """A setting at TARGET_KEYS keys, and what each extra key costs with it (the step from 1 key)."""
        two = estimate(label, _config(TARGET_KEYS, defaults=True, **settings))
        one = estimate(label, _config(1, defaults=True, **settings))
        return Option(two, two.total - one.total)

    defaults = {
        keys: estimate(f"defaults, {keys} key{'s' * (keys != 1)}", _config(keys, defaults=True)) for keys in key_counts
    }
    for environment in defaults.values():
        _breakdown_row(result, environment)
    dev = estimate(f"dev stack, {TARGET_KEYS} keys", _config(TARGET_KEYS, defaults=False))
    _breakdown_row(result, dev)
    base = defaults[TARGET_KEYS]
    fixed, per_key = split(defaults[1], base, TARGET_KEYS - 1)
    result.target(
        f"environment with {TARGET_KEYS} keys at default settings, per month",
        f"{base.total:.2f} USD in year 1 (KMS key rotation: +{p.KMS_ROTATION_PER_MONTH:.0f} in year 2, "
        f"+{p.KMS_ROTATIONS_CHARGED * p.KMS_ROTATION_PER_MONTH:.0f} from year 3)",
        f"< {TARGET_USD:.0f} USD",
        base.total < TARGET_USD,
    )
    result.target(
        "each extra key at default settings, per month",
        f"{sum(per_key.values()):.2f} USD",
        f"< {PER_KEY_TARGET_USD:.2f} USD",
        sum(per_key.values()) < PER_KEY_TARGET_USD,
    )
    result.row("fixed part of the bill at the defaults (USD/month)", _parts(fixed))
    result.row("each extra key at the defaults (USD/month)", _parts(per_key))
    idle_one = estimate("idle", _config(1, defaults=True), key_usage_share=0.0)
    idle_two = estimate("idle", _config(TARGET_KEYS, defaults=True), key_usage_share=0.0)
    idle_key = idle_two.total - idle_one.total
    result.row(
        "an extra key with no usage all month, at the defaults",
        f"{idle_key:.2f} USD (its secret and its two anomaly alarms: no per-key metric is published in an hour "
        "without usage, and CloudWatch bills a metric only for the hours it receives data)",
    )
    volumes = base.volumes
    result.row(
        f"custom metrics, defaults, {TARGET_KEYS} keys",
        f"{volumes['metrics_published_per_monitor_run']:.0f} published every monitor run (per key: Requests, "
        f"InputTokens when non-zero; SpendTodayUSD, OldestKeyAgeHours, MonitorHeartbeat, MonitorPublishMarker; with "
        f"the dashboard also per key OutputTokens, KeyAgeHours, CostTodayUSD, and UsageBucketsSetAside) + "
        f"{volumes['rotation_emf_metrics']:.0f} rotation EMF metrics and KeyRevoked in rotation hours = "
        f"{volumes['metric_months']:.2f} metric-months; {volumes['alarm_metrics']:.0f} alarm metrics",
    )
    options = _options(option, smoke)
    best = max(options, key=lambda o: base.total - o.estimate.total) if options else None
    for each in options:
        change = base.total - each.estimate.total
        result.row(
            f"what if: {each.estimate.label}",
            f"{each.estimate.total:.2f} USD/month ({'saves' if change >= 0 else 'adds'} {abs(change):.2f}); each "
            f"extra key {each.per_key:.2f}",
        )
    if best is not None:
        result.row(
            "setting that cuts the default bill most",
            f"{best.estimate.label}: −{base.total - best.estimate.total:.2f} USD/month",
        )
    estimates = [*defaults.values(), dev, *(o.estimate for o in options)]
    result.figures = {
        "prices_as_of": p.PRICES_AS_OF,
        "region": p.REGION,
        "estimates": {e.label: {"total_usd": e.total, "usd": e.usd, "volumes": e.volumes} for e in estimates},
        "fixed_usd": fixed,
        "per_key_usd": per_key,
        "idle_key_usd": idle_key,
        "options": {o.estimate.label: {"total_usd": o.estimate.total, "per_key_usd": o.per_key} for o in options},
        "profiles": {
            "rotation": _profile_json(rotation),
            "revocation": _profile_json(revocation),
            **{
                f"monitor {k} keys, {i} min{_variables_label(dict(d))}": _profile_json(p)
                for (k, i, d), p in monitor_profiles.items()
            },
        },
    }
    result.notes.append(
        f"Cost model: prices {p.REGION} as of {p.PRICES_AS_OF} (bench/prices.py), free tiers ignored. Busy keys "
        f"(completions every minute, spend daily), cold monitor runs, {APP_PROCESSES_PER_KEY} application process per "
        f"key reading through KeyProvider (TTL {APP_READ_TTL_SECONDS} s), one janitor revocation per rotation, "
        f"{NOTIFICATIONS_PER_MONTH} notifications a month; Lambda duration {INVOCATION_OVERHEAD_SECONDS} s + "
        f"{AWS_CALL_SECONDS * 1000:.0f} ms per AWS call + {OPENAI_CALL_SECONDS * 1000:.0f} ms per OpenAI call. "
        "Custom metrics are prorated by the hours they receive data: published every monitor run, so a monitor "
        "interval above 60 minutes leaves hours without data. KMS: the key's automatic yearly rotation adds "
        "1 USD/month in year 2 and 2 USD/month from year 3. Extra key: the step from 1 to 2 keys (the 5- and "
        "20-key environments show it stays linear). Each 'what if' is one setting changed from the defaults."
    )
    result.seconds = elapsed()
    return result


@dataclass
class Option:
    estimate: Estimate  # at TARGET_KEYS keys
    per_key: float  # what each extra key costs with the option


def split(one: Estimate, more: Estimate, extra_keys: int) -> tuple[dict[str, float], dict[str, float]]:
    """The fixed part and the per-key part of the bill, by group, from two environments `extra_keys` keys apart."""
    per_key = {group: (more.usd[group] - one.usd[group]) / extra_keys for group in COST_GROUPS}
    keys = one.declared.managed_keys
    fixed = {group: one.usd[group] - keys * per_key[group] for group in COST_GROUPS}
    return fixed, per_key


def _parts(usd: dict[str, float]) -> str:
    shown = ", ".join(f"{group} {value:.2f}" for group, value in usd.items() if abs(value) >= 0.005)
    return f"{sum(usd.values()):.2f} = {shown}"


def _options(option: Callable[..., Option], smoke: bool) -> list[Option]:
    """The settings that change the bill, each alone."""
    options = [option("dashboard on (dashboard: true)", dashboard=True)]
    if smoke:
        return options
    for minutes in (30, 60, 120):
        options.append(
            option(f"monitor every {minutes} min (monitorIntervalMinutes: {minutes})", monitorIntervalMinutes=minutes)
        )
    options.append(option("log retention 14 days (logRetentionDays: 14)", logRetentionDays=14))
    options.append(option("anomaly alarms on requests only (anomalyAlarms: requests)", anomalyAlarms=["requests"]))
    return options


# --- configurations and the program --------------------------------------------------------------------------------


def _config(keys: int, *, defaults: bool, **overrides: Any) -> dict[str, str]:
    from lab.pulumi_program import stack_config

    entries = [
        {"name": f"key-{index + 1}", "readerRoleArns": [f"arn:aws:iam::{ACCOUNT}:role/app-{index + 1}"]}
        for index in range(keys)
    ]
    values: dict[str, Any] = {"keyrot:keys": entries}
    values.update({f"keyrot:{name}": value for name, value in overrides.items()})
    # The dev stack's own choices go, but never a setting the caller asked for.
    drop = tuple(name for name in DEV_OVERRIDES if name not in values) if defaults else ()
    return stack_config(STACK, values, drop=drop)


def _deployment(config: dict[str, str]) -> Any:
    repo = str(Path(__file__).resolve().parents[1])
    if repo not in sys.path:
        sys.path.insert(0, repo)
    from lab.pulumi_program import RecordingMocks, run_program

    return run_program(STACK, config, RecordingMocks(ACCOUNT, REGION), account=ACCOUNT)


def _declared(config: dict[str, str]) -> Declared:
    from keyrot.constants import ENV_ANOMALY_METRICS, ENV_DASHBOARD_METRICS
    from keyrot.pulumi.schedule import parse_schedule

    deployment = _deployment(config)
    alarms = deployment.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    alarm_metrics = [_alarm_metrics(alarm.inputs) for alarm in alarms]
    anomaly = [alarm.inputs.get("name", alarm.name) for alarm in alarms if _is_anomaly(alarm.inputs)]
    schedules = deployment.of_type("aws:scheduler/schedule:Schedule")
    (schedule,) = [s for s in schedules if str(s.inputs.get("name", "")).endswith("-monitor")]
    others = [s for s in schedules if s is not schedule]
    # The managed keys' rotations (the admin key's own rotation, when declared, has a function of its own).
    rotations = [
        r
        for r in deployment.of_type("aws:secretsmanager/secretRotation:SecretRotation")
        if not str(r.inputs.get("rotationLambdaArn", "")).endswith("-admin-rotation")
    ]
    intervals = {
        parse_schedule(r.inputs["rotationRules"]["scheduleExpression"]).min_interval_hours for r in rotations
    } or {0}
    keys = deployment.of_type("aws:kms/key:Key")
    (monitor_function,) = [
        f for f in deployment.of_type("aws:lambda/function:Function") if f.inputs["name"].endswith("-monitor")
    ]
    variables = monitor_function.inputs["environment"]["variables"]
    return Declared(
        secrets=len(deployment.of_type("aws:secretsmanager/secret:Secret")),
        managed_keys=len(rotations),
        kms_keys=len(keys),
        kms_rotation=any(k.inputs.get("enableKeyRotation") for k in keys),
        alarm_metrics=alarm_metrics,
        anomaly_alarm_names=anomaly,
        dashboards=len(deployment.of_type("aws:cloudwatch/dashboard:Dashboard")),
        function_memory_mb={
            f.inputs["name"]: float(f.inputs.get("memorySize", 128))
            for f in deployment.of_type("aws:lambda/function:Function")
        },
        log_retention_days={
            g.inputs["name"]: float(g.inputs.get("retentionInDays") or 3653)
            for g in deployment.of_type("aws:cloudwatch/logGroup:LogGroup")
        },
        monitor_interval_minutes=_rate_minutes(schedule.inputs["scheduleExpression"]),
        other_schedule_minutes={
            str(s.inputs.get("name", s.name)): _rate_minutes(s.inputs["scheduleExpression"]) for s in others
        },
        rotation_interval_hours=float(min(intervals)),
        subscriptions=Counter(
            s.inputs.get("protocol", "?") for s in deployment.of_type("aws:sns/topicSubscription:TopicSubscription")
        ),
        alarm_names=[str(alarm.inputs.get("name", alarm.name)) for alarm in alarms],
        monitor_metric_variables=tuple(
            (name, variables[name]) for name in (ENV_DASHBOARD_METRICS, ENV_ANOMALY_METRICS) if name in variables
        ),
    )


def _is_anomaly(inputs: dict[str, Any]) -> bool:
    return any("ANOMALY_DETECTION_BAND" in str(q.get("expression", "")) for q in inputs.get("metricQueries") or [])


def _alarm_metrics(inputs: dict[str, Any]) -> int:
    """Billed metrics of one alarm: 3 for an anomaly detection alarm, else one per metric it reads."""
    if _is_anomaly(inputs):
        return p.ANOMALY_ALARM_METRICS
    queries = inputs.get("metricQueries") or []
    if queries:
        return sum(1 for q in queries if q.get("metric"))
    period = float(inputs.get("period") or 60)
    if period < 60:
        raise ValueError(f"high-resolution alarm {inputs.get('name')}: not in the price table")
    return 1


def _rate_minutes(expression: str) -> float:
    match = re.fullmatch(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)", expression.strip())
    if not match:
        raise ValueError(f"monitor schedule {expression!r} is not a rate expression")
    value, unit = int(match.group(1)), match.group(2)
    return value * {"minute": 1, "hour": 60, "day": 1440}[unit.rstrip("s")]


# --- measured invocations ------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _captured_stdout() -> Any:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield buffer


def _account_logs(profile: InvocationProfile, text: str) -> None:
    profile.log_bytes += len(text.encode())
    profile.log_gzip_bytes += len(gzip.compress(text.encode(), compresslevel=6))
    for line in text.splitlines():
        if '"_aws"' not in line:
            continue
        record = json.loads(line)
        for directive in record["_aws"].get("CloudWatchMetrics", []):
            for dims in directive.get("Dimensions", []):
                for metric in directive.get("Metrics", []):
                    profile.metrics.add((metric["Name"], tuple(sorted((d, str(record.get(d))) for d in dims))))


def _rotation_profiles() -> tuple[InvocationProfile, InvocationProfile]:
    """One rotation through the real rotation handler, and one revocation as the janitor does it."""
    import boto3

    from keyrot.aws.clients import aws_client
    from keyrot.openai_admin import OpenAITransport
    from keyrot.rotation import revoke_previous
    from keyrot.rotation.context import build_rotation_context
    from lab.openai_standin import OpenAIStandIn
    from lab.rotation_driver import RotationDriver
    from lab.scenario import RotationWorld

    rotation, revocation = InvocationProfile(), InvocationProfile()
    with sandbox_env(), moto_in_process(), OpenAIStandIn() as openai:
        world = RotationWorld.create(openai, boto3.client("secretsmanager", region_name=REGION), environment="dev")
        arn = world.create_managed_secret("cost")
        assert world.driver().rotate(arn).succeeded
        env = {
            "KEYROT_ENVIRONMENT": "dev",
            "KEYROT_ADMIN_SECRET_ARN": world.admin_secret_arn,
            "OPENAI_BASE_URL": openai.base_url,
        }
        with sandbox_env(**env):
            from keyrot.handlers import rotate

            counter = AwsCallCounter()
            counter.attach(aws_client("secretsmanager"))
            invocations = 0

            def invoke(event: dict[str, Any]) -> None:
                nonlocal invocations
                invocations += 1
                rotate.handler(event, None)

            before = len(openai.calls)
            with _captured_stdout() as out:
                run = RotationDriver(world.secrets, invoke).rotate(arn)
            if not run.succeeded:
                raise RuntimeError(f"the cost model's rotation failed: {run.failures}")
            rotation.aws_calls = Counter({f"secretsmanager:{k}": v for k, v in counter.calls.items()})
            rotation.openai_calls, rotation.invocations = len(openai.calls) - before, invocations
            _account_logs(rotation, out.getvalue())
        # The janitor's revocation of the key this rotation replaced, through a counted client.
        counted = AwsCallCounter()
        context = build_rotation_context(
            world.settings,
            counted.attach(boto3.client("secretsmanager", region_name=REGION)),
            transport=OpenAITransport(openai.base_url),
        )
        before = len(openai.calls)
        outcome = revoke_previous(context, arn)
        if outcome.status != "revoked":
            raise RuntimeError(f"the cost model's revocation did not revoke: {outcome.status}")
        revocation.aws_calls = Counter({f"secretsmanager:{k}": v for k, v in counted.calls.items()})
        revocation.openai_calls = len(openai.calls) - before
    return rotation, revocation


def _monitor_profile(keys: int, interval_minutes: int, metric_variables: dict[str, str]) -> InvocationProfile:
    """One cold run of the real monitor handler over `keys` busy keys and one window of `interval_minutes`, with the
    variables that choose its metrics as the program set them (KEYROT_DASHBOARD_METRICS, KEYROT_ANOMALY_METRICS)."""
    import boto3

    from keyrot.aws.clients import monitor_clients
    from keyrot.constants import state_parameter_name
    from keyrot.monitor import ledger
    from keyrot.monitor.state import MonitorState, StateStore
    from keyrot.rotation import revoke_previous
    from lab.openai_standin import OpenAIStandIn
    from lab.scenario import RotationWorld

    profile = InvocationProfile(invocations=1)
    with sandbox_env(), moto_in_process(), OpenAIStandIn() as openai:
        session = boto3.session.Session(region_name=REGION)
        world = RotationWorld.create(openai, session.client("secretsmanager"), environment="dev")
        topic = session.client("sns").create_topic(Name="keyrot-dev-oncall")["TopicArn"]
        arns = [world.create_managed_secret(f"key-{index + 1}") for index in range(keys)]
        for arn in arns:  # steady state: a current key and a revoked previous one, both read by a cold ledger
            for _ in range(2):
                if not world.driver().rotate(arn).succeeded:
                    raise RuntimeError("the cost model's set-up rotation failed")
            if revoke_previous(world.context(), arn).status != "revoked":
                raise RuntimeError("the cost model's set-up revocation failed")
        now = int(datetime.now(UTC).timestamp())
        window_end = now - now % 60 - 60
        window_start = window_end - interval_minutes * 60
        for arn in arns:
            key_id = world.current(arn).key_id
            for minute in range(interval_minutes):
                openai.state.record_usage(key_id, at=window_start + minute * 60 + 1, input_tokens=200, output_tokens=50)
            openai.state.record_cost(key_id, 0.02, at=now - now % 86400 + 1)
        parameter = state_parameter_name("dev")
        StateStore(session.client("ssm"), parameter).save(MonitorState(watermark=window_start))
        env = {
            "KEYROT_ENVIRONMENT": "dev",
            "KEYROT_ADMIN_SECRET_ARN": world.admin_secret_arn,
            "OPENAI_BASE_URL": openai.base_url,
            "KEYROT_OPENAI_PROJECT_ID": world.project_id,
            "KEYROT_TOPIC_ARN": topic,
            "KEYROT_STATE_PARAMETER": parameter,
            "KEYROT_SETTLE_DELAY_SECONDS": "60",
            **metric_variables,
        }
        with sandbox_env(**env):
            from keyrot.handlers import monitor

            # The handler's own clients (keyrot.aws.clients.monitor_clients), so every call it makes is counted.
            clients = monitor_clients()
            counters = {service: AwsCallCounter() for service in clients}
            for service, counter in counters.items():
                counter.attach(clients[service])
            ledger.clear_cache()
            before = len(openai.calls)
            with _captured_stdout() as out:
                summary = monitor.handler({}, None)
            if summary.get("skipped") or not summary.get("usage_datums"):
                raise RuntimeError(f"the cost model's monitor run published no usage: {summary}")
            profile.aws_calls = Counter(
                {f"{service}:{op}": n for service, counter in counters.items() for op, n in counter.calls.items()}
            )
            profile.openai_calls = len(openai.calls) - before
            _account_logs(profile, out.getvalue())
            for page in session.client("cloudwatch").get_paginator("list_metrics").paginate(Namespace="Keyrot"):
                for metric in page["Metrics"]:
                    dims = tuple(sorted((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])))
                    profile.metrics.add((metric["MetricName"], dims))
        ledger.clear_cache()
    return profile


def _variables_label(variables: dict[str, str]) -> str:
    """What a monitor profile's metric variables change from the defaults, for its label ("" at the defaults)."""
    label = ", dashboard" if variables.get("KEYROT_DASHBOARD_METRICS") == "true" else ""
    anomaly = variables.get("KEYROT_ANOMALY_METRICS", "Requests,InputTokens")
    return label + (f", anomaly alarms on {anomaly}" if anomaly != "Requests,InputTokens" else "")


def _profile_json(profile: InvocationProfile) -> dict[str, Any]:
    return {
        "aws_calls": dict(profile.aws_calls),
        "openai_calls": profile.openai_calls,
        "invocations": profile.invocations,
        "log_bytes": profile.log_bytes,
        "log_gzip_bytes": profile.log_gzip_bytes,
        "metrics": sorted(f"{name}{dict(dims)}" for name, dims in profile.metrics),
    }


# --- the model -----------------------------------------------------------------------------------------------------


def _model(
    label: str,
    declared: Declared,
    monitor: InvocationProfile,
    rotation: InvocationProfile,
    revocation: InvocationProfile,
    *,
    key_usage_share: float = 1.0,
) -> Estimate:
    """Price one environment. `key_usage_share`: the share of hours in which each key has usage (1.0: busy keys,
    the model's assumption)."""
    hours = p.HOURS_PER_MONTH
    runs = hours * 60 / declared.monitor_interval_minutes
    rotations = declared.managed_keys * hours / declared.rotation_interval_hours
    app_reads = declared.managed_keys * APP_PROCESSES_PER_KEY * hours * 3600 / APP_READ_TTL_SECONDS
    usd: dict[str, float] = dict.fromkeys(COST_GROUPS, 0.0)
    volumes: dict[str, float] = {"monitor_runs": runs, "rotations": rotations, "application_reads": app_reads}

    secrets_calls = (
        monitor.calls("secretsmanager:") * runs
        + rotation.calls("secretsmanager:") * rotations
        + revocation.calls("secretsmanager:") * rotations
        + app_reads
    )
    volumes["secrets_manager_calls"] = secrets_calls
    usd["secrets"] = declared.secrets * p.SECRET_PER_MONTH + secrets_calls / 10_000 * p.SECRETS_API_PER_10K

    def kms_uses(profile: InvocationProfile) -> int:
        return profile.calls("secretsmanager:GetSecretValue") + profile.calls("secretsmanager:PutSecretValue")

    notifications = NOTIFICATIONS_PER_MONTH
    kms_requests = (
        kms_uses(monitor) * runs + (kms_uses(rotation) + kms_uses(revocation)) * rotations + app_reads + notifications
    )
    volumes["kms_requests"] = kms_requests
    usd["kms"] = declared.kms_keys * p.KMS_KEY_PER_MONTH + kms_requests / 10_000 * p.KMS_REQUESTS_PER_10K

    every_run = min(1.0, 60 / declared.monitor_interval_minutes)  # share of hours with data
    rotation_hours = min(1.0, rotations / hours)
    monitor_metrics = sum(every_run * _hours_share(metric, key_usage_share) for metric in monitor.metrics)
    rotation_metrics = len(rotation.metrics) * rotation_hours
    revoked_metric = rotation_hours if rotations else 0.0  # KeyRevoked, published by the janitor
    metric_months = monitor_metrics + rotation_metrics + revoked_metric
    put_requests = monitor.calls("cloudwatch:PutMetricData") * runs
    volumes.update(
        {
            "metrics_published_per_monitor_run": len(monitor.metrics),
            "rotation_emf_metrics": len(rotation.metrics),
            "metric_months": metric_months,
            "put_metric_data_requests": put_requests,
        }
    )
    usd["metrics"] = metric_months * p.CUSTOM_METRIC_PER_MONTH + put_requests / 1000 * p.PUT_METRIC_DATA_PER_1K

    usd["alarms"] = sum(declared.alarm_metrics) * p.STANDARD_ALARM_PER_METRIC
    volumes["alarm_metrics"] = sum(declared.alarm_metrics)
    usd["dashboard"] = declared.dashboards * p.DASHBOARD_PER_MONTH

    other_runs = sum(hours * 60 / minutes for minutes in declared.other_schedule_minutes.values())
    volumes["other_scheduled_runs"] = other_runs
    lambda_requests = runs * monitor.invocations + rotations * rotation.invocations + other_runs
    monitor_seconds = _duration(monitor, monitor.invocations)
    rotation_seconds = _duration(rotation, rotation.invocations) + _duration(revocation, 0)
    memory = {name: mb / 1024 for name, mb in declared.function_memory_mb.items()}
    monitor_gb = next((gb for name, gb in memory.items() if name.endswith("monitor")), 0.25)
    rotation_gb = next((gb for name, gb in memory.items() if name.endswith("rotation")), 0.25)
    gb_seconds = (
        runs * monitor_seconds * monitor_gb
        + rotations * rotation_seconds * rotation_gb
        + other_runs * INVOCATION_OVERHEAD_SECONDS * 0.25
    )
    volumes.update({"lambda_requests": lambda_requests, "lambda_gb_seconds": gb_seconds})
    usd["lambda"] = lambda_requests / 1e6 * p.LAMBDA_REQUESTS_PER_1M + gb_seconds * p.LAMBDA_ARM64_PER_GB_SECOND

    usd["scheduler"] = (runs + other_runs) / 1e6 * p.SCHEDULER_INVOCATIONS_PER_1M

    platform = LAMBDA_PLATFORM_LOG_BYTES
    ingested = (
        runs * (monitor.log_bytes + platform)
        + rotations * (rotation.log_bytes + rotation.invocations * platform)
        + other_runs * platform
    )
    ratio = (monitor.log_gzip_bytes + rotation.log_gzip_bytes) / max(1, monitor.log_bytes + rotation.log_bytes)
    retention_months = max(declared.log_retention_days.values() or [30.0]) / (hours / 24)
    stored = ingested * ratio * retention_months  # steady state: this many months of compressed logs are kept
    volumes.update({"log_bytes_ingested": ingested, "log_bytes_stored": stored})
    usd["logs"] = ingested / 1e9 * p.LOGS_INGESTION_PER_GB + stored / 1e9 * p.LOGS_STORAGE_PER_GB_MONTH

    usd["sns"] = (
        notifications / 1e6 * p.SNS_PUBLISHES_PER_1M
        + notifications * declared.subscriptions.get("email", 0) / 1e5 * p.SNS_EMAIL_PER_100K
        + notifications * declared.subscriptions.get("https", 0) / 1e6 * p.SNS_HTTPS_PER_1M
    )
    return Estimate(label, declared, usd, volumes)


# Per-key metrics published only for a key with usage (the usage counts and its spend today) and per-key gauges.
KEY_USAGE_METRICS = frozenset(
    {"Requests", "InputTokens", "OutputTokens", "Images", "AudioCharacters", "AudioSeconds", "CostTodayUSD"}
)


def _hours_share(metric: tuple[str, tuple[tuple[str, str], ...]], usage: float) -> float:
    """The share of hours in which the monitor publishes `metric` (CloudWatch bills a metric for those hours only)."""
    if not any(name == "KeyName" for name, _ in metric[1]):
        return 1.0
    if metric[0] in KEY_USAGE_METRICS:
        return usage
    return 1.0


def _duration(profile: InvocationProfile, invocations: int) -> float:
    return (
        invocations * INVOCATION_OVERHEAD_SECONDS
        + sum(profile.aws_calls.values()) * AWS_CALL_SECONDS
        + profile.openai_calls * OPENAI_CALL_SECONDS
    )


# --- variants and report -------------------------------------------------------------------------------------------


def _breakdown_row(result: BenchResult, estimate: Estimate) -> None:
    parts = ", ".join(f"{group} {usd:.2f}" for group, usd in estimate.usd.items() if usd >= 0.005)
    small = sum(usd for usd in estimate.usd.values() if usd < 0.005)
    tail = f", rest {small:.3f}" if small else ""
    result.row(f"{estimate.label}: USD/month", f"{estimate.total:.2f} = {parts}{tail}")
