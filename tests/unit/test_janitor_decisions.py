"""The janitor's decisions: grace (counted from promotion), quiet window, maximum grace and policy for previous keys;
displaced keys at once, whatever their labels say."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyrot.constants import STAGE_CURRENT, STAGE_PREVIOUS, STAGE_REVOKED
from keyrot.inventory import KeyMeta as InventoryMeta
from keyrot.inventory import KeyState, OpenAIListing, SecretRecord, ServiceAccountName, VersionRecord, classify
from keyrot.monitor.janitor import JanitorAction, decide, plan, previous_key_action
from keyrot.monitor.ledger import KeyMeta, KeyRole, ManagedSecret
from keyrot.openai_admin import ServiceAccount
from keyrot.secret_model import Promotion, SecretIdentity
from keyrot.settings import MonitorSettings

HOUR = 3600
ROTATED = 1_800_000_000  # when the current key was promoted (the previous key retired)
V1, V2, V3 = (f"00000000-0000-4000-8000-00000000000{n}" for n in (1, 2, 3))


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


def _secret(with_previous: bool = True, *, minted: int = ROTATED, promoted: int | None = None) -> ManagedSecret:
    def meta(key_id: str, created: int) -> KeyMeta:
        return KeyMeta(key_id, f"svc_{key_id}", datetime.fromtimestamp(created, UTC), None)

    keys = {KeyRole.CURRENT: meta("key_new", minted)}
    versions = {"v2": ("AWSCURRENT",)}
    if with_previous:
        keys[KeyRole.PREVIOUS] = meta("key_old", minted - 30 * 86400)
        versions["v1"] = ("AWSPREVIOUS",)
    promotion = Promotion("v2", datetime.fromtimestamp(promoted, UTC)) if promoted is not None else None
    return ManagedSecret(
        "arn", "keyrot/dev/chat", SecretIdentity("dev", "chat", "proj_1"), versions, keys, None, promotion
    )


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


@pytest.mark.parametrize("policy", ["keep", "revoke"])
def test_a_rotation_resumed_after_a_long_stall_gives_the_old_key_its_whole_grace(policy: str) -> None:
    # GIVEN a rotation minted 25 h before it was promoted (a stall in AWSPENDING), promoted two minutes ago, and the
    # old key still in use by applications that have not refreshed yet
    promoted = ROTATED + 25 * HOUR
    now = promoted + 120
    secret = _secret(minted=ROTATED, promoted=promoted)
    # WHEN the janitor decides
    decision = decide(secret, now=now, last_used=now - 60, settings=_settings(policy))
    # THEN the old key is inside its grace period: neither revoked nor reported as used past maximum grace
    assert decision is not None and decision.action is JanitorAction.WAIT_GRACE
    assert decision.retired_at == datetime.fromtimestamp(promoted, UTC)


@settings(max_examples=200, deadline=None)
@given(
    age=st.integers(0, 10 * 24 * HOUR),
    idle=st.one_of(st.none(), st.integers(0, 10 * 24 * HOUR)),
    policy=st.sampled_from(["keep", "revoke"]),
)
def test_a_previous_key_is_never_revoked_inside_its_grace_nor_kept_quietly_past_maximum_grace(
    age: int, idle: int | None, policy: str
) -> None:
    # GIVEN any time since promotion and any time since last use WHEN the janitor decides
    now = ROTATED + age
    action = previous_key_action(
        datetime.fromtimestamp(ROTATED, UTC),
        now=now,
        last_used=None if idle is None else now - idle,
        settings=_settings(policy),
    )
    # THEN inside the grace period nothing is revoked, and past the maximum grace nothing waits
    if age < 24 * HOUR:
        assert action is JanitorAction.WAIT_GRACE
    if age >= 72 * HOUR:
        assert action in (JanitorAction.REVOKE, JanitorAction.REVOKE_IN_USE, JanitorAction.KEEP_IN_USE)
    if action is JanitorAction.REVOKE:
        assert idle is None or idle >= HOUR


# --- decisions from the inventory ---------------------------------------------------------------------------------


def _inventory(*versions: VersionRecord, accounts: list[str], promoted: int) -> object:
    record = SecretRecord(
        "chat",
        "arn:secret",
        "keyrot/dev/chat",
        "proj_1",
        {v.version_id: v for v in versions},
        Promotion(V3, _t(promoted)),
    )
    listed = [
        ServiceAccount(f"svc_{v}", str(ServiceAccountName("dev", "chat", v)), "member", ROTATED - 86400)
        for v in accounts
    ]
    now = _t(promoted + HOUR)
    return classify(
        [record],
        OpenAIListing.of(listed),
        environment="dev",
        shared_environments=(),
        now=now,
        grace_period_seconds=24 * HOUR,
    )


def _version(version_id: str, *stages: str) -> VersionRecord:
    return VersionRecord(
        version_id, stages, InventoryMeta(f"key_{version_id[-1]}", f"svc_{version_id}", _t(ROTATED), None)
    )


def _t(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def test_a_displaced_key_is_revoked_at_once_and_the_previous_key_waits_for_its_grace() -> None:
    # GIVEN two rotations inside one grace period: version 1 lost every label, version 2 is previous, 3 current
    inventory = _inventory(
        _version(V1), _version(V2, STAGE_PREVIOUS), _version(V3, STAGE_CURRENT), accounts=[V1, V2, V3], promoted=ROTATED
    )
    # WHEN the janitor plans an hour after the promotion
    decisions = {d.key_id: d for d in plan(inventory, now=ROTATED + HOUR, last_used={}, settings=_settings())}  # type: ignore[arg-type]
    # THEN the displaced key is revoked at once, the previous key waits, the current key is not considered
    assert decisions["key_1"].action is JanitorAction.REVOKE_DISPLACED and decisions["key_1"].revokes
    assert decisions["key_2"].action is JanitorAction.WAIT_GRACE
    assert set(decisions) == {"key_1", "key_2"}


def test_a_key_labelled_revoked_that_openai_still_lists_is_revoked_again() -> None:
    inventory = _inventory(
        _version(V2, STAGE_PREVIOUS, STAGE_REVOKED), _version(V3, STAGE_CURRENT), accounts=[V2, V3], promoted=ROTATED
    )
    (decision,) = plan(inventory, now=ROTATED + HOUR, last_used={}, settings=_settings())  # type: ignore[arg-type]
    assert (decision.key_id, decision.action) == ("key_2", JanitorAction.REVOKE_DISPLACED)
    assert decision.entry is not None and decision.entry.state is KeyState.DISPLACED


def test_a_key_labelled_revoked_that_openai_no_longer_lists_is_left_alone() -> None:
    inventory = _inventory(
        _version(V2, STAGE_PREVIOUS, STAGE_REVOKED), _version(V3, STAGE_CURRENT), accounts=[V3], promoted=ROTATED
    )
    assert plan(inventory, now=ROTATED + HOUR, last_used={}, settings=_settings()) == []  # type: ignore[arg-type]


def test_usage_the_run_saw_keeps_a_previous_key_past_its_grace_waiting() -> None:
    inventory = _inventory(
        _version(V2, STAGE_PREVIOUS), _version(V3, STAGE_CURRENT), accounts=[V2, V3], promoted=ROTATED
    )
    now = ROTATED + 30 * HOUR
    (decision,) = plan(inventory, now=now, last_used={"key_2": now - 60}, settings=_settings())  # type: ignore[arg-type]
    assert decision.action is JanitorAction.WAIT_QUIET
