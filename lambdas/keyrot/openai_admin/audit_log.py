"""OpenAI's audit log, read incrementally: a cursor in, the events since it (oldest first) and the next cursor out.

Parsing is strict and never fatal. Each entry becomes one of:
- `AuditEvent`: a type keyrot models (keys, service accounts, projects, rate limits, admin keys), fully checked;
- `UnknownAuditEvent`: a well-formed entry of a type keyrot does not model (OpenAI has ~150);
- `MalformedAuditEvent`: anything else, with the reason (which field is wrong, never the field's value).
No text from an entry is kept unless it has the shape of what it claims to be (an id, an e-mail, a scope), so a key
pasted into a field cannot travel on through an event.

The cursor is time-based (`effective_at[gte]`, a filter the spec defines precisely), with the ids already delivered
at its boundary so nothing is delivered twice. OpenAI may list an event some time after its `effective_at`; a reader
that must not miss such late arrivals passes `lookback_seconds`, and the cursor then remembers the ids of that window.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from keyrot.openai_admin.errors import AuditLogUnavailableError, PermissionDeniedError
from keyrot.openai_admin.transport import ApiResponse
from keyrot.redaction import scrub

# The types keyrot reads, each with the payload fields it keeps. Admin-key events exist in the spec only as the
# tenant-scoped `tenant.admin_api_key.*` types, without a payload schema (read them with tenant_only=True).
MODELED_EVENT_TYPES = frozenset(
    {
        "api_key.created",
        "api_key.updated",
        "api_key.deleted",
        "service_account.created",
        "service_account.updated",
        "service_account.deleted",
        "project.created",
        "project.updated",
        "project.archived",
        "project.deleted",
        "rate_limit.updated",
        "rate_limit.deleted",
        "tenant.admin_api_key.created",
        "tenant.admin_api_key.updated",
        "tenant.admin_api_key.deleted",
    }
)
_PAYLOAD_OPTIONAL = frozenset(name for name in MODELED_EVENT_TYPES if name.startswith("tenant.admin_api_key."))
_AUDIT_ID = re.compile(r"^(?!sk-)[A-Za-z0-9_.:\-]{1,200}$")
_EVENT_TYPE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
_SCOPE = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
_EMAIL = re.compile(r"^[^@\s]{1,100}@[^@\s]{1,200}$")
_ROLE = re.compile(r"^[a-z_]{1,40}$")
_RATE_LIMIT_CHANGES = (
    "max_requests_per_1_minute",
    "max_tokens_per_1_minute",
    "max_images_per_1_minute",
    "max_audio_megabytes_per_1_minute",
    "max_requests_per_1_day",
    "batch_1_day_max_input_tokens",
)


class _Malformed(Exception):
    """Internal: an entry field is wrong; the message names the field, never its value."""


@dataclass(frozen=True)
class AuditActor:
    """Who acted: a console session (a user) or an API key (its tracking id and its user or service account)."""

    kind: str  # "session" | "api_key"
    user_id: str | None = None
    email: str | None = None
    api_key_id: str | None = None
    api_key_type: str | None = None  # "user" | "service_account"
    service_account_id: str | None = None

    @property
    def label(self) -> str:
        """How notifications name the actor: the user's e-mail, else the key or account id."""
        return self.email or self.api_key_id or self.service_account_id or self.user_id or "an unnamed actor"


@dataclass(frozen=True)
class AuditEvent:
    """An event of a type keyrot models. `resource_id` is the payload's id (key, account, project, rate limit)."""

    id: str
    type: str
    effective_at: int
    actor: AuditActor | None
    project_id: str | None  # admin-key actions carry the organization's default project (the spec says so)
    resource_id: str | None
    scopes: tuple[str, ...] | None = None  # api_key.created data.scopes / api_key.updated changes_requested.scopes
    role: str | None = None  # service_account.created/updated
    changes: tuple[tuple[str, int], ...] = ()  # rate_limit.updated changes_requested


@dataclass(frozen=True)
class UnknownAuditEvent:
    """A well-formed entry of a type keyrot does not model: kept so a reader can count or log it, never fatal."""

    id: str
    type: str
    effective_at: int
    actor: AuditActor | None
    project_id: str | None


@dataclass(frozen=True)
class MalformedAuditEvent:
    """An entry that could not be read. `position` is its index in the batch as OpenAI listed it."""

    position: int
    id: str | None
    reason: str


AuditEntry = AuditEvent | UnknownAuditEvent | MalformedAuditEvent


@dataclass(frozen=True)
class AuditCursor:
    """Where a reader stopped: the newest `effective_at` delivered, and the ids delivered within `lookback_seconds`
    of it, so the next read can start that far back without repeating them. Holds ids only.

    A read re-reads at most the window the cursor covers: widening the lookback takes effect from the next read,
    so nothing is delivered twice."""

    effective_at: int
    seen_ids: frozenset[str] = frozenset()
    lookback_seconds: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "effective_at": self.effective_at,
            "seen_ids": sorted(self.seen_ids),
            "lookback_seconds": self.lookback_seconds,
        }

    @classmethod
    def from_dict(cls, data: Any) -> AuditCursor:
        """A cursor stored by `to_dict`. Anything else is a ValueError naming the field, never echoing its value."""
        if not isinstance(data, Mapping):
            raise ValueError("audit cursor must be an object with effective_at and seen_ids")
        moment = data.get("effective_at")
        if not _is_unix_seconds(moment):
            raise ValueError("audit cursor field effective_at must be Unix seconds, from 0 to the end of the year 9999")
        seen = data.get("seen_ids", [])
        if not isinstance(seen, list) or not all(isinstance(i, str) and _is_id(i) for i in seen):
            raise ValueError("audit cursor field seen_ids must be a list of OpenAI ids")
        window = data.get("lookback_seconds", 0)
        if not isinstance(window, int) or isinstance(window, bool) or window < 0:
            raise ValueError("audit cursor field lookback_seconds must be a non-negative integer")
        return cls(moment, frozenset(seen), window)


@dataclass(frozen=True)
class AuditBatch:
    """What one read delivered, oldest first, and the cursor to pass to the next read."""

    entries: tuple[AuditEntry, ...]
    cursor: AuditCursor

    @property
    def events(self) -> tuple[AuditEvent, ...]:
        return tuple(entry for entry in self.entries if isinstance(entry, AuditEvent))

    @property
    def unknown(self) -> tuple[UnknownAuditEvent, ...]:
        return tuple(entry for entry in self.entries if isinstance(entry, UnknownAuditEvent))

    @property
    def malformed(self) -> tuple[MalformedAuditEvent, ...]:
        return tuple(entry for entry in self.entries if isinstance(entry, MalformedAuditEvent))


def parse_audit_entry(item: Any, position: int) -> AuditEntry:
    """One listed entry as an AuditEvent, UnknownAuditEvent or MalformedAuditEvent. Never raises."""
    entry_id = item.get("id") if isinstance(item, Mapping) and _is_id(item.get("id")) else None
    try:
        if not isinstance(item, Mapping):
            raise _Malformed("entry is not an object")
        if entry_id is None:
            raise _Malformed("field id is missing or not an OpenAI id")
        event_type = item.get("type")
        if not isinstance(event_type, str) or not _EVENT_TYPE.fullmatch(event_type):
            raise _Malformed("field type is missing or not an event type")
        moment = item.get("effective_at")
        if not _is_unix_seconds(moment):
            raise _Malformed("field effective_at is missing or not Unix seconds up to the year 9999")
        actor = _actor(item.get("actor"))
        project_id = _project_id(item.get("project"))
        if event_type not in MODELED_EVENT_TYPES:
            return UnknownAuditEvent(entry_id, event_type, moment, actor, project_id)
        return _event(item, entry_id, event_type, moment, actor, project_id)
    except _Malformed as exc:
        return MalformedAuditEvent(position, entry_id, str(exc))


def _event(
    item: Mapping[str, Any],
    entry_id: str,
    event_type: str,
    moment: int,
    actor: AuditActor | None,
    project_id: str | None,
) -> AuditEvent:
    payload = item.get(event_type)
    if payload is None and event_type in _PAYLOAD_OPTIONAL:
        return AuditEvent(entry_id, event_type, moment, actor, project_id, None)
    if not isinstance(payload, Mapping):
        raise _Malformed(f"the {event_type} payload is missing or not an object")
    resource = payload.get("id")
    if resource is not None and not _is_id(resource):
        raise _Malformed(f"field {event_type}.id is not an OpenAI id")
    scopes: tuple[str, ...] | None = None
    role: str | None = None
    changes: tuple[tuple[str, int], ...] = ()
    detail = payload.get("data") if event_type.endswith(".created") else payload.get("changes_requested")
    if detail is not None and not isinstance(detail, Mapping):
        raise _Malformed(f"the {event_type} details are not an object")
    detail = detail or {}
    if event_type.startswith("api_key.") and "scopes" in detail:
        raw = detail["scopes"]
        if not isinstance(raw, list) or not all(isinstance(s, str) and _SCOPE.fullmatch(s) and _clean(s) for s in raw):
            raise _Malformed(f"field {event_type} scopes is not a list of scope names")
        scopes = tuple(raw)
    if event_type.startswith("service_account.") and "role" in detail:
        if not isinstance(detail["role"], str) or not _ROLE.fullmatch(detail["role"]):
            raise _Malformed(f"field {event_type} role is not a role name")
        role = detail["role"]
    if event_type == "rate_limit.updated":
        for name in _RATE_LIMIT_CHANGES:
            value = detail.get(name)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise _Malformed(f"field rate_limit.updated {name} is not an integer")
            changes += ((name, value),)
    return AuditEvent(entry_id, event_type, moment, actor, project_id, resource, scopes, role, changes)


def _actor(raw: Any) -> AuditActor | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or raw.get("type") not in ("session", "api_key"):
        raise _Malformed("field actor is not a session or api_key actor")
    kind = raw["type"]
    detail = raw.get(kind)
    if not isinstance(detail, Mapping):
        raise _Malformed(f"field actor.{kind} is missing or not an object")
    user = detail.get("user")
    user = user if isinstance(user, Mapping) else {}
    user_id, email = _opt_id(user.get("id"), "actor user id"), _opt_email(user.get("email"))
    if kind == "session":
        return AuditActor("session", user_id=user_id, email=email)
    key_type = detail.get("type")
    if key_type is not None and key_type not in ("user", "service_account"):
        raise _Malformed("field actor.api_key.type is not user or service_account")
    account = detail.get("service_account")
    account_id = _opt_id(account.get("id"), "actor service account id") if isinstance(account, Mapping) else None
    return AuditActor(
        "api_key",
        user_id=user_id,
        email=email,
        api_key_id=_opt_id(detail.get("id"), "actor api_key id"),
        api_key_type=key_type,
        service_account_id=account_id,
    )


def _project_id(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise _Malformed("field project is not an object")
    return _opt_id(raw.get("id"), "project id")


def _opt_id(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not _is_id(value):
        raise _Malformed(f"field {what} is not an OpenAI id")
    return str(value)


def _opt_email(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _EMAIL.fullmatch(value) or not _clean(value):
        raise _Malformed("field actor email is not an e-mail address")
    return value


LATEST_UNIX_SECONDS = 253_402_300_799  # 9999-12-31 23:59:59 UTC: the last moment Python's datetime can show


def _is_unix_seconds(value: Any) -> TypeGuard[int]:
    """A moment any datetime can represent: an int (not a bool) from the epoch to the end of the year 9999."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= LATEST_UNIX_SECONDS


def _is_id(value: Any) -> bool:
    """An id as the audit log spells them: key_..., user-..., audit_log-..._20240101, rl-gpt-4.1 (model names have
    dots), ChatGPT connector ids with colons; never a key shape anywhere in it."""
    return isinstance(value, str) and bool(_AUDIT_ID.fullmatch(value)) and _clean(value)


def _clean(text: str) -> bool:
    """No key shape anywhere in it (an id or e-mail with a key inside is not kept)."""
    return scrub(text) == text


class AuditLogCalls:
    """The audit-log calls of OpenAIAdminClient (which provides `_call` and `_iter_list`)."""

    def _call(self, method: str, path: str, operation: str, **kwargs: Any) -> ApiResponse:
        raise NotImplementedError

    def _iter_list(self, path: str, operation: str, params: Mapping[str, Any]) -> Iterator[Any]:
        raise NotImplementedError

    def check_audit_log_access(self) -> None:
        """Raise AuditLogUnavailableError unless the audit log can be read (logging on, admin key allowed)."""
        try:
            self._call("GET", "/organization/audit_logs", "read audit log", params={"limit": 1})
        except PermissionDeniedError as exc:
            if exc.status == 403:
                raise _unavailable(exc) from exc
            raise

    def read_audit_log(
        self,
        cursor: AuditCursor | None = None,
        *,
        since: int | None = None,
        event_types: Iterable[str] = (),
        project_ids: Iterable[str] = (),
        actor_ids: Iterable[str] = (),
        resource_ids: Iterable[str] = (),
        tenant_only: bool = False,
        lookback_seconds: int = 0,
    ) -> AuditBatch:
        """Every entry since `cursor` (or, on a first read, with effective_at >= `since`), oldest first.

        A well-formed response with bad entries still succeeds: they come back as MalformedAuditEvent. Filters are
        the spec's; note that actions taken with admin keys are filed under the organization's default project, so
        `project_ids` would hide them. Admin-key events are tenant-scoped: read them with `tenant_only=True`.
        """
        if cursor is None and since is None:
            raise ValueError("read_audit_log needs a cursor, or `since` (Unix seconds) for a first read")
        if since is not None and not _is_unix_seconds(since):
            raise ValueError("since must be Unix seconds, from 0 to the end of the year 9999")
        if not isinstance(lookback_seconds, int) or isinstance(lookback_seconds, bool) or lookback_seconds < 0:
            raise ValueError("lookback_seconds must be a non-negative integer")
        origin = cursor or AuditCursor(since or 0)  # a first read starts at `since` and covers nothing before it
        start = max(0, origin.effective_at - min(lookback_seconds, origin.lookback_seconds))
        params: dict[str, Any] = {"effective_at[gte]": start}
        for name, values, check in (
            ("event_types[]", event_types, _EVENT_TYPE.fullmatch),
            ("project_ids[]", project_ids, _is_id),
            ("actor_ids[]", actor_ids, _is_id),
            ("resource_ids[]", resource_ids, _is_id),
        ):
            listed = [values] if isinstance(values, str) else list(values)
            if not all(isinstance(value, str) and check(value) for value in listed):
                raise ValueError(f"{name.removesuffix('[]')} must be a list of {name.split('_')[0]} ids or names")
            if listed:
                params[name] = listed
        if tenant_only:
            params["tenant_only"] = True
        try:
            items = list(self._iter_list("/organization/audit_logs", "read audit log", params))
        except PermissionDeniedError as exc:
            if exc.status == 403:
                raise _unavailable(exc) from exc
            raise
        return _batch(items, origin, lookback_seconds)


def _batch(items: list[Any], cursor: AuditCursor, lookback_seconds: int) -> AuditBatch:
    """Parse the newest-first listing into an oldest-first batch without what the cursor already delivered.

    The listing started at `cursor.effective_at - min(lookback, cursor.lookback_seconds)`. The next cursor covers a
    window of the requested lookback, but never further back than that start: within it, every id delivered so far
    was listed now, so the next read can start there without repeating anything."""
    parsed = [parse_audit_entry(item, position) for position, item in enumerate(items)]
    fresh = [entry for entry in reversed(parsed) if entry.id is None or entry.id not in cursor.seen_ids]
    timed = [entry for entry in parsed if not isinstance(entry, MalformedAuditEvent)]
    newest = max([cursor.effective_at, *(entry.effective_at for entry in timed)])
    listed_back = newest - cursor.effective_at + min(lookback_seconds, cursor.lookback_seconds)
    window = min(lookback_seconds, listed_back)
    kept = {entry.id for entry in timed if entry.effective_at >= newest - window}
    # A malformed entry has no trustworthy time: remember its id too, so a re-read does not deliver it again.
    kept |= {entry.id for entry in parsed if isinstance(entry, MalformedAuditEvent) and entry.id is not None}
    if newest == cursor.effective_at:
        kept |= cursor.seen_ids  # nothing newer: what was delivered at the boundary stays delivered
    return AuditBatch(tuple(fresh), AuditCursor(newest, frozenset(kept), window))


def _unavailable(exc: PermissionDeniedError) -> AuditLogUnavailableError:
    return AuditLogUnavailableError(
        f"{exc} (audit logging may be off: an organization owner turns it on in the organization's Data controls "
        "settings; or the admin key may not read the audit log)",
        status=exc.status,
        code=exc.code,
        error_type=exc.error_type,
        request_id=exc.request_id,
    )
