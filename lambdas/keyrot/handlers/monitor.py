"""Scheduled usage monitor: keyrot.handlers.monitor.handler."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from keyrot import metric_names as m
from keyrot.aws.clients import monitor_clients
from keyrot.handlers.invocation import openai_deadline, remaining_seconds
from keyrot.monitor.run import MonitorDependencies, run_monitor
from keyrot.observability import build_logger, build_metrics, flush_metrics
from keyrot.openai_admin import OpenAITransport
from keyrot.redaction import scrub
from keyrot.rotation.context import build_rotation_context, load_admin_client
from keyrot.settings import MonitorSettings

logger = build_logger("keyrot-monitor")
metrics = build_metrics()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with flush_metrics(metrics):
        settings = MonitorSettings.from_env()
        metrics.set_default_dimensions(**m.environment_dimensions(settings.environment))
        try:
            report = run_monitor(build_dependencies(settings, context))
        except Exception as exc:
            metrics.add_metric(name=m.MONITOR_RUN_FAILED, unit=MetricUnit.Count, value=1)
            logger.error("monitor run failed", extra={"error_class": type(exc).__name__, "error": scrub(str(exc))})
            raise
        summary = asdict(report)
        logger.info("monitor run complete", extra=summary)
        return summary


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
