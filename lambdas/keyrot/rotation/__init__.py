"""The rotation engine: the four Secrets Manager steps and revocation, over injected clients."""

from keyrot.rotation.context import RotationContext
from keyrot.rotation.events import STEP_NAMES, RotationRequest
from keyrot.rotation.revoke import RevocationResult, revoke_previous
from keyrot.rotation.runner import StepOutcome, run_rotation_step

__all__ = [
    "STEP_NAMES",
    "RevocationResult",
    "RotationContext",
    "RotationRequest",
    "StepOutcome",
    "revoke_previous",
    "run_rotation_step",
]
