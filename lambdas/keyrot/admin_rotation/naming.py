"""Names of what the admin rotation makes in OpenAI: admin keys `keyrot-admin:<environment>:<rotation token>`, and
the keyless probe account `keyrot-admin-probe:<environment>:<rotation token>` testSecret creates and deletes.

The token is the Secrets Manager version id that holds (or will hold) the key, so a name says which version of which
environment's admin-key secret a key belongs to: a retry finds its leftovers by name, and so does the cleanup.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyrot.constants import ADMIN_KEY_NAME_PREFIX, ADMIN_PROBE_ACCOUNT_PREFIX
from keyrot.secret_model import ENVIRONMENT_PATTERN

_SEPARATOR = ":"


@dataclass(frozen=True)
class AdminKeyName:
    environment: str
    token: str

    def __str__(self) -> str:
        return _SEPARATOR.join((ADMIN_KEY_NAME_PREFIX, self.environment, self.token))

    @classmethod
    def parse(cls, name: str | None) -> AdminKeyName | None:
        """The parts of a keyrot-minted admin key's name, or None for any other admin key."""
        return _parse(ADMIN_KEY_NAME_PREFIX, name)


@dataclass(frozen=True)
class ProbeAccountName:
    environment: str
    token: str

    def __str__(self) -> str:
        return _SEPARATOR.join((ADMIN_PROBE_ACCOUNT_PREFIX, self.environment, self.token))

    @classmethod
    def parse(cls, name: str | None) -> ProbeAccountName | None:
        parsed = _parse(ADMIN_PROBE_ACCOUNT_PREFIX, name)
        return cls(parsed.environment, parsed.token) if parsed else None


def _parse(prefix: str, name: str | None) -> AdminKeyName | None:
    parts = name.split(_SEPARATOR) if isinstance(name, str) else []
    if len(parts) != 3 or parts[0] != prefix:
        return None
    _, environment, token = parts
    if not ENVIRONMENT_PATTERN.fullmatch(environment) or not token:
        return None
    return AdminKeyName(environment, token)
