"""Run one rotation step: pre-flight guard, dispatch, timing and telemetry."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from keyrot.constants import TAG_KEY_NAME
from keyrot.rotation.contain import Cleanup
from keyrot.rotation.context import RotationContext
from keyrot.rotation.deployment import declared_identity
from keyrot.rotation.events import RotationRequest
from keyrot.rotation.guard import GuardDecision, check_version_stage
from keyrot.rotation.revoke import RevocationResult
from keyrot.rotation.steps import STEPS, StepResult


@dataclass(frozen=True)
class StepOutcome:
    """A completed step, as logged and measured. Holds ids only, never key material."""

    step: str
    secret_name: str
    key_name: str | None
    action: str
    key_id: str | None
    revocation: RevocationResult | None
    seconds: float
    cleanup: Cleanup | None = None  # finishSecret: the keys it revoked after promotion, and what it could not


class RotationTelemetry(Protocol):
    def step_started(self, request: RotationRequest, key_name: str | None) -> None: ...

    def step_succeeded(self, outcome: StepOutcome) -> None: ...

    def step_failed(
        self, request: RotationRequest, key_name: str | None, error: BaseException, seconds: float
    ) -> None: ...


class NullTelemetry:
    """Telemetry that records nothing (for callers that report outcomes themselves)."""

    def step_started(self, request: RotationRequest, key_name: str | None) -> None:
        return None

    def step_succeeded(self, outcome: StepOutcome) -> None:
        return None

    def step_failed(self, request: RotationRequest, key_name: str | None, error: BaseException, seconds: float) -> None:
        return None


def run_rotation_step(
    request: RotationRequest,
    ctx: RotationContext,
    telemetry: RotationTelemetry | None = None,
    *,
    clock: Callable[[], float] = time.perf_counter,
) -> StepOutcome:
    """Guard, then run the step. Re-raises any failure after reporting it.

    A token that is already AWSCURRENT ends createSecret, setSecret and testSecret at once. finishSecret still runs
    its idempotent body, so a retry after a crash mid-finish removes a leftover AWSPENDING label and, in emergency
    mode, completes the revocation.
    """
    telemetry = telemetry or NullTelemetry()
    started = clock()
    key_name: str | None = None
    try:
        description = ctx.store.describe(request.secret_id)
        key_name = description.tag_map.get(TAG_KEY_NAME)
        telemetry.step_started(request, key_name)
        declared_identity(description, ctx.settings)  # a secret the deployment does not declare: nothing is done
        decision = check_version_stage(description, request.token)
        if decision is GuardDecision.ALREADY_CURRENT and request.step != "finishSecret":
            result = StepResult("already current; nothing to do")
        else:
            result = STEPS[request.step](ctx, request, description)
    except Exception as exc:
        telemetry.step_failed(request, key_name, exc, clock() - started)
        raise
    outcome = StepOutcome(
        step=request.step,
        secret_name=description.name,
        key_name=key_name,
        action=result.action,
        key_id=result.key_id,
        revocation=result.revocation,
        seconds=clock() - started,
        cleanup=result.cleanup,
    )
    telemetry.step_succeeded(outcome)
    return outcome
