"""The tripwire across keyrot's own admin rotations: however many times `keyrot rotate --admin` ran between two
monitor runs, and whether the runs before read any entries, the admin keys keyrot minted, used and deleted are never
reported as someone else's; a person's admin key made in the same gap still is."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyrot.aws.secrets import SecretStore
from keyrot.errors import AwsCallError
from keyrot.monitor.run import MonitorReport, run_monitor
from lab.monitor_scenario import MonitorWorld
from tests.functional.admin_rotation.world import AdminWorld

from .conftest import rotated
from .tripwire_support import later, subjects


class HistoryDenied(SecretStore):
    """Secrets Manager as a role without secretsmanager:ListSecretVersionIds sees it (a deployment not updated)."""

    def iter_versions(self, secret_id: str) -> Iterator[Mapping[str, Any]]:
        raise AwsCallError("ListSecretVersionIds", "AccessDeniedException", "not authorized")


def _run(monitor: MonitorWorld, admin: AdminWorld, *, history: bool = True) -> MonitorReport:
    """A monitor run as deployed: with the admin key the admin-key secret holds now."""
    rotation = dataclasses.replace(monitor.rotation, admin_key=admin.current().admin_key)
    deps = dataclasses.replace(monitor, rotation=rotation).dependencies()
    if not history:
        deps.rotation.store = HistoryDenied(monitor.rotation.secrets)
    return run_monitor(deps)


def _adopted(monitor: MonitorWorld) -> tuple[AdminWorld, str]:
    """A managed secret, keyrot's admin key put with its id (`keyrot admin-key set`); returns the admin world and
    the managed secret's ARN."""
    arn = rotated(monitor, "chat-backend")
    admin = AdminWorld.adopt(monitor.rotation)
    later(monitor)
    return admin, arn


def _rotate_admin(monitor: MonitorWorld, admin: AdminWorld, times: int) -> None:
    """`keyrot rotate --admin` `times` times with no monitor run between (from the third on, once the previous
    keyrot admin key's grace period is over, as the rotation requires: the monitor was down meanwhile); each
    rotation's cleanup deletes the keyrot admin keys past their grace."""
    for done in range(times):
        if done >= 2:
            admin.advance(admin.settings.grace_period_seconds + 1)
        admin.rotate()
        later(monitor)


def test_two_admin_rotations_after_a_quiet_first_run_raise_nothing(monitor: MonitorWorld) -> None:
    # GIVEN the admin key put, and a first monitor run that reads no audit entries
    admin, _ = _adopted(monitor)
    _run(monitor, admin)
    assert monitor.notifications() == []
    later(monitor)
    # WHEN `keyrot rotate --admin` runs twice (the bootstrap key then holds no label) and the monitor runs again
    _rotate_admin(monitor, admin, 2)
    _run(monitor, admin)
    # THEN on-call hears nothing: the bootstrap key that minted the first keyrot admin key is keyrot's own
    assert subjects(monitor) == []


@pytest.mark.parametrize("rotations", [1, 2, 3, 4])
@pytest.mark.parametrize("quiet", [True, False], ids=["quiet-runs", "runs-with-entries"])
def test_keyrots_admin_rotations_between_runs_are_never_reported(
    monitor: MonitorWorld, rotations: int, quiet: bool
) -> None:
    # GIVEN a watched environment whose last run read nothing, or read keyrot rotating an application key
    admin, arn = _adopted(monitor)
    _run(monitor, admin)
    later(monitor)
    if not quiet:
        assert monitor.rotation.driver().rotate(arn).succeeded
        later(monitor)
    _run(monitor, admin)
    assert monitor.notifications() == []
    later(monitor)
    # WHEN keyrot rotates its admin key `rotations` times (and an application key with the newest), an owner makes
    # an admin key in the console, and the monitor runs
    _rotate_admin(monitor, admin, rotations)
    if not quiet:
        assert dataclasses.replace(monitor.rotation, admin_key=admin.current().admin_key).driver().rotate(arn).succeeded
    monitor.rotation.openai.console.create_admin_key("break glass")
    later(monitor)
    _run(monitor, admin)
    # THEN on-call hears of the owner's admin key only
    told = monitor.notifications()
    assert [note["subject"] for note in told] == ["[keyrot dev] Admin key created outside keyrot"]
    assert "owner@example.com (console) created an admin key" in told[0]["message"]


def test_a_secret_history_it_may_not_read_costs_a_false_alarm_never_the_run(monitor: MonitorWorld) -> None:
    # GIVEN a watched environment, three admin rotations since its last run, and an owner's admin key made by hand
    admin, _ = _adopted(monitor)
    _run(monitor, admin)
    later(monitor)
    _rotate_admin(monitor, admin, 3)
    monitor.rotation.openai.console.create_admin_key("break glass")
    later(monitor)
    # WHEN the monitor runs without permission to list the admin-key secret's past versions
    report = _run(monitor, admin, history=False)
    # THEN the run and its tripwire complete: on-call hears of the owner's key, and (a false alarm, never a missed
    # one) of the keyrot admin key that held a label only between the runs
    assert "tripwire" not in report.failed_parts
    told = subjects(monitor)
    assert told.count("[keyrot dev] Admin key created outside keyrot") == 2, told


STEPS = ("admin rotation", "application rotation", "owner's admin key", "monitor run")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=st.lists(st.sampled_from(STEPS), min_size=1, max_size=9))
def test_any_schedule_of_rotations_and_runs_reports_exactly_the_owners_admin_keys(
    new_monitor: Callable[[], MonitorWorld], schedule: list[str]
) -> None:
    # GIVEN a watched environment of its own (on the shared moto, stand-in and clock)
    monitor = new_monitor()
    admin, arn = _adopted(monitor)
    _run(monitor, admin)
    monitor.notifications()
    prefix = f"[keyrot {monitor.settings.environment}]"
    admin_rotations, owners_keys = 0, 0
    # WHEN keyrot rotates its admin key and an application key, an owner makes admin keys by hand, and the monitor
    # runs, in any order (a third admin rotation once the grace period is over, as the rotation requires)
    for step in [*schedule, "monitor run"]:
        later(monitor)
        if step == "admin rotation":
            if admin_rotations >= 2:
                admin.advance(admin.settings.grace_period_seconds + 1)
            admin.rotate()
            admin_rotations += 1
        elif step == "application rotation":
            rotation = dataclasses.replace(monitor.rotation, admin_key=admin.current().admin_key)
            assert rotation.driver().rotate(arn).succeeded
        elif step == "owner's admin key":
            monitor.rotation.openai.console.create_admin_key("break glass")
            owners_keys += 1
        else:
            _run(monitor, admin)
            # THEN every run tells on-call of the owner's admin keys made since the last one, and of nothing else
            assert subjects(monitor) == [f"{prefix} Admin key created outside keyrot"] * owners_keys, schedule
            owners_keys = 0
