"""Reading one audit-log entry: the spec's shapes become typed events, other types a typed unknown, anything broken a
typed malformed entry naming the field; no key survives into a result; stored cursors are checked when read back."""

from __future__ import annotations

from typing import Any

import pytest

from keyrot.openai_admin.audit_log import (
    AuditCursor,
    AuditEvent,
    MalformedAuditEvent,
    UnknownAuditEvent,
    parse_audit_entry,
)

KEY = "sk-proj-PLANTEDabcdefghijklmnopqrstuvwxyz0123456789"
SESSION = {
    "type": "session",
    "session": {"user": {"id": "user-abc", "email": "ada@example.com"}, "ip_address": "1.2.3.4"},
}
ADMIN_KEY_ACTOR = {
    "type": "api_key",
    "api_key": {"id": "key_admin1", "type": "user", "user": {"id": "user-owner", "email": "owner@example.com"}},
}


def _entry(**fields: Any) -> dict[str, Any]:
    return {"id": "audit_log-abc_20260101", "type": "api_key.created", "effective_at": 1_767_225_600, **fields}


def test_spec_example_api_key_created_is_read_with_scopes_and_session_actor() -> None:
    entry = parse_audit_entry(
        _entry(
            actor=SESSION,
            project={"id": "proj_1", "name": "p"},
            **{"api_key.created": {"id": "key_1", "data": {"scopes": ["model.request"]}}},
        ),
        0,
    )
    assert isinstance(entry, AuditEvent)
    assert (entry.resource_id, entry.scopes, entry.project_id) == ("key_1", ("model.request",), "proj_1")
    assert entry.actor is not None and (entry.actor.kind, entry.actor.label) == ("session", "ada@example.com")


def test_admin_key_actor_is_named_by_its_key_id_and_owner() -> None:
    entry = parse_audit_entry(
        _entry(actor=ADMIN_KEY_ACTOR, **{"api_key.deleted": {"id": "key_9"}}, type="api_key.deleted"), 0
    )
    assert isinstance(entry, AuditEvent) and entry.actor is not None
    assert (entry.actor.api_key_id, entry.actor.api_key_type, entry.actor.email) == (
        "key_admin1",
        "user",
        "owner@example.com",
    )


def test_service_account_key_actor_has_no_email_and_is_named_by_key_id() -> None:
    actor = {
        "type": "api_key",
        "api_key": {"id": "key_sa", "type": "service_account", "service_account": {"id": "svc_acct_1"}},
    }
    entry = parse_audit_entry(_entry(actor=actor, **{"api_key.created": {"id": "key_2"}}), 0)
    assert isinstance(entry, AuditEvent) and entry.actor is not None
    assert (entry.actor.label, entry.actor.service_account_id) == ("key_sa", "svc_acct_1")


def test_rate_limit_changes_keep_only_integer_limits() -> None:
    payload = {"id": "rl-gpt-4.1", "changes_requested": {"max_requests_per_1_minute": 5, "max_images_per_1_minute": 1}}
    entry = parse_audit_entry(_entry(type="rate_limit.updated", **{"rate_limit.updated": payload}), 0)
    assert isinstance(entry, AuditEvent)
    assert entry.changes == (("max_requests_per_1_minute", 5), ("max_images_per_1_minute", 1))


def test_tenant_admin_key_event_without_payload_is_read() -> None:
    entry = parse_audit_entry(_entry(type="tenant.admin_api_key.created", actor=ADMIN_KEY_ACTOR), 0)
    assert isinstance(entry, AuditEvent) and entry.resource_id is None


def test_type_keyrot_does_not_model_is_unknown_not_an_error() -> None:
    entry = parse_audit_entry(_entry(type="login.succeeded", actor=SESSION), 3)
    assert isinstance(entry, UnknownAuditEvent) and entry.type == "login.succeeded"


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (["not", "an", "object"], "entry is not an object"),
        (_entry(id=None), "field id"),
        (_entry(id=KEY), "field id"),
        (_entry(type="API KEY CREATED"), "field type"),
        (_entry(effective_at="yesterday"), "field effective_at"),
        (_entry(effective_at=True), "field effective_at"),
        (_entry(effective_at=253_402_300_800), "field effective_at"),  # the year 10000: no datetime can show it
        (_entry(actor={"type": "robot"}), "field actor"),
        (_entry(actor={"type": "session", "session": {"user": {"email": KEY}}}), "actor email"),
        (_entry(actor={"type": "api_key", "api_key": {"id": f"key_{KEY}"}}), "actor api_key id"),
        (_entry(**{"api_key.created": "key_1"}), "payload"),
        (_entry(**{"api_key.created": {"id": "key_1", "data": {"scopes": [KEY]}}}), "scopes"),
        (
            _entry(
                type="rate_limit.updated",
                **{"rate_limit.updated": {"changes_requested": {"max_tokens_per_1_minute": "9"}}},
            ),
            "max_tokens",
        ),
        (
            _entry(type="service_account.created", **{"service_account.created": {"id": "s", "data": {"role": KEY}}}),
            "role",
        ),
    ],
)
def test_a_broken_entry_is_malformed_naming_the_field_and_holding_no_key(item: Any, reason: str) -> None:
    entry = parse_audit_entry(item, 7)
    assert isinstance(entry, MalformedAuditEvent) and entry.position == 7 and reason in entry.reason
    assert KEY not in repr(entry) and "sk-" not in repr(entry)


def test_cursor_round_trips_through_its_stored_form() -> None:
    cursor = AuditCursor(1_767_225_600, frozenset({"audit_log-a", "audit_log-b"}), 60)
    assert AuditCursor.from_dict(cursor.to_dict()) == cursor


@pytest.mark.parametrize(
    "stored",
    [
        None,
        [],
        {"effective_at": -1},
        {"effective_at": 253_402_300_800},
        {"effective_at": "1767225600"},
        {"effective_at": 1, "seen_ids": "audit_log-a"},
        {"effective_at": 1, "seen_ids": [KEY]},
        {"effective_at": 1, "lookback_seconds": -3},
    ],
)
def test_a_damaged_stored_cursor_is_refused_without_echoing_it(stored: Any) -> None:
    with pytest.raises(ValueError, match="audit cursor") as raised:
        AuditCursor.from_dict(stored)
    assert KEY not in str(raised.value)
