"""The four rotation steps. Each inspects state before acting, so any step can be retried after a crash."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta

from keyrot.aws.secrets import SecretDescription
from keyrot.constants import CLOCK_SKEW_SECONDS, ROTATION_TIMEOUT_SECONDS, STAGE_CURRENT, STAGE_PENDING
from keyrot.errors import AwsCallError, KeyValidationError, RotationStateError, SecretContractError
from keyrot.openai_admin import KeyStatus, NotFoundError, OpenAIAdminClient, OpenAIError
from keyrot.rotation.context import RotationContext, admin_errors
from keyrot.rotation.events import RotationRequest, StepName
from keyrot.rotation.naming import ServiceAccountName
from keyrot.rotation.revoke import RevocationResult, revoke_previous
from keyrot.rotation.validation import wait_until_live
from keyrot.secret_model import ManagedKey, SecretIdentity

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepResult:
    """What a step did, for logs and metrics. Never holds key material."""

    action: str
    key_id: str | None = None
    revocation: RevocationResult | None = None


def create_secret(ctx: RotationContext, request: RotationRequest, description: SecretDescription) -> StepResult:
    """Mint a key on a new service account and store it as AWSPENDING, unless a pending value already exists.

    Service accounts minted for this token but never stored (a crash before the put, a create whose answer was lost,
    a duplicate invocation that lost the race to store its key) are found by name. Those older than any invocation can
    live are abandoned and deleted before minting; younger ones may be the one a concurrent invocation is about to
    store, so they are deleted only once this invocation's pending value is settled.
    """
    identity = _identity(ctx, description)
    name = str(ServiceAccountName(identity.environment, identity.key_name, request.token))
    stored = ctx.store.get_string(request.secret_id, stage=STAGE_PENDING, version_id=request.token)
    if stored is not None:
        pending = ManagedKey.from_json(stored, what="pending secret value")
        pending.check_identity(identity, what="pending secret value")
        _sweep(ctx.admin(), identity.project_id, name, keep=pending.service_account_id)
        return StepResult("pending value already stored", key_id=pending.key_id)

    admin = ctx.admin()
    with admin_errors():
        leftovers = [account for account in admin.iter_service_accounts(identity.project_id) if account.name == name]
    abandoned_before = ctx.now().timestamp() - ROTATION_TIMEOUT_SECONDS - CLOCK_SKEW_SECONDS
    _delete_leftovers(admin, identity.project_id, [a.id for a in leftovers if a.created_at < abandoned_before])
    expiry = ctx.settings.key_expiry_seconds or None
    with admin_errors():
        minted = admin.create_service_account(identity.project_id, name, expires_in_seconds=expiry)
    created_at = ctx.now()
    key = ManagedKey(
        api_key=minted.api_key,
        key_id=minted.key_id,
        service_account_id=minted.service_account_id,
        project_id=identity.project_id,
        environment=identity.environment,
        key_name=identity.key_name,
        created_at=created_at,
        expires_at=created_at + timedelta(seconds=expiry) if expiry else None,
    )
    try:
        ctx.store.put_pending(request.secret_id, request.token, key.to_json(), rotation_token=request.rotation_token)
    except AwsCallError:
        winner = _discard_if_unstored(ctx, request, admin, key)
        if winner is None:
            raise
        # A duplicate invocation stored its key first (Secrets Manager refuses a second value): that one stands.
        _sweep(admin, identity.project_id, name, keep=winner.service_account_id)
        return StepResult("pending value stored by a concurrent invocation", key_id=winner.key_id)
    young = [a.id for a in leftovers if a.created_at >= abandoned_before and a.id != key.service_account_id]
    _delete_leftovers(admin, identity.project_id, young)
    return StepResult("minted", key_id=key.key_id)


def set_secret(ctx: RotationContext, request: RotationRequest, description: SecretDescription) -> StepResult:
    """Nothing to push: OpenAI minted the key. testSecret reads and checks the pending value, so no read here."""
    return StepResult("nothing to set (OpenAI-minted key)")


def test_secret(ctx: RotationContext, request: RotationRequest, description: SecretDescription) -> StepResult:
    """Prove the pending key belongs to the configured project and authenticates (allowing for propagation).

    Configuring rotation with RotateImmediately=false runs testSecret alone, on a copy of the current value; on a
    secret that has no value yet there is nothing to test, and the configuration must not fail for it.
    """
    stored = _read_pending_text(ctx, request, description)  # one read serves both questions
    if stored is None and description.version_with(STAGE_CURRENT) is None:
        return StepResult("nothing to test: the secret has no value yet")
    pending = _parse_pending(ctx, description, request, stored)
    with admin_errors():
        try:
            listed = ctx.admin().get_project_api_key(pending.project_id, pending.key_id)
        except NotFoundError:
            raise KeyValidationError(
                f"pending key {pending.key_id} is not a key of OpenAI project {pending.project_id}"
            ) from None
    if listed.owner_type != "service_account" or listed.owner_id != pending.service_account_id:
        raise KeyValidationError(
            f"pending key {pending.key_id} is not owned by service account {pending.service_account_id}"
        )
    settings = ctx.settings
    check = wait_until_live(
        ctx.probe,
        pending.api_key,
        attempts=settings.validation_attempts,
        delay_seconds=settings.validation_delay_seconds,
        sleep=ctx.sleep,
    )
    if check.status is KeyStatus.DEAD:
        raise KeyValidationError(
            f"pending key {pending.key_id} is rejected by OpenAI (invalid_api_key) after "
            f"{settings.validation_attempts} attempt(s); AWSCURRENT is unchanged"
        )
    if check.status is KeyStatus.RESTRICTED:
        logger.warning("pending key %s authenticates but is restricted: %s", pending.key_id, check.detail)
    return StepResult(f"validated ({check.status.value})", key_id=pending.key_id)


def finish_secret(ctx: RotationContext, request: RotationRequest, description: SecretDescription) -> StepResult:
    """Make the pending version AWSCURRENT, drop AWSPENDING, and in emergency mode revoke the previous key."""
    current = description.version_with(STAGE_CURRENT)
    key_id: str | None = None
    if current != request.token:
        pending = _read_pending(ctx, request, description)  # never promote an empty or foreign version
        key_id = pending.key_id
        ctx.store.move_stage(request.secret_id, STAGE_CURRENT, to_version=request.token, from_version=current)
    if STAGE_PENDING in description.stages_of(request.token):
        ctx.store.remove_stage(request.secret_id, STAGE_PENDING, from_version=request.token)
    revocation = None
    if ctx.settings.emergency:
        revocation = revoke_previous(ctx, request.secret_id)
    return StepResult("promoted" if key_id else "already current", key_id=key_id, revocation=revocation)


test_secret.__test__ = False  # type: ignore[attr-defined]  # a rotation step, not a pytest test

StepFunction = Callable[[RotationContext, RotationRequest, SecretDescription], StepResult]
STEPS: dict[StepName, StepFunction] = {
    "createSecret": create_secret,
    "setSecret": set_secret,
    "testSecret": test_secret,
    "finishSecret": finish_secret,
}


def _identity(ctx: RotationContext, description: SecretDescription) -> SecretIdentity:
    identity = SecretIdentity.from_tags(description.tags)
    if identity.environment != ctx.settings.environment:
        raise RotationStateError(
            f"secret {description.name} belongs to environment {identity.environment!r}; this function "
            f"rotates {ctx.settings.environment!r} only"
        )
    return identity


def _read_pending(ctx: RotationContext, request: RotationRequest, description: SecretDescription) -> ManagedKey:
    return _parse_pending(ctx, description, request, _read_pending_text(ctx, request, description))


def _read_pending_text(ctx: RotationContext, request: RotationRequest, description: SecretDescription) -> str | None:
    return ctx.store.get_string(request.secret_id, stage=_pending_stage(description, request), version_id=request.token)


def _parse_pending(
    ctx: RotationContext, description: SecretDescription, request: RotationRequest, stored: str | None
) -> ManagedKey:
    identity = _identity(ctx, description)
    if stored is None:
        raise RotationStateError(f"version {request.token} of secret {description.name} holds no value yet")
    pending = ManagedKey.from_json(stored, what="pending secret value")
    pending.check_identity(identity, what="pending secret value")
    return pending


def _pending_stage(description: SecretDescription, request: RotationRequest) -> str:
    # After a crash inside finishSecret the token may already be current: read it under the label it has.
    stages = description.stages_of(request.token)
    return STAGE_PENDING if STAGE_PENDING in stages else STAGE_CURRENT


def _sweep(admin: OpenAIAdminClient, project_id: str, name: str, *, keep: str) -> None:
    """Delete the service accounts named for this rotation except `keep`, the one the pending value holds."""
    with admin_errors():
        doomed = [account.id for account in admin.iter_service_accounts(project_id) if account.name == name]
    _delete_leftovers(admin, project_id, [account_id for account_id in doomed if account_id != keep])


def _delete_leftovers(admin: OpenAIAdminClient, project_id: str, account_ids: list[str]) -> None:
    """Delete accounts minted for this rotation whose keys were never stored (nobody holds those keys)."""
    if not account_ids:
        return
    with admin_errors():
        deleted = sum(1 for account_id in account_ids if admin.delete_service_account(project_id, account_id))
    if deleted:
        logger.warning("deleted %d leftover service account(s) named for this rotation", deleted)


def _discard_if_unstored(
    ctx: RotationContext, request: RotationRequest, admin: OpenAIAdminClient, key: ManagedKey
) -> ManagedKey | None:
    """After a failed PutSecretValue: delete the new account unless its key provably landed. Returns the pending
    value if another invocation's key is stored instead (then the new account is deleted too), else None."""
    with suppress(AwsCallError, OpenAIError, SecretContractError):
        stored = ctx.store.get_string(request.secret_id, stage=STAGE_PENDING, version_id=request.token)
        other = ManagedKey.from_json(stored, what="pending secret value") if stored is not None else None
        if other is not None and other.service_account_id == key.service_account_id:
            return None  # ours landed after all (the answer was lost): the next attempt finds it stored
        admin.delete_service_account(key.project_id, key.service_account_id)
        return other
    return None
