"""Logs and EMF metrics of the admin rotation function, with the names its alarms use (keyrot.metric_names).

Step lines use the rotation function's messages (keyrot.names.STEP_*), so `keyrot rotate --admin` follows them the
same way; metrics are the admin rotation's own, so an admin-key failure never counts as an application key's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from keyrot import metric_names as m
from keyrot.admin_rotation.cleanup import AdminCleanup, describe_deleted
from keyrot.admin_rotation.runner import AdminStepOutcome
from keyrot.names import STEP_FAILED, STEP_STARTED, STEP_SUCCEEDED, utc_now
from keyrot.redaction import scrub
from keyrot.rotation.events import RotationRequest

ADMIN_KEY_NAME = "openai-admin-key"  # what the step lines name as their key (the admin key has no key name)
CLEANUP_DONE = "admin key cleanup done"
CLEANUP_FAILED = "admin key cleanup failed"


class PowertoolsAdminTelemetry:
    """Reports admin rotation steps and cleanups as log lines and EMF metrics, dimensions (Environment)."""

    def __init__(
        self, metrics: Metrics, logger: Logger, environment: str, *, now: Callable[[], datetime] = utc_now
    ) -> None:
        self._now = now
        self._metrics = metrics
        self._logger = logger
        self._environment = environment
        metrics.set_default_dimensions(**m.environment_dimensions(environment))

    def step_started(self, request: RotationRequest) -> None:
        self._logger.info(STEP_STARTED, extra={"step": request.step, "secret": request.secret_id, **_admin()})
        if request.step == "createSecret":
            self._metrics.add_metric(name=m.ADMIN_ROTATION_STARTED, unit=MetricUnit.Count, value=1)

    def step_succeeded(self, outcome: AdminStepOutcome) -> None:
        self._duration(outcome.step, outcome.seconds)
        self._logger.info(
            STEP_SUCCEEDED,
            extra={
                "step": outcome.step,
                "secret": outcome.secret_name,
                "action": outcome.action,
                "key_id": outcome.key_id,
                "duration_ms": round(outcome.seconds * 1000, 1),
                **_admin(),
            },
        )
        if outcome.step == "finishSecret":
            self._metrics.add_metric(name=m.ADMIN_ROTATION_SUCCEEDED, unit=MetricUnit.Count, value=1)
        if outcome.cleanup is not None:
            self.cleanup_done(outcome.cleanup)

    def step_failed(self, request: RotationRequest, error: BaseException, seconds: float) -> None:
        self.failed(request.step, error, seconds, secret=request.secret_id)

    def failed(self, step: str, error: BaseException, seconds: float, *, secret: str | None = None) -> None:
        """A failed step (or a rejected event, step 'invalid-event')."""
        self._duration(step, seconds)
        self._metrics.add_metric(name=m.ADMIN_ROTATION_FAILED, unit=MetricUnit.Count, value=1)
        self._metrics.add_metadata("step", step)
        self._metrics.add_metadata("error_class", type(error).__name__)
        self._logger.error(
            STEP_FAILED,
            extra={
                "step": step,
                "secret": secret,
                "error_class": type(error).__name__,
                "error": scrub(str(error)),
                "duration_ms": round(seconds * 1000, 1),
                **_admin(),
            },
        )

    def cleanup_done(self, cleanup: AdminCleanup) -> None:
        """AdminKeyDeleted, AdminKeyCleanupFailed, and the gauges AdminKeyAgeHours and AdminKeysLive."""
        if cleanup.deleted:
            self._metrics.add_metric(name=m.ADMIN_KEY_DELETED, unit=MetricUnit.Count, value=len(cleanup.deleted))
        if cleanup.failures:
            self._metrics.add_metric(
                name=m.ADMIN_KEY_CLEANUP_FAILED, unit=MetricUnit.Count, value=len(cleanup.failures)
            )
        if cleanup.live_keyrot_keys is not None:
            self._metrics.add_metric(name=m.ADMIN_KEYS_LIVE, unit=MetricUnit.Count, value=cleanup.live_keyrot_keys)
        age = cleanup.age_hours(self._now())
        if age is not None:
            self._metrics.add_metric(name=m.ADMIN_KEY_AGE_HOURS, unit=MetricUnit.Count, value=round(age, 2))
        extra = {
            "deleted": describe_deleted(cleanup.deleted),
            "failures": [scrub(failure) for failure in cleanup.failures],
            "notes": list(cleanup.notes),
            "current_key_id": cleanup.current_key_id,
            "previous_due_at": cleanup.previous_due_at.isoformat() if cleanup.previous_due_at else None,
            "live_keyrot_admin_keys": cleanup.live_keyrot_keys,
            "probes_deleted": list(cleanup.probes_deleted),
        }
        if cleanup.failures:
            self._logger.error(CLEANUP_FAILED, extra=extra)
        else:
            self._logger.info(CLEANUP_DONE, extra=extra)

    def cleanup_crashed(self, error: BaseException) -> None:
        """The whole cleanup run failed (the admin key rejected, AWS or OpenAI down): counted and logged."""
        self._metrics.add_metric(name=m.ADMIN_KEY_CLEANUP_FAILED, unit=MetricUnit.Count, value=1)
        self._logger.error(
            CLEANUP_FAILED, extra={"error_class": type(error).__name__, "error": scrub(str(error)), **_admin()}
        )

    def _duration(self, step: str, seconds: float) -> None:
        with single_metric(
            name=m.ADMIN_ROTATION_STEP_DURATION,
            unit=MetricUnit.Seconds,
            value=round(seconds, 4),
            namespace=m.NAMESPACE,
            default_dimensions={m.DIM_ENVIRONMENT: self._environment, m.DIM_STEP: step},
        ):
            pass


def _admin() -> dict[str, str]:
    return {"key_name": ADMIN_KEY_NAME}
