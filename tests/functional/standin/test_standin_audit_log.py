"""The stand-in's audit log: one event per mutating call with the right actor, the spec's filters and cursor paging
(newest first), tenant-scoped admin-key events, and the organization-wide off switch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.openai_standin import ManualClock, OpenAIStandIn
from lab.openai_standin.audit import AUDIT_LOG_DISABLED_MESSAGE
from tests.support.openapi import assert_calls_conform

NOW = 1_767_225_600 + 50 * 86_400
ALERT = {
    "threshold_amount": 100,
    "currency": "USD",
    "interval": "month",
    "notification_channel": {"type": "email", "recipients": ["a@example.com"]},
}


@dataclass
class Org:
    standin: OpenAIStandIn
    clock: ManualClock
    session: requests.Session
    project: str
    # Not an init field: Hypothesis prints a failing example's fixtures field by field, and this is a key.
    admin: str = field(init=False, repr=False)

    def call(self, method: str, path: str, *, params: Any = None, body: Any = None, key: str | None = None) -> Any:
        headers = {"Authorization": f"Bearer {key or self.admin}"}
        url = f"{self.standin.base_url}{path}"
        return self.session.request(method, url, headers=headers, params=params, json=body, timeout=5)

    @property
    def prefix(self) -> str:
        return f"/organization/projects/{self.project}"

    @property
    def admin_id(self) -> str:
        return self.standin.state.admin_keys[self.admin].id

    def events(self, **params: Any) -> list[dict[str, Any]]:
        """Every listed event (following `after`), newest first."""
        found: list[dict[str, Any]] = []
        query = {"limit": 100, **params}
        while True:
            page = self.call("GET", "/organization/audit_logs", params=query)
            assert page.status_code == 200, page.text
            found += page.json()["data"]
            if not page.json()["has_more"]:
                return found
            query["after"] = page.json()["last_id"]

    def service_account(self, **body: Any) -> dict[str, Any]:
        response = self.call("POST", f"{self.prefix}/service_accounts", body={"name": "svc", **body})
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture
def org() -> Iterator[Org]:
    clock = ManualClock(NOW)
    with OpenAIStandIn(clock=clock) as standin, requests.Session() as session:
        org = Org(standin, clock, session, standin.state.add_project())
        org.admin = standin.state.add_admin_key()
        yield org
        assert_calls_conform(standin.calls)


def _new_events(org: Org, action: Callable[[Org], Any]) -> list[Any]:
    before = len(org.standin.state.audit.events)
    action(org)
    return org.standin.state.audit.events[before:]


def _bare(org: Org) -> str:
    return str(org.service_account(create_service_account_only=True)["id"])


def _new_admin_key_id(org: Org) -> str:
    return str(org.call("POST", "/organization/admin_api_keys", body={"name": "n"}).json()["id"])


# Each mutating API call: (set-up, the call made with the admin key given the set-up's result, events it records).
MUTATIONS: dict[str, tuple[Callable[[Org], Any], Callable[[Org, Any], Any], list[str]]] = {
    "create service account": (
        lambda o: None,
        lambda o, _: o.service_account(),
        ["service_account.created", "api_key.created"],
    ),
    "create bare account": (
        lambda o: None,
        lambda o, _: o.service_account(create_service_account_only=True),
        ["service_account.created"],
    ),
    "add a scoped key": (
        _bare,
        lambda o, sa: o.call("POST", f"{o.prefix}/service_accounts/{sa}/api_keys", body={"scopes": ["model.request"]}),
        ["api_key.created"],
    ),
    "delete service account": (
        _bare,
        lambda o, sa: o.call("DELETE", f"{o.prefix}/service_accounts/{sa}"),
        ["service_account.deleted"],
    ),
    "delete user key": (
        lambda o: o.standin.state.add_user_key(o.project)[0],
        lambda o, key: o.call("DELETE", f"{o.prefix}/api_keys/{key}"),
        ["api_key.deleted"],
    ),
    "create admin key": (
        lambda o: None,
        lambda o, _: o.call("POST", "/organization/admin_api_keys", body={"name": "n"}),
        ["tenant.admin_api_key.created"],
    ),
    "delete admin key": (
        _new_admin_key_id,
        lambda o, key: o.call("DELETE", f"/organization/admin_api_keys/{key}"),
        ["tenant.admin_api_key.deleted"],
    ),
    "update rate limit": (
        lambda o: None,
        lambda o, _: o.call("POST", f"{o.prefix}/rate_limits/rl-gpt-4.1", body={"max_tokens_per_1_minute": 1_000}),
        ["rate_limit.updated"],
    ),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_every_mutating_call_records_its_events_with_the_admin_key_as_actor(org: Org, name: str) -> None:
    setup, action, expected = MUTATIONS[name]
    context = setup(org)
    # WHEN the call is made with the admin key
    events = _new_events(org, lambda o: action(o, context))
    # THEN exactly the expected events are recorded, each naming the admin key (its id, never its value) as actor
    assert [event.type for event in events] == expected
    for event in events:
        payload = event.payload()
        assert payload["actor"]["type"] == "api_key" and payload["actor"]["api_key"]["id"] == org.admin_id
        assert payload["actor"]["api_key"]["user"]["email"] == "owner@example.com"
        assert org.admin not in repr(payload)


def test_admin_key_actions_are_filed_under_the_default_project_as_the_spec_says(org: Org) -> None:
    # GIVEN a service account made with the admin key in the environment's project
    account = org.service_account()
    # THEN its events carry the organization's default project, so a project filter on the environment misses them
    [created] = [e for e in org.events() if e.get("service_account.created", {}).get("id") == account["id"]]
    assert created["project"]["id"] == org.standin.state.default_project[0] != org.project
    assert org.events(**{"project_ids[]": [org.project]}) == []


def test_console_actions_name_the_user_session_and_the_project(org: Org) -> None:
    # GIVEN a person who makes a key and raises nothing but lowers a rate limit in the dashboard
    person = org.standin.console.as_user("mallory@example.com")
    key_id, _ = person.create_project_key(org.project)
    person.update_rate_limit(org.project, "gpt-4o-mini", max_requests_per_1_minute=7)
    # THEN both events name the session's user and the project acted on
    newest_first = org.events(**{"actor_emails[]": ["mallory@example.com"]})
    assert [e["type"] for e in newest_first] == ["rate_limit.updated", "api_key.created"]
    assert newest_first[1]["api_key.created"]["id"] == key_id
    assert newest_first[0]["rate_limit.updated"]["changes_requested"] == {"max_requests_per_1_minute": 7}
    for event in newest_first:
        assert event["actor"]["type"] == "session" and event["project"]["id"] == org.project


@pytest.mark.parametrize(
    "action",
    [
        lambda o: o.call(
            "POST", f"{o.prefix}/spend_limit", body={"threshold_amount": 5, "currency": "USD", "interval": "month"}
        ),
        lambda o: o.call("POST", f"{o.prefix}/spend_alerts", body=ALERT),
        lambda o: o.call("POST", f"{o.prefix}/model_permissions", body={"mode": "deny_list", "model_ids": ["gpt-4.1"]}),
    ],
    ids=["spend limit", "spend alert", "model permissions"],
)
def test_guardrail_changes_without_a_spec_event_type_record_nothing(org: Org, action: Callable[[Org], Any]) -> None:
    # The spec's AuditLogEventType has no spend-limit, spend-alert or model-permission type: the stand-in invents none
    assert _new_events(org, action) == []


def test_reads_record_nothing(org: Org) -> None:
    org.service_account()
    events = _new_events(
        org,
        lambda o: [
            o.call("GET", path)
            for path in (
                "/organization/projects",
                f"{o.prefix}/service_accounts",
                f"{o.prefix}/rate_limits",
                "/organization/audit_logs",
            )
        ],
    )
    assert events == []


def test_admin_key_events_are_listed_only_with_tenant_only(org: Org) -> None:
    # GIVEN an admin key created and a service account created
    created = org.call("POST", "/organization/admin_api_keys", body={"name": "n"}).json()
    org.service_account()
    # THEN the default listing holds no tenant event, and tenant_only holds only tenant events
    assert not any(e["type"].startswith("tenant.") for e in org.events())
    tenant = org.events(tenant_only="true")
    assert {e["type"] for e in tenant} == {"tenant.admin_api_key.created"}
    # AND the new key's creation is found by its id (the spec gives these events no payload), made by the admin key
    [event] = org.events(tenant_only="true", **{"resource_ids[]": [created["id"]]})
    assert event["actor"]["api_key"]["id"] == org.admin_id
    mixed = org.call(
        "GET", "/organization/audit_logs", params={"tenant_only": "true", "event_types[]": ["api_key.created"]}
    )
    assert (mixed.status_code, mixed.json()["error"]["param"]) == (400, "event_types")


def test_filters_select_by_type_actor_and_resource(org: Org) -> None:
    # GIVEN events by the admin key and by a person
    account = org.service_account()
    key_id, _ = org.standin.console.as_user("eve@example.com", user_id="user_eve").create_project_key(org.project)
    # THEN each filter selects exactly its events (both spellings x= and x[]= accepted)
    assert {e["type"] for e in org.events(event_types=["service_account.created"])} == {"service_account.created"}
    assert [e["api_key.created"]["id"] for e in org.events(**{"actor_ids[]": ["user_eve"]})] == [key_id]
    by_admin = org.events(actor_ids=[org.admin_id])
    assert {e["type"] for e in by_admin} == {"service_account.created", "api_key.created"}
    assert [e["type"] for e in org.events(**{"resource_ids[]": [account["id"]]})] == ["service_account.created"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    gaps=st.lists(st.integers(0, 5), min_size=1, max_size=8),
    bounds=st.dictionaries(st.sampled_from(["gt", "gte", "lt", "lte"]), st.integers(-2, 25), max_size=2),
)
def test_effective_at_bounds_select_exactly_the_events_in_range(
    org: Org, gaps: list[int], bounds: dict[str, int]
) -> None:
    # GIVEN events at known moments (several may share a second), in a project of their own
    project, start, moments = org.standin.state.add_project(), int(org.clock()), []
    for gap in gaps:
        org.clock.advance(gap)
        org.standin.console.update_rate_limit(project, "gpt-4o-mini", max_requests_per_1_minute=5)
        moments.append(int(org.clock()))
    # WHEN listed with effective_at bounds relative to the first moment
    params = {f"effective_at[{op}]": start + offset for op, offset in bounds.items()}
    listed = [e["effective_at"] for e in org.events(**{"project_ids[]": [project]}, **params)]
    # THEN exactly the moments inside every bound are listed, newest first
    tests = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}
    inside = [m for m in moments if all(tests[op](m, start + offset) for op, offset in bounds.items())]
    assert listed == sorted(inside, reverse=True)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(count=st.integers(0, 12), limit=st.integers(1, 5))
def test_after_and_before_pages_walk_the_whole_list_once_each_way(org: Org, count: int, limit: int) -> None:
    # GIVEN some events, one per second, in a project of their own
    project = org.standin.state.add_project()
    for _ in range(count):
        org.clock.advance(1)
        org.standin.console.update_rate_limit(project, "gpt-4.1", max_requests_per_1_minute=9)
    everything = [e["id"] for e in org.events(**{"project_ids[]": [project]})]
    assert len(everything) == count
    # WHEN paged forward with `after`, then back from the last page with `before`
    query: dict[str, Any] = {"limit": limit, "project_ids[]": [project]}
    forward: list[list[str]] = []
    page = org.call("GET", "/organization/audit_logs", params=query).json()
    forward.append([e["id"] for e in page["data"]])
    while page["has_more"]:
        page = org.call("GET", "/organization/audit_logs", params={**query, "after": page["last_id"]}).json()
        forward.append([e["id"] for e in page["data"]])
    backward = []
    first_id = page["first_id"]
    while first_id is not None:
        back = org.call("GET", "/organization/audit_logs", params={**query, "before": first_id}).json()
        if not back["data"]:
            break
        backward.insert(0, [e["id"] for e in back["data"]])
        first_id = back["first_id"] if back["has_more"] else None
    # THEN forward pages are the whole list newest first, and the backward walk restores the earlier pages
    assert [i for chunk in forward for i in chunk] == everything
    assert [i for chunk in backward for i in chunk] == everything[: len(everything) - len(forward[-1])]


def test_disabled_audit_log_refuses_reads_and_records_nothing(org: Org) -> None:
    # GIVEN an organization whose audit logging is off
    org.standin.state.audit.enabled = False
    # WHEN keys are made and the log is read
    events = _new_events(org, lambda o: o.service_account())
    response = org.call("GET", "/organization/audit_logs")
    # THEN nothing was recorded and the read is refused with the stand-in's (undocumented-by-OpenAI) 403
    assert events == []
    assert (response.status_code, response.json()["error"]["message"]) == (403, AUDIT_LOG_DISABLED_MESSAGE)
    # AND once switched on, new actions are recorded again (earlier ones stay unrecorded)
    org.standin.state.audit.enabled = True
    assert [e["type"] for e in org.events(event_types=["service_account.created"])] == []
    org.service_account()
    assert len(org.events(event_types=["service_account.created"])) == 1
