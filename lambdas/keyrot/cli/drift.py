"""Drift between OpenAI and the secrets of one environment: a pure function of the ledger and the inventory."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from keyrot.constants import STAGE_PENDING
from keyrot.monitor.attribution import is_foreign
from keyrot.monitor.ledger import KeyRole, Ledger
from keyrot.openai_admin import ProjectApiKey, ServiceAccount
from keyrot.rotation.naming import ServiceAccountName


@dataclass(frozen=True)
class Orphan:
    """A service account keyrot named for this environment that no secret version refers to."""

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
    in_progress: list[Orphan] = field(default_factory=list)  # named for a pending rotation: not drift
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


def find_drift(
    ledger: Ledger,
    accounts: Mapping[str, Iterable[ServiceAccount]],
    keys: Mapping[str, Iterable[ProjectApiKey]],
    *,
    environment: str,
    now: datetime,
    grace: timedelta,
) -> Drift:
    """`accounts` and `keys` are OpenAI's inventory per project id."""
    drift = Drift(problems=list(ledger.problems))
    referenced = ledger.service_account_ids
    pending_tokens = {
        version_id
        for secret in ledger.secrets
        for version_id, stages in secret.versions.items()
        if STAGE_PENDING in stages
    }
    keys_by_owner: dict[str, list[ProjectApiKey]] = {}
    listed_ids: set[str] = set()
    for project_keys in keys.values():
        for key in project_keys:
            listed_ids.add(key.id)
            if key.owner_type == "service_account" and key.owner_id:
                keys_by_owner.setdefault(key.owner_id, []).append(key)
    reported_owners: set[str] = set()
    for project_id, project_accounts in accounts.items():
        for account in project_accounts:
            name = ServiceAccountName.parse(account.name)
            if name is None or name.environment != environment or account.id in referenced:
                continue
            orphan = Orphan(
                project_id,
                account.id,
                account.name,
                name.key_name,
                name.token,
                _time(account.created_at),
                tuple(sorted(key.id for key in keys_by_owner.get(account.id, []))),
            )
            (drift.in_progress if name.token in pending_tokens else drift.orphans).append(orphan)
            reported_owners.add(account.id)
    for project_id, project_keys in keys.items():
        for key in project_keys:
            if ledger.lookup(key.id) is not None or is_foreign(key, environment) or key.owner_id in reported_owners:
                continue
            drift.unmanaged.append(
                UnmanagedKey(
                    project_id,
                    key.id,
                    key.name,
                    key.redacted_value,
                    key.owner_type,
                    key.owner_name,
                    _time(key.created_at),
                    _time(key.last_used_at) if key.last_used_at else None,
                    key.owner_project_access,
                )
            )
    _managed_issues(ledger, listed_ids, drift, now, grace)
    return drift


def _managed_issues(ledger: Ledger, listed_ids: set[str], drift: Drift, now: datetime, grace: timedelta) -> None:
    for secret in ledger.secrets:
        current = secret.current
        for role in (KeyRole.CURRENT, KeyRole.PENDING, KeyRole.PREVIOUS):
            meta = secret.keys.get(role)
            if meta is None:
                continue
            if meta.expires_at is not None and meta.expires_at <= now:
                drift.expired.append(ManagedKeyIssue(secret.key_name, meta.key_id, role.value, meta.expires_at))
            elif meta.key_id not in listed_ids:
                drift.missing.append(ManagedKeyIssue(secret.key_name, meta.key_id, role.value))
        previous = secret.previous
        if previous is not None:
            retired = current.created_at if current else None
            within = retired is not None and now - retired < grace
            drift.unrevoked.append(ManagedKeyIssue(secret.key_name, previous.key_id, "previous", retired, within))


def _time(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
