"""One module per command, named as the operator types it (`revoke_previous` for `keyrot revoke-previous`).

Commands never import each other: what two commands share lives one level up (options, context, output, errors,
key_state, follow, alarms, checks).
"""

from __future__ import annotations

__all__ = ["admin_key", "audit", "doctor", "exec", "revoke_previous", "rotate", "status"]
