"""The admin-key secret's four rotation steps. Each inspects state before acting, so any step can be retried after a
crash. Which admin key each step calls OpenAI with:

- createSecret: the current key (AWSCURRENT) lists admin keys, deletes what is due and mints the new key;
- setSecret: nothing to call;
- testSecret: the pending key proves every capability (the current key is asked one question only: whether the
  organization's audit log is readable at all);
- finishSecret: the promotion calls nothing; its cleanup after the promotion uses the new key, and the discard of a
  pending key too close to its expiry uses the current one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from keyrot.admin_rotation.capabilities import capability, check_capabilities, wait_until_live
from keyrot.admin_rotation.cleanup import AdminCleanup, clean_up
from keyrot.admin_rotation.context import AdminRotationContext
from keyrot.admin_rotation.errors import AdminKeyValidationError, AdminRotationTooSoonError, StalePendingAdminKeyError
from keyrot.admin_rotation.keys import delete_attempt_keys, live_admin_keys
from keyrot.admin_rotation.naming import AdminKeyName, ProbeAccountName
from keyrot.admin_rotation.value import AdminKeyValue
from keyrot.aws.secrets import SecretDescription
from keyrot.constants import STAGE_CURRENT, STAGE_PENDING
from keyrot.errors import AdminKeyError, AwsCallError, KeyrotError, RotationStateError
from keyrot.openai_admin import NotFoundError, OpenAIAdminClient, OpenAIError, admin_errors
from keyrot.redaction import scrub
from keyrot.rotation.events import RotationRequest, StepName
from keyrot.secret_model import Promotion

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdminStepResult:
    """What a step did, for logs and metrics. Ids only."""

    action: str
    key_id: str | None = None
    cleanup: AdminCleanup | None = None  # finishSecret: what the cleanup after the promotion did


def create_secret(
    ctx: AdminRotationContext, request: RotationRequest, description: SecretDescription
) -> AdminStepResult:
    """Mint a new admin key (with its expiry backstop) and store it as AWSPENDING, unless a pending value exists.

    First the cleanup deletes what is due, with the current key; a previous admin key still in its grace refuses the
    rotation (a third live keyrot admin key otherwise). Keys minted for this token but never stored (a crash before the
    put, a create whose answer was lost) are found by name: those older than any invocation can live are deleted
    before minting, younger ones (a concurrent invocation may be about to store one) once this invocation's pending
    value is settled. A create is never retried blindly: a lost answer leaves a key that only its name can find.
    """
    name = AdminKeyName(ctx.settings.environment, request.token)
    current = ctx.current(description)
    admin = ctx.client(current.admin_key)
    stored = ctx.store.get_string(request.secret_id, stage=STAGE_PENDING, version_id=request.token)
    if stored is not None:
        pending = _parse(stored, request)
        delete_attempt_keys(admin, live_admin_keys(admin, ctx.now()), name, keep={pending.key_id})
        return AdminStepResult("pending value already stored", key_id=pending.key_id)

    cleanup = clean_up(ctx, strict=True, description=description, current=current, probes=False)
    if cleanup.previous_due_at is not None:
        raise AdminRotationTooSoonError(
            f"the previous admin key of {description.name} is in its grace period until "
            f"{_iso(cleanup.previous_due_at)} (functions may still hold it); a rotation now would make three live "
            "keyrot admin keys. Secrets Manager retries; or rotate again after that time"
        )
    young = [key for key in cleanup.listed if key.name == str(name)]  # older ones were deleted as abandoned
    expiry = ctx.settings.expiry_seconds
    with admin_errors():
        minted = admin.create_admin_api_key(str(name), expires_in_seconds=expiry)
    created = datetime.fromtimestamp(minted.key.created_at, UTC)
    expires = datetime.fromtimestamp(minted.key.expires_at, UTC) if minted.key.expires_at else None
    value = AdminKeyValue(
        minted.value, minted.key.id, created_at=created, expires_at=expires or _after(created, expiry)
    )
    try:
        ctx.store.put_pending(request.secret_id, request.token, value.to_json(), rotation_token=request.rotation_token)
    except AwsCallError:
        winner = _discard_if_unstored(ctx, request, admin, value)
        if winner is None:
            raise
        # A duplicate invocation stored its key first (Secrets Manager refuses a second value): that one stands.
        delete_attempt_keys(admin, live_admin_keys(admin, ctx.now()), name, keep={winner.key_id})
        return AdminStepResult("pending value stored by a concurrent invocation", key_id=winner.key_id)
    delete_attempt_keys(admin, young, name, keep={value.key_id})
    return AdminStepResult("minted", key_id=value.key_id)


def set_secret(ctx: AdminRotationContext, request: RotationRequest, description: SecretDescription) -> AdminStepResult:
    """Nothing to push: OpenAI minted the key."""
    return AdminStepResult("nothing to set (OpenAI-minted key)")


def test_secret(ctx: AdminRotationContext, request: RotationRequest, description: SecretDescription) -> AdminStepResult:
    """Prove, with the pending key itself, that it is keyrot's key for this version, lives long enough, and can do
    everything keyrot needs (capabilities.py). Refuses to promote otherwise; AWSCURRENT is never touched.

    RotateImmediately=false runs testSecret alone, on a copy of the current value: the current key is then checked
    (it may be the human-made bootstrap key, whose name is not keyrot's).
    """
    stored = ctx.store.get_string(request.secret_id, stage=STAGE_PENDING, version_id=request.token)
    current_version = description.version_with(STAGE_CURRENT)
    if stored is None and current_version is None:
        return AdminStepResult("nothing to test: the secret has no value yet")
    pending = _parse(stored, request)
    _refuse_if_expiring(ctx, request, description, pending)
    current_text = ctx.store.get_string(request.secret_id, stage=STAGE_CURRENT) if current_version else None
    settings = ctx.settings
    admin = ctx.client(pending.admin_key)
    wait_until_live(
        admin,
        pending.key_id,
        attempts=settings.validation_attempts,
        delay_seconds=settings.validation_delay_seconds,
        sleep=ctx.sleep,
    )
    if stored != current_text:  # else a copy of the current value: its key need not be named for this version
        _check_minted_for(admin, pending, AdminKeyName(settings.environment, request.token))
    notes = check_capabilities(
        admin,
        key_id=pending.key_id,
        project_id=settings.project_id,
        probe_name=ProbeAccountName(settings.environment, request.token),
        now=ctx.now(),
        current=lambda: ctx.client(AdminKeyValue.from_json(current_text).admin_key),
    )
    action = "validated" + (f" ({'; '.join(notes)})" if notes else "")
    return AdminStepResult(action, key_id=pending.key_id)


def finish_secret(
    ctx: AdminRotationContext, request: RotationRequest, description: SecretDescription
) -> AdminStepResult:
    """Make the pending version AWSCURRENT (recording when), clean up what is due with the new key, drop AWSPENDING.

    The previous admin key is not deleted here: functions may still hold it. Its grace starts at the keyrot:promoted
    record written just before AWSCURRENT moves, and the scheduled cleanup deletes it once the grace has passed (with
    a grace of 0, this step's cleanup does). A failed cleanup is reported, never undoes the promotion.
    """
    current_version = description.version_with(STAGE_CURRENT)
    if current_version != request.token:
        stored = ctx.store.get_string(request.secret_id, stage=STAGE_PENDING, version_id=request.token)
        new = _parse(stored, request)
        _refuse_if_expiring(ctx, request, description, new)
        ctx.store.tag(request.secret_id, [Promotion(request.token, ctx.now()).to_tag()])
        ctx.store.move_stage(request.secret_id, STAGE_CURRENT, to_version=request.token, from_version=current_version)
        action = "promoted"
    else:
        new = _parse(ctx.store.get_string(request.secret_id, stage=STAGE_CURRENT, version_id=request.token), request)
        action = "already current"
    try:
        cleanup = clean_up(ctx, current=new)
    except KeyrotError as exc:
        logger.error("admin key cleanup after the promotion failed: %s", exc)
        cleanup = AdminCleanup(failures=(f"cleanup after the promotion: {exc}",))
    # Last: a rotation counts as finished (for Secrets Manager and `keyrot rotate`) once AWSPENDING is gone.
    if STAGE_PENDING in ctx.store.describe(request.secret_id).stages_of(request.token):
        ctx.store.remove_stage(request.secret_id, STAGE_PENDING, from_version=request.token)
    return AdminStepResult(action, key_id=new.key_id, cleanup=cleanup)


test_secret.__test__ = False  # type: ignore[attr-defined]  # a rotation step, not a pytest test

AdminStepFunction = Callable[[AdminRotationContext, RotationRequest, SecretDescription], AdminStepResult]
STEPS: dict[StepName, AdminStepFunction] = {
    "createSecret": create_secret,
    "setSecret": set_secret,
    "testSecret": test_secret,
    "finishSecret": finish_secret,
}


def _parse(stored: str | None, request: RotationRequest) -> AdminKeyValue:
    if stored is None:
        raise RotationStateError(f"version {request.token} of the admin-key secret holds no value yet")
    try:
        return AdminKeyValue.from_json(stored, what="pending admin-key secret value")
    except AdminKeyError as exc:
        raise RotationStateError(f"version {request.token} of the admin-key secret: {exc}") from None


def _check_minted_for(admin: OpenAIAdminClient, pending: AdminKeyValue, name: AdminKeyName) -> None:
    """The pending key must be the organization's admin key keyrot minted for this version (asked with itself)."""
    if pending.key_id is None:
        raise AdminKeyValidationError(f"the pending admin key of version {name.token} names no key id")
    with capability(pending.key_id, "read its own admin key record"):
        try:
            listed = admin.get_admin_api_key(pending.key_id)
        except NotFoundError:
            raise AdminKeyValidationError(
                f"the pending admin key {pending.key_id} is not an admin key of the organization"
            ) from None
    if listed.name != str(name):
        shown = scrub(str(listed.name)[:120])
        raise AdminKeyValidationError(
            f"the pending admin key {pending.key_id} is named {shown!r}, not {str(name)!r}: keyrot did not mint it "
            "for this version"
        )


def _refuse_if_expiring(
    ctx: AdminRotationContext, request: RotationRequest, description: SecretDescription, pending: AdminKeyValue
) -> None:
    """A pending admin key whose expiry comes before its successor's promotion plus grace would die in use: delete it
    (with the current key), take AWSPENDING off, so the next attempt mints afresh."""
    if pending.expires_at is None or description.version_with(STAGE_CURRENT) == request.token:
        return
    left = (pending.expires_at - ctx.now()).total_seconds()
    floor = ctx.settings.promotion_floor_seconds
    if left >= floor:
        return
    current = ctx.current(description)
    if pending.key_id == current.key_id:
        return  # a copy of the current value (testSecret alone): nothing to discard
    if STAGE_PENDING in description.stages_of(request.token):
        ctx.store.remove_stage(request.secret_id, STAGE_PENDING, from_version=request.token)
    admin = ctx.client(current.admin_key)
    deleted = delete_attempt_keys(
        admin, live_admin_keys(admin, ctx.now()), AdminKeyName(ctx.settings.environment, request.token)
    )
    raise StalePendingAdminKeyError(
        f"the pending admin key {pending.key_id} expires at {_iso(pending.expires_at)}, {left / 86400:.1f} days from "
        f"now: less than the rotation interval plus slack and grace ({floor / 86400:.1f} days), so it would die in "
        f"use. It was not promoted but discarded ({len(deleted)} admin key(s) deleted, AWSPENDING removed); "
        f"AWSCURRENT is unchanged. Start a fresh rotation with `keyrot rotate --admin --env "
        f"{ctx.settings.environment}`"
    )


def _discard_if_unstored(
    ctx: AdminRotationContext, request: RotationRequest, admin: OpenAIAdminClient, value: AdminKeyValue
) -> AdminKeyValue | None:
    """After a failed PutSecretValue: delete the new key unless it provably landed. Returns the pending value if
    another invocation's key is stored instead (then the new key is deleted too), else None."""
    with suppress(AwsCallError, OpenAIError, AdminKeyError):
        stored = ctx.store.get_string(request.secret_id, stage=STAGE_PENDING, version_id=request.token)
        other = AdminKeyValue.from_json(stored) if stored is not None else None
        if other is not None and other.key_id == value.key_id:
            return None  # ours landed after all (the answer was lost): the next attempt finds it stored
        admin.delete_admin_api_key(value.key_id or "")
        return other
    return None


def _after(moment: datetime, seconds: int) -> datetime:
    return moment + timedelta(seconds=seconds)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
