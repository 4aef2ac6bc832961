"""One CloudWatch dashboard per environment: usage per key, spend, key age, rotations and alarm states."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from keyrot import metric_names as m
from keyrot.pulumi.components._util import child

WIDTH = 12
HEIGHT = 6
# CloudWatch shows at most 100 alarms in one alarm widget.
MAX_ALARMS_PER_WIDGET = 100


def dashboard_name(environment: str) -> str:
    return f"keyrot-{environment}"


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


def dashboard_body(
    *,
    environment: str,
    region: str,
    key_names: Sequence[str],
    key_age_threshold_hours: int,
    daily_spend_limit_usd: float,
    alarm_arns: Sequence[str],
) -> dict[str, Any]:
    def per_key(metric: str) -> list[list[Any]]:
        return [
            [m.NAMESPACE, metric, m.DIM_ENVIRONMENT, environment, m.DIM_KEY_NAME, key, {"label": key}]
            for key in key_names
        ]

    def env_metric(metric: str, label: str) -> list[Any]:
        return [m.NAMESPACE, metric, m.DIM_ENVIRONMENT, environment, {"label": label}]

    widgets = [
        {
            "type": "text",
            "width": 24,
            "height": 2,
            "properties": {
                "markdown": f"## keyrot {environment}\nOpenAI keys rotated by Secrets Manager; usage read by the "
                "monitor. Alarms link docs/runbook.md."
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
        _metric_widget(
            "Key age (hours)",
            per_key(m.KEY_AGE_HOURS),
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


class Dashboard(pulumi.ComponentResource):
    url: pulumi.Output[str]

    def __init__(self, name: str, args: DashboardArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keyrot:index:Dashboard", name, None, opts)
        body = pulumi.Output.all(*args.alarm_arns.values()).apply(
            lambda arns: json.dumps(
                dashboard_body(
                    environment=args.environment,
                    region=args.region,
                    key_names=args.key_names,
                    key_age_threshold_hours=args.key_age_threshold_hours,
                    daily_spend_limit_usd=args.daily_spend_limit_usd,
                    alarm_arns=arns,
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
