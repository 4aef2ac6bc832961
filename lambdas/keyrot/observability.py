"""Structured logs and EMF metrics for the Lambdas (Powertools for AWS Lambda), with key material scrubbed.

ScrubKeyMaterial lives in keyrot.redaction (the CLI uses it too) and is re-exported here.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from keyrot import metric_names as m
from keyrot.names import STEP_FAILED, STEP_STARTED, STEP_SUCCEEDED
from keyrot.redaction import ScrubKeyMaterial, guard_logging, scrub
from keyrot.rotation.events import RotationRequest
from keyrot.rotation.runner import StepOutcome

__all__ = [
    "PowertoolsRotationTelemetry",
    "ScrubKeyMaterial",
    "build_logger",
    "build_metrics",
    "flush_metrics",
]


class _CurrentStdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout is at emit time (Lambda's stdout; a test's capture)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def build_logger(service: str) -> Logger:
    """A JSON logger for `service` that never writes key material, whatever log level the operator sets.

    The level comes from Lambda's application log level (or POWERTOOLS_LOG_LEVEL), and keyrot's module loggers
    follow it. Third-party loggers stay at WARNING (botocore's DEBUG lines carry GetSecretValue and PutSecretValue
    bodies), and the scrubbing filter sits on the handlers: on the Powertools handler, and on a guard handler of the
    `keyrot` logger that scrubs its module loggers' records before Lambda's own handler writes them.
    """
    handler = _CurrentStdoutHandler()
    handler.addFilter(ScrubKeyMaterial())
    logger = Logger(service=service, logger_handler=handler)
    guard_logging("keyrot")
    logging.getLogger("keyrot").setLevel(logger.log_level)
    return logger


def build_metrics() -> Metrics:
    """EMF metrics in keyrot's namespace. No `service` is passed, so no `service` dimension is added."""
    return Metrics(namespace=m.NAMESPACE)


@contextmanager
def flush_metrics(metrics: Metrics) -> Iterator[None]:
    """Flush the invocation's EMF metrics however it ends; stay silent when there are none."""
    try:
        yield
    finally:
        if metrics.metric_set:
            metrics.flush_metrics()


class PowertoolsRotationTelemetry:
    """Reports rotation steps as log lines and EMF metrics with the dimensions the alarms expect."""

    def __init__(self, metrics: Metrics, logger: Logger, environment: str) -> None:
        self._metrics = metrics
        self._logger = logger
        self._environment = environment
        metrics.set_default_dimensions(**m.environment_dimensions(environment))

    def step_started(self, request: RotationRequest, key_name: str | None) -> None:
        self._logger.info(STEP_STARTED, extra={"step": request.step, "secret": request.secret_id, "key_name": key_name})
        if request.step == "createSecret":
            self._metrics.add_metric(name=m.ROTATION_STARTED, unit=MetricUnit.Count, value=1)

    def step_succeeded(self, outcome: StepOutcome) -> None:
        self._duration(outcome.step, outcome.seconds)
        self._logger.info(
            STEP_SUCCEEDED,
            extra={
                "step": outcome.step,
                "secret": outcome.secret_name,
                "key_name": outcome.key_name,
                "action": outcome.action,
                "key_id": outcome.key_id,
                "duration_ms": round(outcome.seconds * 1000, 1),
            },
        )
        if outcome.step == "finishSecret":
            self._metrics.add_metric(name=m.ROTATION_SUCCEEDED, unit=MetricUnit.Count, value=1)
        if outcome.revocation and outcome.revocation.status == "revoked":
            self._metrics.add_metric(name=m.KEY_REVOKED, unit=MetricUnit.Count, value=1)
            self._logger.info(
                "previous key revoked",
                extra={"key_id": outcome.revocation.key_id, "service_account": outcome.revocation.service_account_id},
            )

    def step_failed(self, request: RotationRequest, key_name: str | None, error: BaseException, seconds: float) -> None:
        self.failed(request.step, key_name, error, seconds, secret=request.secret_id)

    def failed(
        self, step: str, key_name: str | None, error: BaseException, seconds: float, *, secret: str | None = None
    ) -> None:
        """Record a failed step (or a rejected event, with step 'invalid-event')."""
        self._duration(step, seconds)
        self._metrics.add_metric(name=m.ROTATION_FAILED, unit=MetricUnit.Count, value=1)
        self._metrics.add_metadata("step", step)
        self._metrics.add_metadata("error_class", type(error).__name__)
        if key_name:
            self._metrics.add_metadata("key_name", key_name)
        self._logger.error(
            STEP_FAILED,
            extra={
                "step": step,
                "secret": secret,
                "key_name": key_name,
                "error_class": type(error).__name__,
                "error": scrub(str(error)),
                "duration_ms": round(seconds * 1000, 1),
            },
        )

    def _duration(self, step: str, seconds: float) -> None:
        with single_metric(
            name=m.ROTATION_STEP_DURATION,
            unit=MetricUnit.Seconds,
            value=round(seconds, 4),
            namespace=m.NAMESPACE,
            default_dimensions={m.DIM_ENVIRONMENT: self._environment, m.DIM_STEP: step},
        ):
            pass
