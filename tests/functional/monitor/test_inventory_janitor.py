"""The monitor acts on the inventory's answer: keys no label accounts for are reported and revoked at once, a label is
not taken on its word, time runs from promotion, and another environment's keys are excused only when declared."""

from __future__ import annotations

import uuid

from keyrot import metric_names as m
from keyrot.constants import STAGE_CURRENT
from lab.monitor_scenario import MonitorWorld

from .conftest import rotated, usage
from .tampering import label_previous_revoked, unlabel_previous

HOUR = 3600
SETTLE = 600


def _live(world: MonitorWorld, key_id: str) -> bool:
    return world.rotation.openai.state.key_is_live(key_id)


def _account_key(world: MonitorWorld, name: str) -> str:
    _, key = world.rotation.openai.state.create_service_account(
        world.rotation.project_id, name, with_key=True, expires_in=None
    )
    assert key is not None
    return key.id


def test_a_key_labelled_revoked_that_openai_still_lists_is_revoked_at_once(monitor: MonitorWorld) -> None:
    # GIVEN a previous key inside its grace period, labelled KEYROT_REVOKED by hand while its account lives on
    arn = rotated(monitor, "chat-backend", times=2)
    previous = monitor.rotation.previous(arn)
    assert previous is not None
    label_previous_revoked(monitor.rotation.secrets, arn)
    # WHEN the monitor runs
    report = monitor.run()
    # THEN the janitor revokes it (no grace for a key keyrot says it revoked), and it is not paged as an orphan
    assert report.revoked == [previous.key_id] and not _live(monitor, previous.key_id)
    assert report.unmanaged_keys == []
    assert _live(monitor, monitor.rotation.current(arn).key_id)


def test_a_displaced_key_is_reported_and_revoked_by_the_next_run(monitor: MonitorWorld) -> None:
    # GIVEN a key no label accounts for that OpenAI still honours (its rotation's cleanup never ran)
    arn = rotated(monitor, "chat-backend", times=2)
    displaced = monitor.rotation.previous(arn)
    assert displaced is not None
    unlabel_previous(monitor.rotation.secrets, arn)
    # WHEN the monitor runs
    report = monitor.run()
    # THEN on-call hears of the orphan and the janitor revokes it at once
    assert report.unmanaged_keys == [displaced.key_id] and report.revoked == [displaced.key_id]
    assert not _live(monitor, displaced.key_id)
    subjects = [note["subject"] for note in monitor.notifications()]
    assert subjects == [f"[keyrot dev] Orphaned keyrot service account ({displaced.key_id})"]
    # AND the next run has nothing left to say or do
    monitor.clock.advance(300)
    again = monitor.run()
    assert again.unmanaged_keys == [] and again.revoked == []


def test_an_abandoned_attempts_account_is_left_while_a_rotation_may_store_it_then_deleted(
    monitor: MonitorWorld,
) -> None:
    # GIVEN a keyrot account minted for a token no version holds (a rotation that crashed before storing its key)
    rotated(monitor, "chat-backend")
    key_id = _account_key(monitor, f"keyrot:dev:chat-backend:{uuid.uuid4()}")
    # WHEN the monitor runs right away THEN it is an attempt in progress: neither reported nor touched
    first = monitor.run()
    assert first.unmanaged_keys == [] and first.revoked == [] and _live(monitor, key_id)
    # WHEN it runs once no invocation can still store it THEN it is reported and deleted
    monitor.clock.advance(5 * 60)
    later = monitor.run()
    assert later.unmanaged_keys == [key_id] and later.revoked == [key_id]
    assert not _live(monitor, key_id)


def test_keys_named_for_an_environment_not_declared_to_share_the_project_are_reported(
    monitor: MonitorWorld,
) -> None:
    # GIVEN keyrot-named keys of two other environments; the deployment declares only prod as sharing the project
    rotated(monitor, "chat-backend")
    declared = _account_key(monitor, f"keyrot:prod:chat-backend:{uuid.uuid4()}")
    undeclared = _account_key(monitor, f"keyrot:staging:chat-backend:{uuid.uuid4()}")
    world = monitor.with_settings(shared_environments=("prod",))
    # WHEN the monitor runs
    report = world.run()
    # THEN only the undeclared environment's key is reported (a name alone proves nothing), and neither is touched
    assert report.unmanaged_keys == [undeclared] and declared not in report.unmanaged_keys
    assert report.revoked == [] and _live(world, undeclared) and _live(world, declared)


def test_key_age_counts_from_the_promotion_of_a_rotation_that_stalled(monitor: MonitorWorld) -> None:
    # GIVEN a rotation that minted its key, stalled 25 hours, then finished
    arn = rotated(monitor, "chat-backend")
    driver = monitor.rotation.driver()
    token = driver.start(arn)
    driver.step(arn, token, "createSecret")
    monitor.clock.advance(25 * HOUR)
    assert driver.rotate(arn, token=token).succeeded
    assert STAGE_CURRENT in monitor.rotation.stages(arn)[token]
    # WHEN the monitor runs ten minutes after the promotion
    monitor.clock.advance(600)
    monitor.run()
    # THEN KeyAgeHours says ten minutes, not 25 hours (the key-age alarm counts from promotion)
    assert monitor.maxima(m.KEY_AGE_HOURS, m.key_dimensions("dev", "chat-backend"))[-1] == round(600 / HOUR, 3)


def test_the_old_key_used_right_after_a_stalled_promotion_is_not_retired_key_use(monitor: MonitorWorld) -> None:
    # GIVEN a monitor reading usage from before a rotation that stalled 25 hours between createSecret and
    # finishSecret, then was promoted
    arn = rotated(monitor, "chat-backend")
    monitor.run()
    old = monitor.rotation.current(arn).key_id
    driver = monitor.rotation.driver()
    token = driver.start(arn)
    driver.step(arn, token, "createSecret")
    monitor.clock.advance(25 * HOUR)
    assert driver.rotate(arn, token=token).succeeded
    promoted_minute = int(monitor.now().timestamp() - monitor.start) // 60
    # WHEN applications keep using the old key for a few minutes (their cache window), and the monitor runs
    usage(monitor, old, promoted_minute + 2, num_model_requests=5, input_tokens=1, output_tokens=1)
    monitor.clock.advance(5 * 60 + SETTLE)
    report = monitor.run()
    # THEN that is the grace period at work, not retired-key use (the usage was read, under the key's name)
    assert report.retired_keys == [] and report.revoked == []
    minute = monitor.start + (promoted_minute + 2) * 60
    assert monitor.sums(m.REQUESTS, m.key_dimensions("dev", "chat-backend"), minute, minute + 60) == {minute: 5}
