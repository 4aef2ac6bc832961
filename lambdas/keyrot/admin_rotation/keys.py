"""keyrot's admin keys in OpenAI's listing: which are live, which belong to which rotation attempt, and deleting an
attempt's keys nobody holds (the one function that does, for createSecret, finishSecret's discard and the cleanup)."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from datetime import datetime

from keyrot.admin_rotation.naming import AdminKeyName
from keyrot.openai_admin import AdminApiKey, OpenAIAdminClient, admin_errors

logger = logging.getLogger(__name__)


def live_admin_keys(admin: OpenAIAdminClient, now: datetime) -> list[AdminApiKey]:
    """Every admin key of the organization that still authenticates (OpenAI may still list an expired one)."""
    with admin_errors():
        listed = list(admin.iter_admin_api_keys())
    moment = now.timestamp()
    return [key for key in listed if key.expires_at is None or key.expires_at > moment]


def keyrot_keys(listed: Iterable[AdminApiKey], environment: str) -> list[tuple[AdminApiKey, AdminKeyName]]:
    """The keys keyrot minted for `environment`, with their parsed names."""
    found = []
    for key in listed:
        name = AdminKeyName.parse(key.name)
        if name is not None and name.environment == environment:
            found.append((key, name))
    return found


def delete_attempt_keys(
    admin: OpenAIAdminClient,
    listed: Iterable[AdminApiKey],
    name: AdminKeyName,
    *,
    keep: Collection[str | None] = (),
    created_before: float | None = None,
) -> list[str]:
    """Delete the listed keys named exactly `name`, except those in `keep` and, with `created_before` (Unix seconds),
    those created since (an invocation may still store them). Returns the ids OpenAI deleted."""
    wanted = str(name)
    doomed = [
        key.id
        for key in listed
        if key.name == wanted and key.id not in keep and (created_before is None or key.created_at < created_before)
    ]
    deleted = []
    with admin_errors():
        for key_id in doomed:
            if admin.delete_admin_api_key(key_id):
                deleted.append(key_id)
    if deleted:
        logger.warning("deleted %d admin key(s) of rotation attempt %s", len(deleted), wanted)
    return deleted
