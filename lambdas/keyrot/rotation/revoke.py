"""Revoke the key one version of a secret holds: delete its service account, confirm the key is dead, record it.

`revoke_version` is the one function that revokes a version's key (the janitor, emergency containment, the CLI and
the cleanup of displaced keys all call it). It deletes only what keyrot minted for that version:

- never a version that carries AWSCURRENT or AWSPENDING, nor an account that also backs the current or pending key;
- the value must belong to the secret's environment, key and project (the deployment's project when declared);
- the account must exist in that project, be named exactly `keyrot:<env>:<key>:<that version id>`, and own the key
  id the version names. Otherwise it refuses and says why: a forged value naming a foreign account is never obeyed.

The record is the KEYROT_REVOKED label, moved onto the AWSPREVIOUS version once OpenAI rejects the key. The label is
not trusted on its own: a labelled version whose account OpenAI still lists is revoked again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from keyrot.aws.secrets import SecretDescription
from keyrot.constants import STAGE_CURRENT, STAGE_PENDING, STAGE_PREVIOUS, STAGE_REVOKED
from keyrot.errors import AwsCallError, RevocationError, SecretContractError
from keyrot.inventory.naming import ServiceAccountName
from keyrot.openai_admin import KeyStatus, NotFoundError, ServiceAccount, admin_errors
from keyrot.rotation.context import RotationContext
from keyrot.rotation.deployment import declared_identity
from keyrot.rotation.validation import wait_until_dead
from keyrot.secret_model import ManagedKey, SecretIdentity

logger = logging.getLogger(__name__)

RevocationStatus = Literal["revoked", "already-revoked", "nothing-to-revoke", "attempt-deleted"]
_READ_PREFERENCE = (STAGE_PREVIOUS, STAGE_REVOKED)


@dataclass(frozen=True)
class RevocationResult:
    status: RevocationStatus
    key_id: str | None = None
    service_account_id: str | None = None
    version_id: str | None = None


def revoke_previous(ctx: RotationContext, secret_id: str, *, expected_version: str | None = None) -> RevocationResult:
    """Revoke the key of the AWSPREVIOUS version. Idempotent; safe to call after any crash.

    `expected_version` guards callers that decided earlier (the janitor, the CLI after its confirmation): if
    AWSPREVIOUS has moved since, refuse rather than revoke a key nobody decided about.
    """
    description = ctx.store.describe(secret_id)
    previous_version = description.version_with(STAGE_PREVIOUS)
    if previous_version is None:
        return RevocationResult("nothing-to-revoke")
    if expected_version is not None and previous_version != expected_version:
        raise RevocationError(
            f"AWSPREVIOUS of {description.name} moved from {expected_version} to {previous_version}; not revoking"
        )
    return revoke_version(ctx, secret_id, previous_version, description=description)


def revoke_version(
    ctx: RotationContext, secret_id: str, version_id: str, *, description: SecretDescription | None = None
) -> RevocationResult:
    """Revoke the key version `version_id` holds, after every check above. Idempotent. `description`: the secret
    as the caller just described it (else it is described here), so the labels checked are never older than that."""
    description = description or ctx.store.describe(secret_id)
    identity = declared_identity(description, ctx.settings)
    stages = description.stages_of(version_id)
    live_labels = [stage for stage in (STAGE_CURRENT, STAGE_PENDING) if stage in stages]
    if live_labels:
        raise RevocationError(
            f"refusing to revoke version {version_id} of {description.name}: it is {' and '.join(live_labels)}"
        )
    key = _read(ctx, secret_id, version_id, stages, identity)
    _refuse_if_backing_a_live_version(ctx, secret_id, description.name, key, version_id, description.versions)
    project_id = identity.project_id
    account = _account(ctx, project_id, key.service_account_id)
    deleted = False
    if account is not None:
        _check_minted_for(ctx, account, key, identity, version_id)
        with admin_errors():
            deleted = ctx.admin().delete_service_account(project_id, account.id)
    check = wait_until_dead(
        ctx.probe,
        key.api_key,
        attempts=ctx.settings.validation_attempts,
        delay_seconds=ctx.settings.validation_delay_seconds,
        sleep=ctx.sleep,
    )
    if check.status is not KeyStatus.DEAD:
        if account is None:
            raise RevocationError(
                f"key {key.key_id} of version {version_id} still authenticates, but its service account "
                f"{key.service_account_id} is not an account of project {project_id}: nothing was deleted (a "
                "forged value, or an earlier deletion still propagating); the next attempt checks again"
            )
        raise RevocationError(
            f"service account {key.service_account_id} is deleted but key {key.key_id} still "
            f"authenticates ({check.status.value}); the revocation will be re-checked on the next attempt"
        )
    already = account is None and STAGE_REVOKED in stages
    if STAGE_PREVIOUS in stages and STAGE_REVOKED not in stages:
        ctx.store.move_stage(
            secret_id, STAGE_REVOKED, to_version=version_id, from_version=description.version_with(STAGE_REVOKED)
        )
    logger.info(
        "revoked key %s of version %s (service account %s %s)",
        key.key_id,
        version_id,
        key.service_account_id,
        "deleted" if deleted else "was already gone",
    )
    return RevocationResult("already-revoked" if already else "revoked", key.key_id, key.service_account_id, version_id)


def _read(
    ctx: RotationContext, secret_id: str, version_id: str, stages: tuple[str, ...], identity: SecretIdentity
) -> ManagedKey:
    stage = next((s for s in _READ_PREFERENCE if s in stages), None)
    what = f"version {version_id}"
    try:
        text = ctx.store.get_string(secret_id, stage=stage, version_id=version_id)
    except AwsCallError as exc:
        if exc.code in ("ResourceNotFoundException", "ValidationException", "InvalidParameterException"):
            raise RevocationError(f"cannot revoke: the secret has no readable {what} ({exc.code})") from exc
        raise
    if text is None:
        raise RevocationError(f"cannot revoke: {what} holds no value")
    try:
        key = ManagedKey.from_json(text, what=f"{what} value")
        key.check_identity(identity, what=f"{what} value")
    except SecretContractError as exc:
        raise RevocationError(f"cannot revoke: {exc}") from exc
    return key


def _refuse_if_backing_a_live_version(
    ctx: RotationContext,
    secret_id: str,
    secret_name: str,
    key: ManagedKey,
    version_id: str,
    labelled: Mapping[str, tuple[str, ...]],
) -> None:
    checked: set[str] = {version_id}
    for stage in (STAGE_CURRENT, STAGE_PENDING):
        version = next((vid for vid, labels in labelled.items() if stage in labels), None)
        if version is None or version in checked:
            continue  # (a finishing rotation's version is both AWSCURRENT and AWSPENDING: read once)
        checked.add(version)
        text = ctx.store.get_string(secret_id, stage=stage, version_id=version)
        if text is None:
            continue  # an empty pending placeholder backs no account
        try:
            live = ManagedKey.from_json(text, what=f"{stage} secret value")
        except SecretContractError as exc:
            raise RevocationError(f"cannot check what the {stage} key of {secret_name} is: {exc}") from exc
        if live.service_account_id == key.service_account_id:
            raise RevocationError(f"refusing to revoke {key.key_id}: its service account also backs the {stage} key")


def _account(ctx: RotationContext, project_id: str, account_id: str) -> ServiceAccount | None:
    with admin_errors():
        return next((a for a in ctx.admin().iter_service_accounts(project_id) if a.id == account_id), None)


def _check_minted_for(
    ctx: RotationContext, account: ServiceAccount, key: ManagedKey, identity: SecretIdentity, version_id: str
) -> None:
    expected = str(ServiceAccountName(identity.environment, identity.key_name, version_id))
    if account.name != expected:
        raise RevocationError(
            f"refusing to revoke version {version_id}: its value names service account {account.id}, which is "
            f"named {account.name[:120]!r}, not {expected!r}; keyrot did not mint it for this version"
        )
    with admin_errors():
        try:
            listed = ctx.admin().get_project_api_key(identity.project_id, key.key_id)
        except NotFoundError:
            listed = None
    if listed is None or listed.owner_type != "service_account" or listed.owner_id != account.id:
        raise RevocationError(
            f"refusing to revoke version {version_id}: service account {account.id} does not own key {key.key_id} "
            f"in project {identity.project_id}"
        )
