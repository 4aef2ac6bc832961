"""The rotation state of one managed secret, from its labels, its rotation fields and the ids of its keys.

Built from the secret's inventory (status: keyrot.inventory's answer, which does not take a KEYROT_REVOKED label on
its word) or from one secret's own labelled versions (doctor, rotate), so a command about one key never needs to
read the other keys' secrets. A key's age counts from its promotion (keyrot:promoted); a previous key counts as
revoked only when the inventory, given OpenAI's listing, says OpenAI no longer lists it. Without that listing the
label alone speaks, and `previous_confirmed` is False.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from keyrot.aws.errors import aws_errors
from keyrot.aws.secrets import SecretDescription, SecretStore
from keyrot.constants import STAGE_CURRENT, STAGE_PENDING, STAGE_PREVIOUS, STAGE_REVOKED, TAG_KEY_NAME
from keyrot.inventory import DisplacedReason, InventoryEntry, KeyMeta, SecretInventory, promoted_at
from keyrot.inventory import KeyState as InventoryState
from keyrot.secret_model import ManagedKey, Promotion

DEFAULT_STUCK_AFTER = timedelta(minutes=30)
# The labels whose versions' keys a command about one secret reads, in the order they are read.
LABELS = (STAGE_CURRENT, STAGE_PENDING, STAGE_PREVIOUS, STAGE_REVOKED)


@dataclass(frozen=True)
class PendingRotation:
    """An AWSPENDING version that is not AWSCURRENT: a rotation under way, failing, or abandoned."""

    version_id: str
    since: datetime | None
    key: KeyMeta | None  # None while the pending version is an empty placeholder (createSecret not done)

    def age(self, now: datetime) -> timedelta | None:
        return now - self.since if self.since else None

    def stuck(self, now: datetime, after: timedelta = DEFAULT_STUCK_AFTER) -> bool:
        age = self.age(now)
        return age is not None and age >= after


@dataclass(frozen=True)
class KeyState:
    key_name: str
    secret_name: str
    arn: str
    rotation_enabled: bool
    rotation_days: int | None
    last_rotated: datetime | None
    next_rotation: datetime | None
    next_rotation_estimated: bool
    current_version: str | None
    current: KeyMeta | None
    previous_version: str | None
    previous: KeyMeta | None
    previous_revoked: bool  # revoked: OpenAI no longer lists it (or, unconfirmed, its label says so)
    pending: PendingRotation | None
    promoted_at: datetime | None = None  # when the current key became current
    previous_confirmed: bool = False  # previous_revoked checked against OpenAI's listing (not the label alone)
    previous_state: str | None = None  # the inventory's state of the previous key, when it was asked
    displaced: tuple[str, ...] = ()  # keys of this secret no label accounts for that OpenAI still lists

    def key_age(self, now: datetime) -> timedelta | None:
        """How long the current key has been current (from its promotion; its creation for older secrets)."""
        if self.current is None:
            return None
        return now - (self.promoted_at or self.current.created_at)

    @property
    def interval(self) -> timedelta | None:
        return timedelta(days=self.rotation_days) if self.rotation_days else None

    @property
    def previous_labelled_revoked_but_live(self) -> bool:
        """The previous key carries KEYROT_REVOKED, yet OpenAI still lists it: the label is not the truth."""
        return self.previous_state == InventoryState.DISPLACED.value


def pending_version(versions: Mapping[str, tuple[str, ...]]) -> str | None:
    """The AWSPENDING version when it is not also AWSCURRENT (the label AWS leaves on a finished rotation)."""
    for version_id, stages in versions.items():
        if STAGE_PENDING in stages and STAGE_CURRENT not in stages:
            return version_id
    return None


def build_key_state(
    secrets_client: Any,
    description: SecretDescription,
    keys: Mapping[str, KeyMeta] | None = None,
    *,
    inventory: SecretInventory | None = None,
) -> KeyState:
    """The state of a described secret, from the secret's inventory when the caller has it, else from the key ids
    of its labelled versions (`keys`, by label, as `read_key_metas` reads them)."""
    if inventory is not None:
        keys = _labelled_keys(inventory, description)
    keys = keys or {}
    versions = description.versions
    previous_version = description.version_with(STAGE_PREVIOUS)
    labelled_revoked = previous_version is not None and STAGE_REVOKED in versions.get(previous_version, ())
    previous = keys.get(STAGE_REVOKED if labelled_revoked else STAGE_PREVIOUS) if previous_version else None
    previous_entry = _entry_of(inventory, previous_version)
    revoked, confirmed = labelled_revoked, False
    if previous_entry is not None and previous_entry.listed is not None:
        revoked, confirmed = previous_entry.state is InventoryState.REVOKED and not previous_entry.listed, True
    current_meta = keys.get(STAGE_CURRENT)
    promoted = promoted_at(
        Promotion.from_tags(description.tags),
        description.version_with(STAGE_CURRENT),
        current_meta.created_at if current_meta else None,
    )
    pending_id = pending_version(versions)
    pending = None
    if pending_id is not None:
        meta = keys.get(STAGE_PENDING)
        created = _version_created(secrets_client, description.arn, pending_id)
        since = min((moment for moment in (created, meta.created_at if meta else None) if moment), default=None)
        pending = PendingRotation(pending_id, since, meta)
    rules = description.rotation_rules or {}
    days = rules.get("AutomaticallyAfterDays")
    next_rotation, estimated = description.next_rotation, False
    if next_rotation is None and description.last_rotated and days:
        next_rotation, estimated = description.last_rotated + timedelta(days=int(days)), True
    return KeyState(
        key_name=description.tag_map.get(TAG_KEY_NAME, description.name),
        secret_name=description.name,
        arn=description.arn,
        rotation_enabled=description.rotation_enabled,
        rotation_days=int(days) if days else None,
        last_rotated=description.last_rotated,
        next_rotation=next_rotation,
        next_rotation_estimated=estimated,
        current_version=description.version_with(STAGE_CURRENT),
        current=current_meta,
        previous_version=previous_version,
        previous=previous,
        previous_revoked=revoked,
        pending=pending,
        promoted_at=promoted,
        previous_confirmed=confirmed,
        previous_state=previous_entry.state.value if previous_entry is not None else None,
        displaced=_displaced(inventory),
    )


def read_key_metas(secrets_client: Any, description: SecretDescription) -> dict[str, KeyMeta]:
    """The key ids of one secret's labelled versions, by label, read from their values (never kept, never shown).
    The pending label of a version that is also current (a finished rotation's leftover) is skipped."""
    store = SecretStore(secrets_client)
    metas: dict[str, KeyMeta] = {}
    for stage in LABELS:
        version_id = description.version_with(stage)
        if version_id is None or (stage == STAGE_PENDING and STAGE_CURRENT in description.stages_of(version_id)):
            continue
        text = store.get_string(description.arn, stage=stage, version_id=version_id)
        if text is not None:
            metas[stage] = KeyMeta.of(ManagedKey.from_json(text, what=f"secret {description.name} {stage} value"))
    return metas


def _labelled_keys(inventory: SecretInventory, description: SecretDescription) -> dict[str, KeyMeta]:
    """The inventory's keys by the label their version carries now (the description is the newer reading)."""
    metas: dict[str, KeyMeta] = {}
    for entry in inventory.entries:
        if entry.version_id is None or not entry.key_id or not entry.service_account_id or entry.created_at is None:
            continue
        meta = KeyMeta(entry.key_id, entry.service_account_id, entry.created_at, entry.expires_at)
        for stage in LABELS:
            if stage in description.stages_of(entry.version_id):
                if stage == STAGE_PENDING and STAGE_CURRENT in description.stages_of(entry.version_id):
                    continue
                metas.setdefault(stage, meta)
    return metas


def _entry_of(inventory: SecretInventory | None, version_id: str | None) -> InventoryEntry | None:
    if inventory is None or version_id is None:
        return None
    return next((entry for entry in inventory.entries if entry.version_id == version_id), None)


def _displaced(inventory: SecretInventory | None) -> tuple[str, ...]:
    """Keys of the secret OpenAI still lists that no label accounts for (the previous key labelled revoked while
    still live is reported as the previous key, not here)."""
    if inventory is None:
        return ()
    found = [
        entry.key_id or entry.service_account_id or "?"
        for entry in inventory.of_state(InventoryState.DISPLACED)
        if entry.listed and entry.reason is not DisplacedReason.REVOKED_BUT_LIVE
    ]
    return tuple(sorted(set(found)))


def _version_created(secrets_client: Any, arn: str, version_id: str) -> datetime | None:
    kwargs: dict[str, Any] = {"SecretId": arn, "IncludeDeprecated": False}
    with aws_errors("ListSecretVersionIds"):
        while True:
            page = secrets_client.list_secret_version_ids(**kwargs)
            for version in page.get("Versions", []):
                if version.get("VersionId") == version_id:
                    created = version.get("CreatedDate")
                    return created if isinstance(created, datetime) else None
            token = page.get("NextToken")
            if not token or token == kwargs.get("NextToken"):
                return None
            kwargs["NextToken"] = token
