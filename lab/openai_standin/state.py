"""The stand-in's model of one OpenAI organization: admin keys, projects, service accounts, keys, usage, costs,
guardrails and the audit log. Mutations made for a caller (`actor`) are recorded in the audit log."""

from __future__ import annotations

import calendar
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from lab.openai_standin.audit import Actor, AuditEvent, AuditLog
from lab.openai_standin.guardrails import ProjectGuardrails, rate_limit_changes, spend_alert_fields
from lab.openai_standin.protocol import ApiError

# The stand-in's own names for what an admin key may do (the spec gives admin keys no scopes). A key without one is
# refused with OpenAI's missing-scope answer, so tests can model a narrowed admin key.
ADMIN_SCOPES = frozenset({"api.management.read", "api.management.write", "api.usage.read", "api.audit_log.read"})
OWNER_USER_ID = "user_standinowner"
OWNER_EMAIL = "owner@example.com"
OWNER_NAME = "Org Owner"


def _token(length: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_id(prefix: str) -> str:
    return f"{prefix}{_token(20)}"


class IssuedSecrets:
    """Every secret any stand-in in this process has issued (admin keys and minted keys), for leak checks.

    Values are never removed: a key from an earlier test is still key material if it shows up later.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._lengths: frozenset[int] = frozenset()

    def add(self, value: str) -> None:
        if not value.startswith("sk-"):
            raise ValueError("the stand-in issues only sk- keys; found_in() relies on that prefix")
        with self._lock:
            self._values.add(value)
            if len(value) not in self._lengths:
                self._lengths = self._lengths | {len(value)}

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def __len__(self) -> int:
        return len(self._values)

    def found_in(self, text: str) -> list[str]:
        """The issued secrets that occur in `text`, in order of first appearance. Every one starts with "sk-"."""
        found: list[str] = []
        lengths = self._lengths
        position = text.find("sk-")
        while position != -1:
            for length in lengths:
                candidate = text[position : position + length]
                if candidate in self._values and candidate not in found:
                    found.append(candidate)
            position = text.find("sk-", position + 3)
        return found


# Process-wide: the hygiene plugin (tests/support/hygiene.py) fails any test whose output holds one of these.
ISSUED_SECRETS = IssuedSecrets()


class ManualClock:
    """A clock tests move by hand. Unix seconds as float."""

    def __init__(self, start: float | None = None) -> None:
        self._now = float(start if start is not None else time.time())
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, moment: float) -> None:
        with self._lock:
            self._now = float(moment)


@dataclass
class AdminKey:
    id: str
    value: str = field(repr=False)
    name: str
    created_at: int
    scopes: frozenset[str] = ADMIN_SCOPES
    last_used_at: int | None = None
    revoked: bool = False  # deleted through the API or revoked out of band: no longer authenticates or lists
    expires_at: int | None = None
    owner_id: str = OWNER_USER_ID  # admin keys belong to an organization owner (the spec: owner.type "user")
    owner_email: str = OWNER_EMAIL
    owner_name: str = OWNER_NAME

    @property
    def actor(self) -> Actor:
        return Actor.user_key(self.id, self.owner_id, self.owner_email)


@dataclass
class Project:
    id: str
    name: str
    created_at: int
    archived: bool = False


@dataclass
class ServiceAccount:
    id: str
    project_id: str
    name: str
    role: str
    created_at: int
    deleted_at: float | None = None


@dataclass
class ApiKey:
    id: str
    value: str = field(repr=False)
    name: str
    project_id: str
    created_at: int
    owner_type: str  # "user" | "service_account"
    owner_id: str
    owner_name: str
    owner_email: str | None = None
    expires_at: int | None = None
    last_used_at: int | None = None
    revoked_at: float | None = None  # the moment the key stops authenticating
    deleted: bool = False  # gone from listings
    owner_project_access: str = "active"
    restriction: str | None = None  # when set, the key authenticates but every model call is refused with this
    scopes: frozenset[str] | None = None  # None: unrestricted; else model endpoints need their scope in here


@dataclass
class UsageRecord:
    kind: str
    at: int
    visible_at: float
    project_id: str
    api_key_id: str | None
    user_id: str | None
    model: str
    metrics: dict[str, int]
    batch: bool = False


@dataclass
class CostRecord:
    at: int
    visible_at: float
    project_id: str
    api_key_id: str | None
    line_item: str
    usd: float


@dataclass(frozen=True)
class Principal:
    kind: str  # "admin" | "project" | "invalid" | "none"
    admin: AdminKey | None = None
    key: ApiKey | None = None


class OrganizationState:
    """Thread-safe state. Test helpers (add_*, record_*) shape the world; the server reads and mutates it."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        *,
        revocation_delay_seconds: float = 0.0,
        activation_delay_seconds: float = 0.0,
    ) -> None:
        self.clock = clock
        self.revocation_delay_seconds = revocation_delay_seconds
        self.activation_delay_seconds = activation_delay_seconds
        self.lock = threading.RLock()
        self.admin_keys: dict[str, AdminKey] = {}
        self.projects: dict[str, Project] = {}
        self.service_accounts: dict[str, ServiceAccount] = {}
        self.keys: dict[str, ApiKey] = {}
        self._keys_by_value: dict[str, str] = {}
        self.usage: list[UsageRecord] = []
        self.costs: list[CostRecord] = []
        self.minted_values: list[str] = []  # every secret this stand-in ever issued, for leak checks
        self.audit = AuditLog(clock, _token)
        # Every organization has a Default project; the spec files admin-key actions under it in the audit log. It is
        # not in `projects` (so listings stay what tests shaped), only named in events.
        self.default_project = (new_id("proj_"), "Default project")
        self.guardrail_models: tuple[str, ...] = ()  # the models a project has rate limits for (set by the server)
        self.guardrails: dict[str, ProjectGuardrails] = {}
        # None: any scope string is accepted on key creation (the spec lists none); a set: others are a 400.
        self.known_scopes: frozenset[str] | None = None

    def now(self) -> int:
        return int(self.clock())

    # --- test helpers ---------------------------------------------------------------------------

    def add_admin_key(self, name: str = "keyrot-admin", scopes: Iterable[str] = ADMIN_SCOPES) -> str:
        """An admin key an organization owner made in the console (recorded as such). Returns its value."""
        owner = Actor.session(OWNER_USER_ID, OWNER_EMAIL)
        return self.create_admin_key(name, expires_in=None, actor=owner, scopes=scopes).value

    def create_admin_key(
        self, name: str, *, expires_in: int | None, actor: Actor, scopes: Iterable[str] = ADMIN_SCOPES
    ) -> AdminKey:
        """A new admin key owned by the acting user (an admin key made with an admin key has the same owner)."""
        with self.lock:
            value = f"sk-admin-standin-{_token(40)}"
            now = self.now()
            key = AdminKey(new_id("key_"), value, name, now, frozenset(scopes))
            key.expires_at = now + expires_in if expires_in is not None else None
            key.owner_id, key.owner_email = actor.user_id or OWNER_USER_ID, actor.email or OWNER_EMAIL
            self.admin_keys[value] = key
            self.minted_values.append(value)
            ISSUED_SECRETS.add(value)
            self.audit.record("tenant.admin_api_key.created", actor, project=None, resource_id=key.id, details=None)
            return key

    def delete_admin_key(self, key: AdminKey, *, actor: Actor) -> None:
        with self.lock:
            key.revoked = True
            self.audit.record("tenant.admin_api_key.deleted", actor, project=None, resource_id=key.id, details=None)

    def admin_key_by_id(self, key_id: str) -> AdminKey | None:
        with self.lock:
            return next((key for key in self.admin_keys.values() if key.id == key_id and not key.revoked), None)

    def revoke_admin_key(self, value: str) -> None:
        """Revoke an admin key out of band (no audit event): it stops authenticating at once."""
        with self.lock:
            self.admin_keys[value].revoked = True

    def add_project(
        self, project_id: str | None = None, name: str = "keyrot test project", archived: bool = False
    ) -> str:
        with self.lock:
            project = Project(project_id or new_id("proj_"), name, self.now(), archived)
            self.projects[project.id] = project
            return project.id

    def add_user_key(
        self,
        project_id: str,
        name: str = "hand-made key",
        email: str = "dev@example.com",
        *,
        user_id: str | None = None,
    ) -> tuple[str, str]:
        """A key some human created in the dashboard: keyrot did not mint it. Returns (key id, value).

        Recorded in the audit log as `api_key.created` by that user's console session."""
        with self.lock:
            owner = user_id or new_id("user_")
            key = self._new_key(project_id, name, "user", owner, "A Developer", prefix="sk-proj-standin-")
            key.owner_email = email
            self.record("api_key.created", Actor.session(key.owner_id, email), project_id, key.id, {"id": key.id})
            return key.id, key.value

    def record_usage(
        self,
        api_key_id: str | None,
        kind: str = "completions",
        *,
        at: float | None = None,
        arrives_after_seconds: float = 0.0,
        project_id: str | None = None,
        model: str = "gpt-4o-mini",
        user_id: str | None = None,
        **metrics: int,
    ) -> None:
        """Record usage by a key. `arrives_after_seconds` delays its visibility in the Usage API (late buckets)."""
        with self.lock:
            moment = int(self.clock() if at is None else at)
            project = project_id or (self.keys[api_key_id].project_id if api_key_id in self.keys else None)
            if project is None:
                raise ValueError("record_usage needs project_id for a key the stand-in does not know")
            metrics.setdefault("num_model_requests", 1)
            self.usage.append(
                UsageRecord(
                    kind, moment, self.clock() + arrives_after_seconds, project, api_key_id, user_id, model, metrics
                )
            )

    def record_cost(
        self,
        api_key_id: str | None,
        usd: float,
        *,
        at: float | None = None,
        project_id: str | None = None,
        line_item: str = "gpt-4o-mini, input",
        arrives_after_seconds: float = 0.0,
    ) -> None:
        with self.lock:
            project = project_id or (self.keys[api_key_id].project_id if api_key_id in self.keys else None)
            if project is None:
                raise ValueError("record_cost needs project_id for a key the stand-in does not know")
            moment = int(self.clock() if at is None else at)
            self.costs.append(
                CostRecord(moment, self.clock() + arrives_after_seconds, project, api_key_id, line_item, usd)
            )

    def live_service_accounts(self, project_id: str | None = None) -> list[ServiceAccount]:
        with self.lock:
            return [
                account
                for account in self.service_accounts.values()
                if account.deleted_at is None and (project_id is None or account.project_id == project_id)
            ]

    def key_is_live(self, key_id: str) -> bool:
        with self.lock:
            key = self.keys.get(key_id)
            return key is not None and self._authenticates(key)

    def guardrails_for(self, project_id: str) -> ProjectGuardrails:
        with self.lock:
            if project_id not in self.guardrails:
                self.guardrails[project_id] = ProjectGuardrails.for_models(self.guardrail_models)
            return self.guardrails[project_id]

    def update_rate_limit(self, project_id: str, rate_limit_id: str, body: Any, *, actor: Actor) -> dict[str, Any]:
        """Apply a `ProjectRateLimitUpdateRequest` (checked against the organization's maxima; a refusal changes
        nothing) and record `rate_limit.updated` with the changes requested. Returns the updated object."""
        with self.lock:
            limit = self.guardrails_for(project_id).rate_limits.get(rate_limit_id)
            if limit is None:
                raise ApiError(404, f"No such rate limit: {rate_limit_id}")
            changes = rate_limit_changes(limit, body)
            limit.values.update(changes)
            details = {"id": limit.id, "changes_requested": changes}
            self.record("rate_limit.updated", actor, project_id, limit.id, details)
            return limit.payload()

    def create_spend_alert(self, project_id: str, body: Any) -> tuple[str, dict[str, Any]]:
        fields = spend_alert_fields(body)
        with self.lock:
            alert_id = new_id("alert_")
            self.guardrails_for(project_id).spend_alerts[alert_id] = fields
            return alert_id, fields

    def month_to_date_cents(self, project_id: str) -> int:
        """The project's cost records since the start of the current UTC month, in cents (the spend-limit unit)."""
        with self.lock:
            now = self.clock()
            month = time.gmtime(now)
            start = calendar.timegm((month.tm_year, month.tm_mon, 1, 0, 0, 0))
            dollars = sum(c.usd for c in self.costs if c.project_id == project_id and start <= c.at <= now)
            return round(dollars * 100)

    # --- the audit log ----------------------------------------------------------------------------

    def record(
        self,
        event_type: str,
        actor: Actor | None,
        project_id: str | None,
        resource_id: str | None,
        details: dict[str, Any] | None,
    ) -> AuditEvent | None:
        """Record an event for `actor` (None: a test shaping the world, which OpenAI never sees: not recorded)."""
        if actor is None:
            return None
        return self.audit.record(
            event_type, actor, project=self._event_project(actor, project_id), resource_id=resource_id, details=details
        )

    def _event_project(self, actor: Actor, project_id: str | None) -> tuple[str, str] | None:
        if project_id is None:
            return None
        if actor.kind == "api_key" and actor.key_type == "user" and self._is_admin_key_id(actor.key_id):
            return self.default_project  # the spec: admin-key actions are associated with the default project
        project = self.projects.get(project_id)
        return (project_id, project.name if project else project_id)

    def _is_admin_key_id(self, key_id: str | None) -> bool:
        return any(key.id == key_id for key in self.admin_keys.values())

    # --- behaviour used by the server -----------------------------------------------------------

    def authenticate(self, bearer: str | None) -> Principal:
        with self.lock:
            if not bearer:
                return Principal("none")
            admin = self.admin_keys.get(bearer)
            if admin is not None:
                if admin.revoked or (admin.expires_at is not None and self.clock() >= admin.expires_at):
                    return Principal("invalid")
                admin.last_used_at = self.now()
                return Principal("admin", admin=admin)
            key_id = self._keys_by_value.get(bearer)
            key = self.keys.get(key_id) if key_id else None
            if key is None or not self._authenticates(key):
                return Principal("invalid")
            key.last_used_at = self.now()
            return Principal("project", key=key)

    def create_service_account(
        self, project_id: str, name: str, *, with_key: bool, expires_in: int | None, actor: Actor | None = None
    ) -> tuple[ServiceAccount, ApiKey | None]:
        with self.lock:
            account = ServiceAccount(
                new_id("svc_acct_"), project_id, name, "member" if with_key else "none", self.now()
            )
            self.service_accounts[account.id] = account
            details = {"id": account.id, "data": {"role": account.role}}
            self.record("service_account.created", actor, project_id, account.id, details)
            key = None
            if with_key:
                key = self._new_key(
                    project_id, "Secret Key", "service_account", account.id, name, prefix="sk-svcacct-standin-"
                )
                key.expires_at = self.now() + expires_in if expires_in else None
                self.record("api_key.created", actor, project_id, key.id, {"id": key.id})
            return account, key

    def add_service_account_key(
        self,
        account: ServiceAccount,
        *,
        name: str = "Secret Key",
        scopes: Iterable[str] | None = None,
        expires_in: int | None = None,
        actor: Actor | None = None,
    ) -> ApiKey:
        """A further key on an existing account; `scopes` None: unrestricted."""
        with self.lock:
            key = self._new_key(
                account.project_id, name, "service_account", account.id, account.name, prefix="sk-svcacct-standin-"
            )
            key.scopes = frozenset(scopes) if scopes is not None else None
            key.expires_at = self.now() + expires_in if expires_in is not None else None
            details: dict[str, Any] = {"id": key.id}
            if scopes is not None:
                details["data"] = {"scopes": list(dict.fromkeys(scopes))}
            self.record("api_key.created", actor, account.project_id, key.id, details)
            return key

    def delete_service_account(self, account: ServiceAccount, *, actor: Actor | None = None) -> None:
        with self.lock:
            moment = self.clock()
            account.deleted_at = moment
            for key in self.keys.values():
                if key.owner_type == "service_account" and key.owner_id == account.id and not key.deleted:
                    key.deleted = True
                    key.revoked_at = moment + self.revocation_delay_seconds
            self.record("service_account.deleted", actor, account.project_id, account.id, {"id": account.id})

    def delete_user_key(self, key: ApiKey, *, actor: Actor | None = None) -> None:
        with self.lock:
            key.deleted = True
            key.revoked_at = self.clock() + self.revocation_delay_seconds
            self.record("api_key.deleted", actor, key.project_id, key.id, {"id": key.id})

    def owner_payload(self, key: ApiKey) -> dict[str, Any]:
        if key.owner_type == "service_account":
            account = self.service_accounts[key.owner_id]
            detail = {"id": account.id, "name": account.name, "created_at": account.created_at, "role": account.role}
            return {"type": "service_account", "service_account": detail}
        detail = {
            "id": key.owner_id,
            "name": key.owner_name,
            "email": key.owner_email or "dev@example.com",
            "created_at": key.created_at,
            "role": "owner",
        }
        return {"type": "user", "user": detail}

    def _new_key(
        self, project_id: str, name: str, owner_type: str, owner_id: str, owner_name: str, *, prefix: str
    ) -> ApiKey:
        value = f"{prefix}{_token(48)}"
        key = ApiKey(new_id("key_"), value, name, project_id, self.now(), owner_type, owner_id, owner_name)
        self.keys[key.id] = key
        self._keys_by_value[value] = key.id
        self.minted_values.append(value)
        ISSUED_SECRETS.add(value)
        return key

    def _authenticates(self, key: ApiKey) -> bool:
        now = self.clock()
        if key.revoked_at is not None and now >= key.revoked_at:
            return False
        if key.expires_at is not None and now >= key.expires_at:
            return False
        return now >= key.created_at + self.activation_delay_seconds
