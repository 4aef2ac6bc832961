"""The audit-log tripwire against the stand-in: what others do to the project's keys and service accounts, to
keyrot's accounts and to the organization's admin keys reaches on-call within one run, naming who did it; keyrot's
own actions never do, and nothing is said twice."""

from __future__ import annotations

from lab.monitor_scenario import MonitorWorld

from .conftest import rotated
from .tripwire_support import another_admin, later, record_admin_key_id, subjects


def _watched(monitor: MonitorWorld) -> MonitorWorld:
    """A managed secret, keyrot's admin key recorded with its id, and a first run (the tripwire starts watching)."""
    rotated(monitor, "chat-backend")
    record_admin_key_id(monitor)
    monitor.run()
    monitor.notifications()
    later(monitor)
    return monitor


def test_a_key_made_by_hand_is_reported_within_one_run_naming_who_made_it(monitor: MonitorWorld) -> None:
    world = _watched(monitor)
    # GIVEN someone makes a key in the environment's project in the dashboard
    key_id, value = world.rotation.openai.console.as_user("mallory@example.com").create_project_key(
        world.rotation.project_id, "side project"
    )
    later(world)
    # WHEN the monitor runs next
    report = world.run()
    # THEN one notification says so, naming who made it and pointing to the runbook; never the key
    (note,) = world.notifications()
    assert note["subject"] == f"[keyrot dev] Unmanaged OpenAI key {key_id}"
    assert "Created by mallory@example.com (console)" in note["message"]
    assert "runbook.md#key-created-outside-keyrot" in note["message"]
    assert value not in note["message"] and value[-8:] not in note["message"]
    assert report.audit_log["findings"] == [f"key-created {key_id} by mallory@example.com (console)"]


def test_a_key_made_and_deleted_before_the_run_is_still_reported(monitor: MonitorWorld) -> None:
    world = _watched(monitor)
    # GIVEN a key made by hand and deleted again before the monitor runs (the findings cannot see it any more)
    console = world.rotation.openai.console.as_user("mallory@example.com")
    key_id, _ = console.create_project_key(world.rotation.project_id)
    console.delete_project_key(world.rotation.project_id, key_id)
    later(world)
    # WHEN the monitor runs THEN the tripwire says who made it
    world.run()
    (note,) = world.notifications()
    assert note["subject"] == f"[keyrot dev] Key {key_id} created outside keyrot"
    assert "mallory@example.com (console) created key" in note["message"] and "no longer lists it" in note["message"]


def test_a_service_account_made_by_hand_without_a_key_is_reported(monitor: MonitorWorld) -> None:
    world = _watched(monitor)
    state = world.rotation.openai.state
    console = world.rotation.openai.console.as_user("mallory@example.com")
    account, _ = state.create_service_account(
        world.rotation.project_id, "robot", with_key=False, expires_in=None, actor=console.actor
    )
    later(world)
    world.run()
    (note,) = world.notifications()
    assert note["subject"] == f"[keyrot dev] Service account {account.id} created outside keyrot"
    assert "mallory@example.com (console) created service account" in note["message"]


def test_a_key_made_with_another_admin_key_is_reported_naming_that_admin_key(monitor: MonitorWorld) -> None:
    # GIVEN another admin key (OpenAI files its actions under the organization's default project) minting a key
    admin, admin_key_id = another_admin(monitor, "eve@example.com")
    world = _watched(monitor)
    minted = admin.create_service_account(world.rotation.project_id, "shadow")
    later(world)
    # WHEN the monitor runs THEN it names the admin key that made it
    world.run()
    (note,) = world.notifications()
    assert note["subject"] == f"[keyrot dev] Unmanaged OpenAI key {minted.key_id}"
    assert f"Created by API key {admin_key_id} (eve@example.com)" in note["message"]


def test_keys_another_admin_key_makes_in_other_projects_are_not_reported(monitor: MonitorWorld) -> None:
    admin, _ = another_admin(monitor)
    world = _watched(monitor)
    elsewhere = world.rotation.openai.state.add_project(name="another team")
    admin.create_service_account(elsewhere, "their robot")
    world.rotation.openai.console.create_project_key(elsewhere)
    later(world)
    report = world.run()
    assert world.notifications() == [] and report.audit_log["elsewhere"] == 3  # account and key; the person's key


def test_keyrots_own_rotations_raise_nothing(monitor: MonitorWorld) -> None:
    world = _watched(monitor)
    # GIVEN keyrot rotating the key twice (accounts made, a previous key's account deleted by the rotation)
    arn = world.rotation.secrets.describe_secret(SecretId="keyrot/dev/chat-backend")["ARN"]
    for _ in range(2):
        assert world.rotation.driver().rotate(arn).succeeded
    later(world)
    # WHEN the monitor runs THEN the tripwire read every event and said nothing
    report = world.run()
    assert world.notifications() == []
    assert report.audit_log["read"] >= 4 and report.audit_log["findings"] == []


def test_an_admin_key_made_or_deleted_in_the_console_is_reported(monitor: MonitorWorld) -> None:
    world = _watched(monitor)
    owner = world.rotation.openai.console
    # GIVEN an owner making an admin key by hand WHEN the monitor runs THEN on-call hears who did it
    made, _ = owner.create_admin_key("break glass")
    later(world)
    world.run()
    (note,) = world.notifications()
    assert note["subject"] == "[keyrot dev] Admin key created outside keyrot"
    assert "owner@example.com (console) created an admin key" in note["message"]
    assert "runbook.md#admin-key-changed-outside-keyrot" in note["message"]
    # AND deleting it is reported too
    owner.delete_admin_key(made)
    later(world)
    world.run()
    assert subjects(world) == ["[keyrot dev] Admin key deleted outside keyrot"]


def test_an_admin_key_keyrots_admin_key_makes_and_deletes_raises_nothing(monitor: MonitorWorld) -> None:
    world = _watched(monitor)
    # GIVEN keyrot's own admin key minting and deleting an admin key (as the admin rotation does)
    admin = world.dependencies().admin
    minted = admin.create_admin_api_key("keyrot-admin:dev:token")
    admin.delete_admin_api_key(minted.key.id)
    later(world)
    # WHEN the monitor runs THEN nothing is said
    report = world.run()
    assert world.notifications() == [] and report.audit_log["read"] == 2


def test_keyrots_account_deleted_by_hand_is_reported_with_the_key_it_held(monitor: MonitorWorld) -> None:
    world = _watched(monitor)
    arn = world.rotation.secrets.describe_secret(SecretId="keyrot/dev/chat-backend")["ARN"]
    current = world.rotation.current(arn)
    # GIVEN someone deleting the service account of the current key in the dashboard
    world.rotation.openai.console.as_user("intern@example.com").delete_service_account(
        world.rotation.project_id, current.service_account_id
    )
    later(world)
    # WHEN the monitor runs THEN on-call hears which key, who did it, and to rotate
    world.run()
    (note,) = [n for n in world.notifications() if "deleted outside keyrot" in n["subject"]]
    assert note["subject"] == "[keyrot dev] keyrot's current key of chat-backend deleted outside keyrot"
    assert "intern@example.com (console) deleted" in note["message"]
    assert "keyrot rotate --env dev --key chat-backend" in note["message"]
    assert current.api_key not in note["message"]


def test_nothing_is_said_twice(monitor: MonitorWorld) -> None:
    world = _watched(monitor)
    world.rotation.openai.console.create_admin_key("break glass")
    world.rotation.openai.console.as_user("mallory@example.com").create_project_key(world.rotation.project_id)
    later(world)
    world.run()
    assert len(world.notifications()) == 2
    # WHEN the monitor runs again (within the dedup period and past the lookback) THEN nothing new is said
    for _ in range(3):
        later(world)
        world.run()
    assert world.notifications() == []


def test_an_id_less_admin_key_among_others_is_said_once_and_people_are_still_watched(monitor: MonitorWorld) -> None:
    # GIVEN keyrot's admin key stored without its id, and another admin key in the organization
    rotated(monitor, "chat-backend")
    another_admin(monitor)
    later(monitor)
    monitor.run()
    monitor.notifications()
    later(monitor)
    arn = monitor.rotation.secrets.describe_secret(SecretId="keyrot/dev/chat-backend")["ARN"]
    # WHEN keyrot rotates (its admin key acts) and someone makes a key by hand, over two runs
    assert monitor.rotation.driver().rotate(arn).succeeded
    key_id, _ = monitor.rotation.openai.console.as_user("mallory@example.com").create_project_key(
        monitor.rotation.project_id
    )
    later(monitor)
    monitor.run()
    first = subjects(monitor)
    assert monitor.rotation.driver().rotate(arn).succeeded
    later(monitor)
    monitor.run()
    # THEN on-call hears once that keyrot cannot recognise its own admin key, and still hears about the person's key
    assert sorted(first) == sorted(
        [
            "[keyrot dev] keyrot cannot recognise its own admin key in the audit log",
            f"[keyrot dev] Unmanaged OpenAI key {key_id}",
        ]
    )
    assert subjects(monitor) == []
