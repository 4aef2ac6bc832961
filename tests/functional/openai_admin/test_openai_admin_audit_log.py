"""keyrot's incremental audit-log reader against the stand-in: a cursor in, every new event exactly once and oldest
first out, across any interleaving of actions and reads; the boundary second, late arrivals with a lookback,
tenant-scoped admin-key events, typed results for types keyrot does not model, and audit logging switched off."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyrot.openai_admin import NO_RETRY, OpenAIAdminClient, OpenAITransport, PermissionDeniedError
from keyrot.openai_admin.audit_log import AuditCursor, AuditEvent, UnknownAuditEvent
from keyrot.openai_admin.errors import AuditLogUnavailableError
from lab.openai_standin import ManualClock, OpenAIStandIn
from lab.openai_standin.audit import Actor
from tests.support.openapi import assert_calls_conform

START = 1_767_225_600 + 90 * 86_400


@dataclass
class Env:
    standin: OpenAIStandIn
    clock: ManualClock
    project: str
    admin_key: str = field(init=False, repr=False)  # kept out of Hypothesis's printout of a failing example

    @property
    def client(self) -> OpenAIAdminClient:
        return OpenAIAdminClient(self.admin_key, OpenAITransport(self.standin.base_url, retry=NO_RETRY))

    def act(self, kind: int) -> None:
        """One change someone makes, of a few kinds, through the console (a person) or the state (keyrot's calls)."""
        console = self.standin.console.as_user("dev@example.com")
        if kind == 0:
            console.create_project_key(self.project)
        elif kind == 1:
            console.update_rate_limit(self.project, "gpt-4o-mini", max_requests_per_1_minute=42)
        else:
            admin = self.standin.state.admin_keys[self.admin_key]
            self.standin.state.create_service_account(
                self.project, "svc", with_key=True, expires_in=None, actor=admin.actor
            )


@pytest.fixture
def env() -> Iterator[Env]:
    clock = ManualClock(START)
    with OpenAIStandIn(clock=clock) as standin:
        env = Env(standin, clock, standin.state.add_project())
        env.admin_key = standin.state.add_admin_key()
        yield env
        assert_calls_conform(standin.calls)


def test_first_read_needs_a_cursor_or_a_start(env: Env) -> None:
    with pytest.raises(ValueError, match="since"):
        env.client.read_audit_log()
    assert env.standin.calls_to("list_audit_logs") == []


def test_first_read_returns_events_since_the_start_oldest_first(env: Env) -> None:
    # GIVEN a key made by a person, then a rate limit changed, a minute apart
    env.act(0)
    env.clock.advance(60)
    env.act(1)
    # WHEN read from the start
    batch = env.client.read_audit_log(since=START)
    # THEN both come back oldest first, typed, naming the person; the cursor sits on the newest
    assert [e.type for e in batch.events] == ["api_key.created", "rate_limit.updated"]
    assert batch.events[0].actor is not None and batch.events[0].actor.label == "dev@example.com"
    assert batch.events[1].changes == (("max_requests_per_1_minute", 42),)
    assert batch.cursor.effective_at == START + 60 and batch.unknown == batch.malformed == ()


def test_a_read_with_nothing_new_delivers_nothing_and_keeps_its_place(env: Env) -> None:
    env.act(0)
    first = env.client.read_audit_log(since=START)
    again = env.client.read_audit_log(first.cursor)
    assert again.entries == () and again.cursor == first.cursor


def test_events_in_the_cursor_second_are_delivered_once(env: Env) -> None:
    # GIVEN an event read, then another in the very same second
    env.act(0)
    first = env.client.read_audit_log(since=START)
    env.act(1)
    # WHEN read from the cursor THEN only the new one comes back
    assert [e.type for e in env.client.read_audit_log(first.cursor).events] == ["rate_limit.updated"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3), st.booleans()), min_size=1, max_size=25))
def test_interleaved_reads_deliver_every_event_exactly_once_in_order(
    env: Env, plan: list[tuple[int, int, bool]]
) -> None:
    # GIVEN a fresh project's worth of events  (Hypothesis reuses the fixture: start from where the clock is)
    env.project = env.standin.state.add_project()
    env.clock.advance(10_000)
    start = int(env.clock())
    cursor: AuditCursor | None = None
    delivered: list[str] = []
    # WHEN actions (some in the same second) and reads interleave
    for kind, gap, read in plan:
        env.clock.advance(gap)
        env.act(kind)
        if read:
            batch = env.client.read_audit_log(cursor, since=start if cursor is None else None)
            delivered += [e.id for e in batch.events]
            cursor = batch.cursor
    final = env.client.read_audit_log(cursor, since=start if cursor is None else None)
    delivered += [e.id for e in final.events]
    # THEN the reads together delivered every event since the start once, oldest first
    recorded = [
        e for e in env.standin.state.audit.events if e.effective_at >= start and not e.type.startswith("tenant.")
    ]
    assert delivered == [e.id for e in recorded]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 20), st.integers(0, 30), st.booleans()), max_size=20))
def test_late_arrivals_within_the_lookback_are_delivered_exactly_once(
    env: Env, plan: list[tuple[int, int, int, bool]]
) -> None:
    # GIVEN events that become visible up to 30 seconds after their effective time, and reads with a 30 s lookback
    env.project = env.standin.state.add_project()
    env.clock.advance(10_000)
    start, now = int(env.clock()), int(env.clock())
    batch = env.client.read_audit_log(since=start, lookback_seconds=30)
    delivered = [e.id for e in batch.events]
    for kind, gap, lateness, read in plan:
        now += gap
        env.clock.set(max(start, now - lateness))  # recorded late: effective earlier than when it is listed
        env.act(kind)
        env.clock.set(now)
        if read:
            batch = env.client.read_audit_log(batch.cursor, lookback_seconds=30)
            delivered += [e.id for e in batch.events]
    delivered += [e.id for e in env.client.read_audit_log(batch.cursor, lookback_seconds=30).events]
    # THEN every event was delivered, none twice
    recorded = [
        e.id for e in env.standin.state.audit.events if e.effective_at >= start and not e.type.startswith("tenant.")
    ]
    assert sorted(delivered) == sorted(recorded) and len(set(delivered)) == len(delivered)


def test_a_late_arrival_is_caught_with_a_lookback_and_missed_without(env: Env) -> None:
    # GIVEN a read whose newest event is 30 seconds after the start
    env.act(0)
    env.clock.advance(30)
    env.act(0)
    plain = env.client.read_audit_log(since=START).cursor
    cautious = env.client.read_audit_log(since=START, lookback_seconds=60).cursor
    assert plain.effective_at == cautious.effective_at == START + 30
    # WHEN an event effective 15 seconds before that becomes visible only later (OpenAI may list events late)
    env.clock.set(START + 15)
    env.act(1)
    env.clock.set(START + 40)
    # THEN a reader with no lookback never sees it; one with a 60-second lookback does, once
    assert env.client.read_audit_log(plain).events == ()
    late = env.client.read_audit_log(cautious, lookback_seconds=60)
    assert [e.type for e in late.events] == ["rate_limit.updated"]
    assert env.client.read_audit_log(late.cursor, lookback_seconds=60).events == ()


def test_admin_key_events_are_read_with_tenant_only(env: Env) -> None:
    # GIVEN an admin key made by a person in the console, and one made by keyrot's admin key
    console_id, _ = env.standin.console.create_admin_key("by hand")
    env.client.create_admin_api_key("by keyrot")
    # WHEN the tenant-scoped events are read
    batch = env.client.read_audit_log(since=START, tenant_only=True, event_types=["tenant.admin_api_key.created"])
    # THEN each names its actor: a session for the person, keyrot's admin key id for keyrot
    actors = [(e.actor.kind, e.actor.api_key_id) for e in batch.events if e.actor]
    keyrot_id = env.standin.state.admin_keys[env.admin_key].id
    assert ("api_key", keyrot_id) in actors and ("session", None) in actors
    # AND, the spec defining no payload for them, which key was made is not in the event (look it up by listing)
    assert all(e.resource_id is None for e in batch.events) and console_id


def test_widening_the_lookback_never_delivers_an_event_twice(env: Env) -> None:
    # GIVEN a cursor made without a lookback, a minute after two events
    env.act(0)
    env.clock.advance(30)
    env.act(1)
    cursor = env.client.read_audit_log(since=START).cursor
    # WHEN later reads ask for a ten-minute lookback THEN nothing already delivered comes back
    env.clock.advance(60)
    env.act(2)
    widened = env.client.read_audit_log(cursor, lookback_seconds=600)
    assert [e.type for e in widened.events] == ["service_account.created", "api_key.created"]
    assert env.client.read_audit_log(widened.cursor, lookback_seconds=600).events == ()


def test_filters_are_sent_as_the_spec_names_them(env: Env) -> None:
    env.client.read_audit_log(
        since=START,
        event_types=["api_key.created"],
        project_ids=[env.project],
        actor_ids=["user_x"],
        resource_ids=["key_1"],
    )
    [call] = env.standin.calls_to("list_audit_logs")
    assert call.query["event_types[]"] == ["api_key.created"] and call.query["project_ids[]"] == [env.project]
    assert call.query["actor_ids[]"] == ["user_x"] and call.query["resource_ids[]"] == ["key_1"]
    assert call.query["effective_at[gte]"] == [str(START)]


@pytest.mark.parametrize(
    "bad",
    [{"event_types": ["DROP TABLE"]}, {"project_ids": ["sk-proj-abcdefghij"]}, {"since": -1}, {"lookback_seconds": -5}],
)
def test_bad_reader_arguments_are_refused_before_any_request(env: Env, bad: dict[str, object]) -> None:
    arguments: dict[str, object] = {"since": START, **bad}
    with pytest.raises(ValueError):
        env.client.read_audit_log(**arguments)  # type: ignore[arg-type]
    assert env.standin.calls_to("list_audit_logs") == []


def test_a_type_keyrot_does_not_model_is_a_typed_unknown_event(env: Env) -> None:
    # GIVEN an event of a type the spec has but keyrot does not read
    env.standin.state.record(
        "invite.sent", Actor.session("user_a", "a@example.com"), env.project, "invite_1", {"id": "invite_1"}
    )
    # THEN it comes back as UnknownAuditEvent, with its actor, and the read does not fail
    [entry] = env.client.read_audit_log(since=START).entries
    assert isinstance(entry, UnknownAuditEvent) and not isinstance(entry, AuditEvent)
    assert entry.type == "invite.sent" and entry.actor is not None and entry.actor.email == "a@example.com"


def test_audit_logging_off_is_a_typed_unavailable_error(env: Env) -> None:
    env.standin.state.audit.enabled = False
    with pytest.raises(AuditLogUnavailableError, match="Data controls") as raised:
        env.client.read_audit_log(since=START)
    assert isinstance(raised.value, PermissionDeniedError) and raised.value.status == 403
    with pytest.raises(AuditLogUnavailableError):
        env.client.check_audit_log_access()


def test_admin_key_without_audit_permission_is_permission_denied_not_unavailable(env: Env) -> None:
    narrow = env.standin.state.add_admin_key("narrow", scopes={"api.management.read"})
    client = OpenAIAdminClient(narrow, OpenAITransport(env.standin.base_url, retry=NO_RETRY))
    with pytest.raises(PermissionDeniedError) as raised:
        client.check_audit_log_access()
    assert not isinstance(raised.value, AuditLogUnavailableError) and narrow not in str(raised.value)
