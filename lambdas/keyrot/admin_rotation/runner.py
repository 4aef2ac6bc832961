"""Run one admin rotation step: the deployment check, the pre-flight guard (the application rotation's own), dispatch,
timing and telemetry."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from keyrot.admin_rotation.cleanup import AdminCleanup
from keyrot.admin_rotation.context import AdminRotationContext
from keyrot.admin_rotation.steps import STEPS, AdminStepResult
from keyrot.rotation.events import RotationRequest
from keyrot.rotation.guard import GuardDecision, check_version_stage


@dataclass(frozen=True)
class AdminStepOutcome:
    """A completed step, as logged and measured. Ids only, never key material."""

    step: str
    secret_name: str
    action: str
    key_id: str | None
    seconds: float
    cleanup: AdminCleanup | None = None


class AdminRotationTelemetry(Protocol):
    def step_started(self, request: RotationRequest) -> None: ...

    def step_succeeded(self, outcome: AdminStepOutcome) -> None: ...

    def step_failed(self, request: RotationRequest, error: BaseException, seconds: float) -> None: ...


class NullTelemetry:
    def step_started(self, request: RotationRequest) -> None:
        return None

    def step_succeeded(self, outcome: AdminStepOutcome) -> None:
        return None

    def step_failed(self, request: RotationRequest, error: BaseException, seconds: float) -> None:
        return None


def run_admin_rotation_step(
    request: RotationRequest,
    ctx: AdminRotationContext,
    telemetry: AdminRotationTelemetry | None = None,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> AdminStepOutcome:
    """Check the secret is the declared admin-key secret, guard, then run the step. Re-raises any failure after
    reporting it. A token already AWSCURRENT ends every step but finishSecret at once (its body is idempotent and
    removes a leftover AWSPENDING label after a crash mid-finish)."""
    telemetry = telemetry or NullTelemetry()
    started = clock()
    try:
        telemetry.step_started(request)
        description = ctx.describe(request.secret_id)  # not the declared admin-key secret: nothing is done
        decision = check_version_stage(description, request.token)
        if decision is GuardDecision.ALREADY_CURRENT and request.step != "finishSecret":
            result = AdminStepResult("already current; nothing to do")
        else:
            result = STEPS[request.step](ctx, request, description)
    except Exception as exc:
        telemetry.step_failed(request, exc, clock() - started)
        raise
    outcome = AdminStepOutcome(
        step=request.step,
        secret_name=description.name,
        action=result.action,
        key_id=result.key_id,
        seconds=clock() - started,
        cleanup=result.cleanup,
    )
    telemetry.step_succeeded(outcome)
    return outcome
