"""The janitor decides when a previous key may be revoked: grace period over and no usage for the quiet window.

A key still in use at the maximum grace is revoked anyway or kept (and alarmed), as configured.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from keyrot.monitor.ledger import ManagedSecret
from keyrot.settings import MonitorSettings


class JanitorAction(enum.Enum):
    WAIT_GRACE = "wait-grace"  # still inside the grace period
    WAIT_QUIET = "wait-quiet"  # grace over, but used within the quiet window
    REVOKE = "revoke"  # grace over and quiet: revoke
    REVOKE_IN_USE = "revoke-in-use"  # maximum grace reached while in use, policy "revoke"
    KEEP_IN_USE = "keep-in-use"  # maximum grace reached while in use, policy "keep": alarm, do not revoke


@dataclass(frozen=True)
class JanitorDecision:
    secret: ManagedSecret
    key_id: str
    version_id: str
    action: JanitorAction
    retired_at: datetime
    last_used: int | None

    @property
    def revokes(self) -> bool:
        return self.action in (JanitorAction.REVOKE, JanitorAction.REVOKE_IN_USE)


def decide(
    secret: ManagedSecret, *, now: int, last_used: int | None, settings: MonitorSettings
) -> JanitorDecision | None:
    """What to do with `secret`'s previous key, or None when it has none (or it is already revoked)."""
    previous, current = secret.previous, secret.current
    version_id = secret.version_with("AWSPREVIOUS")
    if previous is None or current is None or version_id is None:
        return None
    retired_at = current.created_at
    age = now - retired_at.timestamp()
    quiet = last_used is None or now - last_used >= settings.quiet_window_seconds
    if age < settings.grace_period_seconds:
        action = JanitorAction.WAIT_GRACE
    elif quiet:
        action = JanitorAction.REVOKE
    elif age < settings.max_grace_period_seconds:
        action = JanitorAction.WAIT_QUIET
    elif settings.in_use_policy == "revoke":
        action = JanitorAction.REVOKE_IN_USE
    else:
        action = JanitorAction.KEEP_IN_USE
    return JanitorDecision(secret, previous.key_id, version_id, action, retired_at, last_used)
