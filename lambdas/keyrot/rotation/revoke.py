"""Revoke the previous key: delete its service account, confirm the key is dead, record it on the secret.

The record is the KEYROT_REVOKED staging label on the revoked version, so a retry never deletes a live account:
a version already labelled is skipped, and an account that also backs the current or pending key is refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from keyrot.constants import STAGE_CURRENT, STAGE_PENDING, STAGE_PREVIOUS, STAGE_REVOKED
from keyrot.errors import RevocationError, SecretContractError
from keyrot.openai_admin import KeyStatus
from keyrot.rotation.context import RotationContext, admin_errors
from keyrot.rotation.validation import wait_until_dead
from keyrot.secret_model import ManagedKey, SecretIdentity

logger = logging.getLogger(__name__)

RevocationStatus = Literal["revoked", "already-revoked", "nothing-to-revoke"]


@dataclass(frozen=True)
class RevocationResult:
    status: RevocationStatus
    key_id: str | None = None
    service_account_id: str | None = None
    version_id: str | None = None


def revoke_previous(ctx: RotationContext, secret_id: str, *, expected_version: str | None = None) -> RevocationResult:
    """Revoke the key of the AWSPREVIOUS version. Idempotent; safe to call after any crash.

    `expected_version` guards callers that decided earlier (the janitor): if AWSPREVIOUS has moved since, refuse.
    """
    description = ctx.store.describe(secret_id)
    previous_version = description.version_with(STAGE_PREVIOUS)
    if previous_version is None:
        return RevocationResult("nothing-to-revoke")
    if expected_version is not None and previous_version != expected_version:
        raise RevocationError(
            f"AWSPREVIOUS of {description.name} moved from {expected_version} to {previous_version}; not revoking"
        )
    previous = _read(ctx, secret_id, previous_version, STAGE_PREVIOUS, "previous secret value")
    if STAGE_REVOKED in description.stages_of(previous_version):
        return RevocationResult("already-revoked", previous.key_id, previous.service_account_id, previous_version)

    identity = SecretIdentity.from_tags(description.tags)
    if previous.project_id != identity.project_id:
        raise RevocationError(
            f"previous key {previous.key_id} belongs to project {previous.project_id}, not {identity.project_id}"
        )
    for stage in (STAGE_CURRENT, STAGE_PENDING):
        version = description.version_with(stage)
        if version is None or version == previous_version:
            continue
        text = ctx.store.get_string(secret_id, stage=stage, version_id=version)
        if text is None:
            continue  # an empty pending placeholder backs no account
        live = ManagedKey.from_json(text, what=f"{stage} secret value")
        if live.service_account_id == previous.service_account_id:
            raise RevocationError(
                f"refusing to revoke {previous.key_id}: its service account also backs the {stage} key"
            )

    with admin_errors():
        deleted = ctx.admin().delete_service_account(previous.project_id, previous.service_account_id)
    check = wait_until_dead(
        ctx.probe,
        previous.api_key,
        attempts=ctx.settings.validation_attempts,
        delay_seconds=ctx.settings.validation_delay_seconds,
        sleep=ctx.sleep,
    )
    if check.status is not KeyStatus.DEAD:
        raise RevocationError(
            f"service account {previous.service_account_id} is deleted but key {previous.key_id} still "
            f"authenticates ({check.status.value}); the revocation will be re-checked on the next attempt"
        )
    ctx.store.move_stage(
        secret_id, STAGE_REVOKED, to_version=previous_version, from_version=description.version_with(STAGE_REVOKED)
    )
    logger.info(
        "revoked key %s (service account %s %s)",
        previous.key_id,
        previous.service_account_id,
        "deleted" if deleted else "was already gone",
    )
    return RevocationResult("revoked", previous.key_id, previous.service_account_id, previous_version)


def _read(ctx: RotationContext, secret_id: str, version_id: str, stage: str, what: str) -> ManagedKey:
    text = ctx.store.get_string(secret_id, stage=stage, version_id=version_id)
    if text is None:
        raise RevocationError(f"{what} (version {version_id}) holds no value")
    try:
        return ManagedKey.from_json(text, what=what)
    except SecretContractError as exc:
        raise RevocationError(f"cannot revoke: {exc}") from exc
