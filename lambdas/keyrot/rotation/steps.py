"""The four rotation steps. Each inspects state before acting, so any step can be retried after a crash."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from keyrot.aws.secrets import SecretDescription
from keyrot.constants import CLOCK_SKEW_SECONDS, ROTATION_TIMEOUT_SECONDS, STAGE_CURRENT, STAGE_PENDING
from keyrot.errors import AwsCallError, KeyValidationError, RotationStateError, SecretContractError
from keyrot.inventory import KeyMeta, remember
from keyrot.inventory.naming import ServiceAccountName
from keyrot.openai_admin import (
    KeyStatus,
    NotFoundError,
    OpenAIAdminClient,
    OpenAIError,
    PermissionDeniedError,
    admin_errors,
)
from keyrot.rotation.attempts import attempt_accounts, delete_attempt_accounts, discard_attempt
from keyrot.rotation.contain import Cleanup, contain, revoke_displaced
from keyrot.rotation.context import RotationContext
from keyrot.rotation.deployment import declared_identity
from keyrot.rotation.errors import StalePendingKeyError
from keyrot.rotation.events import RotationRequest, StepName
from keyrot.rotation.mint import mint_key
from keyrot.rotation.revoke import RevocationResult
from keyrot.rotation.validation import wait_until_live
from keyrot.scopes import describe_scopes, validation_plan
from keyrot.secret_model import ManagedKey, Promotion, SecretIdentity

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepResult:
    """What a step did, for logs and metrics. Never holds key material."""

    action: str
    key_id: str | None = None
    revocation: RevocationResult | None = None
    cleanup: Cleanup | None = None  # finishSecret: the displaced (or, in an emergency, every other) key revoked


def create_secret(ctx: RotationContext, request: RotationRequest, description: SecretDescription) -> StepResult:
    """Mint a key on a new service account and store it as AWSPENDING, unless a pending value already exists.

    The key carries exactly the scopes the deployment declares for the key name (none declared: unrestricted), and
    the pending value records them; see keyrot.rotation.mint for how a scoped key is minted without twins.

    Service accounts minted for this token but never stored (a crash before the put, a create whose answer was lost,
    a duplicate invocation that lost the race to store its key) are found by name. Those older than any invocation can
    live are abandoned and deleted before minting; younger ones may be the one a concurrent invocation is about to
    store, so they are deleted only once this invocation's pending value is settled.
    """
    identity = declared_identity(description, ctx.settings)
    name = ServiceAccountName(identity.environment, identity.key_name, request.token)
    stored = ctx.store.get_string(request.secret_id, stage=STAGE_PENDING, version_id=request.token)
    admin = ctx.admin()
    if stored is not None:
        pending = ManagedKey.from_json(stored, what="pending secret value")
        pending.check_identity(identity, what="pending secret value")
        delete_attempt_accounts(admin, identity.project_id, name, keep={pending.service_account_id})
        return StepResult("pending value already stored", key_id=pending.key_id)

    leftovers = attempt_accounts(admin, identity.project_id, name)
    abandoned_before = ctx.now().timestamp() - ROTATION_TIMEOUT_SECONDS - CLOCK_SKEW_SECONDS
    delete_attempt_accounts(admin, identity.project_id, name, created_before=abandoned_before, listed=leftovers)
    expiry = ctx.settings.key_expiry_seconds or None
    with admin_errors():
        minted = mint_key(
            admin,
            identity.project_id,
            name,
            scopes=ctx.settings.scopes_for(identity.key_name),
            expires_in_seconds=expiry,
        )
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
        scopes=minted.scopes,
    )
    try:
        ctx.store.put_pending(request.secret_id, request.token, key.to_json(), rotation_token=request.rotation_token)
    except AwsCallError:
        winner = _discard_if_unstored(ctx, request, admin, key)
        if winner is None:
            raise
        # A duplicate invocation stored its key first (Secrets Manager refuses a second value): that one stands.
        delete_attempt_accounts(admin, identity.project_id, name, keep={winner.service_account_id})
        return StepResult("pending value stored by a concurrent invocation", key_id=winner.key_id)
    young = [a for a in leftovers if a.created_at >= abandoned_before]
    delete_attempt_accounts(admin, identity.project_id, name, keep={key.service_account_id}, listed=young)
    return StepResult("minted", key_id=key.key_id)


def set_secret(ctx: RotationContext, request: RotationRequest, description: SecretDescription) -> StepResult:
    """Nothing to push: OpenAI minted the key. testSecret reads and checks the pending value, so no read here."""
    return StepResult("nothing to set (OpenAI-minted key)")


def test_secret(ctx: RotationContext, request: RotationRequest, description: SecretDescription) -> StepResult:
    """Prove the pending key is keyrot's for this version, lives long enough, and works.

    "Works" is judged by a request the key's recorded scopes allow (keyrot.scopes.validation_plan): a key whose scopes
    allow a token-free request must succeed on it; any other key must succeed, or be refused only for a missing scope
    (OpenAI's proof that it authenticated). A key OpenAI does not accept at all (invalid_api_key) is never promoted.

    Configuring rotation with RotateImmediately=false runs testSecret alone, on a copy of the current value; on a
    secret that has no value yet there is nothing to test, and the configuration must not fail for it.
    """
    stored = _read_pending_text(ctx, request, description)  # one read serves both questions
    if stored is None and description.version_with(STAGE_CURRENT) is None:
        return StepResult("nothing to test: the secret has no value yet")
    identity = declared_identity(description, ctx.settings)
    pending = _parse_pending(description, request, stored, identity)
    _refuse_if_expiring(ctx, request, description, pending, identity)
    # Minted for this version; or, for RotateImmediately=false (testSecret alone, on a copy of the current value),
    # the current version's own account.
    owners = {request.token, description.version_with(STAGE_CURRENT) or request.token}
    expected = {str(ServiceAccountName(identity.environment, identity.key_name, token)) for token in owners}
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
    if listed.owner_name is not None and listed.owner_name not in expected:
        minted_for = str(ServiceAccountName(identity.environment, identity.key_name, request.token))
        raise KeyValidationError(
            f"pending key {pending.key_id} belongs to service account {pending.service_account_id}, which is not "
            f"keyrot's {minted_for!r}: it is not promoted"
        )
    settings = ctx.settings
    plan = validation_plan(pending.scopes)
    try:
        check = wait_until_live(
            ctx.probe,
            pending.api_key,
            attempts=settings.validation_attempts,
            delay_seconds=settings.validation_delay_seconds,
            sleep=ctx.sleep,
            plan=plan,
        )
    except PermissionDeniedError as exc:
        raise KeyValidationError(
            f"pending key {pending.key_id} is refused by OpenAI after {settings.validation_attempts} attempt(s) with "
            f"an answer that does not show it authenticates ({exc}); AWSCURRENT is unchanged"
        ) from exc
    if check.status is KeyStatus.DEAD:
        raise KeyValidationError(
            f"pending key {pending.key_id} is rejected by OpenAI (invalid_api_key) after "
            f"{settings.validation_attempts} attempt(s); AWSCURRENT is unchanged"
        )
    if check.status is KeyStatus.RESTRICTED and plan.allowed:
        raise KeyValidationError(
            f"pending key {pending.key_id} authenticates but OpenAI refuses it {plan.request}, which its scopes "
            f"({describe_scopes(pending.scopes)}) allow ({check.detail}): it lacks a scope it was minted with, after "
            f"{settings.validation_attempts} attempt(s); AWSCURRENT is unchanged"
        )
    if check.status is KeyStatus.RESTRICTED and pending.scopes is None:
        logger.warning("pending key %s authenticates but is restricted: %s", pending.key_id, check.detail)
    elif check.status is KeyStatus.RESTRICTED:
        logger.info(
            "pending key %s authenticates (refused %s for a scope it was not minted with: %s)",
            pending.key_id,
            plan.request,
            describe_scopes(pending.scopes),
        )
    return StepResult(f"validated ({check.status.value})", key_id=pending.key_id)


def finish_secret(ctx: RotationContext, request: RotationRequest, description: SecretDescription) -> StepResult:
    """Make the pending version AWSCURRENT (recording when), revoke what it displaced, then drop AWSPENDING.

    The keyrot:promoted tag is written before AWSCURRENT moves (a retry rewrites it), so the promotion time is known
    whenever the version is current. After the promotion, keys it displaced are revoked: a failure there is reported
    (and retried by the janitor) but never undoes the promotion. In emergency mode every other key is revoked, and
    a failure fails the step (AWSPENDING stays on the new current version), so Secrets Manager's retry completes it.
    """
    identity = declared_identity(description, ctx.settings)
    current = description.version_with(STAGE_CURRENT)
    key_id: str | None = None
    if current != request.token:
        pending = _parse_pending(description, request, _read_pending_text(ctx, request, description), identity)
        _refuse_if_expiring(ctx, request, description, pending, identity)
        key_id = pending.key_id
        remember(description.arn, request.token, KeyMeta.of(pending))  # the cleanup's inventory needs not read it
        ctx.store.tag(request.secret_id, [Promotion(request.token, ctx.now()).to_tag()])
        ctx.store.move_stage(request.secret_id, STAGE_CURRENT, to_version=request.token, from_version=current)
    action = "promoted" if key_id else "already current"
    if ctx.settings.emergency:
        cleanup = contain(ctx, request.secret_id)  # raises at its first failure: the retry resumes it
    else:
        cleanup = revoke_displaced(ctx, request.secret_id)
    # Last: a rotation counts as finished (for Secrets Manager and `keyrot rotate`) once AWSPENDING is gone.
    if STAGE_PENDING in description.stages_of(request.token):
        ctx.store.remove_stage(request.secret_id, STAGE_PENDING, from_version=request.token)
    return StepResult(action, key_id=key_id, revocation=_previous_result(cleanup), cleanup=cleanup)


test_secret.__test__ = False  # type: ignore[attr-defined]  # a rotation step, not a pytest test

StepFunction = Callable[[RotationContext, RotationRequest, SecretDescription], StepResult]
STEPS: dict[StepName, StepFunction] = {
    "createSecret": create_secret,
    "setSecret": set_secret,
    "testSecret": test_secret,
    "finishSecret": finish_secret,
}


def _refuse_if_expiring(
    ctx: RotationContext,
    request: RotationRequest,
    description: SecretDescription,
    pending: ManagedKey,
    identity: SecretIdentity,
) -> None:
    """A pending key whose OpenAI-side expiry falls before the next rotation plus the maximum grace would die while
    current (or while still the previous key in use): discard the attempt instead, so the next one mints afresh."""
    if pending.expires_at is None:
        return
    now = ctx.now()
    floor = ctx.settings.promotion_floor_seconds
    left = (pending.expires_at - now).total_seconds()
    if left >= floor:
        return
    name = ServiceAccountName(identity.environment, identity.key_name, request.token)
    discarded = discard_attempt(ctx, request.secret_id, request.token, name, identity.project_id)
    raise StalePendingKeyError(
        f"pending key {pending.key_id} of {description.name} expires at {_iso(pending.expires_at)}, "
        f"{_days(left)} from now: less than the rotation interval ({_days(ctx.settings.rotation_interval_seconds)}) "
        f"plus the maximum grace period ({_days(ctx.settings.max_grace_period_seconds)}), so it would die in use. "
        f"It was not promoted but discarded ({len(discarded.deleted_accounts)} service account(s) deleted, "
        f"AWSPENDING removed); AWSCURRENT is unchanged. Start a fresh rotation with `keyrot rotate --env "
        f"{identity.environment} --key {identity.key_name}`, or let the schedule start one"
    )


def _previous_result(cleanup: Cleanup) -> RevocationResult | None:
    """The revocation to report as "the previous key's" (metrics and logs count revoked keys from it)."""
    return next((result for result in cleanup.revoked if result.status == "revoked"), None)


def _read_pending_text(ctx: RotationContext, request: RotationRequest, description: SecretDescription) -> str | None:
    return ctx.store.get_string(request.secret_id, stage=_pending_stage(description, request), version_id=request.token)


def _parse_pending(
    description: SecretDescription, request: RotationRequest, stored: str | None, identity: SecretIdentity
) -> ManagedKey:
    if stored is None:
        raise RotationStateError(f"version {request.token} of secret {description.name} holds no value yet")
    pending = ManagedKey.from_json(stored, what="pending secret value")
    pending.check_identity(identity, what="pending secret value")
    return pending


def _pending_stage(description: SecretDescription, request: RotationRequest) -> str:
    # After a crash inside finishSecret the token may already be current: read it under the label it has.
    stages = description.stages_of(request.token)
    return STAGE_PENDING if STAGE_PENDING in stages else STAGE_CURRENT


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


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _days(seconds: float) -> str:
    return f"{seconds / 86400:.1f} days"
