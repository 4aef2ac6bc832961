"""Typed views of the OpenAI objects keyrot reads. Unknown fields are ignored; missing required ones are errors."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keyrot.openai_admin.errors import MalformedResponseError
from keyrot.secret_model import OPENAI_ID_PATTERN


@dataclass(frozen=True)
class ServiceAccount:
    id: str
    name: str
    role: str
    created_at: int

    @classmethod
    def from_api(cls, body: Any) -> ServiceAccount:
        obj = _object(body, "service account")
        return cls(
            id=_str(obj, "id", "service account"),
            name=_str(obj, "name", "service account"),
            role=_str(obj, "role", "service account"),
            created_at=_int(obj, "created_at", "service account"),
        )


@dataclass(frozen=True)
class MintedServiceAccount:
    """A service account created with its one API key. `api_key` is shown by OpenAI only this once."""

    service_account_id: str
    name: str
    created_at: int
    key_id: str
    api_key: str = field(repr=False)

    @classmethod
    def from_api(cls, body: Any) -> MintedServiceAccount:
        obj = _object(body, "service account")
        key = obj.get("api_key")
        if not isinstance(key, Mapping):
            raise MalformedResponseError("OpenAI created a service account without an API key (api_key is null)")
        value = key.get("value")
        if not isinstance(value, str) or not value:
            raise MalformedResponseError("service account api_key has no value")
        return cls(
            service_account_id=_id(obj, "id", "service account"),
            name=_str(obj, "name", "service account"),
            created_at=_int(obj, "created_at", "service account"),
            key_id=_id(key, "id", "service account api_key"),
            api_key=value,
        )


@dataclass(frozen=True)
class ProjectApiKey:
    """A project API key as listed by the admin API (only the redacted value is ever visible)."""

    id: str
    name: str
    redacted_value: str = field(repr=False)  # OpenAI's masked form still shows a prefix and the last characters
    created_at: int
    last_used_at: int | None
    owner_type: str  # "user" or "service_account"
    owner_id: str | None
    owner_name: str | None
    owner_project_access: str | None

    @classmethod
    def from_api(cls, body: Any) -> ProjectApiKey:
        obj = _object(body, "project API key")
        owner = obj.get("owner")
        if not isinstance(owner, Mapping):
            raise MalformedResponseError("project API key has no owner object")
        owner_type = _str(owner, "type", "project API key owner")
        detail = owner.get(owner_type) if owner_type in ("user", "service_account") else None
        detail = detail if isinstance(detail, Mapping) else {}
        last_used = obj.get("last_used_at")
        if last_used is not None and (not isinstance(last_used, int) or isinstance(last_used, bool)):
            raise MalformedResponseError("project API key field last_used_at must be an integer or null")
        access = obj.get("owner_project_access")
        return cls(
            id=_str(obj, "id", "project API key"),
            name=_opt_str(obj, "name"),
            redacted_value=_opt_str(obj, "redacted_value"),
            created_at=_int(obj, "created_at", "project API key"),
            last_used_at=last_used,
            owner_type=owner_type,
            owner_id=detail.get("id") if isinstance(detail.get("id"), str) else None,
            owner_name=detail.get("name") if isinstance(detail.get("name"), str) else None,
            owner_project_access=access if isinstance(access, str) else None,
        )


@dataclass(frozen=True)
class AdminApiKey:
    """An organization admin key as the admin API lists it: never its value."""

    id: str
    name: str | None
    redacted_value: str = field(repr=False)  # a masked form that still shows a prefix and the last characters
    created_at: int
    expires_at: int | None  # None: the key never expires
    last_used_at: int | None
    owner_id: str | None
    owner_type: str | None  # the spec says always "user"; its own example shows "service_account": read loosely

    @classmethod
    def from_api(cls, body: Any) -> AdminApiKey:
        obj = _object(body, "admin API key")
        owner = obj.get("owner")
        owner = owner if isinstance(owner, Mapping) else {}
        name = obj.get("name")
        return cls(
            id=_id(obj, "id", "admin API key"),
            name=name if isinstance(name, str) else None,
            redacted_value=_opt_str(obj, "redacted_value"),
            created_at=_int(obj, "created_at", "admin API key"),
            expires_at=_opt_int_field(obj, "expires_at", "admin API key"),
            last_used_at=_opt_int_field(obj, "last_used_at", "admin API key"),
            owner_id=owner.get("id") if isinstance(owner.get("id"), str) else None,
            owner_type=owner.get("type") if isinstance(owner.get("type"), str) else None,
        )


@dataclass(frozen=True)
class MintedAdminApiKey:
    """A new admin key. `value` is shown by OpenAI only this once and never appears in repr or str."""

    key: AdminApiKey
    value: str = field(repr=False)

    @classmethod
    def from_api(cls, body: Any) -> MintedAdminApiKey:
        key = AdminApiKey.from_api(body)
        value = _object(body, "admin API key").get("value")
        if not isinstance(value, str) or not value:
            raise MalformedResponseError("OpenAI created an admin API key without returning its value")
        return cls(key, value)


@dataclass(frozen=True)
class MintedServiceAccountKey:
    """A further key made on an existing service account. `api_key` is shown only this once.

    `scopes` is what keyrot asked for (None: unrestricted); OpenAI's answer does not echo scopes."""

    service_account_id: str
    key_id: str
    name: str
    created_at: int
    expires_at: int | None
    scopes: tuple[str, ...] | None
    api_key: str = field(repr=False)

    @classmethod
    def from_api(cls, body: Any, *, service_account_id: str, scopes: tuple[str, ...] | None) -> MintedServiceAccountKey:
        obj = _object(body, "service account API key")
        value = obj.get("value")
        if not isinstance(value, str) or not value:
            raise MalformedResponseError("OpenAI created a service account API key without returning its value")
        return cls(
            service_account_id=service_account_id,
            key_id=_id(obj, "id", "service account API key"),
            name=_opt_str(obj, "name"),
            created_at=_int(obj, "created_at", "service account API key"),
            expires_at=_opt_int_field(obj, "expires_at", "service account API key"),
            scopes=scopes,
            api_key=value,
        )


class KeyStatus(enum.Enum):
    VALID = "valid"  # authenticated and allowed to list models
    RESTRICTED = "restricted"  # authenticated, but refused (missing scope, IP allow-list, region...)
    DEAD = "dead"  # 401 invalid_api_key: revoked, deleted, expired or never existed


@dataclass(frozen=True)
class RateLimitHeadroom:
    """The x-ratelimit-* headers of a model endpoint response, as sent."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests: str | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens: str | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimitHeadroom | None:
        lowered = {name.lower(): value for name, value in headers.items()}
        if not any(name.startswith("x-ratelimit-") for name in lowered):
            return None
        return cls(
            limit_requests=_opt_int(lowered.get("x-ratelimit-limit-requests")),
            remaining_requests=_opt_int(lowered.get("x-ratelimit-remaining-requests")),
            reset_requests=lowered.get("x-ratelimit-reset-requests"),
            limit_tokens=_opt_int(lowered.get("x-ratelimit-limit-tokens")),
            remaining_tokens=_opt_int(lowered.get("x-ratelimit-remaining-tokens")),
            reset_tokens=lowered.get("x-ratelimit-reset-tokens"),
        )


@dataclass(frozen=True)
class KeyCheck:
    """The outcome of probing a project key with GET /v1/models."""

    status: KeyStatus
    detail: str = ""
    rate_limits: RateLimitHeadroom | None = None


def _object(body: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise MalformedResponseError(f"OpenAI returned a {type(body).__name__} where a {what} object was expected")
    return body


def _str(obj: Mapping[str, Any], name: str, what: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedResponseError(f"{what} field {name} is missing or not a string")
    return value


def _opt_str(obj: Mapping[str, Any], name: str) -> str:
    """A string field keyrot only displays: "" when missing or not a string."""
    value = obj.get(name)
    return value if isinstance(value, str) else ""


def _id(obj: Mapping[str, Any], name: str, what: str) -> str:
    """An id keyrot stores in a secret: it must be one the secret contract accepts when it is read back."""
    value = _str(obj, name, what)
    if not OPENAI_ID_PATTERN.fullmatch(value):
        raise MalformedResponseError(f"{what} field {name} is not an OpenAI id")
    return value


def _int(obj: Mapping[str, Any], name: str, what: str) -> int:
    value = obj.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedResponseError(f"{what} field {name} is missing or not an integer")
    return value


def _opt_int_field(obj: Mapping[str, Any], name: str, what: str) -> int | None:
    value = obj.get(name)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise MalformedResponseError(f"{what} field {name} must be an integer or null")
    return value


def _opt_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


# The field readers, for the other typed views of this package (guardrails, audit log).
object_of = _object
required_str = _str
required_int = _int
opt_int_field = _opt_int_field
