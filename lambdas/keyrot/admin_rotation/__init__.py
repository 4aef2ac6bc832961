"""The admin key rotates too: the admin-key secret's four Secrets Manager steps, the cleanup that deletes the old
admin key once no function holds it, and the admin key's state for operators. Clients are injected."""

from keyrot.admin_rotation.cleanup import AdminCleanup, AdminKeysSeen, CleanupPlan, Doomed, clean_up, plan_cleanup
from keyrot.admin_rotation.context import AdminRotationContext, build_admin_rotation_context
from keyrot.admin_rotation.errors import (
    AdminKeyDeletionError,
    AdminKeyValidationError,
    AdminRotationTooSoonError,
    StalePendingAdminKeyError,
    UndeclaredAdminSecretError,
)
from keyrot.admin_rotation.naming import AdminKeyName, ProbeAccountName
from keyrot.admin_rotation.runner import AdminStepOutcome, run_admin_rotation_step
from keyrot.admin_rotation.state import AdminKeyState, read_admin_key_state
from keyrot.admin_rotation.steps import STEPS, AdminStepResult
from keyrot.admin_rotation.value import AdminKeyValue

__all__ = [
    "STEPS",
    "AdminCleanup",
    "AdminKeyDeletionError",
    "AdminKeyName",
    "AdminKeyState",
    "AdminKeyValidationError",
    "AdminKeyValue",
    "AdminKeysSeen",
    "AdminRotationContext",
    "AdminRotationTooSoonError",
    "AdminStepOutcome",
    "AdminStepResult",
    "CleanupPlan",
    "Doomed",
    "ProbeAccountName",
    "StalePendingAdminKeyError",
    "UndeclaredAdminSecretError",
    "build_admin_rotation_context",
    "clean_up",
    "plan_cleanup",
    "read_admin_key_state",
    "run_admin_rotation_step",
]
