"""The janitor's decision table: grace, quiet window, maximum grace and policy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from keyrot.monitor.janitor import JanitorAction, decide
from keyrot.monitor.ledger import KeyMeta, KeyRole, ManagedSecret
from keyrot.secret_model import SecretIdentity
from keyrot.settings import MonitorSettings

HOUR = 3600
ROTATED = 1_800_000_000  # when the current key was minted (the previous key retired)


def _settings(policy: str = "keep") -> MonitorSettings:
    return MonitorSettings(
        environment="dev",
        admin_secret_arn="arn:aws:secretsmanager:us-east-1:1:secret:a",
        project_id="proj_1",
        topic_arn="arn:aws:sns:us-east-1:1:t",
        state_parameter="/keyrot/dev/monitor-state",
        grace_period_seconds=24 * HOUR,
        max_grace_period_seconds=72 * HOUR,
        quiet_window_seconds=HOUR,
        in_use_policy=policy,
    )


def _secret(with_previous: bool = True) -> ManagedSecret:
    def meta(key_id: str, created: int) -> KeyMeta:
        return KeyMeta(key_id, f"svc_{key_id}", datetime.fromtimestamp(created, UTC), None)

    keys = {KeyRole.CURRENT: meta("key_new", ROTATED)}
    versions = {"v2": ("AWSCURRENT",)}
    if with_previous:
        keys[KeyRole.PREVIOUS] = meta("key_old", ROTATED - 30 * 86400)
        versions["v1"] = ("AWSPREVIOUS",)
    return ManagedSecret("arn", "keyrot/dev/chat", SecretIdentity("dev", "chat", "proj_1"), versions, keys)


@pytest.mark.parametrize(
    ("hours_since_rotation", "hours_since_use", "policy", "action"),
    [
        (1, None, "keep", JanitorAction.WAIT_GRACE),  # grace not over, never used
        (23, 30, "revoke", JanitorAction.WAIT_GRACE),  # grace not over, quiet
        (25, None, "keep", JanitorAction.REVOKE),  # grace over, never used since
        (25, 2, "keep", JanitorAction.REVOKE),  # grace over, quiet for 2 h
        (25, 0.5, "keep", JanitorAction.WAIT_QUIET),  # grace over, used 30 min ago
        (71, 0.5, "revoke", JanitorAction.WAIT_QUIET),  # in use, maximum grace not reached
        (73, 0.5, "keep", JanitorAction.KEEP_IN_USE),  # in use at maximum grace, policy keep
        (73, 0.5, "revoke", JanitorAction.REVOKE_IN_USE),  # in use at maximum grace, policy revoke
        (73, 5, "keep", JanitorAction.REVOKE),  # maximum grace but quiet: plain revoke
    ],
)
def test_decision_table(
    hours_since_rotation: float, hours_since_use: float | None, policy: str, action: JanitorAction
) -> None:
    now = ROTATED + int(hours_since_rotation * HOUR)
    last_used = None if hours_since_use is None else now - int(hours_since_use * HOUR)
    decision = decide(_secret(), now=now, last_used=last_used, settings=_settings(policy))
    assert decision is not None
    assert decision.action is action
    assert decision.key_id == "key_old" and decision.version_id == "v1"
    assert decision.revokes == (action in (JanitorAction.REVOKE, JanitorAction.REVOKE_IN_USE))


def test_no_decision_without_a_previous_key() -> None:
    assert decide(_secret(with_previous=False), now=ROTATED + 99 * HOUR, last_used=None, settings=_settings()) is None
