"""A project's guardrails in the stand-in: rate limits that can only be lowered (at or below the organization's
maximum), the hard spend limit and model permissions as inference meets them, spend alerts with recipients, and the
console hook a test uses to change a guardrail as a person would."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.openai_standin import ManualClock, OpenAIStandIn
from lab.openai_standin.guardrails import ORGANIZATION_MAXIMA, RATE_LIMIT_FIELDS
from lab.openai_standin.protocol import ApiError
from tests.support.openapi import assert_calls_conform

NOW = 1_767_225_600 + 14 * 86_400  # mid-January 2026
MODELS = ("gpt-4o-mini", "gpt-4.1", "gpt-image-1", "whisper-1")


@dataclass
class Org:
    standin: OpenAIStandIn
    session: requests.Session
    project: str
    admin: str = field(init=False, repr=False)  # kept out of Hypothesis's printout of a failing example

    def call(self, method: str, path: str, key: str | None = None, *, params: Any = None, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {key or self.admin}"}
        url = f"{self.standin.base_url}{path}"
        return self.session.request(method, url, headers=headers, params=params, json=body, timeout=5)

    @property
    def prefix(self) -> str:
        return f"/organization/projects/{self.project}"

    def limits(self) -> dict[str, dict[str, Any]]:
        return {item["model"]: item for item in self.call("GET", f"{self.prefix}/rate_limits").json()["data"]}

    def app_key(self) -> str:
        response = self.call("POST", f"{self.prefix}/service_accounts", body={"name": "app"})
        return str(response.json()["api_key"]["value"])

    def chat(self, key: str, model: str = "gpt-4o-mini") -> requests.Response:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        return self.call("POST", "/chat/completions", key, body=body)


@pytest.fixture
def org() -> Iterator[Org]:
    with OpenAIStandIn(clock=ManualClock(NOW), models=MODELS) as standin, requests.Session() as session:
        org = Org(standin, session, standin.state.add_project())
        org.admin = standin.state.add_admin_key()
        yield org
        assert_calls_conform(standin.calls)


# --- rate limits -------------------------------------------------------------------------------------------------


def test_every_served_model_has_a_rate_limit_at_the_organization_maximum(org: Org) -> None:
    limits = org.limits()
    assert set(limits) == set(MODELS)
    for model, item in limits.items():
        assert {k: v for k, v in item.items() if k in RATE_LIMIT_FIELDS} == ORGANIZATION_MAXIMA[model]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(model=st.sampled_from(MODELS), name=st.sampled_from(RATE_LIMIT_FIELDS), fraction=st.floats(0, 2))
def test_a_limit_is_accepted_exactly_at_or_below_the_maximum(org: Org, model: str, name: str, fraction: float) -> None:
    # GIVEN a model's limits  WHEN one field is set to some value
    before = org.limits()[model]
    maximum = ORGANIZATION_MAXIMA[model].get(name)
    value = int((maximum or 1_000) * fraction)
    response = org.call("POST", f"{org.prefix}/rate_limits/rl-{model}", body={name: value})
    # THEN it is accepted iff the model has that field and the value is within its maximum; a refusal is a 400
    # naming the field, and changes nothing
    if maximum is not None and value <= maximum:
        assert response.status_code == 200 and response.json()[name] == value
    else:
        assert (response.status_code, response.json()["error"]["param"]) == (400, name)
        assert org.limits()[model] == before


def test_raising_above_the_maximum_says_limits_can_only_be_lowered(org: Org) -> None:
    response = org.call("POST", f"{org.prefix}/rate_limits/rl-gpt-4.1", body={"max_requests_per_1_minute": 10_001})
    assert response.status_code == 400 and "only be set at or below" in response.json()["error"]["message"]


def test_a_lowered_limit_can_be_raised_back_to_the_maximum(org: Org) -> None:
    path = f"{org.prefix}/rate_limits/rl-gpt-4o-mini"
    assert org.call("POST", path, body={"max_requests_per_1_minute": 10}).status_code == 200
    assert (
        org.call("POST", path, body={"max_requests_per_1_minute": 10_000}).json()["max_requests_per_1_minute"] == 10_000
    )


@pytest.mark.parametrize(
    "body", [{"max_requests_per_1_minute": "5"}, {"max_requests_per_1_minute": 1.5}, {"colour": 1}, [1]]
)
def test_a_malformed_update_is_a_400_that_changes_nothing(org: Org, body: Any) -> None:
    before = org.limits()
    response = org.call("POST", f"{org.prefix}/rate_limits/rl-gpt-4o-mini", body=body)
    assert response.status_code == 400 and org.limits() == before


def test_one_project_limits_leave_another_project_untouched(org: Org) -> None:
    other = org.standin.state.add_project()
    org.call("POST", f"{org.prefix}/rate_limits/rl-gpt-4o-mini", body={"max_requests_per_1_minute": 3})
    listed = org.call("GET", f"/organization/projects/{other}/rate_limits").json()["data"]
    assert {item["model"]: item["max_requests_per_1_minute"] for item in listed}["gpt-4o-mini"] == 10_000


# --- hard spend limit --------------------------------------------------------------------------------------------


def test_spend_limit_set_read_and_delete(org: Org) -> None:
    path = f"{org.prefix}/spend_limit"
    assert org.call("GET", path).status_code == 404  # none set (the stand-in's answer; the spec documents only 200)
    body = {"threshold_amount": 25_000, "currency": "USD", "interval": "month"}
    assert org.call("POST", path, body=body).json()["threshold_amount"] == 25_000
    assert org.call("GET", path).json()["enforcement"] == {"status": "enforcing"}
    assert org.call("DELETE", path).json() == {"object": "project.spend_limit.deleted", "deleted": True}
    assert org.call("GET", path).status_code == 404


def test_inference_stops_once_month_to_date_spend_reaches_the_hard_limit(org: Org) -> None:
    # GIVEN a $1 hard limit and a key that has spent 99 cents this month (plus a dollar last month)
    key = org.app_key()
    key_id = next(k.id for k in org.standin.state.keys.values() if k.value == key)
    org.standin.state.record_cost(key_id, 1.00, at=NOW - 20 * 86_400)
    org.standin.state.record_cost(key_id, 0.99, at=NOW - 3_600)
    org.standin.console.set_spend_limit(org.project, 100)
    # WHEN it calls while under the limit THEN it works; once the month's spend reaches the limit THEN 429 with the
    # billing code that retrying cannot cure
    assert org.chat(key).status_code == 200
    org.standin.state.record_cost(key_id, 0.01, at=NOW - 60)
    refused = org.chat(key)
    assert (refused.status_code, refused.json()["error"]["code"]) == (429, "project_spend_limit_exceeded")


# --- spend alerts ------------------------------------------------------------------------------------------------


def _alert(cents: int, *recipients: str) -> dict[str, Any]:
    channel = {"type": "email", "recipients": list(recipients or ("oncall@example.com",))}
    return {"threshold_amount": cents, "currency": "USD", "interval": "month", "notification_channel": channel}


def test_spend_alerts_create_list_update_delete(org: Org) -> None:
    path = f"{org.prefix}/spend_alerts"
    ids = [org.call("POST", path, body=_alert(cents)).json()["id"] for cents in (1_000, 2_000, 3_000)]
    # THEN pages in creation order (desc reverses), update replaces, delete removes
    first = org.call("GET", path, params={"limit": 2}).json()
    second = org.call("GET", path, params={"limit": 2, "after": first["last_id"]}).json()
    assert [a["id"] for a in first["data"] + second["data"]] == ids and first["has_more"] and not second["has_more"]
    assert [a["id"] for a in org.call("GET", path, params={"order": "desc"}).json()["data"]] == ids[::-1]
    updated = org.call("POST", f"{path}/{ids[1]}", body=_alert(2_500, "cfo@example.com", "ops@example.com")).json()
    assert (updated["threshold_amount"], updated["notification_channel"]["recipients"]) == (
        2_500,
        ["cfo@example.com", "ops@example.com"],
    )
    assert org.call("DELETE", f"{path}/{ids[0]}").json()["deleted"] is True
    assert [a["id"] for a in org.call("GET", path).json()["data"]] == ids[1:]


@pytest.mark.parametrize(
    "recipients", [[], ["not-an-address"], ["ok@example.com", "also wrong"], "oncall@example.com", [7]]
)
def test_alert_recipients_must_be_email_addresses(org: Org, recipients: Any) -> None:
    body = _alert(100)
    body["notification_channel"]["recipients"] = recipients
    response = org.call("POST", f"{org.prefix}/spend_alerts", body=body)
    assert response.status_code == 400 and "recipients" in response.json()["error"]["param"]
    assert org.call("GET", f"{org.prefix}/spend_alerts").json()["data"] == []


# --- model permissions -------------------------------------------------------------------------------------------


def test_no_model_permissions_means_an_empty_deny_list(org: Org) -> None:
    permissions = org.call("GET", f"{org.prefix}/model_permissions").json()
    assert (permissions["mode"], permissions["model_ids"]) == ("deny_list", [])


@pytest.mark.parametrize(("mode", "allowed"), [("allow_list", {"gpt-4.1"}), ("deny_list", {"gpt-4o-mini"})])
def test_model_permissions_decide_which_models_inference_may_use(org: Org, mode: str, allowed: set[str]) -> None:
    # GIVEN a list naming gpt-4.1
    key = org.app_key()
    org.call("POST", f"{org.prefix}/model_permissions", body={"mode": mode, "model_ids": ["gpt-4.1"]})
    # THEN only the allowed model answers; the other is refused with 403 model_not_found
    for model in ("gpt-4o-mini", "gpt-4.1"):
        response = org.chat(key, model)
        expected = (200, None) if model in allowed else (403, "model_not_found")
        assert (response.status_code, (response.json().get("error") or {}).get("code")) == expected, model
    # AND deleting the permissions allows everything again
    org.call("DELETE", f"{org.prefix}/model_permissions")
    assert all(org.chat(key, model).status_code == 200 for model in ("gpt-4o-mini", "gpt-4.1"))


# --- the console hook ----------------------------------------------------------------------------------------------


def test_console_rate_limit_change_is_seen_through_the_api_and_the_audit_log(org: Org) -> None:
    # GIVEN a person who lowers a limit in the dashboard
    org.standin.console.as_user("night-owl@example.com").update_rate_limit(
        org.project, "gpt-4.1", max_tokens_per_1_minute=1_234
    )
    # THEN the API shows the new value, and the audit log names the person and the change
    assert org.limits()["gpt-4.1"]["max_tokens_per_1_minute"] == 1_234
    [event] = org.call("GET", "/organization/audit_logs", params={"event_types[]": "rate_limit.updated"}).json()["data"]
    assert event["actor"]["session"]["user"]["email"] == "night-owl@example.com"
    assert event["rate_limit.updated"] == {"id": "rl-gpt-4.1", "changes_requested": {"max_tokens_per_1_minute": 1_234}}


def test_console_cannot_raise_a_limit_above_the_maximum_either(org: Org) -> None:
    before = org.limits()
    with pytest.raises(ApiError, match="only be set at or below"):
        org.standin.console.update_rate_limit(org.project, "gpt-4o-mini", max_requests_per_1_minute=10**9)
    assert org.limits() == before and org.standin.state.audit.events[-1].type != "rate_limit.updated"


def test_console_guardrail_changes_are_seen_through_the_api(org: Org) -> None:
    console = org.standin.console
    console.set_spend_limit(org.project, 7_700)
    alert = console.create_spend_alert(org.project, 5_000, ["finance@example.com"])
    console.set_model_permissions(org.project, "allow_list", ["gpt-4o-mini"])
    assert org.call("GET", f"{org.prefix}/spend_limit").json()["threshold_amount"] == 7_700
    assert [a["id"] for a in org.call("GET", f"{org.prefix}/spend_alerts").json()["data"]] == [alert]
    assert org.call("GET", f"{org.prefix}/model_permissions").json()["model_ids"] == ["gpt-4o-mini"]
