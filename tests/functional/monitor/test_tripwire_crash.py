"""The tripwire across crashes: a monitor run that dies after any remote call, then the next scheduled runs, tell
on-call every event others caused, naming who; an event is told twice only when the process died between SNS's
answer and the state write that follows it (no process can tell whether SNS took a message it never heard back on).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import pytest

from keyrot.monitor.run import MonitorDependencies, run_monitor
from lab.monitor_scenario import MonitorWorld
from lab.remote_calls import RemoteCallLog, SimulatedCrash

from .conftest import rotated
from .tripwire_support import later, record_admin_key_id

LEASE_SECONDS = 30  # a short function: a dead run's lease lapses before the next scheduled run
SCHEDULE_SECONDS = 300


def _prepared(world: MonitorWorld) -> tuple[MonitorWorld, dict[str, re.Pattern[str]]]:
    """A watched environment where, since the last run, someone made a key and a keyless account in the project,
    an owner made an admin key, and someone deleted the account of keyrot's previous key. Returns the world and,
    per fact, the pattern of the notification that must tell it (naming who did it)."""
    arn = rotated(world, "chat-backend", times=2)
    record_admin_key_id(world)
    world.run()
    world.notifications()
    later(world)
    openai, project = world.rotation.openai, world.rotation.project_id
    mallory = openai.console.as_user("mallory@example.com")
    key_id, _ = mallory.create_project_key(project)
    account, _ = openai.state.create_service_account(
        project, "robot", with_key=False, expires_in=None, actor=mallory.actor
    )
    openai.console.create_admin_key("break glass")
    previous = world.rotation.previous(arn)
    assert previous is not None
    openai.console.as_user("intern@example.com").delete_service_account(project, previous.service_account_id)
    later(world)
    return world, {
        "key": re.compile(rf"(Unmanaged OpenAI key|Key) {key_id}.*mallory@example\.com \(console\)", re.S),
        "account": re.compile(rf"Service account {account.id} created outside keyrot.*mallory@example\.com", re.S),
        "admin key": re.compile(r"Admin key created outside keyrot.*owner@example\.com \(console\)", re.S),
        "deletion": re.compile(r"previous key of chat-backend deleted outside keyrot.*intern@example\.com", re.S),
    }


def _told(world: MonitorWorld) -> list[str]:
    return [f"{note['subject']}\n{note['message']}" for note in world.notifications()]


def _may_repeat(sequence: list[str], crash_after: int) -> bool:
    """Whether the run died between an SNS Publish and the next state write (SSM PutParameter)."""
    done = sequence[:crash_after]
    published = [i for i, name in enumerate(done) if name == "aws:Publish"]
    return bool(published) and "aws:PutParameter" not in done[published[-1] + 1 :]


def test_crash_after_any_call_then_the_next_runs_tell_each_event_once(
    new_monitor: Callable[[], MonitorWorld],
) -> None:
    # GIVEN the remote calls of a monitor run that reads those events and tells on-call, recorded
    world, facts = _prepared(new_monitor())
    log = RemoteCallLog()
    run_monitor(world.recorded_dependencies(log))
    sequence = list(log.calls)
    told = _told(world)
    assert all(sum(1 for text in told if fact.search(text)) == 1 for fact in facts.values()), told
    assert sequence.count("openai:GET /organization/audit_logs") == 2 and "aws:Publish" in sequence
    violations = []
    for crash_after in range(1, len(sequence) + 1):
        # WHEN a run dies right after call `crash_after`, and the schedule runs the monitor again, twice
        world, facts = _prepared(new_monitor())
        crashing = RemoteCallLog()
        crashing.crash_after = crash_after
        with pytest.raises(SimulatedCrash):
            run_monitor(_short(world.recorded_dependencies(crashing)))
        told = _told(world)
        for _ in range(2):
            later(world, SCHEDULE_SECONDS)
            world.run()
            told += _told(world)
        # THEN every event was told, naming who did it; twice only if the run died between SNS and the state write
        limit = 2 if _may_repeat(sequence, crash_after) else 1
        for name, fact in facts.items():
            times = sum(1 for text in told if fact.search(text))
            if not 1 <= times <= limit:
                violations.append(f"crash after #{crash_after} {sequence[crash_after - 1]}: {name} told {times}x")
    assert not violations, "\n".join(violations)


def _short(deps: MonitorDependencies) -> MonitorDependencies:
    return dataclasses.replace(deps, lease_seconds=LEASE_SECONDS)
