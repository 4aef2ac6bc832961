"""Secrets Manager rotation function: keyrot.handlers.rotate.handler."""

from __future__ import annotations

from typing import Any

from keyrot.aws.clients import aws_client
from keyrot.errors import RotationEventError
from keyrot.handlers.invocation import openai_deadline
from keyrot.observability import PowertoolsRotationTelemetry, build_logger, build_metrics, flush_metrics
from keyrot.openai_admin import OpenAITransport
from keyrot.rotation import RotationRequest, run_rotation_step
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
        run_rotation_step(request, rotation, telemetry)
