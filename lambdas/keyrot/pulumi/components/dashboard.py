"""One CloudWatch dashboard per environment: usage per key, spend beside OpenAI's hard limit, key age, rotations,
the monitor's parts, guardrails and alarm states."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from keyrot import metric_names as m
from keyrot.names import RESOURCE_PREFIX
from keyrot.pulumi.components._util import child
from keyrot.pulumi.runbook import runbook_link
from keyrot.settings import DEFAULT_RUNBOOK_URL

WIDTH = 12
HEIGHT = 6
# CloudWatch shows at most 100 alarms in one alarm widget.
MAX_ALARMS_PER_WIDGET = 100
# The alarm (its key in the Alarms component) shown beside OpenAI's hard limit.
DAILY_SPEND_ALARM = "daily-spend"


def dashboard_name(environment: str) -> str:
    return f"{RESOURCE_PREFIX}-{environment}"


def dashboard_url(region: str, environment: str) -> str:
    return (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#dashboards/dashboard/{dashboard_name(environment)}"
    )


def _metric_widget(
    title: str, metrics: list[list[Any]], region: str, *, stat: str, period: int, **extra: Any
) -> dict[str, Any]:
    return {
        "type": "metric",
        "width": WIDTH,
        "height": HEIGHT,
        "properties": {
            "title": title,
            "region": region,
            "view": "timeSeries",
            "stacked": False,
            "stat": stat,
            "period": period,
            "metrics": metrics,
            **extra,
        },
    }


def _usd(amount: float) -> str:
    return f"${amount:,.2f}"


def hard_limit_markdown(
    *, environment: str, guardrails: Any, daily_spend_limit_usd: float, runbook_url: str = DEFAULT_RUNBOOK_URL
) -> str:
    """The text beside the daily-spend alarm: OpenAI's hard monthly limit and spend alerts, as declared.

    The month's spend against the hard limit is the "Spend this month" widget beside it (the guardrails check
    publishes it when a hard limit is declared) and `keyrot status`.
    """
    lines = [f"### OpenAI spend limits ({environment})", f"keyrot's daily-spend alarm: {_usd(daily_spend_limit_usd)}."]
    if guardrails is None:
        lines.append("No guardrails declared: keyrot leaves the project's hard limit and spend alerts as they are.")
    else:
        cents = guardrails.spend_limit_cents
        lines.append(
            "No hard monthly limit declared (`keyrot:guardrails.spendLimitUsd`)."
            if cents is None
            else f"OpenAI's hard monthly limit: **{_usd(cents / 100)}** (`keyrot:guardrails.spendLimitUsd`)."
        )
        alerts = ", ".join(_usd(alert.threshold_cents / 100) for alert in guardrails.spend_alerts)
        lines.append(f"OpenAI spend alerts (e-mail) at {alerts}." if alerts else "No OpenAI spend alerts declared.")
    lines.append(
        f"This month's spend against the hard limit: `keyrot status --env {environment}`. "
        f"When it is reached: [runbook]({runbook_link('hard-spend-limit-reached', runbook_url)})."
    )
    return "\n\n".join(lines)


def dashboard_body(
    *,
    environment: str,
    region: str,
    key_names: Sequence[str],
    key_age_threshold_hours: int,
    daily_spend_limit_usd: float,
    alarm_arns: Sequence[str],
    daily_spend_alarm_arn: str | None = None,
    guardrails: Any = None,
    runbook_url: str = DEFAULT_RUNBOOK_URL,
    admin_key_age_threshold_hours: int | None = None,
) -> dict[str, Any]:
    def per_key(metric: str) -> list[list[Any]]:
        return [
            [m.NAMESPACE, metric, m.DIM_ENVIRONMENT, environment, m.DIM_KEY_NAME, key, {"label": key}]
            for key in key_names
        ]

    def env_metric(metric: str, label: str, **rendering: Any) -> list[Any]:
        return [m.NAMESPACE, metric, m.DIM_ENVIRONMENT, environment, {"label": label, **rendering}]

    widgets: list[dict[str, Any]] = [
        {
            "type": "text",
            "width": 24,
            "height": 2,
            "properties": {
                "markdown": f"## keyrot {environment}\nOpenAI keys rotated by Secrets Manager; usage read by the "
                "monitor. Alarms link docs/runbook.md."
            },
        },
        # The monitor's spend alarm beside OpenAI's own hard limit and alerts.
        *(
            [
                {
                    "type": "alarm",
                    "width": WIDTH,
                    "height": HEIGHT,
                    "properties": {"title": "Daily spend alarm (keyrot)", "alarms": [daily_spend_alarm_arn]},
                }
            ]
            if daily_spend_alarm_arn
            else []
        ),
        {
            "type": "text",
            "width": WIDTH,
            "height": HEIGHT,
            "properties": {
                "markdown": hard_limit_markdown(
                    environment=environment,
                    guardrails=guardrails,
                    daily_spend_limit_usd=daily_spend_limit_usd,
                    runbook_url=runbook_url,
                )
            },
        },
        _metric_widget("Requests per key", per_key(m.REQUESTS), region, stat="Sum", period=3600),
        _metric_widget("Input tokens per key", per_key(m.INPUT_TOKENS), region, stat="Sum", period=3600),
        _metric_widget("Output tokens per key", per_key(m.OUTPUT_TOKENS), region, stat="Sum", period=3600),
        _metric_widget(
            "Spend today (USD)",
            [env_metric(m.SPEND_TODAY_USD, "project"), *per_key(m.COST_TODAY_USD)],
            region,
            stat="Maximum",
            period=3600,
            annotations={"horizontal": [{"label": "daily limit", "value": daily_spend_limit_usd}]},
        ),
        *(
            [
                _metric_widget(
                    "Spend this month (USD)",
                    [env_metric(m.SPEND_MONTH_TO_DATE_USD, "project, month to date")],
                    region,
                    stat="Maximum",
                    period=3600,
                    annotations={
                        "horizontal": [{"label": "OpenAI hard limit", "value": guardrails.spend_limit_cents / 100}]
                    },
                )
            ]
            if guardrails is not None and guardrails.spend_limit_cents is not None
            else []
        ),
        _metric_widget(
            "Key age (hours)",
            [env_metric(m.OLDEST_KEY_AGE_HOURS, "oldest key (the alarm's metric)"), *per_key(m.KEY_AGE_HOURS)],
            region,
            stat="Maximum",
            period=3600,
            annotations={"horizontal": [{"label": "alarm", "value": key_age_threshold_hours}]},
        ),
        _metric_widget(
            "Rotations",
            [
                env_metric(m.ROTATION_STARTED, "started"),
                env_metric(m.ROTATION_SUCCEEDED, "succeeded"),
                env_metric(m.ROTATION_FAILED, "failed"),
                env_metric(m.KEY_REVOKED, "previous key revoked"),
                env_metric(m.REVOCATION_FAILED, "revocation failed"),
            ],
            region,
            stat="Sum",
            period=3600,
        ),
        _metric_widget(
            "Unmanaged and retired key requests",
            [
                env_metric(m.UNMANAGED_KEY_REQUESTS, "unmanaged key requests"),
                env_metric(m.RETIRED_KEY_REQUESTS, "retired key requests"),
            ],
            region,
            stat="Sum",
            period=3600,
        ),
        _metric_widget(
            "Monitor runs",
            [env_metric(m.MONITOR_HEARTBEAT, "completed"), env_metric(m.MONITOR_RUN_FAILED, "failed")],
            region,
            stat="Sum",
            period=3600,
        ),
        _metric_widget(
            "Monitor parts failed",
            [
                # One line per part that failed (usage, findings, costs, janitor, ...), whatever parts there are.
                [
                    {
                        "expression": (
                            f"SEARCH('{{{m.NAMESPACE},{m.DIM_ENVIRONMENT},{m.DIM_PART}}} "
                            f'MetricName="{m.MONITOR_PART_FAILED}" {m.DIM_ENVIRONMENT}="{environment}"\', '
                            "'Sum', 3600)"
                        ),
                        "id": "parts",
                    }
                ],
                env_metric(m.COSTS_READ_FAILED, "costs read failed"),
            ],
            region,
            stat="Sum",
            period=3600,
        ),
        _metric_widget(
            "Usage buckets set aside",
            [env_metric(m.USAGE_BUCKETS_SET_ASIDE, "set aside (replay or drop them)")],
            region,
            stat="Maximum",
            period=3600,
        ),
        *(
            [
                _metric_widget(
                    "OpenAI guardrails",
                    [
                        env_metric(m.GUARDRAIL_DRIFT, "settings that differ (gauge)", stat="Maximum"),
                        env_metric(m.GUARDRAILS_CHANGED, "changed by an apply"),
                        env_metric(m.GUARDRAILS_RESTORED, "restored"),
                        env_metric(m.GUARDRAILS_APPLY_FAILED, "apply, check or restore failed"),
                        env_metric(m.GUARDRAILS_NOTIFIED, "on-call told"),
                    ],
                    region,
                    stat="Sum",
                    period=3600,
                )
            ]
            if guardrails is not None
            else []
        ),
        *(
            [
                _metric_widget(
                    "Admin key",
                    [
                        env_metric(m.ADMIN_KEY_AGE_HOURS, "age (hours)", stat="Maximum"),
                        env_metric(m.ADMIN_KEYS_LIVE, "keyrot admin keys live", stat="Maximum", yAxis="right"),
                    ],
                    region,
                    stat="Maximum",
                    period=3600,
                    annotations={"horizontal": [{"label": "alarm", "value": admin_key_age_threshold_hours}]},
                ),
                _metric_widget(
                    "Admin key rotations",
                    [
                        env_metric(m.ADMIN_ROTATION_STARTED, "started"),
                        env_metric(m.ADMIN_ROTATION_SUCCEEDED, "succeeded"),
                        env_metric(m.ADMIN_ROTATION_FAILED, "failed"),
                        env_metric(m.ADMIN_KEY_DELETED, "old admin keys deleted"),
                        env_metric(m.ADMIN_KEY_CLEANUP_FAILED, "cleanup failed"),
                    ],
                    region,
                    stat="Sum",
                    period=3600,
                ),
            ]
            if admin_key_age_threshold_hours is not None
            else []
        ),
        {
            "type": "alarm",
            "width": 24,
            "height": 4,
            "properties": {
                "title": "Alarms",
                "alarms": sorted(alarm_arns)[:MAX_ALARMS_PER_WIDGET],
                "sortBy": "stateUpdatedTimestamp",
            },
        },
    ]
    return {"widgets": widgets}


@dataclass
class DashboardArgs:
    environment: str
    region: str
    key_names: Sequence[str]
    key_age_threshold_hours: int
    daily_spend_limit_usd: float
    alarm_arns: Mapping[str, pulumi.Input[str]]
    # The declared guardrails (hard limit and alerts beside the spend alarm), None when none are declared.
    guardrails: Any = None
    runbook_url: str = DEFAULT_RUNBOOK_URL
    # With adminKeyRotation: the admin key age alarm's threshold (its widgets are shown).
    admin_key_age_threshold_hours: int | None = None


class Dashboard(pulumi.ComponentResource):
    url: pulumi.Output[str]

    def __init__(self, name: str, args: DashboardArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keyrot:index:Dashboard", name, None, opts)
        body = pulumi.Output.all(**dict(args.alarm_arns)).apply(
            lambda arns: json.dumps(
                dashboard_body(
                    environment=args.environment,
                    region=args.region,
                    key_names=args.key_names,
                    key_age_threshold_hours=args.key_age_threshold_hours,
                    daily_spend_limit_usd=args.daily_spend_limit_usd,
                    alarm_arns=list(arns.values()),
                    daily_spend_alarm_arn=arns.get(DAILY_SPEND_ALARM),
                    guardrails=args.guardrails,
                    runbook_url=args.runbook_url,
                    admin_key_age_threshold_hours=args.admin_key_age_threshold_hours,
                )
            )
        )
        board = aws.cloudwatch.Dashboard(
            f"{name}-board",
            dashboard_name=dashboard_name(args.environment),
            dashboard_body=body,
            opts=child(self),
        )
        self.url = board.dashboard_name.apply(lambda _: dashboard_url(args.region, args.environment))
        self.register_outputs({"dashboardName": board.dashboard_name, "url": self.url})
