"""Decide the state of every key and keyrot service account of an environment: a pure function of its inputs.

The one place that answers "what is this key": rotation's cleanup, the janitor, the monitor's findings and the CLI
all read its answer. The rules are in docs/architecture.md#the-key-inventory; in short:

- a version's key: CURRENT, PENDING or PREVIOUS by its label; labelled KEYROT_REVOKED or unlabelled, it is REVOKED
  once OpenAI no longer lists it and DISPLACED while it still does (a label is a record, not proof);
- a keyrot account of this environment and a managed key that no version stores: ATTEMPT_IN_PROGRESS while its
  token is the AWSPENDING version, or while it is younger than ROTATION_TIMEOUT_SECONDS + CLOCK_SKEW_SECONDS (an
  invocation may still store it, and the secrets may have been read before its placeholder existed); after that
  it is an abandoned attempt: DISPLACED;
- keyrot-named for an environment declared to share the project: OTHER_ENVIRONMENT; anything else: UNMANAGED.

Retirement counts from promotion: the keyrot:promoted tag when it names the current version, else (an older secret,
or a tag naming another version) the current key's creation.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from keyrot.constants import (
    CLOCK_SKEW_SECONDS,
    ROTATION_TIMEOUT_SECONDS,
    STAGE_CURRENT,
    STAGE_PENDING,
    STAGE_PREVIOUS,
    STAGE_REVOKED,
)
from keyrot.inventory.model import (
    DisplacedReason,
    Inventory,
    InventoryEntry,
    KeyState,
    OpenAIListing,
    SecretInventory,
    SecretRecord,
    VersionRecord,
)
from keyrot.inventory.naming import ServiceAccountName
from keyrot.openai_admin.models import ProjectApiKey
from keyrot.secret_model import Promotion

# An account minted for a rotation may still be stored by an invocation this long after OpenAI created it.
ATTEMPT_BOUND_SECONDS = ROTATION_TIMEOUT_SECONDS + CLOCK_SKEW_SECONDS

_STAGE_RANK = {STAGE_CURRENT: 0, STAGE_PENDING: 1, STAGE_PREVIOUS: 2, STAGE_REVOKED: 3}


@dataclass
class _Principal:
    """A service account as OpenAI lists it, from the accounts list, the keys list, or both."""

    account_id: str
    name: str | None = None
    created_at: int | None = None
    keys: list[ProjectApiKey] = field(default_factory=list)


def classify(
    secrets: Sequence[SecretRecord],
    openai: OpenAIListing | None,
    *,
    environment: str,
    shared_environments: Collection[str] | None,
    now: datetime,
    grace_period_seconds: int,
    attempt_bound_seconds: int = ATTEMPT_BOUND_SECONDS,
) -> Inventory:
    """The state of every key. `shared_environments` None: not declared, every other keyrot environment is
    another environment's (the pre-declaration behaviour); a collection: only those are, the rest is unmanaged."""
    principals, user_keys = _principals(openai)
    keys_by_id = {key.id: key for key in openai.keys or ()} if openai is not None else {}
    claimed: set[str] = set()
    views: list[SecretInventory] = []
    problems: list[tuple[str, str]] = []
    for record in secrets:
        if record.problem:
            problems.append((record.name, record.problem))
        problems += [(record.name, v.problem) for v in record.versions.values() if v.problem]
        entries, promoted_at = _version_entries(
            record, principals, keys_by_id, openai is not None, environment, now, grace_period_seconds
        )
        for entry in entries:
            if entry.service_account_id and entry.problem is None:
                claimed.add(entry.service_account_id)
        views.append(SecretInventory(record, tuple(entries), promoted_at))
    records = {record.key_name: record for record in secrets}
    extra: dict[str, list[InventoryEntry]] = {}
    others: list[InventoryEntry] = []
    for principal in principals.values():
        if principal.account_id in claimed:
            others += _extra_keys(principal, views)
            continue
        for entry in _account_entries(principal, records, environment, shared_environments, now, attempt_bound_seconds):
            if entry.state in (KeyState.UNMANAGED, KeyState.OTHER_ENVIRONMENT):
                others.append(entry)
            else:
                extra.setdefault(entry.key_name or "", []).append(entry)
    others += [_user_key_entry(key) for key in user_keys]
    views = [replace(view, entries=view.entries + tuple(extra.get(view.key_name, ()))) for view in views]
    views.sort(key=lambda view: view.key_name)
    others.sort(key=lambda entry: (entry.state.value, entry.key_id or "", entry.service_account_id or ""))
    every = tuple(entry for view in views for entry in view.entries) + tuple(others)
    return Inventory(environment, now, tuple(views), every, tuple(problems))


def promotion_time(record: SecretRecord) -> datetime | None:
    """When the current version became current: its keyrot:promoted record, else its key's creation."""
    current = record.version_with(STAGE_CURRENT)
    meta = record.versions[current].key if current is not None else None
    return promoted_at(record.promotion, current, meta.created_at if meta else None)


def promoted_at(
    promotion: Promotion | None, current_version: str | None, current_created_at: datetime | None
) -> datetime | None:
    """The promotion record when it names the current version; else (a secret rotated before keyrot recorded
    promotions, or a record left by an attempt that never moved AWSCURRENT) the current key's creation."""
    if current_version is None:
        return None
    if promotion is not None and promotion.version_id == current_version:
        return promotion.at
    return current_created_at


# --- the versions' keys -------------------------------------------------------------------------------------------


def _version_entries(
    record: SecretRecord,
    principals: Mapping[str, _Principal],
    keys_by_id: Mapping[str, ProjectApiKey],
    listed_known: bool,
    environment: str,
    now: datetime,
    grace_period_seconds: int,
) -> tuple[list[InventoryEntry], datetime | None]:
    promoted_at = promotion_time(record)
    entries = []
    for version in sorted(record.versions.values(), key=_rank):
        meta = version.key
        if meta is None:
            continue  # an empty placeholder, or unreadable (reported as the secret's problem)
        principal = principals.get(meta.service_account_id)
        listed = (principal is not None or meta.key_id in keys_by_id) if listed_known else None
        expected = str(ServiceAccountName(environment, record.key_name, version.version_id))
        problem = None
        if principal is not None and principal.name is not None and principal.name != expected:
            problem = f"its value names service account {meta.service_account_id}, which is not keyrot's {expected!r}"
        listed_key = keys_by_id.get(meta.key_id)
        entry = InventoryEntry(
            state=KeyState.CURRENT,
            key_id=meta.key_id,
            service_account_id=meta.service_account_id,
            account_name=principal.name if principal else None,
            key_name=record.key_name,
            environment=environment,
            secret_arn=record.arn,
            version_id=version.version_id,
            token=version.version_id,
            stages=version.stages,
            listed=listed,
            created_at=meta.created_at,
            expires_at=meta.expires_at,
            last_used_at=_time(listed_key.last_used_at) if listed_key and listed_key.last_used_at else None,
            problem=problem,
            owner_type="service_account",
            owner_name=principal.name if principal else None,
        )
        entries.append(_version_state(entry, promoted_at, now, grace_period_seconds))
    return entries, promoted_at


def _version_state(
    entry: InventoryEntry, promoted_at: datetime | None, now: datetime, grace_period_seconds: int
) -> InventoryEntry:
    stages = set(entry.stages)
    if STAGE_CURRENT in stages:
        return replace(entry, state=KeyState.CURRENT, promoted_at=promoted_at)
    if STAGE_PENDING in stages:
        return replace(entry, state=KeyState.PENDING)
    retired_at = promoted_at if STAGE_PREVIOUS in stages else None
    if STAGE_REVOKED in stages:
        if entry.listed:
            return replace(
                entry, state=KeyState.DISPLACED, reason=DisplacedReason.REVOKED_BUT_LIVE, retired_at=retired_at
            )
        return replace(entry, state=KeyState.REVOKED, retired_at=retired_at)
    if STAGE_PREVIOUS in stages:
        in_grace = retired_at is not None and now < retired_at + timedelta(seconds=grace_period_seconds)
        return replace(entry, state=KeyState.PREVIOUS, retired_at=retired_at, in_grace=in_grace)
    if entry.listed is False or entry.listed is None:
        return replace(entry, state=KeyState.REVOKED)
    return replace(entry, state=KeyState.DISPLACED, reason=DisplacedReason.UNLABELLED)


def _rank(version: VersionRecord) -> tuple[int, str]:
    return min((_STAGE_RANK.get(stage, 9) for stage in version.stages), default=9), version.version_id


# --- what OpenAI lists that no version stores ---------------------------------------------------------------------


def _principals(openai: OpenAIListing | None) -> tuple[dict[str, _Principal], list[ProjectApiKey]]:
    principals: dict[str, _Principal] = {}
    user_keys: list[ProjectApiKey] = []
    if openai is None:
        return principals, user_keys
    for account in openai.accounts or ():
        principals[account.id] = _Principal(account.id, account.name, account.created_at)
    for key in openai.keys or ():
        if key.owner_type != "service_account" or not key.owner_id:
            user_keys.append(key)
            continue
        principal = principals.setdefault(key.owner_id, _Principal(key.owner_id, key.owner_name, key.created_at))
        principal.name = principal.name or key.owner_name
        principal.keys.append(key)
    return principals, user_keys


def _account_entries(
    principal: _Principal,
    records: Mapping[str, SecretRecord],
    environment: str,
    shared_environments: Collection[str] | None,
    now: datetime,
    attempt_bound_seconds: int,
) -> list[InventoryEntry]:
    name = ServiceAccountName.parse(principal.name or "")
    base = InventoryEntry(
        state=KeyState.UNMANAGED,
        service_account_id=principal.account_id,
        account_name=principal.name,
        key_name=name.key_name if name else None,
        environment=name.environment if name else None,
        token=name.token if name else None,
        listed=True,
        created_at=_time(principal.created_at) if principal.created_at is not None else None,
        owner_type="service_account",
        owner_name=principal.name,
    )
    entry = _account_state(base, name, records, environment, shared_environments, now, attempt_bound_seconds)
    if not principal.keys:
        return [entry]
    return [
        replace(
            entry,
            key_id=key.id,
            created_at=_time(key.created_at),
            last_used_at=_time(key.last_used_at) if key.last_used_at else None,
        )
        for key in principal.keys
    ]


def _account_state(
    entry: InventoryEntry,
    name: ServiceAccountName | None,
    records: Mapping[str, SecretRecord],
    environment: str,
    shared_environments: Collection[str] | None,
    now: datetime,
    attempt_bound_seconds: int,
) -> InventoryEntry:
    if name is None:
        return entry
    if name.environment != environment:
        if shared_environments is None or name.environment in shared_environments:
            return replace(entry, state=KeyState.OTHER_ENVIRONMENT)
        return replace(entry, problem=f"keyrot-named for environment {name.environment!r}, which is not declared")
    record = records.get(name.key_name)
    if record is None:
        return replace(entry, problem=f"keyrot-named for key {name.key_name!r}, which this environment does not manage")
    entry = replace(entry, secret_arn=record.arn)
    version = record.versions.get(name.token)
    if name.token == record.pending_version:
        return replace(entry, state=KeyState.ATTEMPT_IN_PROGRESS)
    if (record.problem and not record.versions) or (version is not None and version.key is None and version.problem):
        return replace(entry, state=KeyState.UNVERIFIED)
    created = entry.created_at
    if created is None or now - created < timedelta(seconds=attempt_bound_seconds):
        return replace(entry, state=KeyState.ATTEMPT_IN_PROGRESS)
    return replace(entry, state=KeyState.DISPLACED, reason=DisplacedReason.ABANDONED_ATTEMPT)


def _extra_keys(principal: _Principal, views: Iterable[SecretInventory]) -> list[InventoryEntry]:
    """Keys on a keyrot account other than the one its version stores: keyrot never adds keys to an account."""
    account = principal.account_id
    stored = {entry.key_id for view in views for entry in view.entries if entry.service_account_id == account}
    return [
        replace(
            _user_key_entry(key),
            problem=f"an extra key on service account {principal.account_id}, which keyrot never adds",
        )
        for key in principal.keys
        if key.id not in stored
    ]


def _user_key_entry(key: ProjectApiKey) -> InventoryEntry:
    return InventoryEntry(
        state=KeyState.UNMANAGED,
        key_id=key.id,
        service_account_id=key.owner_id if key.owner_type == "service_account" else None,
        account_name=key.owner_name if key.owner_type == "service_account" else None,
        listed=True,
        created_at=_time(key.created_at),
        last_used_at=_time(key.last_used_at) if key.last_used_at else None,
        owner_type=key.owner_type,
        owner_name=key.owner_name,
    )


def _time(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
