"""Mint one rotation's key: a new service account named for the attempt, and its key, unrestricted or scoped.

An unrestricted key comes back inline from one create call (keyrot's long-standing path). A scoped key takes two
calls, since OpenAI scopes only the keys made on an existing account: the account is created without a key, then
given one key with exactly the declared scopes. Neither create is ever retried on the same account, so a lost answer
never makes a twin: if the key's create fails in any way (its answer may be lost after it took effect), the account
is deleted at once, which revokes whatever key it may have; if that delete fails too, the account is left for the
retry's createSecret, which finds it by its name (`keyrot:<env>:<key>:<version id>`) like any other leftover.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass, field

from keyrot.errors import ConfigurationError
from keyrot.inventory.naming import ServiceAccountName
from keyrot.openai_admin import BadRequestError, OpenAIAdminClient, OpenAIError
from keyrot.scopes import describe_scopes

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MintedKey:
    """A freshly minted key and the account that holds it. `api_key` is shown by OpenAI only this once."""

    service_account_id: str
    key_id: str
    scopes: tuple[str, ...] | None  # None: unrestricted
    api_key: str = field(repr=False)


def mint_key(
    admin: OpenAIAdminClient,
    project_id: str,
    name: ServiceAccountName,
    *,
    scopes: tuple[str, ...] | None,
    expires_in_seconds: int | None,
) -> MintedKey:
    """A key on a new service account named `name`, with exactly `scopes` (None: unrestricted), expiring after
    `expires_in_seconds` (None: never). Raises what the admin API raised; OpenAI refusing the scopes themselves is
    reported as ConfigurationError naming the key's `scopes` setting."""
    if scopes is None:
        minted = admin.create_service_account(project_id, str(name), expires_in_seconds=expires_in_seconds)
        return MintedKey(minted.service_account_id, minted.key_id, None, minted.api_key)
    account = admin.create_service_account_without_key(project_id, str(name))
    try:
        key = admin.create_service_account_key(
            project_id, account.id, name=str(name), scopes=scopes, expires_in_seconds=expires_in_seconds
        )
    except (OpenAIError, ValueError) as exc:
        _delete_keyless_attempt(admin, project_id, account.id, name)
        if isinstance(exc, BadRequestError) and exc.param == "scopes":
            raise ConfigurationError(
                f"OpenAI refused the scopes of key {name.key_name!r} ({describe_scopes(scopes)}): {exc}. Correct "
                f"`keyrot:keys[].scopes` for {name.key_name!r} and deploy; no key was minted and AWSCURRENT is "
                "unchanged"
            ) from exc
        raise
    return MintedKey(account.id, key.key_id, scopes, key.api_key)


def _delete_keyless_attempt(
    admin: OpenAIAdminClient, project_id: str, service_account_id: str, name: ServiceAccountName
) -> None:
    """Delete the account whose key's create failed (revoking a key it may have after all). Best effort: a failure
    leaves it to the retry's sweep of the attempt's accounts."""
    with suppress(OpenAIError):
        admin.delete_service_account(project_id, service_account_id)
        logger.warning("deleted service account %s of %s: its key could not be created", service_account_id, name)
        return
    logger.warning("service account %s of %s is left for the retry to delete", service_account_id, name)
