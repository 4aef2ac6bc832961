"""Scheduled usage monitor: keyrot.handlers.monitor.handler."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from keyrot import metric_names as m
from keyrot.aws.clients import monitor_clients
from keyrot.handlers.invocation import openai_deadline, remaining_seconds
from keyrot.monitor.run import MonitorDependencies, MonitorReport, MonitorRun
from keyrot.observability import build_logger, build_metrics, flush_metrics
from keyrot.openai_admin import OpenAITransport
from keyrot.redaction import scrub
from keyrot.rotation.context import build_rotation_context, load_admin_client
from keyrot.settings import MonitorSettings

logger = build_logger("keyrot-monitor")
metrics = build_metrics()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A scheduled run; an operator's invocation may add {"setAside": "replay" | "drop"} (docs/runbook.md)."""
    with flush_metrics(metrics):
        settings = MonitorSettings.from_env()
        metrics.set_default_dimensions(**m.environment_dimensions(settings.environment))
        run: MonitorRun | None = None
        try:
            action = event.get("setAside") if isinstance(event, dict) else None
            run = MonitorRun(build_dependencies(settings, context), set_aside_action=action)
            report = run.execute()
        except Exception as exc:
            metrics.add_metric(name=m.MONITOR_RUN_FAILED, unit=MetricUnit.Count, value=1)
            failed = count_failed_parts(settings.environment, run.report) if run else {}
            logger.error(
                "monitor run failed",
                extra={"error_class": type(exc).__name__, "error": scrub(str(exc)), "failed_parts": failed},
            )
            raise
        count_failed_parts(settings.environment, report)
        summary = asdict(report)
        logger.info("monitor run complete", extra=summary)
        return summary


def count_failed_parts(environment: str, report: MonitorReport) -> dict[str, str]:
    """MonitorPartFailed (dimensions Environment, Part) per failed part; CostsReadFailed when the costs failed."""
    for part in report.failed_parts:
        dimensions = {m.DIM_ENVIRONMENT: environment, m.DIM_PART: part}
        with single_metric(
            name=m.MONITOR_PART_FAILED,
            unit=MetricUnit.Count,
            value=1,
            namespace=m.NAMESPACE,
            default_dimensions=dimensions,
        ):
            pass
    if "costs" in report.failed_parts:
        metrics.add_metric(name=m.COSTS_READ_FAILED, unit=MetricUnit.Count, value=1)
    return report.failed_parts


def build_dependencies(settings: MonitorSettings, context: Any = None) -> MonitorDependencies:
    transport = OpenAITransport(settings.openai_base_url, deadline=openai_deadline(context))
    clients = monitor_clients()
    rotation = build_rotation_context(settings.rotation_settings(), clients["secretsmanager"], transport=transport)
    admin = load_admin_client(rotation.store, rotation.settings, transport)
    rotation.admin_factory = lambda: admin
    return MonitorDependencies(
        settings=settings,
        admin=admin,
        rotation=rotation,
        cloudwatch=clients["cloudwatch"],
        ssm=clients["ssm"],
        sns=clients["sns"],
        # Hold the state no longer than this invocation can live (plus a margin).
        lease_seconds=int(remaining_seconds(context, default=300)) + 10,
    )
