"""Contract for the governance endpoints (admin keys, audit log, rate limits, spend limit, spend alerts, model
permissions): every answer the stand-in gives, success, error or injected fault, conforms to OpenAI's spec.

Each scenario drives one endpoint over real HTTP; afterwards every recorded call is mapped to its spec operation by
method and path and its body validated strictly (no invented fields) against the schema the spec gives for that
status. test_standin_contract.py holds the same contract for the rest of the stand-in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from lab.openai_standin import Fault, ManualClock, OpenAIStandIn, rate_limited, server_error
from lab.openai_standin.governance_routes import ENDPOINTS
from tests.support.openapi import assert_calls_conform, schema_errors

NOW = 1_767_225_600 + 5 * 86_400 + 1_234
ALERT = {
    "threshold_amount": 5_000,
    "currency": "USD",
    "interval": "month",
    "notification_channel": {"type": "email", "recipients": ["oncall@example.com"], "subject_prefix": "keyrot"},
}


@dataclass
class Org:
    standin: OpenAIStandIn
    session: requests.Session
    project: str
    admin: str
    responses: list[requests.Response] = field(default_factory=list)

    def call(self, method: str, path: str, key: str | None = None, *, params: Any = None, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.admin if key is None else key}"}
        url = f"{self.standin.base_url}{path}"
        response = self.session.request(method, url, headers=headers, params=params, json=body, timeout=5)
        self.responses.append(response)
        return response

    @property
    def prefix(self) -> str:
        return f"/organization/projects/{self.project}"


@pytest.fixture
def org() -> Iterator[Org]:
    with OpenAIStandIn(clock=ManualClock(NOW)) as standin, requests.Session() as session:
        yield Org(standin, session, standin.state.add_project(), standin.state.add_admin_key())


Outcomes = list[tuple[Any, int]]
SCENARIOS: dict[str, Callable[[Org], Outcomes]] = {}


def scenario(func: Callable[[Org], Outcomes]) -> Callable[[Org], Outcomes]:
    SCENARIOS[func.__name__] = func
    return func


# --- admin API keys ----------------------------------------------------------------------------------------------


@scenario
def admin_keys(o: Org) -> Outcomes:
    created = o.call("POST", "/organization/admin_api_keys", body={"name": "next", "expires_in_seconds": 86_400})
    never = o.call("POST", "/organization/admin_api_keys", body={"name": "forever"})
    key_id = created.json()["id"]
    return [
        (created, 200),
        (never, 200),
        (o.call("POST", "/organization/admin_api_keys", body={"name": "x", "expires_in_seconds": 0}), 400),
        (o.call("POST", "/organization/admin_api_keys", body={}), 400),
        (o.call("GET", "/organization/admin_api_keys", params={"limit": 1, "order": "desc"}), 200),
        (o.call("GET", "/organization/admin_api_keys", params={"order": "sideways"}), 400),
        (o.call("GET", f"/organization/admin_api_keys/{key_id}"), 200),
        (o.call("DELETE", f"/organization/admin_api_keys/{key_id}"), 200),
        (o.call("GET", f"/organization/admin_api_keys/{key_id}"), 404),
        (o.call("DELETE", f"/organization/admin_api_keys/{key_id}"), 404),
    ]


# --- audit log ---------------------------------------------------------------------------------------------------


@scenario
def audit_logs(o: Org) -> Outcomes:
    sa = o.call("POST", f"{o.prefix}/service_accounts", body={"name": "svc"}).json()
    o.call("POST", f"{o.prefix}/service_accounts/{sa['id']}/api_keys", body={"scopes": ["api.model.read"]})
    o.standin.console.update_rate_limit(o.project, "gpt-4o-mini", max_requests_per_1_minute=10)
    o.standin.console.archive_project(o.standin.state.add_project())
    o.call("DELETE", f"{o.prefix}/service_accounts/{sa['id']}")
    first = o.call("GET", "/organization/audit_logs", params={"limit": 2})
    return [
        (first, 200),
        (o.call("GET", "/organization/audit_logs", params={"limit": 2, "after": first.json()["last_id"]}), 200),
        (o.call("GET", "/organization/audit_logs", params={"before": first.json()["last_id"]}), 200),
        (o.call("GET", "/organization/audit_logs", params={"tenant_only": "true"}), 200),
        (o.call("GET", "/organization/audit_logs", params={"event_types[]": ["rate_limit.updated"]}), 200),
        (
            o.call("GET", "/organization/audit_logs", params={"effective_at[gte]": NOW, "effective_at[lt]": NOW + 1}),
            200,
        ),
        (o.call("GET", "/organization/audit_logs", params={"effective_at[since]": NOW}), 400),
        (o.call("GET", "/organization/audit_logs", params={"limit": 0}), 400),
        (
            o.call(
                "GET", "/organization/audit_logs", params={"tenant_only": "true", "event_types[]": "api_key.created"}
            ),
            400,
        ),
    ]


@scenario
def audit_logs_disabled(o: Org) -> Outcomes:
    o.standin.state.audit.enabled = False
    return [(o.call("GET", "/organization/audit_logs"), 403)]


# --- rate limits -------------------------------------------------------------------------------------------------


@scenario
def rate_limits(o: Org) -> Outcomes:
    first = o.call("GET", f"{o.prefix}/rate_limits", params={"limit": 2})
    path = f"{o.prefix}/rate_limits/rl-gpt-4o-mini"
    return [
        (first, 200),
        (o.call("GET", f"{o.prefix}/rate_limits", params={"after": first.json()["last_id"]}), 200),
        (o.call("POST", path, body={"max_requests_per_1_minute": 100, "max_tokens_per_1_minute": 5_000}), 200),
        (o.call("POST", path, body={"max_requests_per_1_minute": 10_000_000}), 400),
        (o.call("POST", path, body={"max_images_per_1_minute": 1}), 400),
        (o.call("POST", path, body={"max_requests_per_1_minute": -1}), 400),
        (o.call("POST", f"{o.prefix}/rate_limits/rl-nope", body={"max_requests_per_1_minute": 1}), 404),
        (o.call("GET", "/organization/projects/proj_nope/rate_limits"), 404),
    ]


# --- hard spend limit --------------------------------------------------------------------------------------------


@scenario
def spend_limit(o: Org) -> Outcomes:
    path = f"{o.prefix}/spend_limit"
    return [
        (o.call("GET", path), 404),
        (o.call("POST", path, body={"threshold_amount": 10_000, "currency": "USD", "interval": "month"}), 200),
        (o.call("GET", path), 200),
        (o.call("POST", path, body={"threshold_amount": 0, "currency": "USD", "interval": "month"}), 400),
        (o.call("POST", path, body={"threshold_amount": 100, "currency": "EUR", "interval": "month"}), 400),
        (o.call("DELETE", path), 200),
    ]


# --- spend alerts ------------------------------------------------------------------------------------------------


@scenario
def spend_alerts(o: Org) -> Outcomes:
    path = f"{o.prefix}/spend_alerts"
    created = o.call("POST", path, body=ALERT)
    o.call("POST", path, body={**ALERT, "threshold_amount": 9_000})
    alert = f"{path}/{created.json()['id']}"
    no_recipients = {**ALERT, "notification_channel": {"type": "email", "recipients": []}}
    return [
        (created, 200),
        (o.call("GET", path, params={"limit": 1, "order": "desc"}), 200),
        (o.call("GET", path, params={"limit": 0}), 200),
        (o.call("GET", alert), 200),
        (o.call("POST", alert, body={**ALERT, "threshold_amount": 6_000}), 200),
        (o.call("POST", path, body=no_recipients), 400),
        (o.call("POST", path, body={**ALERT, "threshold_amount": -5}), 400),
        (o.call("DELETE", alert), 200),
        (o.call("GET", alert), 404),
        (o.call("DELETE", alert), 404),
    ]


# --- model permissions -------------------------------------------------------------------------------------------


@scenario
def model_permissions(o: Org) -> Outcomes:
    path = f"{o.prefix}/model_permissions"
    return [
        (o.call("GET", path), 200),
        (o.call("POST", path, body={"mode": "allow_list", "model_ids": ["gpt-4o-mini"]}), 200),
        (o.call("POST", path, body={"mode": "everything", "model_ids": []}), 400),
        (o.call("DELETE", path), 200),
    ]


# --- auth and injected faults ------------------------------------------------------------------------------------


@scenario
def auth(o: Org) -> Outcomes:
    narrow = o.standin.state.add_admin_key("narrow", scopes={"api.management.read"})
    return [
        (o.call("GET", "/organization/audit_logs", narrow), 401),
        (o.call("POST", "/organization/admin_api_keys", narrow, body={"name": "x"}), 401),
        (o.call("GET", f"{o.prefix}/rate_limits", "sk-admin-notakeynotakeynotakey1234"), 401),
    ]


@scenario
def faults(o: Org) -> Outcomes:
    plan = o.standin.faults

    def next_call(endpoint: str) -> set[int]:
        return {plan.count(endpoint) + 1}

    plan.add(rate_limited("list_audit_logs", calls=next_call("list_audit_logs"), retry_after=3))
    plan.add(server_error("update_rate_limit", calls=next_call("update_rate_limit"), status=503))
    plan.add(Fault("create_admin_api_key", calls=next_call("create_admin_api_key"), status=500, after_effect=True))
    plan.add(Fault("list_spend_alerts", calls=next_call("list_spend_alerts"), status=502, non_json=True))
    return [
        (o.call("GET", "/organization/audit_logs"), 429),
        (o.call("POST", f"{o.prefix}/rate_limits/rl-gpt-4.1", body={"max_requests_per_1_minute": 5}), 503),
        (o.call("POST", "/organization/admin_api_keys", body={"name": "lost"}), 500),
        (o.call("GET", f"{o.prefix}/spend_alerts"), 502),
    ]


# --- tests -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_governance_responses_conform_to_spec(org: Org, name: str) -> None:
    # GIVEN a stand-in with a project and an admin key  WHEN the scenario runs
    outcomes = SCENARIOS[name](org)
    # THEN each status is the expected one and every recorded answer matches the spec for its operation and status
    assert [r.status_code for r, _ in outcomes] == [status for _, status in outcomes], [r.text for r, _ in outcomes]
    assert_calls_conform(org.standin.calls)


def test_governance_scenarios_cover_every_governance_endpoint(org: Org) -> None:
    # GIVEN every scenario run against one stand-in
    for name in sorted(SCENARIOS):
        SCENARIOS[name](org)
    # THEN every governance endpoint was hit, with success and error statuses
    assert set(ENDPOINTS) - {call.endpoint for call in org.standin.calls} == set()
    assert {200, 400, 401, 403, 404, 429, 500, 502, 503} <= {call.status for call in org.standin.calls}


def test_strict_check_rejects_invented_field_on_composed_schema(org: Org) -> None:
    # GUARD: AdminApiKeyCreateResponse is composed (allOf); the strict check still refuses a field no part declares
    body = org.call("POST", "/organization/admin_api_keys", body={"name": "n"}).json()
    assert schema_errors(body, "AdminApiKeyCreateResponse", strict=True) == []
    assert schema_errors({**body, "scopes": ["all"]}, "AdminApiKeyCreateResponse", strict=True)
    assert schema_errors({k: v for k, v in body.items() if k != "value"}, "AdminApiKeyCreateResponse", strict=True)
