"""The stand-in's fault hooks reach every governance endpoint: each fault kind answers in place of the endpoint,
a lost success (`after_effect`) still carries out the change, and a fault aimed at a name no route has is refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from lab.openai_standin import Fault, ManualClock, OpenAIStandIn, insufficient_quota, rate_limited, server_error
from lab.openai_standin.governance_routes import ENDPOINTS
from tests.support.openapi import assert_calls_conform

NOW = 1_767_225_600 + 70 * 86_400
ALERT = {
    "threshold_amount": 100,
    "currency": "USD",
    "interval": "month",
    "notification_channel": {"type": "email", "recipients": ["a@example.com"]},
}


@dataclass
class Org:
    standin: OpenAIStandIn
    session: requests.Session
    project: str
    alert: str = ""
    spare_admin_key_id: str = ""
    admin: str = field(init=False, repr=False)

    def send(self, method: str, path: str, body: Any = None) -> requests.Response:
        url = f"{self.standin.base_url}{path}"
        headers = {"Authorization": f"Bearer {self.admin}"}
        return self.session.request(method, url, headers=headers, json=body, timeout=5)


@pytest.fixture
def org() -> Iterator[Org]:
    with OpenAIStandIn(clock=ManualClock(NOW)) as standin, requests.Session() as session:
        org = Org(standin, session, standin.state.add_project())
        org.admin = standin.state.add_admin_key()
        org.alert = org.send("POST", f"/organization/projects/{org.project}/spend_alerts", ALERT).json()["id"]
        org.spare_admin_key_id = org.send("POST", "/organization/admin_api_keys", {"name": "spare"}).json()["id"]
        standin.console.set_spend_limit(org.project, 900)  # so that deleting it is a change
        standin.console.set_model_permissions(org.project, "allow_list", ["gpt-4o-mini"])
        yield org
        assert_calls_conform(standin.calls)


def _request(org: Org, endpoint: str) -> tuple[str, str, Any]:
    """A valid request to `endpoint` (method, path under /v1, JSON body)."""
    p = f"/organization/projects/{org.project}"
    limit = {"threshold_amount": 500, "currency": "USD", "interval": "month"}
    return {
        "list_admin_api_keys": ("GET", "/organization/admin_api_keys", None),
        "create_admin_api_key": ("POST", "/organization/admin_api_keys", {"name": "made"}),
        "get_admin_api_key": ("GET", f"/organization/admin_api_keys/{org.spare_admin_key_id}", None),
        "delete_admin_api_key": ("DELETE", f"/organization/admin_api_keys/{org.spare_admin_key_id}", None),
        "list_audit_logs": ("GET", "/organization/audit_logs", None),
        "list_rate_limits": ("GET", f"{p}/rate_limits", None),
        "update_rate_limit": ("POST", f"{p}/rate_limits/rl-gpt-4.1", {"max_requests_per_1_minute": 77}),
        "get_spend_limit": ("GET", f"{p}/spend_limit", None),
        "set_spend_limit": ("POST", f"{p}/spend_limit", limit),
        "delete_spend_limit": ("DELETE", f"{p}/spend_limit", None),
        "list_spend_alerts": ("GET", f"{p}/spend_alerts", None),
        "create_spend_alert": ("POST", f"{p}/spend_alerts", ALERT),
        "get_spend_alert": ("GET", f"{p}/spend_alerts/{org.alert}", None),
        "update_spend_alert": ("POST", f"{p}/spend_alerts/{org.alert}", {**ALERT, "threshold_amount": 321}),
        "delete_spend_alert": ("DELETE", f"{p}/spend_alerts/{org.alert}", None),
        "get_model_permissions": ("GET", f"{p}/model_permissions", None),
        "set_model_permissions": ("POST", f"{p}/model_permissions", {"mode": "deny_list", "model_ids": ["gpt-4.1"]}),
        "delete_model_permissions": ("DELETE", f"{p}/model_permissions", None),
    }[endpoint]


FAULTS: dict[str, tuple[Callable[[str], Fault], int | None]] = {
    "HTTP 500": (lambda endpoint: server_error(endpoint), 500),
    "HTTP 503": (lambda endpoint: server_error(endpoint, status=503), 503),
    "429 rate limit": (lambda endpoint: rate_limited(endpoint, retry_after=2), 429),
    "429 quota": (lambda endpoint: insufficient_quota(endpoint), 429),
    "502 HTML": (lambda endpoint: Fault(endpoint, status=502, non_json=True), 502),
    "dropped connection": (lambda endpoint: Fault(endpoint, drop_connection=True), None),
}


@pytest.mark.parametrize("kind", sorted(FAULTS))
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_fault_kind_answers_in_place_of_every_governance_endpoint(org: Org, endpoint: str, kind: str) -> None:
    # GIVEN a fault of this kind on this endpoint
    make, status = FAULTS[kind]
    org.standin.faults.add(make(endpoint))
    method, path, body = _request(org, endpoint)
    # WHEN the endpoint is called THEN the fault answers (or the connection drops), and the stand-in records it
    if status is None:
        with pytest.raises(requests.ConnectionError):
            org.send(method, path, body)
    else:
        assert org.send(method, path, body).status_code == status
    [call] = org.standin.calls_to(endpoint)[-1:]
    assert call.fault is not None and call.status == status


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if not e.startswith(("list_", "get_"))])
def test_a_lost_success_still_makes_the_change(org: Org, endpoint: str) -> None:
    # GIVEN a 500 that comes after the change was made (the answer is lost, the effect is not)
    org.standin.faults.add(Fault(endpoint, status=500, after_effect=True))
    method, path, body = _request(org, endpoint)
    before = _snapshot(org)
    # WHEN the endpoint is called THEN the caller sees a 500, yet the organization changed
    assert org.send(method, path, body).status_code == 500
    assert _snapshot(org) != before


def _snapshot(org: Org) -> Any:
    state = org.standin.state
    rails = state.guardrails_for(org.project)
    return (
        sorted((key.id, key.revoked) for key in state.admin_keys.values()),
        {rl.id: dict(rl.values) for rl in rails.rate_limits.values()},
        rails.spend_limit_cents,
        {alert_id: alert["threshold_amount"] for alert_id, alert in rails.spend_alerts.items()},
        rails.model_permissions,
    )


def test_a_fault_for_an_endpoint_no_route_has_is_refused(org: Org) -> None:
    # GIVEN a typo in a fault's endpoint name  THEN it is refused at once instead of never firing
    with pytest.raises(ValueError, match="list_audit_log'"):
        org.standin.faults.add(server_error("list_audit_log"))
