"""Drift between OpenAI and the secrets of one environment: the inventory's answer, grouped as `keyrot audit` shows it.

Every state comes from keyrot.inventory.classify (the same answer the monitor and the janitor get): this module only
groups it. An account for a rotation counts as in progress while its token is AWSPENDING or while it is younger
than the rotation function can live; after that it is an orphan (an abandoned attempt). Orphans (displaced keys and
abandoned attempts) and keys labelled revoked that OpenAI still lists are drift the janitor clears by revoking them.
`keyrot audit` groups the inventory keyrot.cli.inventory reads (`drift_of`); `find_drift` classifies secret records
handed over as a ledger (the older call, kept for its callers).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from keyrot.inventory import (
    DisplacedReason,
    Inventory,
    InventoryEntry,
    KeyState,
    OpenAIListing,
    ServiceAccountName,
    classify,
)
from keyrot.openai_admin import ProjectApiKey, ServiceAccount

if TYPE_CHECKING:
    from keyrot.monitor.ledger import Ledger


@dataclass(frozen=True)
class Orphan:
    """A service account keyrot named for this environment that no secret version accounts for."""

    project_id: str
    service_account_id: str
    name: str
    key_name: str
    token: str
    created_at: datetime
    key_ids: tuple[str, ...]


@dataclass(frozen=True)
class UnmanagedKey:
    project_id: str
    key_id: str
    name: str
    redacted_value: str
    owner_type: str
    owner_name: str | None
    created_at: datetime
    last_used_at: datetime | None
    owner_project_access: str | None


@dataclass(frozen=True)
class ManagedKeyIssue:
    """A key a secret refers to that is expired (past its backstop), missing at OpenAI, or not yet revoked."""

    key_name: str
    key_id: str
    role: str
    at: datetime | None = None  # expiry, or retirement for previous keys
    within_grace: bool = False


@dataclass
class Drift:
    orphans: list[Orphan] = field(default_factory=list)
    in_progress: list[Orphan] = field(default_factory=list)  # a rotation still under way: not drift
    unmanaged: list[UnmanagedKey] = field(default_factory=list)
    expired: list[ManagedKeyIssue] = field(default_factory=list)
    missing: list[ManagedKeyIssue] = field(default_factory=list)
    unrevoked: list[ManagedKeyIssue] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "orphans": len(self.orphans),
            "unmanaged_keys": len(self.unmanaged),
            "expired_keys": len(self.expired),
            "missing_keys": len(self.missing),
            "unrevoked_previous_keys": sum(1 for issue in self.unrevoked if not issue.within_grace),
            "malformed_secrets": len(self.problems),
        }

    @property
    def found(self) -> bool:
        return any(self.counts.values())

    @property
    def reported_key_ids(self) -> set[str]:
        """The key ids reported as drift of OpenAI's side: orphans' keys and unmanaged keys (what the monitor's
        findings report too: keyrot.monitor.attribution.reportable_keys)."""
        return {key_id for orphan in self.orphans for key_id in orphan.key_ids} | {k.key_id for k in self.unmanaged}


def find_drift(
    ledger: Ledger,
    accounts: Mapping[str, Iterable[ServiceAccount]],
    keys: Mapping[str, Iterable[ProjectApiKey]],
    *,
    environment: str,
    now: datetime,
    grace: timedelta,
    shared_environments: Collection[str] | None = None,
) -> Drift:
    """`accounts` and `keys` are OpenAI's inventory per project id. `shared_environments`: the environments declared
    to share the project (None: not declared, every other keyrot environment is excused)."""
    listed_accounts: list[ServiceAccount] = []
    project_of: dict[str, str] = {}
    for project, project_accounts in accounts.items():
        for account in project_accounts:
            listed_accounts.append(account)
            project_of[account.id] = project
    listed_keys: list[ProjectApiKey] = []
    key_project: dict[str, str] = {}
    for project, project_keys in keys.items():
        for key in project_keys:
            listed_keys.append(key)
            key_project[key.id] = project
            if key.owner_type == "service_account" and key.owner_id:
                project_of.setdefault(key.owner_id, project)
    inventory = classify(
        [secret.record() for secret in ledger.secrets],
        OpenAIListing.of(listed_accounts, listed_keys),
        environment=environment,
        shared_environments=shared_environments,
        now=now,
        grace_period_seconds=int(grace.total_seconds()),
    )
    return drift_of(inventory, listed_keys, project_of, key_project, problems=ledger.problems)


def drift_of(
    inventory: Inventory,
    keys: Iterable[ProjectApiKey],
    project_of: Mapping[str, str],
    key_project: Mapping[str, str],
    *,
    problems: Iterable[tuple[str, str]] = (),
) -> Drift:
    """Group an inventory as drift."""
    drift = Drift(problems=list(problems))
    by_id = {key.id: key for key in keys}
    orphans: dict[str, list[InventoryEntry]] = {}
    in_progress: dict[str, list[InventoryEntry]] = {}
    for entry in inventory.entries:
        if _is_orphan(entry, inventory.environment):
            orphans.setdefault(entry.service_account_id or "", []).append(entry)
        elif entry.state is KeyState.ATTEMPT_IN_PROGRESS:
            in_progress.setdefault(entry.service_account_id or "", []).append(entry)
        elif entry.state is KeyState.UNMANAGED and entry.key_id in by_id:
            drift.unmanaged.append(_unmanaged(by_id[entry.key_id], key_project.get(entry.key_id, "")))
    drift.orphans = [_orphan(group, project_of) for group in orphans.values()]
    drift.in_progress = [_orphan(group, project_of) for group in in_progress.values()]
    for secret in inventory.secrets:
        for entry in secret.entries:
            _managed_issue(drift, entry, inventory.now)
    return drift


def _is_orphan(entry: InventoryEntry, environment: str) -> bool:
    """A keyrot account of this environment that no version accounts for: an abandoned attempt, a displaced
    version's account, or one named for a key this environment does not manage."""
    if entry.state is KeyState.DISPLACED:
        return entry.reason is not DisplacedReason.REVOKED_BUT_LIVE
    if entry.state is not KeyState.UNMANAGED or entry.service_account_id is None:
        return False
    name = ServiceAccountName.parse(entry.account_name or "")
    return name is not None and name.environment == environment


def _managed_issue(drift: Drift, entry: InventoryEntry, now: datetime) -> None:
    role = {KeyState.CURRENT: "current", KeyState.PENDING: "pending", KeyState.PREVIOUS: "previous"}.get(entry.state)
    if role is not None and entry.key_id:
        if entry.expires_at is not None and entry.expires_at <= now:
            drift.expired.append(ManagedKeyIssue(entry.key_name or "", entry.key_id, role, entry.expires_at))
        elif entry.listed is False:
            drift.missing.append(ManagedKeyIssue(entry.key_name or "", entry.key_id, role))
    if entry.state is KeyState.PREVIOUS and entry.key_id:
        issue = ManagedKeyIssue(entry.key_name or "", entry.key_id, "previous", entry.retired_at, entry.in_grace)
        drift.unrevoked.append(issue)
    if entry.state is KeyState.DISPLACED and entry.reason is DisplacedReason.REVOKED_BUT_LIVE and entry.key_id:
        # labelled KEYROT_REVOKED, yet OpenAI still lists it: the label lied, it is drift until revoked again
        issue = ManagedKeyIssue(entry.key_name or "", entry.key_id, "revoked-but-live", entry.retired_at)
        drift.unrevoked.append(issue)


def _orphan(entries: list[InventoryEntry], project_of: Mapping[str, str]) -> Orphan:
    first = entries[0]
    name = ServiceAccountName.parse(first.account_name or "")
    account_id = first.service_account_id or ""
    created = min((e.created_at for e in entries if e.created_at), default=datetime.fromtimestamp(0, UTC))
    return Orphan(
        project_of.get(account_id, ""),
        account_id,
        first.account_name or "",
        name.key_name if name else "",
        name.token if name else "",
        created,
        tuple(sorted(e.key_id for e in entries if e.key_id)),
    )


def _unmanaged(key: ProjectApiKey, project_id: str) -> UnmanagedKey:
    return UnmanagedKey(
        project_id,
        key.id,
        key.name or "",
        key.redacted_value,
        key.owner_type,
        key.owner_name,
        _time(key.created_at),
        _time(key.last_used_at) if key.last_used_at else None,
        key.owner_project_access,
    )


def _time(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
