"""The stand-in's audit log: one event per mutating call, with OpenAI's actor shapes, filters and cursor paging.

Shapes follow the spec's `AuditLog` schema. Where the spec is silent the stand-in's choice is written here:
- Order: newest first (the spec's list example runs from the later `effective_at` to the earlier one).
- Actions taken with an admin key carry the organization's *default* project, as the spec's `project` field says,
  not the project acted on; console (session) actions carry the project acted on.
- The actor's `api_key.id` is the admin key's `key_...` id (whether OpenAI's "tracking id" equals it is unconfirmed).
- Admin-key creation and deletion exist in the spec only as the tenant-scoped types `tenant.admin_api_key.created`
  and `.deleted`, with no payload field; they are listed only with `tenant_only=true`, as the spec's `tenant_only`
  parameter says of tenant-scoped events.
- Deleting a service account records `service_account.deleted` only (no `api_key.deleted` for its keys).
- Audit logging off: OpenAI's answer is undocumented; the stand-in answers 403 with the message below and records
  nothing while it is off.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lab.openai_standin.protocol import ApiError, bool_param, cursor_page, many

AUDIT_LOG_DISABLED_MESSAGE = (
    "Audit logging is not enabled for this organization. An Organization Owner can enable it in the organization's "
    "Data controls settings."
)
# Tenant-scoped types, per the spec's `tenant_only` description: the `tenant.` family and the two role bindings.
_TENANT_SCOPED_EXTRA = frozenset({"role.bound_to_resource", "role.unbound_from_resource"})


def is_tenant_scoped(event_type: str) -> bool:
    return event_type.startswith("tenant.") or event_type in _TENANT_SCOPED_EXTRA


@dataclass(frozen=True)
class Actor:
    """Who acted: a console session of a user, or an API key (its id and its owning user or service account)."""

    kind: str  # "session" | "api_key"
    user_id: str | None = None
    email: str | None = None
    key_id: str | None = None
    key_type: str | None = None  # "user" | "service_account", for kind "api_key"
    service_account_id: str | None = None
    ip_address: str = "127.0.0.1"

    @classmethod
    def session(cls, user_id: str, email: str) -> Actor:
        return cls("session", user_id=user_id, email=email)

    @classmethod
    def user_key(cls, key_id: str, user_id: str, email: str) -> Actor:
        return cls("api_key", user_id=user_id, email=email, key_id=key_id, key_type="user")

    @classmethod
    def service_account_key(cls, key_id: str, service_account_id: str) -> Actor:
        return cls("api_key", key_id=key_id, key_type="service_account", service_account_id=service_account_id)

    @property
    def ids(self) -> frozenset[str]:
        """What `actor_ids[]` matches: a user id, a service account id or an API key's id."""
        return frozenset(value for value in (self.user_id, self.key_id, self.service_account_id) if value)

    def payload(self) -> dict[str, Any]:
        user = {"id": self.user_id, "email": self.email}
        if self.kind == "session":
            return {"type": "session", "session": {"user": user, "ip_address": self.ip_address}}
        detail: dict[str, Any] = {"id": self.key_id, "type": self.key_type}
        if self.key_type == "service_account":
            detail["service_account"] = {"id": self.service_account_id}
        else:
            detail["user"] = user
        return {"type": "api_key", "api_key": detail}


@dataclass(frozen=True)
class AuditEvent:
    id: str
    type: str
    effective_at: int
    seq: int
    actor: Actor | None
    project: tuple[str, str] | None  # (id, name); None: not scoped to a project
    resource_id: str | None  # what `resource_ids[]` matches
    details: Mapping[str, Any] | None = field(default=None)  # the payload under the type's key; None: the spec has none

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "type": self.type, "effective_at": self.effective_at}
        if self.project is not None:
            body["project"] = {"id": self.project[0], "name": self.project[1]}
        body["actor"] = self.actor.payload() if self.actor else None
        if self.details is not None:
            body[self.type] = dict(self.details)
        return body


class AuditLog:
    """Events in the order they happened. Thread-safe. `enabled` False: nothing is recorded and reads are refused."""

    def __init__(self, clock: Callable[[], float], token: Callable[[int], str]) -> None:
        self._clock = clock
        self._token = token
        self._lock = threading.Lock()
        self._events: list[AuditEvent] = []
        self.enabled = True

    def record(
        self,
        event_type: str,
        actor: Actor | None,
        *,
        project: tuple[str, str] | None,
        resource_id: str | None,
        details: Mapping[str, Any] | None,
    ) -> AuditEvent | None:
        with self._lock:
            if not self.enabled:
                return None
            moment = int(self._clock())
            day = datetime.datetime.fromtimestamp(moment, datetime.UTC).strftime("%Y%m%d")
            event = AuditEvent(
                f"audit_log-{self._token(16)}_{day}",
                event_type,
                moment,
                len(self._events) + 1,
                actor,
                project,
                resource_id,
                details,
            )
            self._events.append(event)
            return event

    @property
    def events(self) -> list[AuditEvent]:
        """Every event recorded, oldest first (tests read this; the API lists newest first)."""
        with self._lock:
            return list(self._events)

    def page(self, query: Mapping[str, list[str]]) -> dict[str, Any]:
        """GET /organization/audit_logs with the spec's filters and `after`/`before` paging, newest first."""
        if not self.enabled:
            raise ApiError(403, AUDIT_LOG_DISABLED_MESSAGE)
        tenant_only = bool_param(query, "tenant_only") or False
        types = set(many(query, "event_types"))
        if tenant_only and any(not is_tenant_scoped(name) for name in types):
            raise ApiError(400, "With 'tenant_only', every event type must be tenant-scoped.", param="event_types")
        bounds = _effective_at(query)
        projects, actors = set(many(query, "project_ids")), set(many(query, "actor_ids"))
        emails, resources = set(many(query, "actor_emails")), set(many(query, "resource_ids"))

        def selected(event: AuditEvent) -> bool:
            if is_tenant_scoped(event.type) != tenant_only:
                return False
            if types and event.type not in types:
                return False
            if not all(test(event.effective_at, bound) for test, bound in bounds):
                return False
            if projects and (event.project is None or event.project[0] not in projects):
                return False
            if actors and (event.actor is None or not actors & event.actor.ids):
                return False
            if emails and (event.actor is None or event.actor.email not in emails):
                return False
            return not resources or event.resource_id in resources

        ordered = sorted(self.events, key=lambda event: (event.effective_at, event.seq), reverse=True)
        hidden = {event.id for event in ordered if not selected(event)}
        return cursor_page([event.payload() for event in ordered], query, hidden=hidden)


_COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    "gt": lambda value, bound: value > bound,
    "gte": lambda value, bound: value >= bound,
    "lt": lambda value, bound: value < bound,
    "lte": lambda value, bound: value <= bound,
}


def _effective_at(query: Mapping[str, list[str]]) -> list[tuple[Callable[[int, int], bool], int]]:
    """`effective_at[gt|gte|lt|lte]=N` (deepObject, as openai-python sends it); any other key under it is a 400."""
    bounds = []
    for name, values in query.items():
        if not name.startswith("effective_at"):
            continue
        operator = name.removeprefix("effective_at[").removesuffix("]")
        if operator not in _COMPARISONS or not name.endswith("]"):
            raise ApiError(400, f"Invalid parameter '{name}': expected effective_at[gt|gte|lt|lte].", param=name)
        try:
            bounds.append((_COMPARISONS[operator], int(values[-1])))
        except ValueError:
            raise ApiError(400, f"Invalid value for '{name}': expected Unix seconds.", param=name) from None
    return bounds
