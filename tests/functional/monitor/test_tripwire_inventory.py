"""The project's keys kept up to date from the audit log: a steady run makes the same OpenAI calls whatever the
number of keys; the keys are listed in full only on a container's first run, after the cursor is lost, once a day,
or while the audit log cannot be read; and what the inventory says is what OpenAI has."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable

from keyrot.monitor import key_cache
from lab.monitor_scenario import MonitorWorld

from .conftest import rotated
from .tripwire_support import later, record_admin_key_id

DAY = 86400


def _endpoints(world: MonitorWorld) -> Counter[str]:
    return Counter(call.endpoint for call in world.rotation.openai.calls)


def _run_counting(world: MonitorWorld) -> tuple[Counter[str], dict]:
    world.rotation.openai.reset_calls()
    report = world.run()
    return _endpoints(world), report.audit_log


def _with_keys(world: MonitorWorld, count: int) -> MonitorWorld:
    """`count` keys another keyrot environment declared to share the project minted (listed, never reported)."""
    state = world.rotation.openai.state
    for index in range(count):
        name = f"keyrot:staging:app-{index}:{uuid.uuid4()}"
        state.create_service_account(world.rotation.project_id, name, with_key=True, expires_in=None)
    return world.with_settings(shared_environments=("staging",))


def test_a_steady_run_makes_the_same_openai_calls_whatever_the_number_of_keys(
    new_monitor: Callable[[], MonitorWorld],
) -> None:
    counts = []
    for keys in (3, 250):  # one page of keys, then three
        # GIVEN a project with `keys` keys, watched since a first run
        world = _with_keys(new_monitor(), keys)
        rotated(world, "chat-backend")
        record_admin_key_id(world)
        first, _ = _run_counting(world)
        assert first["list_project_api_keys"] == (1 if keys < 100 else 3)
        later(world)
        # WHEN the monitor runs again with nothing changed
        steady, summary = _run_counting(world)
        # THEN it reads the audit log (two streams) and no key list
        assert steady["list_project_api_keys"] == 0 and steady["list_audit_logs"] == 2, steady
        assert summary["listing"] is None
        counts.append(sum(steady.values()))
    assert counts[0] == counts[1]


def _watched(monitor: MonitorWorld) -> MonitorWorld:
    rotated(monitor, "chat-backend")
    record_admin_key_id(monitor)
    monitor.run()
    monitor.notifications()
    later(monitor)
    return monitor


def test_a_key_made_by_hand_enters_the_inventory_from_the_audit_log_without_a_listing(monitor: MonitorWorld) -> None:
    world = _watched(monitor)
    key_id, _ = world.rotation.openai.console.create_project_key(world.rotation.project_id)
    later(world)
    world.rotation.openai.reset_calls()
    report = world.run()
    calls = _endpoints(world)
    assert report.unmanaged_keys == [key_id]
    assert calls["list_project_api_keys"] == 0 and calls["get_project_api_key"] == 1


def test_a_key_deleted_by_hand_leaves_the_inventory_without_a_listing(monitor: MonitorWorld) -> None:
    world = _watched(monitor)
    console = world.rotation.openai.console
    key_id, _ = console.create_project_key(world.rotation.project_id)
    later(world)
    assert world.run().unmanaged_keys == [key_id]
    console.delete_project_key(world.rotation.project_id, key_id)
    later(world)
    world.rotation.openai.reset_calls()
    report = world.run()
    assert report.unmanaged_keys == [] and _endpoints(world)["list_project_api_keys"] == 0


def test_keyrots_rotation_between_runs_is_known_without_a_listing(monitor: MonitorWorld) -> None:
    # GIVEN keyrot rotating between two runs (a new account and key; the secret's new current key)
    world = _watched(monitor)
    arn = world.rotation.secrets.describe_secret(SecretId="keyrot/dev/chat-backend")["ARN"]
    assert world.rotation.driver().rotate(arn).succeeded
    later(world)
    # WHEN the monitor runs
    counted, summary = _run_counting(world)
    # THEN the new key is in the inventory (nothing is reported, nothing listed)
    assert counted["list_project_api_keys"] == 0 and summary["listing"] is None
    assert world.notifications() == []


def test_the_keys_are_listed_on_a_new_container_after_a_lost_cursor_and_once_a_day(monitor: MonitorWorld) -> None:
    world = _watched(monitor)
    # a new Lambda container has no copy of the keys
    key_cache.clear_cache()
    counted, summary = _run_counting(world)
    assert counted["list_project_api_keys"] == 1 and summary["listing"] == "no copy of the keys in this container"
    # a lost cursor (the state's audit field removed by hand)
    later(world)
    world.ssm.put_parameter(
        Name=world.settings.state_parameter, Value=_without_audit(world), Type="String", Overwrite=True
    )
    counted, summary = _run_counting(world)
    assert counted["list_project_api_keys"] == 1 and summary["listing"].startswith("first read")
    # a day later, a reconciliation that finds the kept copy right
    later(world, DAY)
    counted, summary = _run_counting(world)
    assert counted["list_project_api_keys"] == 1 and summary["listing"] == "daily reconciliation"
    assert summary["reconciled_drift"] == 0
    # and in between, nothing is listed
    later(world)
    assert _run_counting(world)[0]["list_project_api_keys"] == 0


def test_a_reconciliation_finds_what_the_audit_log_did_not_say(monitor: MonitorWorld) -> None:
    # GIVEN a key that appears without an audit event (a test shaping the world, as a missing event would)
    world = _watched(monitor)
    key_id, _ = world.rotation.openai.state.add_user_key(world.rotation.project_id)
    world.rotation.openai.state.audit._events.clear()  # as if OpenAI had not listed the event
    later(world)
    assert world.run().unmanaged_keys == []  # not known yet
    # WHEN the daily reconciliation comes THEN the key is found, and the difference is logged
    later(world, DAY)
    report = world.run()
    assert report.unmanaged_keys == [key_id] and report.audit_log["reconciled_drift"] == 1


def test_while_the_audit_log_is_off_on_call_is_told_once_and_everything_else_goes_on(monitor: MonitorWorld) -> None:
    world = _watched(monitor)
    openai = world.rotation.openai
    # GIVEN the organization's audit logging off
    openai.state.audit.enabled = False
    hand_made = []
    for run in range(3):
        later(world)
        key_id, _ = openai.state.add_user_key(world.rotation.project_id, name=f"hand {run}")
        hand_made.append(key_id)
        # WHEN the monitor runs
        openai.reset_calls()
        report = world.run()
        # THEN each run completes (heartbeat) and finds the keys made by hand, listing them in full
        assert report.heartbeat and key_id in report.unmanaged_keys
        assert _endpoints(world)["list_project_api_keys"] == 1
    # AND on-call heard once about the audit log, with how to turn it on
    notes = [n for n in world.notifications() if "audit log" in n["subject"]]
    assert [n["subject"] for n in notes] == ["[keyrot dev] OpenAI audit log unreadable: tripwire off"]
    assert "Data controls" in notes[0]["message"] and "runbook.md#audit-log-unreadable" in notes[0]["message"]
    # AND once it is on again, the tripwire watches again from then on
    openai.state.audit.enabled = True
    later(world)
    world.run()
    later(world)
    key_id, _ = openai.console.as_user("mallory@example.com").create_project_key(world.rotation.project_id)
    later(world)
    world.run()
    (note,) = world.notifications()
    assert "Created by mallory@example.com (console)" in note["message"]


def _without_audit(world: MonitorWorld) -> str:
    state = world.state() or {}
    state.pop("audit", None)
    return json.dumps(state)
