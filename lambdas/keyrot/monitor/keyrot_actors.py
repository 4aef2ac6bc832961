"""Which audit-log actors are keyrot itself: the admin keys this environment's admin-key secret holds or held.

An action keyrot takes (a rotation minting an account, the janitor deleting one, the admin rotation minting or
deleting an admin key) is recorded with the admin key it used as the actor, by id. The ids keyrot trusts come from
the admin-key secret, never from a name (anyone with an admin key can name a key `keyrot-admin:...`):

1. the `key_id` recorded in the values labelled AWSCURRENT, AWSPENDING and AWSPREVIOUS (the admin rotation records
   it for every key it mints; `keyrot admin-key set` for the first one, given or learnt);
2. when the AWSCURRENT value has none (a first key stored without its id): the organization's admin keys, if exactly
   one of them is not accounted for (the current key is valid, so it is listed: that one is it);
3. the ids seen as keyrot's on earlier runs (digests in the monitor state, read on every run, one without audit
   entries too), so an action by a key that has since left the secret's labels (a bootstrap key after the first
   admin rotation, two rotations between monitor runs) is still recognised;
4. only when a finding's actor is an API key none of the above name (`keyrot_history`): the ids recorded by the
   secret's newest HISTORY_READS unlabelled versions, so the keys of three or more admin rotations between two runs
   (a monitor down for longer than the grace period), which held a label only in between, are recognised too. Not
   remembered in the state (the secret keeps them); only keyrot and the administrators may write the secret.

When a labelled value's id stays unknown (an id-less first key that is now AWSPREVIOUS, or several admin keys in the
organization), an action by an unrecognised admin key could be keyrot's own: the tripwire then does not judge actions
by API keys (only people's, in the console) and tells on-call once how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from keyrot.aws.secrets import SecretStore
from keyrot.constants import STAGE_CURRENT, STAGE_PENDING, STAGE_PREVIOUS
from keyrot.errors import AdminKeyError
from keyrot.monitor.state import AUDIT_KEYROT_IDS_MAX, audit_digest
from keyrot.openai_admin import OpenAIAdminClient
from keyrot.secret_model import AdminCredentials

_STAGES = (STAGE_CURRENT, STAGE_PENDING, STAGE_PREVIOUS)
# How many unlabelled versions of the admin-key secret are read for their ids (newest first) on a finding by an
# unrecognised API key.
HISTORY_READS = 10


@dataclass(frozen=True)
class KeyrotActors:
    """The admin key ids (as digests) keyrot acts with, and whether every key it holds is among them."""

    digests: frozenset[str]
    complete: bool  # False: some labelled admin key's id is unknown (its actions cannot be told from others')
    history: frozenset[str] = field(default=frozenset())  # the unlabelled versions' ids (not remembered)

    def acted(self, actor_key_id: str | None) -> bool:
        if actor_key_id is None:
            return False
        digest = audit_digest(actor_key_id)
        return digest in self.digests or digest in self.history

    def with_history(self, history: frozenset[str]) -> KeyrotActors:
        return replace(self, history=self.history | history)

    def remembered(self, earlier: list[str]) -> list[str]:
        """The digests to keep in the state: the earlier ones, then these, the newest AUDIT_KEYROT_IDS_MAX."""
        ordered = list(dict.fromkeys([*earlier, *sorted(self.digests - set(earlier))]))
        return ordered[-AUDIT_KEYROT_IDS_MAX:]


def keyrot_actors(
    store: SecretStore, admin_secret_arn: str, admin: OpenAIAdminClient | None, remembered: list[str]
) -> KeyrotActors:
    """Read the admin-key secret's labelled values for their ids (values are dropped at once), learn the missing ones
    from the organization's admin keys when that is unambiguous (not without `admin`: a run without audit entries
    lists nothing), and add the ids remembered from earlier runs."""
    ids: dict[str, str | None] = {}  # admin key -> its id (None: not recorded), held only for this call
    stages: dict[str, list[str]] = {}  # admin key -> the labels whose value holds it
    for stage in _STAGES:
        text = store.get_string(admin_secret_arn, stage=stage)
        if text is None:
            continue
        try:
            credentials = AdminCredentials.from_json(text)
        except AdminKeyError:
            stages.setdefault(f"damaged {stage}", []).append(stage)  # its key cannot be recognised
            continue
        # The same key under two labels (AWSPENDING left on AWSCURRENT; a key stored again with its id) is one key
        ids[credentials.admin_key] = ids.get(credentials.admin_key) or credentials.key_id
        stages.setdefault(credentials.admin_key, []).append(stage)
    known = {key_id for key_id in ids.values() if key_id is not None}
    unknown = sorted({stage for key, labels in stages.items() if ids.get(key) is None for stage in labels[:1]})
    ids.clear()
    stages.clear()
    if unknown == [STAGE_CURRENT] and admin is not None:
        candidates = {key.id for key in admin.iter_admin_api_keys()} - known
        if len(candidates) == 1:
            known |= candidates
            unknown = []
    if unknown == [STAGE_PREVIOUS] and set(remembered) - {audit_digest(key_id) for key_id in known}:
        # An id-less previous key (a first key, rotated) was most likely learnt while it was current. Should it not
        # have been, its actions are judged as anyone's: a false alarm at worst, never a missed one.
        unknown = []
    digests = {audit_digest(key_id) for key_id in known} | set(remembered)
    return KeyrotActors(frozenset(digests), complete=not unknown)


def keyrot_history(store: SecretStore, admin_secret_arn: str) -> frozenset[str]:
    """The admin key ids (as digests) the admin-key secret's newest HISTORY_READS versions without a label keyrot
    reads record (values are dropped at once). A damaged or id-less value adds nothing."""
    versions = [
        (version.get("CreatedDate"), position, str(version["VersionId"]))
        for position, version in enumerate(store.iter_versions(admin_secret_arn))
        if isinstance(version.get("VersionId"), str) and not set(version.get("VersionStages") or ()) & set(_STAGES)
    ]
    newest = sorted(versions, key=_newest_first)[:HISTORY_READS]
    digests: set[str] = set()
    for _, _, version_id in newest:
        text = store.get_string(admin_secret_arn, stage=None, version_id=version_id)
        if text is None:
            continue
        try:
            key_id = AdminCredentials.from_json(text).key_id
        except AdminKeyError:
            continue
        if key_id:
            digests.add(audit_digest(key_id))
    return frozenset(digests)


def _newest_first(item: tuple[Any, int, str]) -> tuple[float, int]:
    """By creation time, newest first; on a tie (or no time) the one listed later first (moto lists oldest first)."""
    created, position, _ = item
    stamp = created.timestamp() if isinstance(created, datetime) else 0.0
    return (-stamp, -position)
