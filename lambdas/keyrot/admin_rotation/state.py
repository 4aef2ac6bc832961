"""The admin key as an operator sees it (`keyrot status`, `keyrot rotate --admin`): id, age, rotation, pending and
previous keys, from the admin-key secret alone (no OpenAI call). The value is parsed for its ids and times only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from keyrot.admin_rotation.value import AdminKeyValue
from keyrot.aws.secrets import SecretDescription, SecretStore
from keyrot.constants import STAGE_CURRENT, STAGE_PENDING, STAGE_PREVIOUS, STAGE_REVOKED
from keyrot.errors import AdminKeyError, AwsCallError
from keyrot.secret_model import Promotion


@dataclass(frozen=True)
class AdminKeyState:
    secret_name: str
    secret_arn: str
    rotation_enabled: bool
    rotation_days: int | None
    last_rotated: datetime | None
    next_rotation: datetime | None
    next_rotation_estimated: bool
    current_version: str | None
    key_id: str | None
    created_at: datetime | None  # the key's creation (keyrot-minted), else when it was stored (put by hand)
    created_from: str | None  # "minted" | "stored"
    expires_at: datetime | None
    promoted_at: datetime | None
    pending_version: str | None
    pending_key_id: str | None
    previous_version: str | None
    previous_key_id: str | None
    previous_deleted: bool
    problem: str | None = None  # why a value could not be read (the ids are then unknown)

    def age(self, now: datetime) -> timedelta | None:
        return now - self.created_at if self.created_at else None

    def as_json(self, now: datetime) -> dict[str, Any]:
        age = self.age(now)
        return {
            "secret_name": self.secret_name,
            "secret_arn": self.secret_arn,
            "rotation_enabled": self.rotation_enabled,
            "rotation_interval_days": self.rotation_days,
            "last_rotated": self.last_rotated,
            "next_rotation": self.next_rotation,
            "next_rotation_estimated": self.next_rotation_estimated,
            "key_id": self.key_id,
            "version_id": self.current_version,
            "created_at": self.created_at,
            "age_from": self.created_from,
            "age_seconds": int(age.total_seconds()) if age is not None else None,
            "expires_at": self.expires_at,
            "promoted_at": self.promoted_at,
            "pending": None
            if self.pending_version is None
            else {"version_id": self.pending_version, "key_id": self.pending_key_id},
            "previous": None
            if self.previous_version is None
            else {
                "version_id": self.previous_version,
                "key_id": self.previous_key_id,
                "deleted": self.previous_deleted,
            },
            "problem": self.problem,
        }


def read_admin_key_state(secrets_client: Any, description: SecretDescription) -> AdminKeyState:
    """The state of the described admin-key secret. A value that cannot be read (AccessDenied, a malformed value) is
    reported in `problem`, never raised: the rest is still worth showing."""
    store = SecretStore(secrets_client)
    versions = description.versions
    current_version = description.version_with(STAGE_CURRENT)
    pending_version = next(
        (vid for vid, stages in versions.items() if STAGE_PENDING in stages and STAGE_CURRENT not in stages), None
    )
    previous_version = description.version_with(STAGE_PREVIOUS)
    if previous_version == current_version:
        previous_version = None
    problems: list[str] = []

    def value(stage: str, version_id: str | None) -> AdminKeyValue | None:
        if version_id is None:
            return None
        try:
            text = store.get_string(description.arn, stage=stage, version_id=version_id)
            return AdminKeyValue.from_json(text) if text is not None else None
        except (AwsCallError, AdminKeyError) as exc:
            problems.append(f"{stage}: {exc}")
            return None

    current = value(STAGE_CURRENT, current_version)
    pending = value(STAGE_PENDING, pending_version)
    previous = value(STAGE_PREVIOUS, previous_version)
    created_at, created_from = (current.created_at, "minted") if current and current.created_at else (None, None)
    if created_at is None and current_version is not None:
        created_at = _version_created(secrets_client, description.arn, current_version)
        created_from = "stored" if created_at else None
    promotion = Promotion.from_tags(description.tags)
    rules = description.rotation_rules or {}
    days = rules.get("AutomaticallyAfterDays")
    next_rotation, estimated = description.next_rotation, False
    if next_rotation is None and description.last_rotated and days:
        next_rotation, estimated = description.last_rotated + timedelta(days=int(days)), True
    return AdminKeyState(
        secret_name=description.name,
        secret_arn=description.arn,
        rotation_enabled=description.rotation_enabled,
        rotation_days=int(days) if days else None,
        last_rotated=description.last_rotated,
        next_rotation=next_rotation if description.rotation_enabled else None,
        next_rotation_estimated=estimated,
        current_version=current_version,
        key_id=current.key_id if current else None,
        created_at=created_at,
        created_from=created_from,
        expires_at=current.expires_at if current else None,
        promoted_at=promotion.at if promotion and promotion.version_id == current_version else None,
        pending_version=pending_version,
        pending_key_id=pending.key_id if pending else None,
        previous_version=previous_version,
        previous_key_id=previous.key_id if previous else None,
        previous_deleted=previous_version is not None and STAGE_REVOKED in versions.get(previous_version, ()),
        problem="; ".join(problems) or None,
    )


def _version_created(secrets_client: Any, arn: str, version_id: str) -> datetime | None:
    try:
        page = secrets_client.list_secret_version_ids(SecretId=arn, IncludeDeprecated=False)
    except (BotoCoreError, ClientError):  # a bonus: without ListSecretVersionIds the age is just unknown
        return None
    for version in page.get("Versions", []):
        if version.get("VersionId") == version_id and isinstance(version.get("CreatedDate"), datetime):
            return version["CreatedDate"]  # type: ignore[no-any-return]
    return None
