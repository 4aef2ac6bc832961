"""The admin-key secret's value, as the admin rotation writes it: the contract's {"admin_key", "key_id"} plus, for a
key keyrot minted, when it was created and when OpenAI expires it.

Readers of the admin key (keyrot.openai_admin.load_admin_client, through AdminCredentials) read the first two fields
and ignore the others: the contract only grows. A value put by `keyrot admin-key set` has no times.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keyrot.errors import AdminKeyError
from keyrot.secret_model import AdminCredentials

_TIME_FIELDS = ("created_at", "expires_at")


@dataclass(frozen=True)
class AdminKeyValue:
    admin_key: str = field(repr=False)
    key_id: str | None = None
    created_at: datetime | None = None  # set by keyrot when it minted the key (OpenAI's created_at)
    expires_at: datetime | None = None  # OpenAI-side expiry (the backstop); None: never, or unknown

    def to_json(self) -> str:
        payload: dict[str, Any] = {"admin_key": self.admin_key, "key_id": self.key_id}
        for name in _TIME_FIELDS:
            moment = getattr(self, name)
            payload[name] = _format(moment) if moment is not None else None
        return json.dumps(payload, sort_keys=True)

    @property
    def minted_by_keyrot(self) -> bool:
        return self.created_at is not None

    @classmethod
    def from_json(cls, text: str | None, *, what: str = "admin-key secret value") -> AdminKeyValue:
        """Parse; AdminKeyError names the field that is wrong (never a value)."""
        credentials = AdminCredentials.from_json(text)  # raises AdminKeyError without quoting the text
        payload = json.loads(text or "")
        times = {name: _parse(payload.get(name), what, name) for name in _TIME_FIELDS}
        return cls(credentials.admin_key, credentials.key_id, **times)


def _format(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: Any, what: str, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise AdminKeyError(f"{what} field {name} must be an ISO 8601 time or null")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise AdminKeyError(f"{what} field {name} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise AdminKeyError(f"{what} field {name} must carry a UTC offset")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise AdminKeyError(f"{what} field {name} is out of range") from None
