"""The janitor's decisions: which keys no longer serve a purpose, and what to do about each.

- A previous key: once its grace period is over (counted from the promotion of its successor) and it has not been
  used for the quiet window, revoke it. Still in use at the maximum grace: revoke it anyway, or keep it and alarm,
  as configured (`in_use_policy`).
- A displaced key (pushed out of AWSPREVIOUS before its grace ended, labelled revoked while OpenAI still lists it, or
  minted by an attempt that ended without storing it): revoke it at once. Nobody should hold it.

`plan()` decides from the inventory; `redecide()` decides a previous key again once the usage of its quiet window
is known (the monitor reads it before revoking); `carry_out()` acts on one decision through the rotation engine's
revocation. The monitor's janitor part and the stateful lifecycle proof run exactly these. `decide()` is the same rule
for one secret of the older ledger view, kept for its callers.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from keyrot.constants import STAGE_PREVIOUS
from keyrot.inventory import Inventory, InventoryEntry, KeyState, SecretInventory
from keyrot.monitor.ledger import ManagedSecret
from keyrot.rotation import RevocationResult, RotationContext, retire, revoke_previous
from keyrot.settings import MonitorSettings


class JanitorAction(enum.Enum):
    WAIT_GRACE = "wait-grace"  # still inside the grace period
    WAIT_QUIET = "wait-quiet"  # grace over, but used within the quiet window
    REVOKE = "revoke"  # grace over and quiet: revoke
    REVOKE_IN_USE = "revoke-in-use"  # maximum grace reached while in use, policy "revoke"
    KEEP_IN_USE = "keep-in-use"  # maximum grace reached while in use, policy "keep": alarm, do not revoke
    REVOKE_DISPLACED = "revoke-displaced"  # a displaced key: no label accounts for it, revoke at once


@dataclass(frozen=True)
class JanitorDecision:
    secret: ManagedSecret | SecretInventory  # both have .arn and .key_name
    key_id: str
    version_id: str | None  # the version holding the key (None: an abandoned attempt's account)
    action: JanitorAction
    retired_at: datetime | None
    last_used: int | None
    entry: InventoryEntry | None = None  # set when decided from the inventory

    @property
    def revokes(self) -> bool:
        return self.action in (JanitorAction.REVOKE, JanitorAction.REVOKE_IN_USE, JanitorAction.REVOKE_DISPLACED)


def previous_key_action(
    retired_at: datetime, *, now: int, last_used: int | None, settings: MonitorSettings
) -> JanitorAction:
    """The rule for a previous key retired at `retired_at` (its successor's promotion)."""
    age = now - retired_at.timestamp()
    quiet = last_used is None or now - last_used >= settings.quiet_window_seconds
    if age < settings.grace_period_seconds:
        return JanitorAction.WAIT_GRACE
    if quiet:
        return JanitorAction.REVOKE
    if age < settings.max_grace_period_seconds:
        return JanitorAction.WAIT_QUIET
    return JanitorAction.REVOKE_IN_USE if settings.in_use_policy == "revoke" else JanitorAction.KEEP_IN_USE


def decide(
    secret: ManagedSecret, *, now: int, last_used: int | None, settings: MonitorSettings
) -> JanitorDecision | None:
    """What to do with `secret`'s previous key, or None when it has none (or it is labelled revoked)."""
    previous, retired_at = secret.previous, secret.retired_at
    version_id = secret.version_with(STAGE_PREVIOUS)
    if previous is None or retired_at is None or version_id is None:
        return None
    action = previous_key_action(retired_at, now=now, last_used=last_used, settings=settings)
    return JanitorDecision(secret, previous.key_id, version_id, action, retired_at, last_used)


def plan(
    inventory: Inventory, *, now: int, last_used: Mapping[str, int], settings: MonitorSettings
) -> list[JanitorDecision]:
    """A decision for every previous and displaced key of the inventory. `last_used`: the latest use the caller
    knows of per key id (usage read this run); OpenAI's own `last_used_at` is taken into account too."""
    decisions = []
    for secret in inventory.secrets:
        for entry in secret.entries:
            decision = decide_entry(secret, entry, now=now, last_used=_last_use(entry, last_used), settings=settings)
            if decision is not None:
                decisions.append(decision)
    return decisions


def decide_entry(
    secret: SecretInventory, entry: InventoryEntry, *, now: int, last_used: int | None, settings: MonitorSettings
) -> JanitorDecision | None:
    """The decision for one inventory entry: None for keys the janitor leaves alone."""
    if entry.state is KeyState.DISPLACED and entry.listed is not False:
        action = JanitorAction.REVOKE_DISPLACED
        return JanitorDecision(secret, entry.key_id or "", entry.version_id, action, entry.retired_at, last_used, entry)
    if entry.state is KeyState.PREVIOUS and entry.retired_at is not None and entry.version_id is not None:
        action = previous_key_action(entry.retired_at, now=now, last_used=last_used, settings=settings)
        return JanitorDecision(secret, entry.key_id or "", entry.version_id, action, entry.retired_at, last_used, entry)
    return None


def redecide(decision: JanitorDecision, seen: int | None, *, now: int, settings: MonitorSettings) -> JanitorDecision:
    """`decision` again, knowing its key was active until `seen` (None: not seen in the quiet window)."""
    if seen is None or decision.entry is None or not isinstance(decision.secret, SecretInventory):
        return decision
    last_used = max(seen, decision.last_used or 0)
    again = decide_entry(decision.secret, decision.entry, now=now, last_used=last_used, settings=settings)
    return again or decision


def carry_out(ctx: RotationContext, decision: JanitorDecision) -> RevocationResult:
    """Revoke what `decision` says to revoke. A previous key is revoked only while it is still AWSPREVIOUS (a rotation
    since the decision makes it someone else's decision); a displaced key through the one revocation function."""
    if not decision.revokes:
        raise ValueError(f"decision {decision.action.value} revokes nothing")
    if decision.action is JanitorAction.REVOKE_DISPLACED:
        assert decision.entry is not None and isinstance(decision.secret, SecretInventory)
        return retire(ctx, decision.entry, decision.secret)
    return revoke_previous(ctx, decision.secret.arn, expected_version=decision.version_id)


def _last_use(entry: InventoryEntry, known: Mapping[str, int]) -> int | None:
    listed = int(entry.last_used_at.timestamp()) if entry.last_used_at else None
    seen = known.get(entry.key_id) if entry.key_id else None
    return max(filter(None, (listed, seen)), default=None)
