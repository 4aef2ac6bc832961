"""CloudWatch alarms: what keyrot's functions emit, and what AWS/Lambda says about them.

`alarm_specs` is a plain function of the configuration (testable without Pulumi); `Alarms` turns the specs into
`aws.cloudwatch.MetricAlarm`s that notify the on-call topic on ALARM and on OK. Metric names and dimensions come only
from keyrot.metric_names. Every description says what to do and links a stable runbook anchor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pulumi
import pulumi_aws as aws

from keyrot import metric_names as m
from keyrot.constants import ADMIN_KEY_AGE_ALARM_SLACK_SECONDS, ADMIN_ROTATION_PURPOSE, TAG_ENVIRONMENT
from keyrot.names import (
    ENVIRONMENT_ALARM_SUFFIXES,
    INPUT_TOKENS_ANOMALY_ALARM,
    KEYS_TOO_OLD_ALARM,
    REQUESTS_ANOMALY_ALARM,
    environment_alarm_name,
    function_name,
    key_alarm_name,
    log_group_name,
)
from keyrot.pulumi.components._util import child
from keyrot.pulumi.components.usage_monitor import MONITOR_TIMEOUT_SECONDS
from keyrot.pulumi.config import KeyrotConfig
from keyrot.pulumi.runbook import runbook_link

LAMBDA_NAMESPACE = "AWS/Lambda"
# Rotation can take up to the rotation window to happen; a day of slack before the oldest key's age alarms.
KEY_AGE_SLACK_HOURS = 24
# Usage is reported per hour; anomaly bands are trained on hourly sums.
USAGE_PERIOD_SECONDS = 3600
# The fewest hourly periods a usage alarm looks back over (see usage_lookback_periods).
USAGE_LOOKBACK_PERIODS = 3
# CloudWatch: evaluation periods x period may not exceed 7 days for periods of an hour or more.
MAX_ALARM_RANGE_SECONDS = 7 * 24 * 3600
# A monitor run may take up to its timeout (5 min) after it starts before it publishes.
MONITOR_RUN_SECONDS = MONITOR_TIMEOUT_SECONDS
FAST_PERIOD_SECONDS = 300
# The fewest periods without a heartbeat that page (see heartbeat_periods).
HEARTBEAT_PERIODS = 3
# A run that crashed keeps its lease on the state for the function's timeout plus this margin (handlers/monitor.py);
# runs starting meanwhile skip, publishing no heartbeat.
MONITOR_LEASE_MARGIN_SECONDS = 10
# CloudWatch: evaluation periods x period may not exceed one day for periods shorter than an hour.
MAX_SHORT_ALARM_RANGE_SECONDS = 24 * 3600
# Gauges (SpendTodayUSD, OldestKeyAgeHours) are published once per successful run: a failed or skipped run publishes
# nothing, and that must not turn an alarm OK while the last value was over its threshold.
GAUGE_MISSING_DATA = "ignore"
# The Costs API failing this many runs in a row (SpendTodayUSD unknown meanwhile) pages.
COSTS_FAILED_RUNS = 3
# The admin-key cleanup runs every 5 minutes and publishes the admin key gauges (AdminKeyAgeHours, AdminKeysLive).
ADMIN_CLEANUP_PERIOD_SECONDS = 300
# The current admin key, and the previous one during its grace (or a pending one during a rotation).
ADMIN_KEYS_LIVE_LIMIT = 2
# The guardrails function failing this many scheduled checks in a row pages (one OpenAI blip does not; a restore
# OpenAI refuses fails every check).
GUARDRAILS_FAILED_CHECKS = 2


@dataclass(frozen=True)
class AlarmSpec:
    key: str  # logical suffix, unique per stack
    name: str
    description: str
    comparison_operator: str
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: str
    # Static alarms.
    namespace: str | None = None
    metric_name: str | None = None
    dimensions: dict[str, str] = field(default_factory=dict)
    statistic: str | None = None
    period: int | None = None
    threshold: float | None = None
    # Anomaly alarms: metric queries and the id of the band.
    metric_queries: tuple[dict[str, Any], ...] = ()
    threshold_metric_id: str | None = None
    runbook_anchor: str = ""


def _describe(what: str, action: str, anchor: str, *, runbook_url: str) -> str:
    return f"{what} {action} Runbook: {runbook_link(anchor, runbook_url)}"


def monitor_period_seconds(config: KeyrotConfig) -> int:
    """Gauges are published once per monitor run: one period per run keeps every period populated."""
    return max(60, config.monitor_interval_minutes * 60)


def heartbeat_periods(config: KeyrotConfig) -> int:
    """Monitor intervals without a heartbeat before `monitor-not-running` pages: a single crashed run must not.

    The crashed run publishes none, and its lease (the function's timeout plus a margin) makes every run starting
    before it lapses skip: ceil((timeout + margin) / interval) silent intervals in all. Two more, and at least three.
    """
    interval = monitor_period_seconds(config)
    silent = math.ceil((MONITOR_TIMEOUT_SECONDS + MONITOR_LEASE_MARGIN_SECONDS) / interval)
    return max(HEARTBEAT_PERIODS, silent + 2)


def key_age_threshold_hours(config: KeyrotConfig) -> int:
    return config.rotation_max_interval_hours + KEY_AGE_SLACK_HOURS


def usage_delay_seconds(config: KeyrotConfig) -> int:
    """How late a usage datapoint can arrive after its own minute: the settle delay (a bucket is read only once it
    is that old), a whole monitor interval (the run that reads it may start just before), and the run itself."""
    return (config.settle_delay_minutes + config.monitor_interval_minutes) * 60 + MONITOR_RUN_SECONDS


def usage_lookback_periods(config: KeyrotConfig) -> int:
    """Hourly periods a usage alarm evaluates, so that every minute's usage is still inside its range when it is
    published (with its own timestamp, up to `usage_delay_seconds` late): the hour it falls in, the hours of delay,
    and one spare for the alignment of periods. At least USAGE_LOOKBACK_PERIODS."""
    delay_periods = math.ceil(usage_delay_seconds(config) / USAGE_PERIOD_SECONDS)
    return max(USAGE_LOOKBACK_PERIODS, 2 + delay_periods)


_ANOMALY_ALARM_SUFFIXES = {m.REQUESTS: REQUESTS_ANOMALY_ALARM, m.INPUT_TOKENS: INPUT_TOKENS_ANOMALY_ALARM}


def anomaly_alarms(config: KeyrotConfig) -> list[tuple[str, str]]:
    """(metric, alarm suffix) of each usage signal the stack's `anomalyAlarms` names, in the setting's order."""
    return [(m.ANOMALY_SIGNALS[s], _ANOMALY_ALARM_SUFFIXES[m.ANOMALY_SIGNALS[s]]) for s in config.anomaly_alarms]


def _environment_alarm(suffix: str, environment: str) -> str:
    """`keyrot-<env>-<suffix>` for a suffix keyrot.names knows (status files alarms by these names)."""
    if suffix not in ENVIRONMENT_ALARM_SUFFIXES:
        raise ValueError(f"alarm suffix {suffix!r} is not in keyrot.names.ENVIRONMENT_ALARM_SUFFIXES")
    return environment_alarm_name(environment, suffix)


def alarm_specs(config: KeyrotConfig, *, rotation_function_name: str, monitor_function_name: str) -> list[AlarmSpec]:
    describe = partial(_describe, runbook_url=config.runbook_url)
    env = config.environment
    env_dims = m.environment_dimensions(env)
    gauge_period = monitor_period_seconds(config)
    heartbeats = heartbeat_periods(config)
    name = partial(_environment_alarm, environment=env)

    def count_alarm(
        suffix: str,
        anchor: str,
        what: str,
        action: str,
        metric: str,
        *,
        period: int,
        periods: int = 1,
        breaches: int = 1,
    ) -> AlarmSpec:
        """An environment alarm on a keyrot count: any occurrence in `breaches` of `periods` periods pages."""
        return _keyrot_alarm(suffix, metric, "Sum", period, periods, breaches, 0, "notBreaching", anchor, what, action)

    def gauge_alarm(suffix: str, anchor: str, what: str, action: str, metric: str, threshold: float) -> AlarmSpec:
        """An environment alarm on a gauge the monitor publishes once per successful run, above `threshold`."""
        return _keyrot_alarm(
            suffix, metric, "Maximum", gauge_period, 1, 1, threshold, GAUGE_MISSING_DATA, anchor, what, action
        )

    def _keyrot_alarm(
        suffix: str,
        metric: str,
        statistic: str,
        period: int,
        periods: int,
        breaches: int,
        threshold: float,
        missing: str,
        anchor: str,
        what: str,
        action: str,
    ) -> AlarmSpec:
        return AlarmSpec(
            key=suffix,
            name=name(suffix),
            description=describe(what, action, anchor),
            namespace=m.NAMESPACE,
            metric_name=metric,
            dimensions=env_dims,
            statistic=statistic,
            period=period,
            evaluation_periods=periods,
            datapoints_to_alarm=breaches,
            threshold=threshold,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data=missing,
            runbook_anchor=anchor,
        )

    specs = [
        AlarmSpec(
            key="rotation-lambda-errors",
            name=name("rotation-lambda-errors"),
            description=describe(
                f"The keyrot {env} rotation function ({rotation_function_name}) raised an error.",
                "Read its log group for the failing step and error; the current key stays in service.",
                "rotation-lambda-errors",
            ),
            namespace=LAMBDA_NAMESPACE,
            metric_name="Errors",
            dimensions={"FunctionName": rotation_function_name},
            statistic="Sum",
            period=FAST_PERIOD_SECONDS,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            runbook_anchor="rotation-lambda-errors",
        ),
        count_alarm(
            "rotation-failed",
            "rotation-failed",
            f"A keyrot {env} rotation step failed (RotationFailed).",
            "Secrets Manager retries; if it keeps failing, fix the cause and clear AWSPENDING, then rotate again.",
            m.ROTATION_FAILED,
            period=FAST_PERIOD_SECONDS,
        ),
        AlarmSpec(
            key="monitor-lambda-errors",
            name=name("monitor-lambda-errors"),
            description=describe(
                f"The keyrot {env} monitor function ({monitor_function_name}) failed in consecutive runs.",
                "Usage metrics and the previous-key janitor are stalled; read its log group.",
                "monitor-lambda-errors",
            ),
            namespace=LAMBDA_NAMESPACE,
            metric_name="Errors",
            dimensions={"FunctionName": monitor_function_name},
            statistic="Sum",
            period=max(FAST_PERIOD_SECONDS, gauge_period),
            evaluation_periods=2,
            datapoints_to_alarm=2,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            runbook_anchor="monitor-lambda-errors",
        ),
        AlarmSpec(
            key="monitor-not-running",
            name=name("monitor-not-running"),
            description=describe(
                f"No keyrot {env} monitor heartbeat for {heartbeats} runs "
                f"({heartbeats * config.monitor_interval_minutes} min).",
                f"Check the schedule keyrot-{env}-monitor and the function; nothing watches usage meanwhile.",
                "monitor-not-running",
            ),
            namespace=m.NAMESPACE,
            metric_name=m.MONITOR_HEARTBEAT,
            dimensions=env_dims,
            statistic="SampleCount",
            period=gauge_period,
            evaluation_periods=heartbeats,
            datapoints_to_alarm=heartbeats,
            threshold=1,
            comparison_operator="LessThanThreshold",
            treat_missing_data="breaching",
            runbook_anchor="monitor-not-running",
        ),
        gauge_alarm(
            "daily-spend",
            "daily-spend-limit",
            f"The OpenAI project's spend today is above {config.daily_spend_limit_usd:g} USD ({env}).",
            f"Find the key driving it: the monitor's log line 'spend today' (aws logs tail /aws/lambda/keyrot-{env}-"
            "monitor), or the dashboard; revoke or rotate it if the use is not expected.",
            m.SPEND_TODAY_USD,
            config.daily_spend_limit_usd,
        ),
        count_alarm(
            "costs-read-failed",
            "costs-read-failed",
            f"The keyrot {env} monitor could not read OpenAI's Costs API in {COSTS_FAILED_RUNS} runs in a row: "
            "SpendTodayUSD is not published, so the daily-spend alarm cannot fire.",
            "Read the monitor's log for the costs part's error (an outage, a currency other than USD, an admin key "
            "without Costs access); usage, findings and the janitor go on meanwhile.",
            m.COSTS_READ_FAILED,
            period=gauge_period,
            periods=COSTS_FAILED_RUNS,
            breaches=COSTS_FAILED_RUNS,
        ),
    ]
    lookback = usage_lookback_periods(config)
    for metric, anchor, what, action in (
        (
            m.UNMANAGED_KEY_REQUESTS,
            "unmanaged-key-requests",
            f"Requests in the {env} OpenAI project used a key keyrot did not mint.",
            "Identify the key in the OpenAI dashboard; move its users to a managed key, then delete it.",
        ),
        (
            m.RETIRED_KEY_REQUESTS,
            "retired-key-requests",
            f"Requests used a previous keyrot {env} key past its grace period, or a revoked key.",
            "Some consumer caches keys too long: find it and make it re-read the secret.",
        ),
    ):
        specs.append(count_alarm(anchor, anchor, what, action, metric, period=USAGE_PERIOD_SECONDS, periods=lookback))
    specs.append(
        count_alarm(
            "revocation-failed",
            "revocation-failed",
            f"keyrot {env} could not revoke a previous OpenAI key.",
            "The old key still works: revoke it by hand (keyrot revoke-previous --env <env> --key <key>) "
            "and check the admin key's permissions.",
            m.REVOCATION_FAILED,
            period=FAST_PERIOD_SECONDS,
        )
    )
    threshold = key_age_threshold_hours(config)
    specs.append(
        gauge_alarm(
            KEYS_TOO_OLD_ALARM,
            "key-too-old",
            f"A keyrot {env} key is older than {threshold} h: it missed its rotation ({config.rotation_schedule}).",
            f"keyrot status --env {env} shows which key (the monitor's log names the oldest); check its secret's "
            "rotation status and the rotation function's logs; rotate it by hand if needed.",
            m.OLDEST_KEY_AGE_HOURS,
            threshold,
        )
    )
    for key in config.key_names:
        dims = m.key_dimensions(env, key)
        for metric, suffix in anomaly_alarms(config):
            specs.append(
                AlarmSpec(
                    key=f"{key}-{suffix}",
                    name=key_alarm_name(env, key, suffix),
                    description=describe(
                        f"keyrot {env} key '{key}': {metric} per hour above the expected band "
                        f"({config.anomaly_band_width:g} standard deviations).",
                        "Check for a leaked key or a runaway client; rotate the key if the traffic is not yours. "
                        "The model needs about two weeks of history: expect noise after first deploy.",
                        "usage-anomaly",
                    ),
                    metric_queries=(
                        {
                            "id": "m1",
                            "return_data": True,
                            "metric": {
                                "namespace": m.NAMESPACE,
                                "metric_name": metric,
                                "dimensions": dims,
                                "period": USAGE_PERIOD_SECONDS,
                                "stat": "Sum",
                            },
                        },
                        {
                            "id": "ad1",
                            "expression": f"ANOMALY_DETECTION_BAND(m1, {config.anomaly_band_width:g})",
                            "label": f"{metric} (expected)",
                            "return_data": True,
                        },
                    ),
                    threshold_metric_id="ad1",
                    evaluation_periods=lookback,
                    datapoints_to_alarm=2,
                    comparison_operator="GreaterThanUpperThreshold",
                    treat_missing_data="notBreaching",
                    runbook_anchor="usage-anomaly",
                )
            )
    if config.guardrails is not None:
        specs += guardrails_alarm_specs(config)
    if config.admin_key_rotation is not None:
        specs += admin_rotation_alarm_specs(config)
    return specs


def admin_key_age_threshold_hours(config: KeyrotConfig) -> int:
    """An admin key older than its rotation interval plus a day missed its rotation (AdminRotationSettings)."""
    assert config.admin_key_rotation is not None
    return config.admin_key_rotation.max_interval_hours + ADMIN_KEY_AGE_ALARM_SLACK_SECONDS // 3600


def admin_rotation_alarm_specs(config: KeyrotConfig) -> list[AlarmSpec]:
    """The admin key's own rotation: a failed step, the function failing, a key past its schedule, an old key that
    should be gone (or more keyrot admin keys live than a rotation ever needs)."""
    rotation = config.admin_key_rotation
    assert rotation is not None
    describe = partial(_describe, runbook_url=config.runbook_url)
    env = config.environment
    dims = m.environment_dimensions(env)
    function = function_name(env, ADMIN_ROTATION_PURPOSE)
    threshold = admin_key_age_threshold_hours(config)

    def spec(suffix: str, **fields: Any) -> AlarmSpec:
        return AlarmSpec(
            key=suffix,
            name=_environment_alarm(suffix, env),
            comparison_operator="GreaterThanThreshold",
            threshold=fields.pop("threshold", 0),
            namespace=fields.pop("namespace", m.NAMESPACE),
            dimensions=fields.pop("dimensions", dims),
            **fields,
        )

    return [
        spec(
            "admin-rotation-failed",
            description=describe(
                f"A step of keyrot {env}'s admin key rotation failed (AdminRotationFailed).",
                "The admin key in use keeps working; read the step and error class in the admin rotation "
                f"function's log ({log_group_name(env, ADMIN_ROTATION_PURPOSE)}).",
                "admin-rotation-failed",
            ),
            metric_name=m.ADMIN_ROTATION_FAILED,
            statistic="Sum",
            period=FAST_PERIOD_SECONDS,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            treat_missing_data="notBreaching",
            runbook_anchor="admin-rotation-failed",
        ),
        spec(
            "admin-rotation-lambda-errors",
            description=describe(
                f"The keyrot {env} admin rotation function ({function}) failed in consecutive runs.",
                "A rotation step or the scheduled cleanup raised (or timed out); read its log group.",
                "admin-rotation-failed",
            ),
            namespace=LAMBDA_NAMESPACE,
            metric_name="Errors",
            dimensions={"FunctionName": function},
            statistic="Sum",
            period=FAST_PERIOD_SECONDS,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            treat_missing_data="notBreaching",
            runbook_anchor="admin-rotation-failed",
        ),
        spec(
            "admin-key-too-old",
            description=describe(
                f"keyrot {env}'s admin key is older than {threshold} h: it missed its rotation ({rotation.schedule}).",
                "It expires in OpenAI 14 days after its interval: rotate it (keyrot rotate --admin) before then.",
                "admin-key-too-old",
            ),
            metric_name=m.ADMIN_KEY_AGE_HOURS,
            statistic="Maximum",
            period=ADMIN_CLEANUP_PERIOD_SECONDS,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            threshold=threshold,
            # A gauge, published by each cleanup: one that could not run keeps the state.
            treat_missing_data=GAUGE_MISSING_DATA,
            runbook_anchor="admin-key-too-old",
        ),
        spec(
            "admin-key-cleanup-failed",
            description=describe(
                f"keyrot {env} could not delete an admin key that is due (AdminKeyCleanupFailed) in two cleanups "
                "in a row.",
                "An old admin key that should be gone is live; the log line names each key and why.",
                "admin-key-cleanup-failed",
            ),
            metric_name=m.ADMIN_KEY_CLEANUP_FAILED,
            statistic="Sum",
            period=ADMIN_CLEANUP_PERIOD_SECONDS,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            treat_missing_data="notBreaching",
            runbook_anchor="admin-key-cleanup-failed",
        ),
        spec(
            "admin-keys-live",
            description=describe(
                f"More keyrot admin keys are live for {env} than a rotation ever needs (AdminKeysLive > "
                f"{ADMIN_KEYS_LIVE_LIMIT}) for two cleanups in a row.",
                "Find the extra keys with keyrot status and delete what is not current.",
                "admin-key-cleanup-failed",
            ),
            metric_name=m.ADMIN_KEYS_LIVE,
            statistic="Maximum",
            period=ADMIN_CLEANUP_PERIOD_SECONDS,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            threshold=ADMIN_KEYS_LIVE_LIMIT,
            treat_missing_data=GAUGE_MISSING_DATA,
            runbook_anchor="admin-key-cleanup-failed",
        ),
    ]


def guardrails_alarm_specs(config: KeyrotConfig) -> list[AlarmSpec]:
    """Drift from the declared guardrails (the scheduled check's gauge), and an apply or restore that failed."""
    describe = partial(_describe, runbook_url=config.runbook_url)
    env = config.environment
    period = monitor_period_seconds(config)
    return [
        AlarmSpec(
            key="guardrail-drift",
            name=_environment_alarm("guardrail-drift", env),
            description=describe(
                f"The keyrot {env} OpenAI project's guardrails differ from the declared ones (GuardrailDrift > 0).",
                f"See declared against actual, and who changed what: keyrot guardrails --env {env}.",
                "guardrail-drift",
            ),
            namespace=m.NAMESPACE,
            metric_name=m.GUARDRAIL_DRIFT,
            dimensions=m.environment_dimensions(env),
            statistic="Maximum",
            period=period,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            # A gauge, published by each check that could read the project: a failed check keeps the state.
            treat_missing_data=GAUGE_MISSING_DATA,
            runbook_anchor="guardrail-drift",
        ),
        AlarmSpec(
            key="guardrails-apply-failed",
            name=_environment_alarm("guardrails-apply-failed", env),
            description=describe(
                f"keyrot {env} could not apply, check or restore the declared OpenAI guardrails in "
                f"{GUARDRAILS_FAILED_CHECKS} checks in a row (GuardrailsApplyFailed).",
                f"Read the error in {log_group_name(env, 'guardrails')} (a value OpenAI refused, the admin key, "
                "an OpenAI outage); drift is not being watched meanwhile.",
                "guardrail-drift",
            ),
            namespace=m.NAMESPACE,
            metric_name=m.GUARDRAILS_APPLY_FAILED,
            dimensions=m.environment_dimensions(env),
            statistic="Sum",
            period=period,
            evaluation_periods=GUARDRAILS_FAILED_CHECKS,
            datapoints_to_alarm=GUARDRAILS_FAILED_CHECKS,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            runbook_anchor="guardrail-drift",
        ),
    ]


@dataclass
class AlarmsArgs:
    config: KeyrotConfig
    topic_arn: pulumi.Input[str]
    rotation_function_name: str
    monitor_function_name: str


class Alarms(pulumi.ComponentResource):
    alarm_arns: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: AlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keyrot:index:Alarms", name, None, opts)
        self.alarm_arns = {}
        for spec in alarm_specs(
            args.config,
            rotation_function_name=args.rotation_function_name,
            monitor_function_name=args.monitor_function_name,
        ):
            static: dict[str, Any] = {}
            if spec.metric_queries:
                static = {"metric_queries": list(spec.metric_queries), "threshold_metric_id": spec.threshold_metric_id}
            else:
                static = {
                    "namespace": spec.namespace,
                    "metric_name": spec.metric_name,
                    "dimensions": spec.dimensions,
                    "statistic": spec.statistic,
                    "period": spec.period,
                    "threshold": spec.threshold,
                }
            alarm = aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.key}",
                name=spec.name,
                alarm_description=spec.description,
                comparison_operator=spec.comparison_operator,
                evaluation_periods=spec.evaluation_periods,
                datapoints_to_alarm=spec.datapoints_to_alarm,
                treat_missing_data=spec.treat_missing_data,
                alarm_actions=[args.topic_arn],
                ok_actions=[args.topic_arn],
                tags={TAG_ENVIRONMENT: args.config.environment},
                opts=child(self),
                **static,
            )
            self.alarm_arns[spec.key] = alarm.arn
        self.register_outputs({"alarmArns": self.alarm_arns})
