"""keyrot's exception hierarchy. Messages name what is wrong and never contain key material."""

from __future__ import annotations

from keyrot.redaction import scrub


class KeyrotError(Exception):
    """Base class of every error keyrot raises on purpose."""


class ConfigurationError(KeyrotError):
    """A setting (environment variable, stack config, CLI option) is missing or invalid."""

    def __init__(self, message: str) -> None:
        # Messages quote the offending value: scrub anything key-shaped put in the wrong variable.
        super().__init__(scrub(message))


class SecretContractError(KeyrotError):
    """A secret's value or tags do not follow the keyrot secret contract."""


class AdminKeyError(KeyrotError):
    """The OpenAI admin key is missing, malformed or rejected."""


class RotationEventError(KeyrotError):
    """The rotation event is malformed (unknown step, missing fields)."""


class RotationStateError(KeyrotError):
    """The secret is not in a state this rotation step may act on."""


class KeyValidationError(KeyrotError):
    """A newly minted key failed validation; it is not promoted."""


class RevocationError(KeyrotError):
    """A key could not be revoked, or its revocation could not be confirmed."""


class AwsCallError(KeyrotError):
    """An AWS API call failed. Carries the AWS error code and the operation."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"AWS {operation} failed: {code}: {message}")
        self.operation = operation
        self.code = code
