"""A rotation attempt's service accounts: find them by name, delete those nobody holds, discard a whole attempt.

Every account a rotation mints is named `keyrot:<environment>:<key name>:<token>`, so the accounts of one attempt
are found by name alone, whatever crashed before their keys were stored. The one function that deletes them is
`delete_attempt_accounts`: createSecret's sweep, the discard of a pending key too close to its expiry, containment
and the janitor's cleanup of abandoned attempts all call it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from keyrot.constants import STAGE_CURRENT, STAGE_PENDING
from keyrot.inventory.naming import ServiceAccountName
from keyrot.openai_admin import OpenAIAdminClient, ServiceAccount, admin_errors
from keyrot.rotation.context import RotationContext

logger = logging.getLogger(__name__)


def attempt_accounts(admin: OpenAIAdminClient, project_id: str, name: ServiceAccountName) -> list[ServiceAccount]:
    """The project's service accounts named exactly for this attempt."""
    wanted = str(name)
    with admin_errors():
        return [account for account in admin.iter_service_accounts(project_id) if account.name == wanted]


def delete_attempt_accounts(
    admin: OpenAIAdminClient,
    project_id: str,
    name: ServiceAccountName,
    *,
    keep: Collection[str] = (),
    created_before: float | None = None,
    listed: Iterable[ServiceAccount] | None = None,
) -> list[str]:
    """Delete the accounts named exactly `name` in `project_id`, except those in `keep` (a stored key's account)
    and, with `created_before`, those created since (an invocation may still store them). `listed`: accounts
    already listed by the caller. Returns the ids OpenAI deleted (an account already gone is not counted)."""
    wanted = str(name)
    accounts = list(listed) if listed is not None else attempt_accounts(admin, project_id, name)
    doomed = [
        account.id
        for account in accounts
        if account.name == wanted
        and account.id not in keep
        and (created_before is None or account.created_at < created_before)
    ]
    deleted = []
    with admin_errors():
        for account_id in doomed:
            if admin.delete_service_account(project_id, account_id):
                deleted.append(account_id)
    if deleted:
        logger.warning("deleted %d service account(s) of rotation attempt %s", len(deleted), wanted)
    return deleted


@dataclass(frozen=True)
class Discarded:
    """A discarded attempt: its AWSPENDING label removed (if it still had it) and its accounts deleted."""

    token: str
    label_removed: bool
    deleted_accounts: tuple[str, ...]


def discard_attempt(
    ctx: RotationContext, secret_id: str, token: str, name: ServiceAccountName, project_id: str
) -> Discarded:
    """Take AWSPENDING off `token` first (no step may then promote it), then delete every account minted for it.

    Never touches a version that is AWSCURRENT. A crash between the two leaves an unlabelled version whose account
    OpenAI still lists: the inventory calls it displaced, and the next rotation or janitor run revokes it.
    """
    description = ctx.store.describe(secret_id)
    stages = description.stages_of(token)
    if STAGE_CURRENT in stages:
        return Discarded(token, label_removed=False, deleted_accounts=())
    removed = STAGE_PENDING in stages
    if removed:
        ctx.store.remove_stage(secret_id, STAGE_PENDING, from_version=token)
    deleted = delete_attempt_accounts(ctx.admin(), project_id, name)
    return Discarded(token, removed, tuple(deleted))
