"""No key outlives its purpose: revoke what the inventory says a secret no longer needs.

- `retire(ctx, entry)`: revoke one inventory entry's key: through `revoke_version` when a version holds it, else
  (an abandoned attempt: no version stores its key) through `delete_attempt_accounts`.
- `revoke_displaced(ctx, secret_id)`: every DISPLACED key of the secret (finishSecret after every promotion: a key
  pushed out of AWSPREVIOUS before its grace ended, a key labelled revoked that OpenAI still lists).
- `contain(ctx, secret_id)`: emergency. Everything but the current key: the previous key (whichever key leaked, it
  is current or previous, and the current one was just replaced), displaced keys and leftover accounts. It ends with
  exactly one live keyrot key for the secret, unless a newer rotation is already under way (its accounts are left
  alone and reported).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from keyrot.errors import KeyrotError
from keyrot.inventory import (
    InventoryEntry,
    KeyState,
    SecretInventory,
    ServiceAccountName,
    add_unlabelled_versions,
    classify,
    read_openai,
    record_of,
)
from keyrot.rotation.attempts import delete_attempt_accounts
from keyrot.rotation.context import RotationContext
from keyrot.rotation.deployment import declared_identity
from keyrot.rotation.revoke import RevocationResult, revoke_version

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cleanup:
    """What a cleanup revoked, what it could not (messages name ids, never keys), and what it left alone."""

    revoked: tuple[RevocationResult, ...] = ()
    failures: tuple[str, ...] = ()
    left_in_progress: tuple[str, ...] = ()  # accounts of a rotation under way (service account ids)

    @property
    def revoked_keys(self) -> tuple[str, ...]:
        return tuple(r.key_id or r.service_account_id or "?" for r in self.revoked if r.status != "already-revoked")


def secret_inventory(ctx: RotationContext, secret_id: str, *, strict: bool = False) -> SecretInventory:
    """The inventory of one secret: its versions (labelled, and unlabelled ones its accounts are named for) and the
    keyrot accounts of its project. `strict`: a version that cannot be read raises instead of being reported."""
    description = ctx.store.describe(secret_id)
    identity = declared_identity(description, ctx.settings)
    deployment = ctx.settings.deployment
    environment = ctx.settings.environment
    record = record_of(ctx.store, description, environment, deployment, key_name=identity.key_name, strict=strict)
    listing = read_openai(ctx.admin(), [identity.project_id], accounts=True, keys=False)
    (record,) = add_unlabelled_versions(ctx.store, [record], listing, environment, strict=strict)
    inventory = classify(
        [record],
        listing,
        environment=ctx.settings.environment,
        shared_environments=deployment.shared_environments,
        now=ctx.now(),
        grace_period_seconds=ctx.settings.grace_period_seconds,
    )
    found = inventory.secret(identity.key_name)
    assert found is not None
    return found


def retire(ctx: RotationContext, entry: InventoryEntry, secret: SecretInventory) -> RevocationResult:
    """Revoke the key of `entry` (PREVIOUS or DISPLACED, or an attempt that can no longer be stored)."""
    if entry.version_id is not None:
        return revoke_version(ctx, secret.arn, entry.version_id)
    if entry.token is None or entry.service_account_id is None or entry.key_name != secret.key_name:
        raise KeyrotError(f"entry {entry.service_account_id} names no rotation attempt of {secret.key_name}")
    project_id = secret.record.project_id
    assert project_id is not None
    name = ServiceAccountName(ctx.settings.environment, secret.key_name, entry.token)
    stored = {e.service_account_id for e in secret.entries if e.version_id is not None and e.service_account_id}
    deleted = delete_attempt_accounts(ctx.admin(), project_id, name, keep=stored)
    return (
        RevocationResult("attempt-deleted", entry.key_id, entry.service_account_id, None)
        if deleted
        else (RevocationResult("already-revoked", entry.key_id, entry.service_account_id, None))
    )


def revoke_displaced(ctx: RotationContext, secret_id: str) -> Cleanup:
    """Revoke every DISPLACED key of the secret. A failure is reported in the result, never raised."""
    try:
        secret = secret_inventory(ctx, secret_id)
    except KeyrotError as exc:
        return Cleanup(failures=(f"could not take the inventory: {exc}",))
    cleanup = _revoke_each(ctx, secret, secret.of_state(KeyState.DISPLACED))
    return Cleanup(cleanup.revoked, _unread(secret) + cleanup.failures)


def contain(ctx: RotationContext, secret_id: str) -> Cleanup:
    """Emergency: revoke every live keyrot key of the secret but the current one (see the module docstring).

    Stops at the first failure and raises it (keyrot's typed error): containment is complete or it failed, and
    running it again (Secrets Manager's retry of finishSecret) resumes where it stopped.
    """
    secret = secret_inventory(ctx, secret_id, strict=True)
    current = secret.current
    keep = {current.service_account_id} if current is not None else set()
    current_token = current.version_id if current is not None else None
    doomed, in_progress = [], []
    for entry in secret.live_keyrot_keys():
        if entry.service_account_id in keep or entry.state is KeyState.CURRENT:
            continue
        if entry.state is KeyState.PENDING or (
            entry.state is KeyState.ATTEMPT_IN_PROGRESS and entry.token != current_token
        ):
            in_progress.append(entry.service_account_id or "?")  # a newer rotation: its key is not the leaked one
            continue
        doomed.append(entry)
    cleanup = _revoke_each(ctx, secret, doomed, strict=True)
    return Cleanup(cleanup.revoked, cleanup.failures, tuple(in_progress))


def _unread(secret: SecretInventory) -> tuple[str, ...]:
    """Versions that could not be read: a key they hold cannot be accounted for, so the cleanup is not complete."""
    problems = [version.problem for version in secret.record.versions.values() if version.problem]
    if secret.record.problem:
        problems.append(secret.record.problem)
    return tuple(f"could not read {secret.name}: {problem}" for problem in problems)


def _revoke_each(
    ctx: RotationContext, secret: SecretInventory, entries: list[InventoryEntry], *, strict: bool = False
) -> Cleanup:
    revoked: list[RevocationResult] = []
    failures: list[str] = []
    done: set[tuple[str | None, str | None]] = set()
    for entry in entries:
        target = (entry.version_id, entry.service_account_id if entry.version_id is None else None)
        if target in done:
            continue  # one account, several keys: one revocation
        done.add(target)
        try:
            revoked.append(retire(ctx, entry, secret))
        except KeyrotError as exc:
            if strict:
                raise
            what = entry.key_id or entry.service_account_id
            logger.error("could not revoke %s (%s) of %s: %s", what, entry.state.value, secret.key_name, exc)
            failures.append(f"{what} ({entry.state.value}): {exc}")
    return Cleanup(tuple(revoked), tuple(failures))
