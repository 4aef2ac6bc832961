"""Small builders for the inventory's inputs: secrets with versions, and what OpenAI lists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from keyrot.constants import CLOCK_SKEW_SECONDS, ROTATION_TIMEOUT_SECONDS
from keyrot.inventory import (
    Inventory,
    KeyMeta,
    OpenAIListing,
    SecretRecord,
    ServiceAccountName,
    VersionRecord,
    classify,
)
from keyrot.openai_admin import ProjectApiKey, ServiceAccount
from keyrot.secret_model import Promotion

ENV = "dev"
PROJECT = "proj_1"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HOUR = 3600
GRACE = 24 * HOUR
BOUND = ROTATION_TIMEOUT_SECONDS + CLOCK_SKEW_SECONDS


def token(n: int) -> str:
    """A version id (a rotation token) that sorts by `n`."""
    return f"00000000-0000-4000-8000-{n:012d}"


def account_name(version: str, key_name: str = "chat", environment: str = ENV) -> str:
    return str(ServiceAccountName(environment, key_name, version))


def meta(n: int, *, created: datetime, expires: datetime | None = None) -> KeyMeta:
    return KeyMeta(f"key_{n}", f"svc_acct_{n}", created, expires)


def version(n: int, *stages: str, created: datetime | None = None, stored: bool = True) -> VersionRecord:
    """Version token(n) holding key_n on svc_acct_n (or an empty placeholder), with `stages`."""
    key = meta(n, created=created or NOW - timedelta(days=30 - n)) if stored else None
    return VersionRecord(token(n), tuple(stages), key)


def secret(
    *versions: VersionRecord,
    key_name: str = "chat",
    promoted: tuple[int, datetime] | None = None,
    problem: str | None = None,
) -> SecretRecord:
    promotion = Promotion(token(promoted[0]), promoted[1]) if promoted else None
    return SecretRecord(
        key_name,
        f"arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrot/{ENV}/{key_name}-AbCdEf",
        f"keyrot/{ENV}/{key_name}",
        PROJECT,
        {v.version_id: v for v in versions},
        promotion,
        problem=problem,
    )


def account(account_id: str, name: str, *, created: datetime) -> ServiceAccount:
    return ServiceAccount(id=account_id, name=name, role="member", created_at=int(created.timestamp()))


def keyrot_account(n: int, key_name: str = "chat", *, created: datetime | None = None) -> ServiceAccount:
    """svc_acct_n, named for token(n): what a rotation of `key_name` minted."""
    return account(f"svc_acct_{n}", account_name(token(n), key_name), created=created or NOW - timedelta(days=30))


def api_key(
    key_id: str,
    *,
    owner_id: str,
    owner_name: str,
    owner_type: str = "service_account",
    created: datetime | None = None,
    last_used: datetime | None = None,
) -> ProjectApiKey:
    return ProjectApiKey(
        id=key_id,
        name="Secret Key",
        redacted_value="sk-svc...abcd",
        created_at=int((created or NOW - timedelta(days=30)).timestamp()),
        last_used_at=int(last_used.timestamp()) if last_used else None,
        owner_type=owner_type,
        owner_id=owner_id,
        owner_name=owner_name,
        owner_project_access="active",
    )


def key_of(service_account: ServiceAccount, key_id: str, *, last_used: datetime | None = None) -> ProjectApiKey:
    return api_key(
        key_id,
        owner_id=service_account.id,
        owner_name=service_account.name,
        created=datetime.fromtimestamp(service_account.created_at, UTC),
        last_used=last_used,
    )


def run(
    secrets: list[SecretRecord],
    accounts: list[ServiceAccount] | None = None,
    keys: list[ProjectApiKey] | None = None,
    *,
    shared: tuple[str, ...] | None = (),
    now: datetime = NOW,
    listed: bool = True,
) -> Inventory:
    openai = OpenAIListing.of(accounts or [], keys) if listed else None
    return classify(secrets, openai, environment=ENV, shared_environments=shared, now=now, grace_period_seconds=GRACE)
