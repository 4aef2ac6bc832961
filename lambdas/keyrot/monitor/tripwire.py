"""The tripwire: which audit-log events on-call must hear about, decided from the events alone (no I/O here).

On-call is told when, by anyone but keyrot's own admin key (see keyrot_actors.py):
- a key or a service account is created in the environment's project;
- an admin key is created or deleted (tenant-scoped events, which carry no key id: the spec's gap);
- a service account (or key) keyrot manages for the environment is deleted.

What counts as "in the project": a person's console action names the project it acted on; an action taken with an
admin key is filed under the organization's default project (the spec says so), so for those the key is looked up in
the project (`Lookups.key`), and a keyless account in its accounts (`Lookups.account`).

Never judged, and counted by reason instead: malformed entries and types keyrot does not read (`skipped`), events
of other projects (`elsewhere`), API-key actions while one of keyrot's admin key ids is unknown (`unverified`: they
could be keyrot's own), keys minted by another keyrot environment declared to share the project.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from keyrot.inventory.naming import ServiceAccountName
from keyrot.monitor.keyrot_actors import KeyrotActors
from keyrot.openai_admin import AuditActor, AuditEvent, MalformedAuditEvent, ProjectApiKey, UnknownAuditEvent
from keyrot.openai_admin.audit_log import AuditEntry

KEY_EVENTS = (
    "api_key.created",
    "api_key.updated",
    "api_key.deleted",
    "service_account.created",
    "service_account.updated",
    "service_account.deleted",
)
ADMIN_KEY_EVENTS = ("tenant.admin_api_key.created", "tenant.admin_api_key.deleted")


class TripwireKind(enum.Enum):
    KEY_CREATED = "key-created"
    ACCOUNT_CREATED = "account-created"
    ADMIN_KEY_CREATED = "admin-key-created"
    ADMIN_KEY_DELETED = "admin-key-deleted"
    MANAGED_DELETED = "managed-deleted"


@dataclass(frozen=True)
class ManagedKey:
    """A key keyrot holds for the environment (a labelled version's), by its key and service account ids."""

    key_name: str
    role: str  # the label it holds: current, pending or previous
    key_id: str
    service_account_id: str


@dataclass(frozen=True)
class TripwireFinding:
    kind: TripwireKind
    event_id: str
    at: int  # the event's effective_at
    actor: str  # who, as notifications name them (an e-mail or an id, never a value)
    resource_id: str | None  # the key, account or admin key (None: OpenAI did not say)
    key: ProjectApiKey | None = None  # KEY_CREATED: the key as the project lists it now (None: gone already)
    managed: ManagedKey | None = None  # MANAGED_DELETED: what keyrot lost


@dataclass
class Judgement:
    findings: list[TripwireFinding] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # "malformed: <reason>" / "unknown type <type>" -> count
    elsewhere: int = 0  # events of other projects
    unverified: int = 0  # API-key actions not judged: one of keyrot's admin key ids is unknown
    shared: int = 0  # keys minted by another keyrot environment declared to share the project


@dataclass(frozen=True)
class Lookups:
    """What the events alone do not say, answered by the caller (the key inventory, or OpenAI)."""

    key: Callable[[str], ProjectApiKey | None]  # the project's key with this id, as listed now (None: not there)
    account: Callable[[str], bool | None]  # whether the project has this (keyless) account (None: cannot tell)


def actor_label(actor: AuditActor | None) -> str:
    """The actor as on-call reads it: `alice@example.com (console)`, `API key key_abc (alice@example.com)`."""
    if actor is None:
        return "an actor OpenAI did not name"
    if actor.kind == "session":
        return f"{actor.email or actor.user_id or 'an unnamed user'} (console)"
    owner = actor.email or actor.service_account_id or actor.user_id
    key = f"API key {actor.api_key_id}" if actor.api_key_id else "an API key"
    return f"{key} ({owner})" if owner else key


def judge(
    entries: Iterable[AuditEntry],
    *,
    project_id: str,
    environment: str,
    shared_environments: tuple[str, ...] | None,
    actors: KeyrotActors,
    managed: Iterable[ManagedKey],
    lookups: Lookups,
) -> Judgement:
    """The findings of `entries` (both streams, oldest first), and what was not judged and why."""
    result = Judgement()
    held = list(managed)
    by_account = {key.service_account_id: key for key in held}
    by_key = {key.key_id: key for key in held}
    for entry in entries:
        if isinstance(entry, MalformedAuditEvent):
            result.skipped[f"malformed: {entry.reason}"] += 1
            continue
        if isinstance(entry, UnknownAuditEvent) or entry.type not in (*KEY_EVENTS, *ADMIN_KEY_EVENTS):
            result.skipped[f"unknown type {entry.type}"] += 1
            continue
        actor = entry.actor
        if actor is not None and actor.kind == "api_key" and actors.acted(actor.api_key_id):
            continue  # keyrot itself
        if actor is not None and actor.kind == "api_key" and not actors.complete:
            result.unverified += 1
            continue
        finding = _finding(entry, result, project_id, environment, shared_environments, by_account, by_key, lookups)
        if finding is not None:
            result.findings.append(finding)
    created_keys_of = {f.key.owner_id for f in result.findings if f.kind is TripwireKind.KEY_CREATED and f.key}
    result.findings = [
        f for f in result.findings if not (f.kind is TripwireKind.ACCOUNT_CREATED and f.resource_id in created_keys_of)
    ]
    return result


def _finding(
    event: AuditEvent,
    result: Judgement,
    project_id: str,
    environment: str,
    shared_environments: tuple[str, ...] | None,
    by_account: Mapping[str, ManagedKey],
    by_key: Mapping[str, ManagedKey],
    lookups: Lookups,
) -> TripwireFinding | None:
    label = actor_label(event.actor)
    resource = event.resource_id
    session = event.actor is not None and event.actor.kind == "session"
    if event.type in ADMIN_KEY_EVENTS:
        kind = TripwireKind.ADMIN_KEY_CREATED if event.type.endswith("created") else TripwireKind.ADMIN_KEY_DELETED
        return TripwireFinding(kind, event.id, event.effective_at, label, resource)
    if event.type in ("service_account.deleted", "api_key.deleted"):
        lost = (by_account if event.type.startswith("service_account") else by_key).get(resource or "")
        if lost is None:
            return None  # not keyrot's: the inventory drops it, nobody needs telling
        return TripwireFinding(TripwireKind.MANAGED_DELETED, event.id, event.effective_at, label, resource, None, lost)
    if event.type not in ("api_key.created", "service_account.created") or resource is None:
        return None  # updates change nothing on-call must hear about (the inventory reads the key again)
    if session and event.project_id != project_id:
        result.elsewhere += 1
        return None
    if event.type == "api_key.created":
        key = lookups.key(resource)
        if key is None and not session:
            result.elsewhere += 1  # an admin-key action on a key this project does not have (now)
            return None
        if key is not None and _shared(key, environment, shared_environments):
            result.shared += 1
            return None
        return TripwireFinding(TripwireKind.KEY_CREATED, event.id, event.effective_at, label, resource, key)
    if not session and lookups.account(resource) is not True:
        result.elsewhere += 1
        return None
    return TripwireFinding(TripwireKind.ACCOUNT_CREATED, event.id, event.effective_at, label, resource)


def _shared(key: ProjectApiKey, environment: str, shared_environments: tuple[str, ...] | None) -> bool:
    """A key minted (by name) by another keyrot environment the deployment declares to share the project."""
    if key.owner_type != "service_account" or not shared_environments:
        return False
    name = ServiceAccountName.parse(key.owner_name or "")
    return name is not None and name.environment != environment and name.environment in shared_environments
