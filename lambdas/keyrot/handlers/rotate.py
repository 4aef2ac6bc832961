"""Secrets Manager rotation function: keyrot.handlers.rotate.handler."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from keyrot import metric_names as m
from keyrot.aws.clients import aws_client
from keyrot.errors import RotationEventError
from keyrot.handlers.invocation import openai_deadline
from keyrot.observability import PowertoolsRotationTelemetry, build_logger, build_metrics, flush_metrics
from keyrot.openai_admin import OpenAITransport
from keyrot.rotation import RotationRequest, StepOutcome, run_rotation_step
from keyrot.rotation.context import build_rotation_context
from keyrot.settings import RotationSettings

logger = build_logger("keyrot-rotation")
metrics = build_metrics()


def handler(event: dict[str, Any], context: Any) -> None:
    with flush_metrics(metrics):
        settings = RotationSettings.from_env()
        telemetry = PowertoolsRotationTelemetry(metrics, logger, settings.environment)
        try:
            request = RotationRequest.from_event(event)
        except RotationEventError as exc:
            telemetry.failed("invalid-event", None, exc, 0.0)
            raise
        transport = OpenAITransport(settings.openai_base_url, deadline=openai_deadline(context))
        rotation = build_rotation_context(settings, aws_client("secretsmanager"), transport=transport)
        report_cleanup(metrics, logger, run_rotation_step(request, rotation, telemetry))


def report_cleanup(metrics: Metrics, logger: Logger, outcome: StepOutcome) -> None:
    """finishSecret's revocations after the promotion: each key revoked counts once in KeyRevoked (the telemetry
    counts `outcome.revocation`), and a key it could not revoke is logged and counted in RevocationFailed (the
    promotion stands; the janitor retries)."""
    cleanup = outcome.cleanup
    if cleanup is None:
        return
    revoked = len(cleanup.revoked_keys) - (1 if outcome.revocation and outcome.revocation.status == "revoked" else 0)
    if revoked > 0:
        metrics.add_metric(name=m.KEY_REVOKED, unit=MetricUnit.Count, value=revoked)
    for failure in cleanup.failures:
        logger.error("displaced key not revoked", extra={"key_name": outcome.key_name, "failure": failure})
    if cleanup.failures:
        metrics.add_metric(name=m.REVOCATION_FAILED, unit=MetricUnit.Count, value=len(cleanup.failures))
