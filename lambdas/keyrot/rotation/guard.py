"""The pre-flight check every step runs first, as in AWS's rotation template."""

from __future__ import annotations

import enum

from keyrot.aws.secrets import SecretDescription
from keyrot.constants import STAGE_CURRENT, STAGE_PENDING
from keyrot.errors import RotationStateError


class GuardDecision(enum.Enum):
    PROCEED = "proceed"
    ALREADY_CURRENT = "already-current"


def check_version_stage(description: SecretDescription, token: str) -> GuardDecision:
    """Raise RotationStateError unless rotation is enabled and `token` is the AWSPENDING version."""
    if not description.rotation_enabled:
        raise RotationStateError(f"rotation is not enabled for secret {description.name}")
    if token not in description.versions:
        raise RotationStateError(f"secret {description.name} has no version {token}")
    stages = description.stages_of(token)
    if STAGE_CURRENT in stages:
        return GuardDecision.ALREADY_CURRENT
    if STAGE_PENDING not in stages:
        raise RotationStateError(f"version {token} of secret {description.name} is not AWSPENDING")
    return GuardDecision.PROCEED
