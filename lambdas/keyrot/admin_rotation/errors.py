"""Errors of the admin rotation. Each is caught as keyrot's base class it extends; none carries key material."""

from __future__ import annotations

from keyrot.errors import KeyValidationError, RevocationError, RotationStateError


class UndeclaredAdminSecretError(RotationStateError):
    """The secret is not the admin-key secret this deployment declares (KEYROT_ADMIN_SECRET_ARN): nothing is done."""


class AdminRotationTooSoonError(RotationStateError):
    """The previous admin key is still in its grace period: minting now would make three live keyrot admin keys."""


class AdminKeyValidationError(KeyValidationError):
    """The new admin key cannot do something keyrot needs: it is not promoted, AWSCURRENT is unchanged."""


class StalePendingAdminKeyError(KeyValidationError):
    """The pending admin key expires too soon to be promoted: it was deleted and the attempt discarded."""


class AdminKeyDeletionError(RevocationError):
    """An admin key due for deletion could not be deleted, or still authenticates after its deletion."""
