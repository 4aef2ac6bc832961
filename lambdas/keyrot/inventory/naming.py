"""Names of the OpenAI service accounts keyrot mints: `keyrot:<environment>:<key name>:<rotation token>`.

The rotation token is the Secrets Manager version id whose value holds the account's key, so a name says which
version of which secret an account belongs to.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyrot.constants import SERVICE_ACCOUNT_NAME_PREFIX
from keyrot.secret_model import ENVIRONMENT_PATTERN, KEY_NAME_PATTERN

_SEPARATOR = ":"


@dataclass(frozen=True)
class ServiceAccountName:
    environment: str
    key_name: str
    token: str

    def __str__(self) -> str:
        return _SEPARATOR.join((SERVICE_ACCOUNT_NAME_PREFIX, self.environment, self.key_name, self.token))

    @classmethod
    def parse(cls, name: str) -> ServiceAccountName | None:
        """The parts of a keyrot-minted name, or None for any other service account."""
        parts = name.split(_SEPARATOR)
        if len(parts) != 4 or parts[0] != SERVICE_ACCOUNT_NAME_PREFIX:
            return None
        _, environment, key_name, token = parts
        if not (ENVIRONMENT_PATTERN.fullmatch(environment) and KEY_NAME_PATTERN.fullmatch(key_name) and token):
            return None
        return cls(environment=environment, key_name=key_name, token=token)
