"""Bad audit-log input against a real monitor run: malformed entries, types keyrot does not read, events of other
projects. Never a crash, never key material in a log line, a metric or a notification; what was skipped is counted
(AuditEventsSkipped) and named in the log."""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

import pytest
import requests

from keyrot import metric_names as m
from lab.monitor_scenario import MonitorWorld

from .conftest import rotated
from .tripwire_support import later, record_admin_key_id

PLANTED = "sk-proj-PLANTEDabcdefghijklmnopqrstuvwxyz0123456789"


def _bad_entries(now: int) -> list[dict[str, Any]]:
    return [
        {"id": "audit_log-bad1", "type": "api_key.created", "effective_at": "yesterday"},
        {"id": "audit_log-bad2", "type": "api_key.created", "effective_at": now, "actor": {"type": "robot"}},
        {
            "id": "audit_log-bad3",
            "type": "api_key.created",
            "effective_at": now,
            "actor": {"type": "session", "session": {"user": {"id": "user-x", "email": f"{PLANTED}@evil.example"}}},
            "api_key.created": {"id": PLANTED},
        },
        {"id": "audit_log-new1", "type": "project.user.added", "effective_at": now, "actor": None},
        {"not": "an entry", "key": PLANTED},
        {
            "id": "audit_log-other",
            "type": "api_key.created",
            "effective_at": now,
            "project": {"id": "proj_someoneelse"},
            "actor": {"type": "session", "session": {"user": {"id": "user-y", "email": "y@example.com"}}},
            "api_key.created": {"id": "key_elsewhere"},
        },
    ]


class ServingBadEntries(requests.Session):
    """The audit log's first page of the keys stream carries the bad entries as well."""

    def __init__(self, now: int) -> None:
        super().__init__()
        self.now = now

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().request(method, url, *args, **kwargs)
        params = kwargs.get("params") or {}
        if "/organization/audit_logs" in str(url) and response.status_code == 200 and not params.get("tenant_only"):
            page = response.json()
            page["data"] = _bad_entries(self.now) + page["data"]
            response._content = json.dumps(page).encode()
        return response


def test_bad_audit_entries_are_counted_and_named_never_fatal_never_leaked(
    monitor: MonitorWorld, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN a watched environment whose audit log serves malformed entries, a new type, another project's event
    rotated(monitor, "chat-backend")
    record_admin_key_id(monitor)
    monitor.run()
    monitor.notifications()
    later(monitor)
    now = int(monitor.clock())
    world = dataclasses.replace(
        monitor, rotation=dataclasses.replace(monitor.rotation, session_factory=lambda: ServingBadEntries(now))
    )
    # WHEN the monitor runs
    with caplog.at_level(logging.INFO):
        report = world.run()
    # THEN the run completes, nothing is notified, and the skipped entries are counted by reason
    assert report.heartbeat and not report.failed_parts
    assert monitor.notifications() == []
    skipped = report.audit_log["skipped"]
    assert sum(skipped.values()) == 5 and skipped["unknown type project.user.added"] == 1
    assert skipped["malformed: field effective_at is missing or not Unix seconds up to the year 9999"] == 1
    assert report.audit_log["elsewhere"] == 1
    env = m.environment_dimensions("dev")
    assert monitor.maxima(m.AUDIT_EVENTS_SKIPPED, env) == [5.0]
    # AND the log names what was skipped, and holds no key
    assert "not judged: malformed: field actor is not a session or api_key actor" in caplog.text
    assert PLANTED not in caplog.text and PLANTED[-12:] not in caplog.text
    assert PLANTED not in json.dumps(report.audit_log)


def test_a_malformed_entry_makes_the_run_list_the_keys_rather_than_guess(monitor: MonitorWorld) -> None:
    # GIVEN the inventory kept from the audit log, then a run whose log holds an entry keyrot cannot read
    rotated(monitor, "chat-backend")
    record_admin_key_id(monitor)
    monitor.run()
    later(monitor)
    now = int(monitor.clock())
    world = dataclasses.replace(
        monitor, rotation=dataclasses.replace(monitor.rotation, session_factory=lambda: ServingBadEntries(now))
    )
    # WHEN it runs THEN the keys are listed in full (the entry might have been a key's creation)
    assert world.run().audit_log["listing"] == "an audit-log entry could not be read"
