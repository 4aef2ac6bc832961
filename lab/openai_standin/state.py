"""The stand-in's model of one OpenAI organization: admin keys, projects, service accounts, keys, usage and costs."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

ADMIN_SCOPES = frozenset({"api.management.read", "api.management.write", "api.usage.read"})


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
    revoked: bool = False


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

    def now(self) -> int:
        return int(self.clock())

    # --- test helpers ---------------------------------------------------------------------------

    def add_admin_key(self, name: str = "keyrot-admin", scopes: Iterable[str] = ADMIN_SCOPES) -> str:
        with self.lock:
            value = f"sk-admin-standin-{_token(40)}"
            key = AdminKey(new_id("key_"), value, name, self.now(), frozenset(scopes))
            self.admin_keys[value] = key
            self.minted_values.append(value)
            ISSUED_SECRETS.add(value)
            return value

    def revoke_admin_key(self, value: str) -> None:
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
        self, project_id: str, name: str = "hand-made key", email: str = "dev@example.com"
    ) -> tuple[str, str]:
        """A key some human created in the dashboard: keyrot did not mint it. Returns (key id, value)."""
        with self.lock:
            key = self._new_key(project_id, name, "user", new_id("user_"), "A Developer", prefix="sk-proj-standin-")
            key.owner_email = email
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

    # --- behaviour used by the server -----------------------------------------------------------

    def authenticate(self, bearer: str | None) -> Principal:
        with self.lock:
            if not bearer:
                return Principal("none")
            admin = self.admin_keys.get(bearer)
            if admin is not None:
                if admin.revoked:
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
        self, project_id: str, name: str, *, with_key: bool, expires_in: int | None
    ) -> tuple[ServiceAccount, ApiKey | None]:
        with self.lock:
            account = ServiceAccount(
                new_id("svc_acct_"), project_id, name, "member" if with_key else "none", self.now()
            )
            self.service_accounts[account.id] = account
            key = None
            if with_key:
                key = self._new_key(
                    project_id, "Secret Key", "service_account", account.id, name, prefix="sk-svcacct-standin-"
                )
                key.expires_at = self.now() + expires_in if expires_in else None
            return account, key

    def add_service_account_key(self, account: ServiceAccount) -> ApiKey:
        with self.lock:
            return self._new_key(
                account.project_id,
                "Secret Key",
                "service_account",
                account.id,
                account.name,
                prefix="sk-svcacct-standin-",
            )

    def delete_service_account(self, account: ServiceAccount) -> None:
        with self.lock:
            moment = self.clock()
            account.deleted_at = moment
            for key in self.keys.values():
                if key.owner_type == "service_account" and key.owner_id == account.id and not key.deleted:
                    key.deleted = True
                    key.revoked_at = moment + self.revocation_delay_seconds

    def delete_user_key(self, key: ApiKey) -> None:
        with self.lock:
            key.deleted = True
            key.revoked_at = self.clock() + self.revocation_delay_seconds

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
