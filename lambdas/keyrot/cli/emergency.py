"""The end of `keyrot rotate --emergency`: once the new key is current, contain the leak.

Whichever key leaked (the one that was current when the operator confirmed, or a previous key still in its grace
period), it is no longer current. `keyrot.rotation.contain` revokes every live keyrot key of the secret but the
current one: the previous key, displaced keys, abandoned attempts. A fresh inventory then shows what is left: the
emergency ends with exactly one live keyrot key, the new current one (unless a newer rotation is already minting:
its accounts are left alone and named).

The operator agreed to revoke the key shown to them (`leaked_version`, the version that was current then): if that
version is still current, the rotation did not replace it, and nothing is revoked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from keyrot.constants import STAGE_CURRENT
from keyrot.errors import RevocationError
from keyrot.rotation import RotationContext, contain, secret_inventory


@dataclass(frozen=True)
class Containment:
    """What an emergency revoked and what is left live (ids only)."""

    leaked_version: str | None  # the version the operator was shown as current, and agreed to revoke
    leaked_key_id: str | None
    current_key_id: str | None
    revoked: tuple[str, ...]  # key ids (an attempt's service account id when it had no key stored)
    in_progress: tuple[str, ...]  # service accounts of a newer rotation under way, left alone
    live: tuple[str, ...]  # keyrot keys of the secret OpenAI still lists, after the containment

    @property
    def leaked_key_dead(self) -> bool:
        return self.leaked_key_id is None or self.leaked_key_id not in self.live

    @property
    def one_live_key(self) -> bool:
        """Exactly one live keyrot key is left, and it is the current one."""
        return self.current_key_id is not None and self.live == (self.current_key_id,)

    def as_json(self) -> dict[str, Any]:
        return {
            "leaked_version": self.leaked_version,
            "leaked_key_id": self.leaked_key_id,
            "leaked_key_dead": self.leaked_key_dead,
            "revoked": list(self.revoked),
            "in_progress": list(self.in_progress),
            "live_keys": list(self.live),
            "one_live_key": self.one_live_key,
        }


def contain_leak(
    ctx: RotationContext, secret_id: str, *, leaked_version: str | None, leaked_key_id: str | None
) -> Containment:
    """Revoke every live keyrot key of the secret but the current one, then take the inventory again. Raises
    keyrot's typed error at the first failure (running it again resumes)."""
    description = ctx.store.describe(secret_id)
    if leaked_version is not None and STAGE_CURRENT in description.stages_of(leaked_version):
        raise RevocationError(
            f"version {leaked_version} of {description.name} is still AWSCURRENT: the rotation did not replace the "
            "key shown; nothing was revoked"
        )
    cleanup = contain(ctx, secret_id)
    after = secret_inventory(ctx, secret_id)
    current = after.current
    live = sorted({entry.key_id or entry.service_account_id or "?" for entry in after.live_keyrot_keys()})
    in_progress = set(cleanup.left_in_progress)
    others = [entry for entry in after.live_keyrot_keys() if entry.service_account_id in in_progress]
    settled = tuple(key for key in live if key not in {e.key_id or e.service_account_id for e in others})
    return Containment(
        leaked_version=leaked_version,
        leaked_key_id=leaked_key_id,
        current_key_id=current.key_id if current is not None else None,
        revoked=cleanup.revoked_keys,
        in_progress=tuple(sorted(in_progress)),
        live=settled,
    )
