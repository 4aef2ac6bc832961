"""Errors of the rotation engine that say more than keyrot's base classes (and are caught as those)."""

from __future__ import annotations

from keyrot.errors import KeyValidationError, RotationStateError


class UndeclaredSecretError(RotationStateError):
    """The secret is not one the deployment declares, or its tags disagree with the deployment: nothing is done."""


class StalePendingKeyError(KeyValidationError):
    """The pending key's OpenAI-side expiry leaves too little life to promote it: it was discarded instead."""
