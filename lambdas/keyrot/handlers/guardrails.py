"""OpenAI guardrails: keyrot.handlers.guardrails.handler (apply at deploy, check for drift and tell on-call). See
keyrot.guardrails."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from keyrot import metric_names as m
from keyrot.aws.clients import aws_client
from keyrot.aws.secrets import SecretStore
from keyrot.guardrails import (
    GuardrailsDependencies,
    GuardrailsOutcome,
    GuardrailsRequest,
    GuardrailsSettings,
    run_request,
)
from keyrot.handlers.invocation import openai_deadline
from keyrot.observability import build_logger, build_metrics, flush_metrics
from keyrot.openai_admin import OpenAITransport, load_admin_client
from keyrot.redaction import scrub

logger = build_logger("keyrot-guardrails")
metrics = build_metrics()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with flush_metrics(metrics):
        settings = GuardrailsSettings.from_env()
        metrics.set_default_dimensions(**m.environment_dimensions(settings.environment))
        try:
            outcome = run_request(GuardrailsRequest.from_event(event), build_dependencies(settings, context))
            count(outcome)
            logger.info("guardrails %s done", outcome.action, extra=outcome.as_dict())
            outcome.raise_for_failure()
        except Exception as exc:
            metrics.add_metric(name=m.GUARDRAILS_APPLY_FAILED, unit=MetricUnit.Count, value=1)
            logger.error("guardrails failed", extra={"error_class": type(exc).__name__, "error": scrub(str(exc))})
            raise
        return outcome.as_dict()


def count(outcome: GuardrailsOutcome) -> None:
    """GuardrailDrift (a gauge), GuardrailsRestored, the month's spend and the notifications for a check;
    GuardrailsChanged for an apply."""
    if outcome.drift is not None:
        metrics.add_metric(name=m.GUARDRAIL_DRIFT, unit=MetricUnit.Count, value=len(outcome.drift.drift))
        metrics.add_metric(name=m.GUARDRAILS_RESTORED, unit=MetricUnit.Count, value=len(outcome.changes))
        if outcome.spend is not None:
            usd = outcome.spend.spent_cents / 100
            metrics.add_metric(name=m.SPEND_MONTH_TO_DATE_USD, unit=MetricUnit.NoUnit, value=usd)
        if outcome.told is not None and outcome.told.sent:
            metrics.add_metric(name=m.GUARDRAILS_NOTIFIED, unit=MetricUnit.Count, value=len(outcome.told.sent))
    elif outcome.action == "apply" and outcome.declared:
        metrics.add_metric(name=m.GUARDRAILS_CHANGED, unit=MetricUnit.Count, value=len(outcome.changes))


def build_dependencies(settings: GuardrailsSettings, context: Any = None) -> GuardrailsDependencies:
    transport = OpenAITransport(settings.openai_base_url, deadline=openai_deadline(context))
    store = SecretStore(aws_client("secretsmanager"))
    return GuardrailsDependencies(
        settings=settings,
        ssm=aws_client("ssm"),
        admin=lambda: load_admin_client(store, settings, transport),
        sns=aws_client("sns") if settings.topic_arn else None,
    )
