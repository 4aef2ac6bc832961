"""The ledger: every key id keyrot manages in this environment, with its secret, key name and role.

Built from the secrets' tags and version stages. A version's key id never changes, so parsed metadata is cached
per version for the life of the Lambda container: a warm run reads no secret values at all.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from keyrot.aws.secrets import SecretStore
from keyrot.constants import (
    STAGE_CURRENT,
    STAGE_PENDING,
    STAGE_PREVIOUS,
    STAGE_REVOKED,
    TAG_ADMIN_SECRET,
    TAG_ENVIRONMENT,
)
from keyrot.errors import SecretContractError
from keyrot.secret_model import ManagedKey, SecretIdentity

logger = logging.getLogger(__name__)

_CACHE_LIMIT = 50_000


class KeyRole(enum.Enum):
    CURRENT = "current"
    PENDING = "pending"
    PREVIOUS = "previous"
    REVOKED = "revoked"


@dataclass(frozen=True)
class KeyMeta:
    """What the monitor needs of one version's value: ids and times, never the key itself."""

    key_id: str
    service_account_id: str
    created_at: datetime
    expires_at: datetime | None

    @classmethod
    def of(cls, key: ManagedKey) -> KeyMeta:
        return cls(key.key_id, key.service_account_id, key.created_at, key.expires_at)


@dataclass(frozen=True)
class ManagedSecret:
    arn: str
    name: str
    identity: SecretIdentity
    versions: Mapping[str, tuple[str, ...]]
    keys: Mapping[KeyRole, KeyMeta]
    created_at: datetime | None = None  # the secret's own creation (ListSecrets' CreatedDate)

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


@dataclass(frozen=True)
class LedgerEntry:
    key_id: str
    key_name: str
    role: KeyRole
    secret: ManagedSecret
    # When the key stopped being current (the current key's creation); None unless PREVIOUS or REVOKED.
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


_meta_cache: dict[tuple[str, str], KeyMeta] = {}


def clear_cache() -> None:
    _meta_cache.clear()


def load_ledger(store: SecretStore, environment: str) -> Ledger:
    """Discover this environment's managed secrets by tag and read the key ids of their labelled versions."""
    filters = [
        {"Key": "tag-key", "Values": [TAG_ENVIRONMENT]},
        {"Key": "tag-value", "Values": [environment]},
    ]
    secrets: list[ManagedSecret] = []
    problems: list[tuple[str, str]] = []
    for listed in store.iter_tagged(filters):
        tags = {tag["Key"]: tag.get("Value", "") for tag in listed.get("Tags") or ()}
        if tags.get(TAG_ENVIRONMENT) != environment or TAG_ADMIN_SECRET in tags:
            continue
        try:
            secrets.append(_read_secret(store, listed))
        except SecretContractError as exc:
            problems.append((listed.get("Name", listed["ARN"]), str(exc)))
    secrets.sort(key=lambda secret: secret.key_name)
    return Ledger(tuple(secrets), _entries(secrets), tuple(problems))


def _read_secret(store: SecretStore, listed: Mapping[str, Any]) -> ManagedSecret:
    arn, name = listed["ARN"], listed.get("Name", listed["ARN"])
    identity = SecretIdentity.from_tags(listed.get("Tags"))
    versions = {vid: tuple(stages) for vid, stages in (listed.get("SecretVersionsToStages") or {}).items()}
    keys: dict[KeyRole, KeyMeta] = {}
    for version_id, stages in versions.items():
        role = _role(stages)
        if role is None:
            continue
        meta = _meta(store, arn, version_id, stages[0] if role is not KeyRole.REVOKED else STAGE_REVOKED, name)
        if meta is not None:
            keys[role] = meta
    created = listed.get("CreatedDate")
    return ManagedSecret(arn, name, identity, versions, keys, created if isinstance(created, datetime) else None)


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


def _meta(store: SecretStore, arn: str, version_id: str, stage: str, name: str) -> KeyMeta | None:
    cached = _meta_cache.get((arn, version_id))
    if cached is not None:
        return cached
    text = store.get_string(arn, stage=stage, version_id=version_id)
    if text is None:
        return None  # an empty AWSPENDING placeholder: a rotation is starting
    meta = KeyMeta.of(ManagedKey.from_json(text, what=f"secret {name} version {version_id}"))
    if len(_meta_cache) >= _CACHE_LIMIT:
        _meta_cache.clear()
    _meta_cache[(arn, version_id)] = meta
    return meta


def _entries(secrets: Iterable[ManagedSecret]) -> dict[str, LedgerEntry]:
    entries: dict[str, LedgerEntry] = {}
    for secret in secrets:
        current = secret.current
        for role, meta in secret.keys.items():
            retired_at = current.created_at if role in (KeyRole.PREVIOUS, KeyRole.REVOKED) and current else None
            entries[meta.key_id] = LedgerEntry(meta.key_id, secret.key_name, role, secret, retired_at)
    return entries
