"""Drift: which settings differ from the declared ones, who changed them when the audit log says so, what on-call
is told, and what `enforce` does about it (notify changes nothing; restore puts the declared values back)."""

from __future__ import annotations

import pytest

from keyrot.guardrails import (
    GuardrailsRestoreError,
    check_drift,
    drift_notification,
    enforce_guardrails,
    parse_guardrails,
    read_actual,
)
from keyrot.openai_admin.audit_log import AuditActor, AuditEvent, UnknownAuditEvent
from keyrot.openai_admin.errors import PermissionDeniedError
from keyrot.openai_admin.guardrails import SpendLimit
from tests.unit.guardrails.fake_admin import FakeAdmin

PROJECT = "proj_unit"
DECLARED = parse_guardrails({"rateLimits": {"gpt-4o-mini": {"max_requests_per_1_minute": 500}}, "spendLimitUsd": 100})
RUNBOOK = "https://example.com/runbook.md"


def drifted_admin() -> FakeAdmin:
    """A project where someone lowered gpt-4o-mini to 100 and raised the hard limit to $200."""
    admin = FakeAdmin.with_models()
    admin.update_rate_limit(PROJECT, "rl-gpt-4o-mini", max_requests_per_1_minute=100)
    admin.spend_limit = SpendLimit(20_000, "USD", "month", "enforcing")
    admin.calls.clear()
    return admin


def event(event_id: str, at: int, email: str | None, value: int, resource: str = "rl-gpt-4o-mini") -> AuditEvent:
    actor = AuditActor("session", user_id="user_1", email=email) if email else AuditActor("api_key", api_key_id="key_a")
    return AuditEvent(
        event_id,
        "rate_limit.updated",
        at,
        actor,
        PROJECT,
        resource,
        changes=(("max_requests_per_1_minute", value),),
    )


def test_each_differing_setting_is_reported_with_declared_and_actual() -> None:
    report = check_drift(DECLARED, read_actual(drifted_admin(), PROJECT), PROJECT)
    assert [(d.setting, d.declared, d.actual, d.actor) for d in report.drift] == [
        ("rateLimits.gpt-4o-mini.max_requests_per_1_minute", "500", "100", None),
        ("spendLimitUsd", "$100.00 a month", "$200.00 a month", None),
    ]
    assert report.drifted


def test_the_audit_log_names_who_set_the_value_the_project_has() -> None:
    # GIVEN keyrot set 500 (admin key) and a person set 100 in the console in the same second, plus unrelated events
    events = [
        event("e1", 1_000, None, 500),
        event("e2", 1_000, "bob@example.com", 100),
        event("e3", 2_000, "eve@example.com", 7, resource="rl-gpt-4.1"),
        UnknownAuditEvent("e4", "project.updated", 3_000, None, PROJECT),
    ]
    # WHEN the drift is checked with them
    report = check_drift(DECLARED, read_actual(drifted_admin(), PROJECT), PROJECT, events)
    # THEN the rate limit's drift names bob, and the spend limit's (no audit event type exists) names nobody
    assert [(d.actor, d.changed_at) for d in report.drift] == [("bob@example.com", 1_000), (None, None)]


def test_without_audit_events_the_drift_names_no_actor() -> None:
    report = check_drift(DECLARED, read_actual(drifted_admin(), PROJECT), PROJECT, [])
    assert all(d.actor is None for d in report.drift)


def test_the_notification_says_what_differs_who_changed_it_what_to_do_and_links_the_runbook() -> None:
    report = check_drift(
        DECLARED, read_actual(drifted_admin(), PROJECT), PROJECT, [event("e2", 1_767_225_600, "bob@example.com", 100)]
    )
    dedup, subject, body = drift_notification(report, "prod", RUNBOOK)
    assert subject == "[keyrot prod] OpenAI guardrails drift: 2 setting(s) differ"
    assert (
        "rateLimits.gpt-4o-mini.max_requests_per_1_minute: declared 500, actual 100 "
        "(changed by bob@example.com at 2026-01-01 00:00 UTC)" in body
    )
    assert "spendLimitUsd: declared $100.00 a month, actual $200.00 a month" in body
    assert "keyrot guardrails --env prod" in body and "enforce: notify. keyrot changed nothing" in body
    assert body.rstrip().endswith(f"Runbook: {RUNBOOK}#guardrail-drift")
    assert dedup.startswith("guardrails:")


def test_the_same_drift_has_the_same_dedup_key_and_a_new_change_a_new_one() -> None:
    admin = drifted_admin()
    first = check_drift(DECLARED, read_actual(admin, PROJECT), PROJECT)
    again = check_drift(DECLARED, read_actual(admin, PROJECT), PROJECT, [event("e9", 5, "x@example.com", 100)])
    admin.update_rate_limit(PROJECT, "rl-gpt-4o-mini", max_requests_per_1_minute=99)
    changed = check_drift(DECLARED, read_actual(admin, PROJECT), PROJECT)
    assert first.dedup_key == again.dedup_key != changed.dedup_key


def test_enforce_notify_reports_drift_and_changes_nothing() -> None:
    admin = drifted_admin()
    report = enforce_guardrails(admin, PROJECT, DECLARED, [])
    assert report.drifted and report.restored == () and admin.writes == []
    assert report.restore_plan == (
        "rate limits of gpt-4o-mini: max_requests_per_1_minute 100 -> 500",
        "hard spend limit set to $100.00 a month",
    )


def test_enforce_restore_puts_the_declared_values_back() -> None:
    admin = drifted_admin()
    restore = parse_guardrails(
        {"rateLimits": {"gpt-4o-mini": {"max_requests_per_1_minute": 500}}, "spendLimitUsd": 100, "enforce": "restore"}
    )
    report = enforce_guardrails(admin, PROJECT, restore, [])
    assert report.restored == report.restore_plan and report.restore_error is None
    assert admin.limits["gpt-4o-mini"].max_requests_per_1_minute == 500
    assert admin.spend_limit is not None and admin.spend_limit.threshold_cents == 10_000
    assert "keyrot put the declared values back" in drift_notification(report, "dev", RUNBOOK)[2]
    report.raise_for_restore()  # nothing to raise


def test_a_restore_that_fails_is_reported_with_what_was_restored_and_raised_on_demand() -> None:
    # GIVEN OpenAI fails the spend-limit call of the restore
    admin = drifted_admin()
    admin.fail_on = "set_spend_limit"
    restore = parse_guardrails(
        {"rateLimits": {"gpt-4o-mini": {"max_requests_per_1_minute": 500}}, "spendLimitUsd": 100, "enforce": "restore"}
    )
    # WHEN the check restores
    report = enforce_guardrails(admin, PROJECT, restore, [])
    # THEN the report names the failure, and the notification says restoring failed
    assert report.restore_error is not None and report.restore_error.startswith("ServerError")
    assert "restoring failed" in drift_notification(report, "dev", RUNBOOK)[2]
    with pytest.raises(GuardrailsRestoreError):
        report.raise_for_restore()


def test_restore_does_not_try_what_the_project_cannot_take() -> None:
    # GIVEN a declared model the project has no rate limit for
    admin = drifted_admin()
    restore = parse_guardrails(
        {"rateLimits": {"o3": {"max_requests_per_1_minute": 1}}, "spendLimitUsd": 100, "enforce": "restore"}
    )
    # WHEN the check runs in restore mode
    report = enforce_guardrails(admin, PROJECT, restore, [])
    # THEN nothing is changed, and the problem is the restore error
    assert admin.writes == [] and report.restore_error is not None and "rateLimits.o3" in report.restore_error


def test_the_report_as_a_dict_carries_settings_and_descriptions_only() -> None:
    report = check_drift(DECLARED, read_actual(drifted_admin(), PROJECT), PROJECT)
    data = report.as_dict()
    assert data["drifted"] is True and data["project_id"] == PROJECT
    assert data["drift"][0] == {
        "setting": "rateLimits.gpt-4o-mini.max_requests_per_1_minute",
        "declared": "500",
        "actual": "100",
        "actor": None,
        "changed_at": None,
    }


def test_the_notification_says_why_the_audit_log_cannot_name_who_changed_each_setting() -> None:
    # GIVEN a rate limit with no event in the log read, and a hard limit (a setting OpenAI logs no event for)
    report = check_drift(DECLARED, read_actual(drifted_admin(), PROJECT), PROJECT, [])
    # WHEN on-call is told
    body = drift_notification(report, "prod", RUNBOOK)[2]
    # THEN each line says why nobody is named
    assert "who: unknown, OpenAI's audit log shows no change of it in the last 30 days" in body
    assert "who: unknown, OpenAI's audit log has no event for spend limits, spend alerts or model permissions" in body


def test_the_notification_says_when_the_audit_log_could_not_be_read() -> None:
    # GIVEN an admin key that may not read the audit log
    admin = drifted_admin()
    admin.read_audit_log = _refused  # type: ignore[attr-defined]
    # WHEN the drift is detected (reading the log itself)
    report = enforce_guardrails(admin, PROJECT, DECLARED)
    # THEN the rate limit's line says the log could not be read, and the report says so
    body = drift_notification(report, "prod", RUNBOOK)[2]
    assert "OpenAI's audit log could not be read (PermissionDeniedError" in body
    assert report.as_dict()["audit_log"] == "unreadable: PermissionDeniedError"


def _refused(*args: object, **kwargs: object) -> None:
    raise PermissionDeniedError("missing scope api.audit_log.read", status=403)
