"""Drift against the stand-in: a person's change in the "console" found by the next check, with the actor the audit
log records (rate limits) or without one (the spec has no audit event for the other guardrails), notified or
restored as `enforce` says; audit logging off costs the actor, never the check."""

from __future__ import annotations

from typing import Any

from keyrot.guardrails import (
    DeclaredGuardrails,
    apply_guardrails,
    detect_drift,
    drift_notification,
    enforce_guardrails,
    parse_guardrails,
)

from .conftest import BLOCK, Project

RUNBOOK = "https://example.com/docs/runbook.md"


def applied(project: Project, block: dict[str, Any] = BLOCK) -> DeclaredGuardrails:
    declared = parse_guardrails(block)
    apply_guardrails(project.admin(), project.project_id, declared)
    return declared


def test_a_project_as_declared_has_no_drift(project: Project) -> None:
    declared = applied(project)
    report = detect_drift(project.admin(), project.project_id, declared)
    assert not report.drifted and report.drift == ()


def test_a_rate_limit_changed_in_the_console_is_drift_naming_who_changed_it(project: Project) -> None:
    # GIVEN the block applied, then bob raises gpt-4o-mini's limit in the console
    declared = applied(project)
    bob = project.standin.console.as_user("bob@example.com", user_id="user_bob")
    bob.update_rate_limit(project.project_id, "gpt-4o-mini", max_requests_per_1_minute=9_000)
    # WHEN the drift is checked (reading the audit log itself)
    report = detect_drift(project.admin(), project.project_id, declared)
    # THEN the one drifted setting names bob, and the notification says so
    (drift,) = report.drift
    assert (drift.setting, drift.declared, drift.actual, drift.actor) == (
        "rateLimits.gpt-4o-mini.max_requests_per_1_minute",
        "500",
        "9000",
        "bob@example.com",
    )
    _, subject, body = drift_notification(report, "dev", RUNBOOK)
    assert "1 setting(s) differ" in subject and "changed by bob@example.com" in body
    # AND notify (the default) changed nothing back
    assert project.rails.rate_limits["rl-gpt-4o-mini"].values["max_requests_per_1_minute"] == 9_000


def test_spend_guardrails_changed_in_the_console_are_drift_without_an_actor(project: Project) -> None:
    declared = applied(project)
    console = project.standin.console
    console.set_spend_limit(project.project_id, 50_000)
    console.set_model_permissions(project.project_id, "deny_list", ["o3"])
    console.create_spend_alert(project.project_id, 2_000, ["someone@example.com"])
    report = detect_drift(project.admin(), project.project_id, declared)
    assert sorted(d.setting for d in report.drift) == ["models", "spendAlerts[$20.00]", "spendLimitUsd"]
    assert all(d.actor is None for d in report.drift)


def test_enforce_restore_puts_a_console_change_back_and_the_next_check_is_clean(project: Project) -> None:
    declared = applied(project, {**BLOCK, "enforce": "restore"})
    project.standin.console.update_rate_limit(project.project_id, "gpt-4o-mini", max_requests_per_1_minute=10)
    project.standin.console.delete_spend_limit(project.project_id)
    report = enforce_guardrails(project.admin(), project.project_id, declared)
    assert len(report.restored) == 2 and report.restore_error is None
    assert project.rails.rate_limits["rl-gpt-4o-mini"].values["max_requests_per_1_minute"] == 500
    assert project.rails.spend_limit_cents == 10_000
    assert not detect_drift(project.admin(), project.project_id, declared).drifted


def test_with_audit_logging_off_the_drift_is_still_reported_without_an_actor(project: Project) -> None:
    declared = applied(project)
    project.standin.console.update_rate_limit(project.project_id, "gpt-4o-mini", max_requests_per_1_minute=7)
    project.standin.state.audit.enabled = False
    report = detect_drift(project.admin(), project.project_id, declared)
    assert [(d.actual, d.actor) for d in report.drift] == [("7", None)]


def test_the_monitor_can_pass_the_audit_events_it_read(project: Project) -> None:
    # GIVEN a console change and the monitor's own read of the audit log
    declared = applied(project)
    project.standin.console.as_user("eve@example.com").update_rate_limit(
        project.project_id, "gpt-4o-mini", max_requests_per_1_minute=42
    )
    events = project.admin().read_audit_log(since=0).events
    project.standin.reset_calls()
    # WHEN the monitor checks with them
    report = detect_drift(project.admin(), project.project_id, declared, events)
    # THEN the actor comes from them, and the check did not read the audit log again
    assert report.drift[0].actor == "eve@example.com"
    assert "list_audit_logs" not in [call.endpoint for call in project.standin.calls]
