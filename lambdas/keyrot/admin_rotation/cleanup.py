"""Delete the admin keys nobody needs any more, with the current admin key (the newest): the one place keyrot deletes
an admin key outside a rotation attempt's own leftovers.

Which keys (`plan_cleanup`, pure):
- the previous admin key (AWSPREVIOUS), once its grace period after the promotion of the current key has passed: every
  function reads the admin key per invocation, so by then none still holds it. A key keyrot minted always goes; the
  human-made bootstrap key only with adminKeyRotation.deleteBootstrapKey; a key named for another environment never;
- keys keyrot minted for this environment that no label accounts for (an abandoned attempt, a twin whose create
  answer was lost, a key displaced by a manual put) once older than any invocation can live.
Never the current key or the pending one. Each deletion of the previous key is confirmed (the old value no longer
authenticates) and recorded with the KEYROT_REVOKED label. Keyless probe accounts an interrupted testSecret left are
deleted too.

Who runs it: the admin rotation function on a schedule (the cleanup event, every 5 minutes), after each promotion
(finishSecret: only what is due then; with a grace of 0 that is the previous key), and before minting (createSecret:
a previous key still in its grace refuses the rotation, so at most two keyrot admin keys are ever live).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from keyrot.admin_rotation.context import AdminRotationContext
from keyrot.admin_rotation.errors import AdminKeyDeletionError
from keyrot.admin_rotation.keys import keyrot_keys, live_admin_keys
from keyrot.admin_rotation.naming import AdminKeyName, ProbeAccountName
from keyrot.admin_rotation.value import AdminKeyValue
from keyrot.aws.secrets import SecretDescription
from keyrot.constants import (
    ADMIN_ROTATION_TIMEOUT_SECONDS,
    CLOCK_SKEW_SECONDS,
    ENV_ADMIN_DELETE_BOOTSTRAP_KEY,
    STAGE_CURRENT,
    STAGE_PENDING,
    STAGE_PREVIOUS,
    STAGE_REVOKED,
)
from keyrot.errors import AdminKeyError, KeyrotError
from keyrot.openai_admin import AdminApiKey, InvalidKeyError, OpenAIAdminClient, admin_errors
from keyrot.secret_model import Promotion

logger = logging.getLogger(__name__)

Reason = Literal["previous", "bootstrap", "abandoned"]


@dataclass(frozen=True)
class Doomed:
    key_id: str
    reason: Reason


@dataclass(frozen=True)
class AdminKeysSeen:
    """What the cleanup decides from: the live admin keys and what the admin-key secret's labels hold."""

    environment: str
    listed: tuple[AdminApiKey, ...]
    current_key_id: str | None
    pending_version: str | None = None
    pending_key_id: str | None = None
    pending_unreadable: bool = False  # keep every key named for the pending version
    previous_version: str | None = None
    previous_key_id: str | None = None
    previous_since: datetime | None = None  # when the current key was promoted (the previous key's grace starts)


@dataclass(frozen=True)
class CleanupPlan:
    doomed: tuple[Doomed, ...] = ()
    previous_due_at: datetime | None = None  # set while the previous key waits for its grace to end
    notes: tuple[str, ...] = ()


def plan_cleanup(
    seen: AdminKeysSeen, *, now: datetime, grace_seconds: int, delete_bootstrap: bool, abandoned_before: float
) -> CleanupPlan:
    """Which admin keys to delete now (see the module docstring). Pure."""
    keep = {seen.current_key_id, seen.pending_key_id} - {None}
    by_id = {key.id: key for key in seen.listed}
    doomed: list[Doomed] = []
    notes: list[str] = []
    due_at: datetime | None = None
    previous = by_id.get(seen.previous_key_id or "")
    if seen.previous_version is not None and previous is not None and previous.id not in keep:
        name = AdminKeyName.parse(previous.name)
        since = seen.previous_since
        if name is not None and name.environment != seen.environment:
            notes.append(
                f"the previous admin key {previous.id} is keyrot's admin key of environment {name.environment}: "
                f"never deleted from {seen.environment}"
            )
        elif name is None and not delete_bootstrap:
            notes.append(
                f"the previous admin key {previous.id} was not minted by keyrot (the bootstrap key): left live "
                f"({ENV_ADMIN_DELETE_BOOTSTRAP_KEY} is off)"
            )
        elif since is None:
            notes.append(f"the previous admin key {previous.id}: its promotion time is unknown, so it is kept")
        elif now >= since + timedelta(seconds=grace_seconds):
            doomed.append(Doomed(previous.id, "previous" if name is not None else "bootstrap"))
        else:
            due_at = since + timedelta(seconds=grace_seconds)
    elif seen.previous_version is not None and seen.previous_key_id is None and delete_bootstrap:
        notes.append("the previous admin key's id is not recorded (put it with `keyrot admin-key set --key-id`)")
    for key, name in keyrot_keys(seen.listed, seen.environment):
        if key.id in keep or key.id == seen.previous_key_id:
            continue
        if seen.pending_unreadable and name.token == seen.pending_version:
            continue
        if key.created_at < abandoned_before:
            doomed.append(Doomed(key.id, "abandoned"))
    return CleanupPlan(tuple(doomed), due_at, tuple(notes))


@dataclass(frozen=True)
class AdminCleanup:
    """What a cleanup did. Ids only, never key material."""

    deleted: tuple[Doomed, ...] = ()
    failures: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    previous_due_at: datetime | None = None
    current_key_id: str | None = None
    current_created_at: datetime | None = None
    live_keyrot_keys: int | None = None
    probes_deleted: tuple[str, ...] = ()
    listed: tuple[AdminApiKey, ...] = ()  # the live admin keys after the cleanup

    def age_hours(self, now: datetime) -> float | None:
        if self.current_created_at is None:
            return None
        return max(0.0, (now - self.current_created_at).total_seconds() / 3600)


def clean_up(
    ctx: AdminRotationContext,
    *,
    grace_seconds: int | None = None,
    strict: bool = False,
    description: SecretDescription | None = None,
    current: AdminKeyValue | None = None,
    probes: bool = True,
) -> AdminCleanup:
    """Delete what is due, with the current admin key. `strict`: raise at the first failure (createSecret, and the
    CLI's emergency); otherwise failures are reported in the result and the next run retries them. `probes`: also
    sweep leftover probe accounts (not createSecret's business: no admin key is at stake)."""
    description = description or ctx.describe()
    current_version = description.version_with(STAGE_CURRENT)
    if current_version is None:
        return AdminCleanup(notes=("the admin-key secret holds no admin key yet",))
    current = current or ctx.current(description)
    now = ctx.now()
    admin = ctx.client(current.admin_key)
    listed = live_admin_keys(admin, now)
    seen, previous, notes = _seen(ctx, description, current, listed)
    abandoned_before = now.timestamp() - ADMIN_ROTATION_TIMEOUT_SECONDS - CLOCK_SKEW_SECONDS
    grace = ctx.settings.grace_period_seconds if grace_seconds is None else grace_seconds
    plan = plan_cleanup(
        seen,
        now=now,
        grace_seconds=grace,
        delete_bootstrap=ctx.settings.delete_bootstrap_key,
        abandoned_before=abandoned_before,
    )
    deleted: list[Doomed] = []
    failures = list(notes)
    if notes and strict:
        raise AdminKeyError(notes[0])
    for doomed in plan.doomed:
        try:
            _delete(ctx, admin, doomed, previous if doomed.reason != "abandoned" else None)
        except KeyrotError as exc:
            if strict:
                raise
            logger.error("admin key %s (%s) not deleted: %s", doomed.key_id, doomed.reason, exc)
            failures.append(f"{doomed.key_id} ({doomed.reason}): {exc}")
            continue
        deleted.append(doomed)
    gone = {doomed.key_id for doomed in deleted}
    remaining = tuple(key for key in listed if key.id not in gone)
    if seen.previous_version is not None and seen.previous_key_id is not None:
        if seen.previous_key_id not in {key.id for key in remaining}:
            _record_deleted(ctx, description, seen.previous_version)
    probes_deleted, probe_failures = _sweep_probes(ctx, admin, abandoned_before) if probes else ([], [])
    current_listed = next((key for key in remaining if key.id == current.key_id), None)
    created = datetime.fromtimestamp(current_listed.created_at, UTC) if current_listed else current.created_at
    for note in plan.notes:
        logger.info("admin key cleanup: %s", note)
    return AdminCleanup(
        deleted=tuple(deleted),
        failures=tuple(failures + probe_failures),
        notes=plan.notes,
        previous_due_at=plan.previous_due_at,
        current_key_id=current.key_id,
        current_created_at=created,
        live_keyrot_keys=len(keyrot_keys(remaining, ctx.settings.environment)),
        probes_deleted=tuple(probes_deleted),
        listed=remaining,
    )


def _seen(
    ctx: AdminRotationContext, description: SecretDescription, current: AdminKeyValue, listed: list[AdminApiKey]
) -> tuple[AdminKeysSeen, AdminKeyValue | None, list[str]]:
    """Read the pending and previous versions. An unreadable one is a problem to report (its keys are left alone)."""
    current_version = description.version_with(STAGE_CURRENT)
    problems: list[str] = []
    pending_version = next(
        (vid for vid, stages in description.versions.items() if STAGE_PENDING in stages and vid != current_version),
        None,
    )
    pending: AdminKeyValue | None = None
    pending_unreadable = False
    if pending_version is not None:
        try:
            pending = ctx.read(STAGE_PENDING, pending_version)
        except AdminKeyError as exc:
            pending_unreadable = True
            problems.append(f"the pending admin key (version {pending_version}) cannot be read: {exc}")
    previous_version = description.version_with(STAGE_PREVIOUS)
    previous: AdminKeyValue | None = None
    if previous_version is not None and previous_version != current_version:
        try:
            previous = ctx.read(STAGE_PREVIOUS, previous_version)
        except AdminKeyError as exc:
            problems.append(f"the previous admin key (version {previous_version}) cannot be read: {exc}")
    else:
        previous_version = None
    seen = AdminKeysSeen(
        environment=ctx.settings.environment,
        listed=tuple(listed),
        current_key_id=current.key_id,
        pending_version=pending_version,
        pending_key_id=pending.key_id if pending else None,
        pending_unreadable=pending_unreadable,
        previous_version=previous_version if previous is not None else None,
        previous_key_id=previous.key_id if previous else None,
        previous_since=_promoted_at(ctx, description, current_version) if previous is not None else None,
    )
    return seen, previous, problems


def _promoted_at(
    ctx: AdminRotationContext, description: SecretDescription, current_version: str | None
) -> datetime | None:
    """When the current version became current: the promotion record, else (a key put by hand) its creation."""
    if current_version is None:
        return None
    promotion = Promotion.from_tags(description.tags)
    if promotion is not None and promotion.version_id == current_version:
        return promotion.at
    return ctx.version_created(current_version)


def _delete(
    ctx: AdminRotationContext, admin: OpenAIAdminClient, doomed: Doomed, previous: AdminKeyValue | None
) -> None:
    with admin_errors():
        deleted = admin.delete_admin_api_key(doomed.key_id)
    if previous is not None and previous.key_id == doomed.key_id:
        _confirm_dead(ctx, previous, doomed.key_id)
    logger.info("deleted admin key %s (%s)%s", doomed.key_id, doomed.reason, "" if deleted else ": already gone")


def _confirm_dead(ctx: AdminRotationContext, value: AdminKeyValue, key_id: str) -> None:
    """The deleted key's own value must no longer authenticate (a wrong recorded id would leave it live)."""
    settings = ctx.settings
    for attempt in range(settings.validation_attempts):
        if attempt:
            ctx.sleep(settings.validation_delay_seconds)
        try:
            ctx.client(value.admin_key).check_admin_key()
        except InvalidKeyError:
            return
    raise AdminKeyDeletionError(
        f"admin key {key_id} was deleted but the previous admin key still authenticates: its recorded id is not its "
        "own, or the deletion is still propagating; the next cleanup checks again"
    )


def _record_deleted(ctx: AdminRotationContext, description: SecretDescription, previous_version: str) -> None:
    """Label the previous version KEYROT_REVOKED once OpenAI no longer lists its key (idempotent)."""
    if STAGE_REVOKED in description.stages_of(previous_version):
        return
    ctx.store.move_stage(
        ctx.settings.admin_secret_arn,
        STAGE_REVOKED,
        to_version=previous_version,
        from_version=description.version_with(STAGE_REVOKED),
    )


def _sweep_probes(
    ctx: AdminRotationContext, admin: OpenAIAdminClient, created_before: float
) -> tuple[list[str], list[str]]:
    """Delete the keyless probe accounts of this environment an interrupted testSecret left behind."""
    project_id = ctx.settings.project_id
    environment = ctx.settings.environment
    try:
        with admin_errors():
            accounts = list(admin.iter_service_accounts(project_id))
            doomed = [
                account.id
                for account in accounts
                if (name := ProbeAccountName.parse(account.name)) is not None
                and name.environment == environment
                and account.created_at < created_before
            ]
            deleted = [account_id for account_id in doomed if admin.delete_service_account(project_id, account_id)]
    except KeyrotError as exc:
        return [], [f"probe accounts: {exc}"]
    return deleted, []


def describe_deleted(deleted: Iterable[Doomed]) -> list[str]:
    return [f"{doomed.key_id} ({doomed.reason})" for doomed in deleted]
