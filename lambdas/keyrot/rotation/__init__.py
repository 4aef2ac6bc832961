"""The rotation engine: the four Secrets Manager steps, revocation and containment, over injected clients."""

from keyrot.rotation.attempts import delete_attempt_accounts, discard_attempt
from keyrot.rotation.contain import Cleanup, contain, retire, revoke_displaced, secret_inventory
from keyrot.rotation.context import RotationContext
from keyrot.rotation.deployment import declared_identity
from keyrot.rotation.errors import StalePendingKeyError, UndeclaredSecretError
from keyrot.rotation.events import STEP_NAMES, RotationRequest
from keyrot.rotation.revoke import RevocationResult, revoke_previous, revoke_version
from keyrot.rotation.runner import StepOutcome, run_rotation_step

__all__ = [
    "STEP_NAMES",
    "Cleanup",
    "RevocationResult",
    "RotationContext",
    "RotationRequest",
    "StalePendingKeyError",
    "StepOutcome",
    "UndeclaredSecretError",
    "contain",
    "declared_identity",
    "delete_attempt_accounts",
    "discard_attempt",
    "retire",
    "revoke_displaced",
    "revoke_previous",
    "revoke_version",
    "run_rotation_step",
    "secret_inventory",
]
