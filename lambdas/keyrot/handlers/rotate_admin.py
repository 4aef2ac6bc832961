"""The admin-key secret's rotation function: keyrot.handlers.rotate_admin.handler.

A function of its own (not a mode of the rotation function): it alone may write the admin-key secret, the rotation
function keeps read-only access to it, and its failures have their own metrics and alarms. Two kinds of event:
Secrets Manager's rotation steps, and the schedule's cleanup event ({"keyrot": "admin-key-cleanup"}), which deletes
the previous admin key once its grace period has passed.
"""

from __future__ import annotations

from typing import Any

from keyrot.admin_rotation import build_admin_rotation_context, clean_up, run_admin_rotation_step
from keyrot.admin_rotation.cleanup import describe_deleted
from keyrot.admin_rotation.telemetry import PowertoolsAdminTelemetry
from keyrot.aws.clients import aws_client
from keyrot.constants import ADMIN_CLEANUP_EVENT_FIELD, ADMIN_CLEANUP_EVENT_VALUE
from keyrot.errors import RotationEventError
from keyrot.handlers.invocation import openai_deadline
from keyrot.observability import build_logger, build_metrics, flush_metrics
from keyrot.openai_admin import OpenAITransport
from keyrot.rotation import RotationRequest
from keyrot.settings import AdminRotationSettings

logger = build_logger("keyrot-admin-rotation")
metrics = build_metrics()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any] | None:
    with flush_metrics(metrics):
        settings = AdminRotationSettings.from_env()
        telemetry = PowertoolsAdminTelemetry(metrics, logger, settings.environment)
        transport = OpenAITransport(settings.openai_base_url, deadline=openai_deadline(context))
        ctx = build_admin_rotation_context(settings, aws_client("secretsmanager"), transport=transport)
        if is_cleanup_event(event):
            try:
                cleanup = clean_up(ctx)
            except Exception as exc:
                telemetry.cleanup_crashed(exc)
                raise
            telemetry.cleanup_done(cleanup)
            return {"deleted": describe_deleted(cleanup.deleted), "failures": len(cleanup.failures)}
        try:
            request = RotationRequest.from_event(event)
        except RotationEventError as exc:
            telemetry.failed("invalid-event", exc, 0.0)
            raise
        run_admin_rotation_step(request, ctx, telemetry)
        return None


def is_cleanup_event(event: Any) -> bool:
    return isinstance(event, dict) and event.get(ADMIN_CLEANUP_EVENT_FIELD) == ADMIN_CLEANUP_EVENT_VALUE
