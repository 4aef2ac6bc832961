"""Build the inventory's inputs with the AWS and OpenAI clients, then classify.

Only the secrets the deployment declares are read (or, for an older deployment that declares none, those tagged for
the environment). A secret that cannot be read, or whose tags disagree with the deployment, is a problem of that
secret: the others are still read. A version's metadata never changes, so it is cached per process.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime

from keyrot.aws.secrets import SecretDescription, SecretStore
from keyrot.constants import (
    STAGE_CURRENT,
    STAGE_PENDING,
    STAGE_PREVIOUS,
    STAGE_REVOKED,
    TAG_ADMIN_SECRET,
    TAG_ENVIRONMENT,
)
from keyrot.errors import AwsCallError, SecretContractError
from keyrot.inventory.classify import classify
from keyrot.inventory.model import Inventory, KeyMeta, OpenAIListing, SecretRecord, VersionRecord
from keyrot.inventory.naming import ServiceAccountName
from keyrot.openai_admin.client import OpenAIAdminClient
from keyrot.openai_admin.session import admin_errors
from keyrot.secret_model import VERSION_ID_PATTERN, ManagedKey, Promotion, SecretIdentity
from keyrot.settings import Deployment

_CACHE_LIMIT = 50_000
_STAGE_PREFERENCE = (STAGE_CURRENT, STAGE_PENDING, STAGE_PREVIOUS, STAGE_REVOKED)
_meta_cache: dict[tuple[str, str], KeyMeta] = {}


def remember(arn: str, version_id: str, meta: KeyMeta) -> None:
    """Cache what a caller just read itself (finishSecret, the value it promotes), sparing the inventory a read."""
    _meta_cache[(arn, version_id)] = meta


def clear_cache() -> None:
    """Forget every cached version (tests; a new Lambda container starts empty)."""
    _meta_cache.clear()


def load_inventory(
    store: SecretStore,
    admin: OpenAIAdminClient | None,
    *,
    environment: str,
    deployment: Deployment,
    now: datetime,
    grace_period_seconds: int,
    list_accounts: bool = True,
    list_keys: bool = True,
) -> Inventory:
    """Read the environment's secrets, then what OpenAI lists (admin None: nothing), then classify."""
    records = read_secrets(store, environment, deployment)
    openai = None
    if admin is not None:
        projects = [deployment.project_id] if deployment.project_id else _projects(records)
        openai = read_openai(admin, projects, accounts=list_accounts, keys=list_keys)
        records = add_unlabelled_versions(store, records, openai, environment)
    return classify(
        records,
        openai,
        environment=environment,
        shared_environments=deployment.shared_environments,
        now=now,
        grace_period_seconds=grace_period_seconds,
    )


def read_secrets(store: SecretStore, environment: str, deployment: Deployment) -> list[SecretRecord]:
    """Every managed secret of the environment, each read on its own (a failure is that secret's problem)."""
    if deployment.managed_secrets is None:
        return _read_tagged(store, environment, deployment)
    records = []
    for key_name, arn in sorted(deployment.managed_secrets.items()):
        try:
            description = store.describe(arn)
        except AwsCallError as exc:
            records.append(SecretRecord(key_name, arn, arn, deployment.project_id, problem=f"cannot be read: {exc}"))
            continue
        records.append(record_of(store, description, environment, deployment, key_name=key_name))
    return records


def record_of(
    store: SecretStore,
    description: SecretDescription,
    environment: str,
    deployment: Deployment,
    *,
    key_name: str | None = None,
    strict: bool = False,
) -> SecretRecord:
    """One described secret: checked against the deployment, then its labelled versions read. `strict`: a version
    that cannot be read raises (the caller acts on this one secret) instead of becoming the secret's problem."""
    return _record(
        store,
        arn=description.arn,
        name=description.name,
        tags=description.tags,
        versions=description.versions,
        created=description.created,
        environment=environment,
        deployment=deployment,
        key_name=key_name,
        strict=strict,
    )


def read_openai(
    admin: OpenAIAdminClient, project_ids: Iterable[str], *, accounts: bool = True, keys: bool = True
) -> OpenAIListing:
    """Service accounts and project keys (every key, whatever its owner's access) of the projects."""
    projects = sorted(set(project_ids))
    with admin_errors():
        listed_accounts = (
            [account for project in projects for account in admin.iter_service_accounts(project)] if accounts else None
        )
        listed_keys = (
            [key for project in projects for key in admin.iter_project_api_keys(project, owner_project_access="any")]
            if keys
            else None
        )
    return OpenAIListing.of(listed_accounts, listed_keys)


def add_unlabelled_versions(
    store: SecretStore, records: list[SecretRecord], openai: OpenAIListing, environment: str, *, strict: bool = False
) -> list[SecretRecord]:
    """Read the versions keyrot accounts are named for but no label points at (AWS's DescribeSecret omits versions
    without labels): a version that lost its labels still holds the key its account backs."""
    tokens: dict[str, set[str]] = {}
    names = [account.name for account in openai.accounts or ()]
    names += [key.owner_name for key in openai.keys or () if key.owner_type == "service_account" and key.owner_name]
    for raw in names:
        name = ServiceAccountName.parse(raw)
        if name is not None and name.environment == environment and VERSION_ID_PATTERN.fullmatch(name.token):
            tokens.setdefault(name.key_name, set()).add(name.token)
    updated = []
    for record in records:
        unknown = sorted(tokens.get(record.key_name, set()) - set(record.versions))
        if not unknown or (record.problem and not record.versions):
            updated.append(record)
            continue
        versions = dict(record.versions)
        for token in unknown:
            version = _version(store, record.arn, record.name, token, (), strict=strict)
            if version.key is not None or version.problem:
                versions[token] = version
        updated.append(replace(record, versions=versions))
    return updated


def _read_tagged(store: SecretStore, environment: str, deployment: Deployment) -> list[SecretRecord]:
    """An older deployment, which declares no secrets: those tagged for the environment (not the admin key's)."""
    filters = [{"Key": "tag-key", "Values": [TAG_ENVIRONMENT]}, {"Key": "tag-value", "Values": [environment]}]
    records = []
    for listed in store.iter_tagged(filters):
        tags = {tag["Key"]: tag.get("Value", "") for tag in listed.get("Tags") or ()}
        if tags.get(TAG_ENVIRONMENT) != environment or TAG_ADMIN_SECRET in tags:
            continue
        created = listed.get("CreatedDate")
        records.append(
            _record(
                store,
                arn=listed["ARN"],
                name=listed.get("Name", listed["ARN"]),
                tags=tuple(listed.get("Tags") or ()),
                versions={vid: tuple(s) for vid, s in (listed.get("SecretVersionsToStages") or {}).items()},
                created=created if isinstance(created, datetime) else None,
                environment=environment,
                deployment=deployment,
                key_name=None,
            )
        )
    return records


def _record(
    store: SecretStore,
    *,
    arn: str,
    name: str,
    tags: Iterable[Mapping[str, str]],
    versions: Mapping[str, tuple[str, ...]],
    created: datetime | None,
    environment: str,
    deployment: Deployment,
    key_name: str | None,
    strict: bool = False,
) -> SecretRecord:
    tags = tuple(tags)
    try:
        identity = SecretIdentity.from_tags(tags)
    except SecretContractError as exc:
        return SecretRecord(key_name or name, arn, name, deployment.project_id, created_at=created, problem=str(exc))
    problem = _disagreement(identity, environment, deployment, key_name)
    key_name = key_name or identity.key_name
    if problem is not None:
        # Never read a secret whose tags disagree with the deployment: report it instead.
        return SecretRecord(key_name, arn, name, deployment.project_id, created_at=created, problem=problem)
    records = {vid: _version(store, arn, name, vid, stages, strict=strict) for vid, stages in versions.items()}
    return SecretRecord(
        key_name,
        arn,
        name,
        identity.project_id,
        records,
        Promotion.from_tags(tags),
        created_at=created,
        environment=identity.environment,
    )


def _disagreement(
    identity: SecretIdentity, environment: str, deployment: Deployment, key_name: str | None
) -> str | None:
    if identity.environment != environment:
        return f"is tagged for environment {identity.environment!r}, not {environment!r}"
    if key_name is not None and identity.key_name != key_name:
        return f"is tagged for key {identity.key_name!r} but the deployment declares it for {key_name!r}"
    if deployment.project_id is not None and identity.project_id != deployment.project_id:
        return f"is tagged for OpenAI project {identity.project_id} but the deployment declares {deployment.project_id}"
    return None


def _version(
    store: SecretStore, arn: str, name: str, version_id: str, stages: tuple[str, ...], *, strict: bool = False
) -> VersionRecord:
    cached = _meta_cache.get((arn, version_id))
    if cached is not None:
        return VersionRecord(version_id, stages, cached)
    stage = next((s for s in _STAGE_PREFERENCE if s in stages), stages[0] if stages else None)
    try:
        text = store.get_string(arn, stage=stage, version_id=version_id)
        if text is None:
            return VersionRecord(version_id, stages)  # an empty AWSPENDING placeholder: a rotation is starting
        meta = KeyMeta.of(ManagedKey.from_json(text, what=f"secret {name} version {version_id}"))
    except (SecretContractError, AwsCallError) as exc:
        if strict:
            raise
        return VersionRecord(version_id, stages, problem=str(exc))
    if len(_meta_cache) >= _CACHE_LIMIT:
        _meta_cache.clear()
    _meta_cache[(arn, version_id)] = meta
    return VersionRecord(version_id, stages, meta)


def _projects(records: Iterable[SecretRecord]) -> list[str]:
    return sorted({record.project_id for record in records if record.project_id})
