"""The secret contract: what a managed secret holds, what its tags say, and the admin-key secret.

Parsing never echoes the secret text: a malformed value yields an error that names the problem, not the content.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keyrot.constants import REQUIRED_TAGS, TAG_ENVIRONMENT, TAG_KEY_NAME, TAG_PROJECT_ID, TAG_PROMOTED
from keyrot.errors import AdminKeyError, SecretContractError

ENVIRONMENT_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
KEY_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
# OpenAI ids (proj_..., key_..., svc_acct_...) are opaque; accept the characters they are made of. Never "sk-...":
# that is a key pasted where an id belongs, and ids are logged freely.
OPENAI_ID_PATTERN = re.compile(r"^(?!sk-)[A-Za-z0-9_\-]{1,128}$")

# A Secrets Manager version id (the rotation token): 32 to 64 characters, a UUID when AWS makes it.
VERSION_ID_PATTERN = re.compile(r"^[A-Za-z0-9\-]{32,64}$")
_PROMOTED_PATTERN = re.compile(r"^(?P<version>[A-Za-z0-9\-]{32,64})@(?P<at>[0-9]{1,12})$")

_REQUIRED_FIELDS = ("api_key", "key_id", "service_account_id", "project_id", "environment", "key_name", "created_at")
# A scope name as OpenAI spells them (api.model.read, model.request). The value records what the key was minted with,
# so any such name is read back; which names may be declared is keyrot.scopes' decision.
_SCOPE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
_MAX_SCOPES = 64


@dataclass(frozen=True)
class SecretIdentity:
    """What a managed secret is for, read from its keyrot:* tags."""

    environment: str
    key_name: str
    project_id: str

    @classmethod
    def from_tags(cls, tags: Iterable[Mapping[str, str]] | None) -> SecretIdentity:
        """Build from DescribeSecret's Tags list; raise SecretContractError naming any missing or invalid tag."""
        values = {tag.get("Key"): tag.get("Value", "") for tag in tags or ()}
        missing = [name for name in REQUIRED_TAGS if not values.get(name)]
        if missing:
            raise SecretContractError(f"secret is missing required tag(s): {', '.join(missing)}")
        identity = cls(
            environment=values[TAG_ENVIRONMENT], key_name=values[TAG_KEY_NAME], project_id=values[TAG_PROJECT_ID]
        )
        identity.validate(source="tag")
        return identity

    def validate(self, source: str, *, quote: bool = True) -> None:
        """Raise SecretContractError if a field has the wrong shape. `source` says where it came from; a value read
        from a secret is not quoted (`quote=False`): whatever sits in the field may be key material."""
        checks = (
            (TAG_ENVIRONMENT, self.environment, ENVIRONMENT_PATTERN),
            (TAG_KEY_NAME, self.key_name, KEY_NAME_PATTERN),
            (TAG_PROJECT_ID, self.project_id, OPENAI_ID_PATTERN),
        )
        for name, value, pattern in checks:
            if not pattern.fullmatch(value):
                shown = f" {value[:70]!r}" if quote else ""
                raise SecretContractError(f"{source} {name} has an invalid value{shown}")


@dataclass(frozen=True)
class ManagedKey:
    """The JSON SecretString of a managed secret. Applications read `api_key`; the rest is bookkeeping."""

    api_key: str = field(repr=False)
    key_id: str
    service_account_id: str
    project_id: str
    environment: str
    key_name: str
    created_at: datetime
    expires_at: datetime | None = None
    # The scopes the key was minted with; None: unrestricted (and every value written before keyrot minted scoped
    # keys). Written only when set, so an unrestricted key's value is unchanged.
    scopes: tuple[str, ...] | None = None

    @property
    def identity(self) -> SecretIdentity:
        return SecretIdentity(environment=self.environment, key_name=self.key_name, project_id=self.project_id)

    def to_json(self) -> str:
        payload: dict[str, Any] = {
            "api_key": self.api_key,
            "key_id": self.key_id,
            "service_account_id": self.service_account_id,
            "project_id": self.project_id,
            "environment": self.environment,
            "key_name": self.key_name,
            "created_at": _format_time(self.created_at),
            "expires_at": _format_time(self.expires_at) if self.expires_at else None,
        }
        if self.scopes is not None:
            payload["scopes"] = list(self.scopes)
        return json.dumps(payload, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None, *, what: str = "secret value") -> ManagedKey:
        """Parse a SecretString. Raises SecretContractError naming the problem, never quoting the text."""
        payload = _load_object(text, what)
        missing = [name for name in _REQUIRED_FIELDS if name not in payload]
        if missing:
            raise SecretContractError(f"{what} is missing field(s): {', '.join(missing)}")
        wrong_type = [name for name in _REQUIRED_FIELDS if not isinstance(payload[name], str) or not payload[name]]
        if wrong_type:
            raise SecretContractError(f"{what} field(s) must be non-empty strings: {', '.join(wrong_type)}")
        for name in ("key_id", "service_account_id", "project_id"):
            if not OPENAI_ID_PATTERN.fullmatch(payload[name]):
                raise SecretContractError(f"{what} field {name} is not a valid OpenAI id")
        expires_at = payload.get("expires_at")
        if expires_at is not None and not isinstance(expires_at, str):
            raise SecretContractError(f"{what} field expires_at must be an ISO 8601 string or null")
        key = cls(
            api_key=payload["api_key"],
            key_id=payload["key_id"],
            service_account_id=payload["service_account_id"],
            project_id=payload["project_id"],
            environment=payload["environment"],
            key_name=payload["key_name"],
            created_at=_parse_time(payload["created_at"], what, "created_at"),
            expires_at=_parse_time(expires_at, what, "expires_at") if expires_at else None,
            scopes=_parse_scopes(payload.get("scopes"), what),
        )
        key.identity.validate(source=what, quote=False)
        return key

    def check_identity(self, expected: SecretIdentity, *, what: str = "secret value") -> None:
        """Raise SecretContractError if this key was minted for another environment, key name or project."""
        for name in ("environment", "key_name", "project_id"):
            actual, wanted = getattr(self, name), getattr(expected, name)
            if actual != wanted:
                raise SecretContractError(f"{what} {name} is {actual!r} but the secret's tags say {wanted!r}")


@dataclass(frozen=True)
class Promotion:
    """The keyrot:promoted tag: which version finishSecret made AWSCURRENT, and when (written just before the move)."""

    version_id: str
    at: datetime

    def to_tag(self) -> dict[str, str]:
        return {"Key": TAG_PROMOTED, "Value": f"{self.version_id}@{int(self.at.timestamp())}"}

    @classmethod
    def from_tags(cls, tags: Iterable[Mapping[str, str]] | None) -> Promotion | None:
        """The promotion the tags record, or None when there is none or it is malformed (a malformed record is
        treated as absent: retirement then counts from the current key's creation, the older and safer reading)."""
        value = next((tag.get("Value", "") for tag in tags or () if tag.get("Key") == TAG_PROMOTED), None)
        match = _PROMOTED_PATTERN.fullmatch(value or "")
        if match is None:
            return None
        try:
            at = datetime.fromtimestamp(int(match["at"]), UTC)
        except (OverflowError, OSError, ValueError):
            return None
        return cls(match["version"], at)


@dataclass(frozen=True)
class AdminCredentials:
    """The admin-key secret's JSON: {"admin_key": "...", "key_id": "key_..." (optional)}."""

    admin_key: str = field(repr=False)
    key_id: str | None = None

    def to_json(self) -> str:
        return json.dumps({"admin_key": self.admin_key, "key_id": self.key_id}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> AdminCredentials:
        try:
            payload = _load_object(text, "admin-key secret value")
        except SecretContractError as exc:
            raise AdminKeyError(str(exc)) from None
        admin_key = payload.get("admin_key")
        if not isinstance(admin_key, str) or not admin_key.strip():
            raise AdminKeyError("admin-key secret value has no non-empty string field admin_key")
        key_id = payload.get("key_id")
        if key_id is not None and (not isinstance(key_id, str) or not OPENAI_ID_PATTERN.fullmatch(key_id)):
            raise AdminKeyError("admin-key secret value field key_id must be an OpenAI key id or absent")
        return cls(admin_key=admin_key.strip(), key_id=key_id)


def _load_object(text: str | None, what: str) -> dict[str, Any]:
    if text is None or not text.strip():
        raise SecretContractError(f"{what} is empty")
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        # Deliberately no `from exc`: the decoder's message quotes the document.
        raise SecretContractError(f"{what} is not valid JSON") from None
    if not isinstance(payload, dict):
        raise SecretContractError(f"{what} must be a JSON object, not {type(payload).__name__}")
    return payload


def _parse_scopes(value: Any, what: str) -> tuple[str, ...] | None:
    """The optional `scopes` field: absent or null (unrestricted), or a non-empty list of scope names."""
    if value is None:
        return None
    ok = (
        isinstance(value, list)
        and 0 < len(value) <= _MAX_SCOPES
        and all(isinstance(scope, str) and _SCOPE_PATTERN.fullmatch(scope) for scope in value)
    )
    if not ok:
        raise SecretContractError(f"{what} field scopes must be a non-empty list of scope names, or null")
    return tuple(dict.fromkeys(value))


def _format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: str, what: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SecretContractError(f"{what} field {name} is not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        raise SecretContractError(f"{what} field {name} must carry a UTC offset")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-23:59 is past the last representable UTC moment
        raise SecretContractError(f"{what} field {name} is out of range") from None
