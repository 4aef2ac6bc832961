"""Which audit-log actors are keyrot itself: the admin keys this environment's admin-key secret holds or held.

An action keyrot takes (a rotation minting an account, the janitor deleting one, the admin rotation minting or
deleting an admin key) is recorded with the admin key it used as the actor, by id. The ids keyrot trusts come from
the admin-key secret, never from a name (anyone with an admin key can name a key `keyrot-admin:...`):

1. the `key_id` recorded in the values labelled AWSCURRENT, AWSPENDING and AWSPREVIOUS (the admin rotation records
   it for every key it mints; `keyrot admin-key set` for the first one, given or learnt);
2. when the AWSCURRENT value has none (a first key stored without its id): the organization's admin keys, if exactly
   one of them is not accounted for (the current key is valid, so it is listed: that one is it);
3. the ids seen as keyrot's on earlier runs (digests in the monitor state), so an action by a key that has since
   left the secret's labels (a bootstrap key after the first admin rotation, two rotations between monitor runs) is
   still recognised.

When a labelled value's id stays unknown (an id-less first key that is now AWSPREVIOUS, or several admin keys in the
organization), an action by an unrecognised admin key could be keyrot's own: the tripwire then does not judge actions
by API keys (only people's, in the console) and tells on-call once how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyrot.aws.secrets import SecretStore
from keyrot.constants import STAGE_CURRENT, STAGE_PENDING, STAGE_PREVIOUS
from keyrot.errors import AdminKeyError
from keyrot.monitor.state import AUDIT_KEYROT_IDS_MAX, audit_digest
from keyrot.openai_admin import OpenAIAdminClient
from keyrot.secret_model import AdminCredentials

_STAGES = (STAGE_CURRENT, STAGE_PENDING, STAGE_PREVIOUS)


@dataclass(frozen=True)
class KeyrotActors:
    """The admin key ids (as digests) keyrot acts with, and whether every key it holds is among them."""

    digests: frozenset[str]
    complete: bool  # False: some labelled admin key's id is unknown (its actions cannot be told from others')

    def acted(self, actor_key_id: str | None) -> bool:
        return actor_key_id is not None and audit_digest(actor_key_id) in self.digests

    def remembered(self, earlier: list[str]) -> list[str]:
        """The digests to keep in the state: the earlier ones, then these, the newest AUDIT_KEYROT_IDS_MAX."""
        ordered = list(dict.fromkeys([*earlier, *sorted(self.digests - set(earlier))]))
        return ordered[-AUDIT_KEYROT_IDS_MAX:]


def keyrot_actors(
    store: SecretStore, admin_secret_arn: str, admin: OpenAIAdminClient, remembered: list[str]
) -> KeyrotActors:
    """Read the admin-key secret's labelled values for their ids (values are dropped at once), learn the missing ones
    from the organization's admin keys when that is unambiguous, and add the ids remembered from earlier runs."""
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
    if unknown == [STAGE_CURRENT]:
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
