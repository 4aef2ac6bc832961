"""The inventory's vocabulary: the states a key can be in, what they are decided from, and the answer.

Inputs hold ids and times only (never key material): what the managed secrets say (per labelled version, the parsed
metadata of its value) and what OpenAI lists (service accounts and/or project API keys).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from keyrot.constants import STAGE_CURRENT, STAGE_PENDING, STAGE_PREVIOUS, STAGE_REVOKED
from keyrot.openai_admin.models import ProjectApiKey, ServiceAccount
from keyrot.secret_model import ManagedKey, Promotion


class KeyState(enum.Enum):
    """What a key (or a keyrot service account) of an environment is. docs/architecture.md#the-key-inventory."""

    CURRENT = "current"  # the AWSCURRENT version's key
    PENDING = "pending"  # the key stored in the AWSPENDING version (a rotation not yet promoted)
    ATTEMPT_IN_PROGRESS = "attempt-in-progress"  # minted by a rotation that may still store it
    PREVIOUS = "previous"  # the AWSPREVIOUS version's key, not revoked (in or past its grace period)
    DISPLACED = "displaced"  # a keyrot key no label accounts for any more, yet OpenAI still lists it
    REVOKED = "revoked"  # revoked or unlabelled, and OpenAI no longer lists it
    OTHER_ENVIRONMENT = "other-environment"  # keyrot-named for an environment declared to share the project
    UNMANAGED = "unmanaged"  # everything else: not minted by keyrot for anything this deployment declares
    UNVERIFIED = "unverified"  # keyrot-named for a managed key whose secret could not be read this time


# States of keys keyrot minted for this environment that may still authenticate.
KEYROT_LIVE_STATES = frozenset(
    {KeyState.CURRENT, KeyState.PENDING, KeyState.ATTEMPT_IN_PROGRESS, KeyState.PREVIOUS, KeyState.DISPLACED}
)


class DisplacedReason(enum.Enum):
    UNLABELLED = "unlabelled"  # its version lost every label (two rotations inside one grace period)
    REVOKED_BUT_LIVE = "revoked-but-live"  # labelled KEYROT_REVOKED, yet OpenAI still lists it
    ABANDONED_ATTEMPT = "abandoned-attempt"  # minted by a rotation attempt that ended without storing it


@dataclass(frozen=True)
class KeyMeta:
    """What the inventory needs of one version's value: ids and times, never the key itself."""

    key_id: str
    service_account_id: str
    created_at: datetime
    expires_at: datetime | None

    @classmethod
    def of(cls, key: ManagedKey) -> KeyMeta:
        return cls(key.key_id, key.service_account_id, key.created_at, key.expires_at)


@dataclass(frozen=True)
class VersionRecord:
    """One version of a managed secret: its labels and, when it holds a readable value, that value's metadata."""

    version_id: str
    stages: tuple[str, ...]
    key: KeyMeta | None = None  # None: an empty placeholder (a rotation starting), or unreadable (see `problem`)
    problem: str | None = None


@dataclass(frozen=True)
class SecretRecord:
    """One managed secret as read: the key name the deployment gives it, its versions and its promotion record."""

    key_name: str
    arn: str
    name: str
    project_id: str | None
    versions: Mapping[str, VersionRecord] = field(default_factory=dict)
    promotion: Promotion | None = None
    created_at: datetime | None = None  # the secret's own creation
    problem: str | None = None  # unreadable or malformed: a finding for this secret only
    environment: str | None = None  # as its tags say (None when they could not be read)

    def version_with(self, stage: str) -> str | None:
        return next((vid for vid, version in self.versions.items() if stage in version.stages), None)

    @property
    def pending_version(self) -> str | None:
        """The AWSPENDING version when it is not also AWSCURRENT (the label AWS may leave on a finished rotation)."""
        return next(
            (
                vid
                for vid, version in self.versions.items()
                if STAGE_PENDING in version.stages and STAGE_CURRENT not in version.stages
            ),
            None,
        )


@dataclass(frozen=True)
class OpenAIListing:
    """What OpenAI lists for the project(s): service accounts, project API keys, or both (None: not read)."""

    accounts: tuple[ServiceAccount, ...] | None = None
    keys: tuple[ProjectApiKey, ...] | None = None

    @classmethod
    def of(
        cls, accounts: Iterable[ServiceAccount] | None = None, keys: Iterable[ProjectApiKey] | None = None
    ) -> OpenAIListing:
        return cls(tuple(accounts) if accounts is not None else None, tuple(keys) if keys is not None else None)


@dataclass(frozen=True)
class InventoryEntry:
    """One key (or keyrot service account) and its state. Ids and times only."""

    state: KeyState
    key_id: str | None = None
    service_account_id: str | None = None
    account_name: str | None = None  # as OpenAI lists it
    key_name: str | None = None  # the managed key it belongs to (keyrot states), or its name says (others)
    environment: str | None = None  # the environment its keyrot name says (None: not keyrot-named)
    secret_arn: str | None = None
    version_id: str | None = None  # the version whose value holds this key
    token: str | None = None  # the rotation token its keyrot name carries
    stages: tuple[str, ...] = ()
    listed: bool | None = None  # OpenAI lists it now (None: OpenAI was not read)
    created_at: datetime | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    promoted_at: datetime | None = None  # CURRENT: when it became current
    retired_at: datetime | None = None  # PREVIOUS (and a revoked previous): when it stopped being current
    in_grace: bool = False  # PREVIOUS: still inside the grace period
    reason: DisplacedReason | None = None  # DISPLACED: why
    problem: str | None = None  # something about it that does not add up (a forged value, an unreadable version)
    owner_type: str | None = None  # "user" or "service_account" (as OpenAI lists it)
    owner_name: str | None = None

    @property
    def keyrot_live(self) -> bool:
        """Minted by keyrot for this environment and possibly still authenticating."""
        return self.state in KEYROT_LIVE_STATES and self.listed is not False


@dataclass(frozen=True)
class SecretInventory:
    """One managed secret's keys, and when its current key was promoted."""

    record: SecretRecord
    entries: tuple[InventoryEntry, ...]
    promoted_at: datetime | None  # from keyrot:promoted, or the current key's creation (see classify)

    @property
    def key_name(self) -> str:
        return self.record.key_name

    @property
    def arn(self) -> str:
        return self.record.arn

    @property
    def name(self) -> str:
        return self.record.name

    def of_state(self, *states: KeyState) -> list[InventoryEntry]:
        return [entry for entry in self.entries if entry.state in states]

    def with_label(self, stage: str) -> InventoryEntry | None:
        return next((entry for entry in self.entries if stage in entry.stages and entry.version_id), None)

    @property
    def current(self) -> InventoryEntry | None:
        return self.with_label(STAGE_CURRENT)

    @property
    def previous(self) -> InventoryEntry | None:
        """The AWSPREVIOUS version's entry, revoked or not."""
        return self.with_label(STAGE_PREVIOUS)

    @property
    def revoked_label(self) -> InventoryEntry | None:
        return self.with_label(STAGE_REVOKED)

    def live_keyrot_keys(self) -> list[InventoryEntry]:
        return [entry for entry in self.entries if entry.keyrot_live]


@dataclass(frozen=True)
class Inventory:
    """Every key and keyrot service account of one environment, each with exactly one state."""

    environment: str
    now: datetime
    secrets: tuple[SecretInventory, ...]
    entries: tuple[InventoryEntry, ...]  # the secrets' entries and everything else OpenAI lists
    problems: tuple[tuple[str, str], ...] = ()  # (secret name, what is wrong)

    def secret(self, key_name: str) -> SecretInventory | None:
        return next((secret for secret in self.secrets if secret.key_name == key_name), None)

    def of_state(self, *states: KeyState) -> list[InventoryEntry]:
        return [entry for entry in self.entries if entry.state in states]

    def by_key_id(self, key_id: str | None) -> InventoryEntry | None:
        """The entry of `key_id` (the most current one when two versions name the same key)."""
        if not key_id:
            return None
        return next((entry for entry in self.entries if entry.key_id == key_id), None)

    def by_account(self, service_account_id: str | None) -> InventoryEntry | None:
        if not service_account_id:
            return None
        return next((entry for entry in self.entries if entry.service_account_id == service_account_id), None)
