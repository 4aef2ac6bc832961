"""The ledger: every key id keyrot manages in this environment, with its secret, key name and role.

A view of the inventory's secret records (keyrot.inventory.load reads them: the secrets the deployment declares, or
for an older deployment those tagged for the environment; a secret that cannot be read is a problem of that secret,
never of the run). A version's key id never changes, so the loader caches parsed metadata per version for the life of
the Lambda container: a warm run reads no secret values at all.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from keyrot.aws.secrets import SecretStore
from keyrot.constants import STAGE_CURRENT, STAGE_PENDING, STAGE_PREVIOUS, STAGE_REVOKED
from keyrot.inventory import KeyMeta, SecretRecord, VersionRecord, promoted_at, read_secrets
from keyrot.inventory import clear_cache as _clear_inventory_cache
from keyrot.secret_model import Promotion, SecretIdentity
from keyrot.settings import Deployment

logger = logging.getLogger(__name__)

__all__ = [
    "KeyMeta",
    "KeyRole",
    "Ledger",
    "LedgerEntry",
    "ManagedSecret",
    "clear_cache",
    "ledger_of",
    "load_ledger",
]


class KeyRole(enum.Enum):
    CURRENT = "current"
    PENDING = "pending"
    PREVIOUS = "previous"
    REVOKED = "revoked"


_ROLE_STAGE = {
    KeyRole.CURRENT: STAGE_CURRENT,
    KeyRole.PENDING: STAGE_PENDING,
    KeyRole.PREVIOUS: STAGE_PREVIOUS,
    KeyRole.REVOKED: STAGE_REVOKED,
}


@dataclass(frozen=True)
class ManagedSecret:
    arn: str
    name: str
    identity: SecretIdentity
    versions: Mapping[str, tuple[str, ...]]
    keys: Mapping[KeyRole, KeyMeta]
    created_at: datetime | None = None  # the secret's own creation (ListSecrets' CreatedDate)
    promotion: Promotion | None = None  # the keyrot:promoted record

    def version_with(self, stage: str) -> str | None:
        return next((vid for vid, stages in self.versions.items() if stage in stages), None)

    @property
    def key_name(self) -> str:
        return self.identity.key_name

    @property
    def current(self) -> KeyMeta | None:
        return self.keys.get(KeyRole.CURRENT)

    @property
    def previous(self) -> KeyMeta | None:
        """The previous key while it is not yet revoked."""
        return self.keys.get(KeyRole.PREVIOUS)

    @property
    def promoted_at(self) -> datetime | None:
        """When the current key became current (keyrot:promoted, else its creation): the key age, and the moment the
        previous key retired."""
        current = self.current
        return promoted_at(self.promotion, self.version_with(STAGE_CURRENT), current.created_at if current else None)

    @property
    def retired_at(self) -> datetime | None:
        """When the previous key stopped being current: the current key's promotion."""
        return self.promoted_at

    def record(self) -> SecretRecord:
        """This secret as the inventory's input (what the ledger knows: its labelled versions)."""
        metas = {self.version_with(_ROLE_STAGE[role]): meta for role, meta in self.keys.items()}
        versions = {vid: VersionRecord(vid, tuple(stages), metas.get(vid)) for vid, stages in self.versions.items()}
        return SecretRecord(
            self.key_name,
            self.arn,
            self.name,
            self.identity.project_id,
            versions,
            self.promotion,
            self.created_at,
            environment=self.identity.environment,
        )


@dataclass(frozen=True)
class LedgerEntry:
    key_id: str
    key_name: str
    role: KeyRole
    secret: ManagedSecret
    # When the key stopped being current (the current key's promotion); None unless PREVIOUS or REVOKED.
    retired_at: datetime | None


@dataclass(frozen=True)
class Ledger:
    secrets: tuple[ManagedSecret, ...]
    entries: Mapping[str, LedgerEntry]
    problems: tuple[tuple[str, str], ...]  # (secret name, what is wrong)

    def lookup(self, key_id: str | None) -> LedgerEntry | None:
        return self.entries.get(key_id) if key_id else None

    @property
    def service_account_ids(self) -> frozenset[str]:
        return frozenset(meta.service_account_id for secret in self.secrets for meta in secret.keys.values())


def clear_cache() -> None:
    _clear_inventory_cache()


def load_ledger(store: SecretStore, environment: str, *, deployment: Deployment | None = None) -> Ledger:
    """The environment's managed secrets (declared by `deployment`, else found by tag) and their labelled keys."""
    return ledger_of(read_secrets(store, environment, deployment or Deployment()))


def ledger_of(records: Iterable[SecretRecord]) -> Ledger:
    """The ledger of secret records: readable secrets with their labelled keys, and every problem found reading."""
    secrets: list[ManagedSecret] = []
    problems: list[tuple[str, str]] = []
    for record in records:
        if record.problem:
            problems.append((record.name, record.problem))
            continue
        problems += [(record.name, version.problem) for version in record.versions.values() if version.problem]
        secrets.append(_managed(record))
    secrets.sort(key=lambda secret: secret.key_name)
    return Ledger(tuple(secrets), _entries(secrets), tuple(problems))


def _managed(record: SecretRecord) -> ManagedSecret:
    keys: dict[KeyRole, KeyMeta] = {}
    for version in record.versions.values():
        role = _role(version.stages)
        if role is not None and version.key is not None:
            keys[role] = version.key
    identity = SecretIdentity(record.environment or "", record.key_name, record.project_id or "")
    versions = {vid: version.stages for vid, version in record.versions.items() if version.stages}
    return ManagedSecret(record.arn, record.name, identity, versions, keys, record.created_at, record.promotion)


def _role(stages: Iterable[str]) -> KeyRole | None:
    labels = set(stages)
    if STAGE_REVOKED in labels:
        return KeyRole.REVOKED
    if STAGE_CURRENT in labels:
        return KeyRole.CURRENT
    if STAGE_PENDING in labels:
        return KeyRole.PENDING
    if STAGE_PREVIOUS in labels:
        return KeyRole.PREVIOUS
    return None


def _entries(secrets: Iterable[ManagedSecret]) -> dict[str, LedgerEntry]:
    entries: dict[str, LedgerEntry] = {}
    for secret in secrets:
        retired_at = secret.retired_at
        for role, meta in secret.keys.items():
            retired = retired_at if role in (KeyRole.PREVIOUS, KeyRole.REVOKED) else None
            entries[meta.key_id] = LedgerEntry(meta.key_id, secret.key_name, role, secret, retired)
    return entries
