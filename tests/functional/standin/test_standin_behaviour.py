"""Behaviour of the OpenAI stand-in per the fact sheet's checklist (section 12), driven over real HTTP."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.openai_standin import Fault, ManualClock, OpenAIStandIn, rate_limited, server_error
from tests.support.openapi import assert_calls_conform

DAY = 86_400
NOW = 1_767_225_600 + 10 * DAY + 4_321  # 2026-01-11 01:12:01 UTC


@dataclass
class Org:
    standin: OpenAIStandIn
    clock: ManualClock
    session: requests.Session
    project: str
    admin: str

    def call(self, method: str, path: str, key: str | None = None, *, params: Any = None, body: Any = None) -> Any:
        key = self.admin if key is None else key
        url = f"{self.standin.base_url}{path}"
        return self.session.request(
            method, url, headers={"Authorization": f"Bearer {key}"}, params=params, json=body, timeout=5
        )

    @property
    def prefix(self) -> str:
        return f"/organization/projects/{self.project}"

    def create_sa(self, name: str = "svc", **body: Any) -> requests.Response:
        return self.call("POST", f"{self.prefix}/service_accounts", body={"name": name, **body})

    def minted(self, name: str = "svc", **body: Any) -> dict[str, Any]:
        response = self.create_sa(name, **body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def models_status(self, key: str) -> tuple[int, str | None]:
        response = self.call("GET", "/models", key)
        return response.status_code, response.json().get("error", {}).get("code") if response.status_code else None


def _org(**kwargs: Any) -> Iterator[Org]:
    clock = ManualClock(NOW)
    with OpenAIStandIn(clock=clock, **kwargs) as standin, requests.Session() as session:
        yield Org(standin, clock, session, standin.state.add_project(), standin.state.add_admin_key())
        assert_calls_conform(standin.calls)  # every answer in every behaviour also honours the spec


@pytest.fixture
def org() -> Iterator[Org]:
    yield from _org()


def _error(response: requests.Response) -> dict[str, Any]:
    return dict(response.json()["error"])


# --- auth --------------------------------------------------------------------------------------------------------


UNKNOWN = "sk-proj-notakeynotakeynotakey9876"


def _key_for(org: Org, who: str) -> str:
    """A bearer of the given kind: admin, reader (admin key without usage scope), revoked admin, minted, deleted,
    unknown."""
    state = org.standin.state
    if who == "admin":
        return org.admin
    if who == "reader":
        return state.add_admin_key(scopes={"api.management.read"})
    if who == "revoked admin":
        state.revoke_admin_key(org.admin)
        return org.admin
    if who == "deleted":
        key_id, value = state.add_user_key(org.project)
        assert org.call("DELETE", f"{org.prefix}/api_keys/{key_id}").status_code == 200
        return value
    return str(org.minted()["api_key"]["value"]) if who == "minted" else UNKNOWN


@pytest.mark.parametrize(
    ("who", "path", "status", "code", "message"),
    [
        ("admin", "/organization/projects", 200, None, None),
        ("minted", "/organization/projects/{project}/api_keys", 401, None, "Missing scopes: api.management.read"),
        ("minted", "/organization/costs", 401, None, "Missing scopes: api.usage.read"),
        ("reader", "/organization/costs", 401, None, "Missing scopes: api.usage.read"),
        ("admin", "/models", 401, None, "Admin API keys cannot be used"),
        ("unknown", "/models", 401, "invalid_api_key", "Incorrect API key provided"),
        ("unknown", "/organization/projects/{project}/api_keys", 401, "invalid_api_key", "Incorrect API key"),
        ("deleted", "/models", 401, "invalid_api_key", "Incorrect API key provided"),
        ("revoked admin", "/organization/projects", 401, "invalid_api_key", "Incorrect API key provided"),
    ],
)
def test_auth_rules(org: Org, who: str, path: str, status: int, code: str | None, message: str | None) -> None:
    # GIVEN a bearer of one kind WHEN it calls an endpoint
    response = org.call("GET", path.format(project=org.project), _key_for(org, who), params={"start_time": NOW - DAY})
    # THEN the status, error code (null for scope refusals) and message are OpenAI's
    assert response.status_code == status
    if message is not None:
        assert (_error(response)["code"], message in _error(response)["message"]) == (code, True)


def test_auth_invalid_key_message_masks_the_key(org: Org) -> None:
    message = _error(org.call("GET", "/models", UNKNOWN))["message"]
    assert UNKNOWN not in message and "notakey" not in message
    assert message.startswith("Incorrect API key provided: sk-") and "9876" in message


def test_auth_missing_header_is_401(org: Org) -> None:
    response = org.session.get(f"{org.standin.base_url}/models", timeout=5)
    assert response.status_code == 401 and "didn't provide an API key" in _error(response)["message"]


# --- service-account create --------------------------------------------------------------------------------------


def test_create_returns_value_once_with_member_role(org: Org) -> None:
    # GIVEN a new service account
    created = org.minted("svc-once")
    value, key_id = created["api_key"]["value"], created["api_key"]["id"]
    assert created["role"] == "member" and value.startswith("sk-")
    # WHEN its key is read back through every admin read
    reads = [
        org.call("GET", f"{org.prefix}/api_keys/{key_id}").text,
        org.call("GET", f"{org.prefix}/api_keys", params={"owner_project_access": "any"}).text,
        org.call("GET", f"{org.prefix}/service_accounts/{created['id']}").text,
        org.call("GET", f"{org.prefix}/service_accounts").text,
    ]
    # THEN none shows the value; the key read shows only a redacted form
    assert all(value not in text and '"value"' not in text for text in reads)
    redacted = org.call("GET", f"{org.prefix}/api_keys/{key_id}").json()["redacted_value"]
    assert redacted != value and len(redacted) < len(value) // 2


def test_create_service_account_only_has_role_none_and_no_key(org: Org) -> None:
    created = org.minted("bare", create_service_account_only=True)
    assert (created["role"], created["api_key"]) == ("none", None)
    keys = org.call("GET", f"{org.prefix}/api_keys", params={"owner_project_access": "any"}).json()["data"]
    assert [k for k in keys if k["owner"].get("service_account", {}).get("id") == created["id"]] == []


def test_create_expiring_key_dies_at_expiry(org: Org) -> None:
    # GIVEN a key that expires in an hour
    created = org.minted("svc-exp", expires_in_seconds=3_600)
    value = created["api_key"]["value"]
    assert created["api_key"]["expires_at"] == NOW + 3_600
    # WHEN the clock passes the expiry THEN the key dies with invalid_api_key
    org.clock.advance(3_599)
    assert org.models_status(value) == (200, None)
    org.clock.advance(1)
    assert org.models_status(value) == (401, "invalid_api_key")


def test_create_key_without_expiry_never_expires(org: Org) -> None:
    value = org.minted()["api_key"]["value"]
    org.clock.advance(400 * DAY)
    assert org.models_status(value) == (200, None)


def test_create_expiry_with_service_account_only_is_400(org: Org) -> None:
    response = org.create_sa("x", create_service_account_only=True, expires_in_seconds=60)
    assert response.status_code == 400 and _error(response)["param"] == "expires_in_seconds"
    assert org.standin.state.live_service_accounts() == []


@pytest.mark.parametrize("bad", [0, -1, 31_536_001, "60", True, 1.5])
def test_create_expiry_out_of_range_is_400(org: Org, bad: Any) -> None:
    response = org.create_sa("x", expires_in_seconds=bad)
    assert response.status_code == 400 and _error(response)["param"] == "expires_in_seconds"


def test_create_in_archived_project_is_400(org: Org) -> None:
    archived = org.standin.state.add_project(archived=True)
    response = org.call("POST", f"/organization/projects/{archived}/service_accounts", body={"name": "x"})
    assert response.status_code == 400 and "archived" in _error(response)["message"]


def test_create_in_unknown_project_is_404(org: Org) -> None:
    assert org.call("POST", "/organization/projects/proj_nope/service_accounts", body={"name": "x"}).status_code == 404


def test_create_key_on_account_honours_name_scopes_and_expiry(org: Org) -> None:
    # GIVEN an account WHEN a second key is minted with a name, scopes lacking api.model.read, and an expiry
    account = org.minted()
    body = {"name": "ci key", "scopes": ["api.responses.write"], "expires_in_seconds": 60}
    key = org.call("POST", f"{org.prefix}/service_accounts/{account['id']}/api_keys", body=body).json()
    # THEN it has the five-field shape, the name and expiry, and is refused model listing for the missing scope
    assert {"object", "value", "name", "created_at", "id"} <= set(key)
    assert (key["name"], key["expires_at"]) == ("ci key", NOW + 60)
    response = org.call("GET", "/models", key["value"])
    assert response.status_code == 401 and "Missing scopes: api.model.read" in _error(response)["message"]


# --- deletes -----------------------------------------------------------------------------------------------------


def test_delete_service_account_invalidates_all_its_keys(org: Org) -> None:
    account = org.minted()
    extra = org.call("POST", f"{org.prefix}/service_accounts/{account['id']}/api_keys", body={}).json()["value"]
    assert org.call("DELETE", f"{org.prefix}/service_accounts/{account['id']}").status_code == 200
    assert org.models_status(account["api_key"]["value"]) == (401, "invalid_api_key")
    assert org.models_status(extra) == (401, "invalid_api_key")
    listed = org.call("GET", f"{org.prefix}/api_keys", params={"owner_project_access": "any"}).json()["data"]
    assert listed == []
    assert org.call("GET", f"{org.prefix}/service_accounts/{account['id']}").status_code == 404


def test_delete_service_account_with_revocation_delay_keeps_key_alive_until_it_passes() -> None:
    for org in _org(revocation_delay_seconds=30):
        # GIVEN a stand-in where revocation takes 30 s to propagate
        account = org.minted()
        org.call("DELETE", f"{org.prefix}/service_accounts/{account['id']}")
        # THEN the key still works for 30 s, then dies
        org.clock.advance(29)
        assert org.models_status(account["api_key"]["value"]) == (200, None)
        org.clock.advance(1)
        assert org.models_status(account["api_key"]["value"]) == (401, "invalid_api_key")


def test_delete_api_key_of_service_account_is_400_and_key_survives(org: Org) -> None:
    account = org.minted()
    response = org.call("DELETE", f"{org.prefix}/api_keys/{account['api_key']['id']}")
    assert response.status_code == 400 and _error(response)["type"] == "invalid_request_error"
    assert org.models_status(account["api_key"]["value"]) == (200, None)


def test_delete_api_key_of_user_removes_it_from_list(org: Org) -> None:
    key_id, _ = org.standin.state.add_user_key(org.project)
    body = org.call("DELETE", f"{org.prefix}/api_keys/{key_id}").json()
    assert body == {"object": "organization.project.api_key.deleted", "id": key_id, "deleted": True}
    assert org.call("GET", f"{org.prefix}/api_keys", params={"owner_project_access": "any"}).json()["data"] == []


# --- listing -----------------------------------------------------------------------------------------------------


def _accounts(org: Org, count: int) -> list[str]:
    state = org.standin.state
    ids = []
    for index in range(count):
        ids.append(state.create_service_account(org.project, f"svc-{index}", with_key=True, expires_in=None)[0].id)
        org.clock.advance(1)
    return ids


def _pages(org: Org, path: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    pages, after = [], None
    while True:
        query = {**params, "limit": limit, **({"after": after} if after else {})}
        page = org.call("GET", path, params=query).json()
        pages.append(page)
        if not page["has_more"]:
            return pages
        after = page["last_id"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.integers(min_value=1, max_value=25))
def test_list_pages_reassemble_the_whole_list(org: Org, limit: int) -> None:
    ids = [a.id for a in org.standin.state.live_service_accounts()] or _accounts(org, 23)
    pages = _pages(org, f"{org.prefix}/service_accounts", limit)
    assert [item["id"] for page in pages for item in page["data"]] == ids
    assert all(len(page["data"]) == limit for page in pages[:-1]) and 0 < len(pages[-1]["data"]) <= limit
    assert all(
        page["first_id"] == page["data"][0]["id"] and page["last_id"] == page["data"][-1]["id"] for page in pages
    )
    assert [page["has_more"] for page in pages] == [True] * (len(pages) - 1) + [False]


def test_list_default_limit_is_20(org: Org) -> None:
    _accounts(org, 21)
    page = org.call("GET", f"{org.prefix}/service_accounts").json()
    assert (len(page["data"]), page["has_more"]) == (20, True)


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"after": "svc_acct_never"}])
def test_list_bad_paging_is_400(org: Org, params: dict[str, Any]) -> None:
    assert org.call("GET", f"{org.prefix}/service_accounts", params=params).status_code == 400


def test_list_after_a_deleted_item_continues(org: Org) -> None:
    ids = _accounts(org, 4)
    first = org.call("GET", f"{org.prefix}/service_accounts", params={"limit": 2}).json()
    org.call("DELETE", f"{org.prefix}/service_accounts/{first['last_id']}")
    rest = org.call("GET", f"{org.prefix}/service_accounts", params={"limit": 2, "after": first["last_id"]}).json()
    assert [item["id"] for item in rest["data"]] == ids[2:]


def test_list_empty_has_null_cursors(org: Org) -> None:
    page = org.call("GET", f"{org.prefix}/service_accounts").json()
    assert page == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}


@pytest.mark.parametrize(
    ("access", "expected"), [(None, {"on"}), ("active", {"on"}), ("inactive", {"off"}), ("any", {"on", "off"})]
)
def test_list_keys_owner_project_access_filter(org: Org, access: str | None, expected: set[str]) -> None:
    state = org.standin.state
    ids = {"on": state.add_user_key(org.project)[0], "off": state.add_user_key(org.project)[0]}
    state.keys[ids["off"]].owner_project_access = "inactive"
    params = {"owner_project_access": access} if access else {}
    listed = {k["id"] for k in org.call("GET", f"{org.prefix}/api_keys", params=params).json()["data"]}
    assert listed == {ids[name] for name in expected}


def test_list_keys_bad_owner_project_access_is_400(org: Org) -> None:
    response = org.call("GET", f"{org.prefix}/api_keys", params={"owner_project_access": "all"})
    assert response.status_code == 400 and _error(response)["param"] == "owner_project_access"


def test_list_keys_shows_owner_union(org: Org) -> None:
    account = org.minted("svc-owner")
    org.standin.state.add_user_key(org.project, email="ada@example.com")
    owners = {k["owner"]["type"]: k["owner"] for k in org.call("GET", f"{org.prefix}/api_keys").json()["data"]}
    assert owners["service_account"]["service_account"]["id"] == account["id"]
    assert owners["user"]["user"]["email"] == "ada@example.com"
    assert "user" not in owners["service_account"] and "service_account" not in owners["user"]


def test_list_admin_keys_honours_order(org: Org) -> None:
    second = org.standin.state.add_admin_key(name="second")
    names = {
        order: [
            k["name"]
            for k in org.call("GET", "/organization/admin_api_keys", second, params={"order": order}).json()["data"]
        ]
        for order in ("asc", "desc")
    }
    assert names == {"asc": ["keyrot-admin", "second"], "desc": ["second", "keyrot-admin"]}


def test_last_used_at_updates_when_key_is_used(org: Org) -> None:
    key_id, value = org.standin.state.add_user_key(org.project)
    assert org.call("GET", f"{org.prefix}/api_keys/{key_id}").json()["last_used_at"] is None
    org.clock.advance(120)
    org.call("GET", "/models", value)
    assert org.call("GET", f"{org.prefix}/api_keys/{key_id}").json()["last_used_at"] == NOW + 120


# --- faults ------------------------------------------------------------------------------------------------------


def test_fault_hits_only_its_endpoint_and_call_numbers(org: Org) -> None:
    value = org.minted()["api_key"]["value"]
    org.standin.faults.add(server_error("list_models", calls={2, 3}))
    statuses = [org.call("GET", "/models", value).status_code for _ in range(4)]
    assert statuses == [200, 500, 500, 200]
    assert org.call("GET", "/models/gpt-4o-mini", value).status_code == 200


def test_fault_answers_with_openai_error_body(org: Org) -> None:
    org.standin.faults.add(Fault("list_projects", status=503, message="Slow Down", code=None))
    response = org.call("GET", "/organization/projects")
    assert response.status_code == 503
    assert response.json() == {"error": {"message": "Slow Down", "type": "server_error", "param": None, "code": None}}


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(3, {"retry-after": "3"}), (0.25, {"retry-after": "1", "retry-after-ms": "250"}), (None, {})],
)
def test_fault_rate_limited_sends_spec_retry_after(
    org: Org, retry_after: float | None, expected: dict[str, str]
) -> None:
    # GIVEN a 429 fault WHEN it fires THEN Retry-After is whole seconds (>= 1), any finer wait in retry-after-ms
    org.standin.faults.add(rate_limited("list_projects", retry_after=retry_after))
    response = org.call("GET", "/organization/projects")
    assert (response.status_code, _error(response)["code"]) == (429, "rate_limit_exceeded")
    assert {name: response.headers[name] for name in ("retry-after", "retry-after-ms") if name in response.headers} == (
        expected
    )
    assert response.headers["x-ratelimit-remaining-requests"] == "0"


def test_fault_latency_delays_a_successful_answer(org: Org) -> None:
    org.standin.faults.add(Fault("list_projects", status=None, latency_seconds=0.2))
    started = time.monotonic()
    assert org.call("GET", "/organization/projects").status_code == 200
    assert time.monotonic() - started >= 0.2


def test_fault_dropped_connection_gives_no_answer(org: Org) -> None:
    org.standin.faults.add(Fault("list_projects", calls={1}, drop_connection=True))
    with pytest.raises(requests.ConnectionError):
        org.call("GET", "/organization/projects")
    assert org.standin.calls_to("list_projects")[0].status is None
    assert org.call("GET", "/organization/projects").status_code == 200


def test_fault_non_json_body(org: Org) -> None:
    org.standin.faults.add(Fault("list_projects", status=502, non_json=True))
    response = org.call("GET", "/organization/projects")
    assert response.status_code == 502 and response.headers["content-type"] == "text/html"
    with pytest.raises(ValueError):
        response.json()


def test_fault_after_effect_performs_the_operation(org: Org) -> None:
    org.standin.faults.add(Fault("create_service_account", calls={1}, status=500, after_effect=True))
    assert org.create_sa("lost").status_code == 500
    assert [a.name for a in org.standin.state.live_service_accounts()] == ["lost"]


def test_fault_without_endpoint_hits_every_endpoint(org: Org) -> None:
    org.standin.faults.add(server_error(None))
    assert org.call("GET", "/organization/projects").status_code == 500
    assert org.call("GET", "/organization/admin_api_keys").status_code == 500
    org.standin.faults.clear()
    assert org.call("GET", "/organization/projects").status_code == 200


# --- usage and costs ---------------------------------------------------------------------------------------------


def _usage(org: Org, kind: str = "completions", **params: Any) -> requests.Response:
    return org.call("GET", f"/organization/usage/{kind}", params=params)


def _results(response: requests.Response) -> list[dict[str, Any]]:
    return [result for bucket in response.json()["data"] for result in bucket["results"]]


def _key(org: Org) -> str:
    return str(org.minted()["api_key"]["id"])


def test_usage_first_bucket_starts_at_start_time_then_aligns_to_utc(org: Org) -> None:
    start = NOW - 3 * DAY  # 01:12:01 UTC, not on a day boundary
    buckets = _usage(org, start_time=start).json()["data"]
    assert buckets[0]["start_time"] == start and buckets[0]["end_time"] % DAY == 0
    assert all(b["start_time"] % DAY == 0 for b in buckets[1:])
    assert [b["start_time"] for b in buckets[1:]] == [b["end_time"] for b in buckets[:-1]]
    assert buckets[-1]["end_time"] == NOW  # end_time defaults to now


def test_usage_empty_buckets_are_returned(org: Org) -> None:
    key = _key(org)
    org.standin.state.record_usage(key, at=NOW - DAY, input_tokens=5, output_tokens=1)
    buckets = _usage(org, start_time=NOW - 3 * DAY).json()["data"]
    assert [len(b["results"]) for b in buckets] == [0, 0, 1, 0]


def test_usage_ungrouped_sums_into_one_result_with_null_dimensions(org: Org) -> None:
    state = org.standin.state
    for key, model in ((_key(org), "gpt-4o-mini"), (_key(org), "gpt-4.1")):
        state.record_usage(key, at=NOW - 60, model=model, input_tokens=10, output_tokens=2)
    [result] = _results(_usage(org, start_time=NOW - 120, bucket_width="1m"))
    assert (result["input_tokens"], result["output_tokens"], result["num_model_requests"]) == (20, 4, 2)
    assert all(result[name] is None for name in ("project_id", "user_id", "api_key_id", "model", "batch"))


def test_usage_grouped_fills_only_grouped_dimensions(org: Org) -> None:
    keys = [_key(org), _key(org)]
    for key in keys:
        org.standin.state.record_usage(key, at=NOW - 60, input_tokens=1, output_tokens=1)
    results = _results(_usage(org, start_time=NOW - 120, bucket_width="1m", group_by="api_key_id"))
    assert sorted(r["api_key_id"] for r in results) == sorted(keys)
    assert all(r["model"] is None and r["project_id"] is None for r in results)


def test_usage_accepts_plain_and_bracketed_arrays(org: Org) -> None:
    keys = [_key(org), _key(org), _key(org)]
    for key in keys:
        org.standin.state.record_usage(key, at=NOW - 60, input_tokens=1, output_tokens=1)
    base = {"start_time": NOW - 120, "bucket_width": "1m"}
    plain = _usage(org, **base, group_by=["api_key_id", "model"], api_key_ids=keys[:2])
    bracketed = _usage(org, **base, **{"group_by[]": ["api_key_id", "model"], "api_key_ids[]": keys[:2]})
    assert plain.json() == bracketed.json()
    assert sorted((r["api_key_id"], r["model"]) for r in _results(plain)) == sorted(
        (k, "gpt-4o-mini") for k in keys[:2]
    )


def test_usage_filters_by_project_and_model(org: Org) -> None:
    state = org.standin.state
    other = state.add_project()
    state.record_usage(None, at=NOW - 60, project_id=other, model="gpt-4.1", input_tokens=7, output_tokens=0)
    state.record_usage(None, at=NOW - 60, project_id=org.project, model="gpt-4.1", input_tokens=3, output_tokens=0)
    state.record_usage(None, at=NOW - 60, project_id=other, model="gpt-4o-mini", input_tokens=5, output_tokens=0)
    response = _usage(org, start_time=NOW - 60, bucket_width="1m", project_ids=other, models="gpt-4.1")
    assert [r["input_tokens"] for r in _results(response)] == [7]


def test_usage_end_time_is_exclusive(org: Org) -> None:
    org.standin.state.record_usage(_key(org), at=NOW - 60, input_tokens=1, output_tokens=1)
    buckets = _usage(org, start_time=NOW - 120, end_time=NOW - 60, bucket_width="1m").json()["data"]
    assert all(b["results"] == [] for b in buckets)


def test_usage_late_records_appear_only_after_they_arrive(org: Org) -> None:
    # GIVEN usage that reaches the Usage API ten minutes after it happened
    org.standin.state.record_usage(_key(org), at=NOW - 60, arrives_after_seconds=600, input_tokens=4, output_tokens=1)
    query = {"start_time": NOW - 120, "end_time": NOW, "bucket_width": "1m"}
    # THEN the bucket is empty at first and filled once the clock passes the arrival
    assert _results(_usage(org, **query)) == []
    org.clock.advance(600)
    assert [r["input_tokens"] for r in _results(_usage(org, **query))] == [4]


def test_usage_batch_filter(org: Org) -> None:
    state = org.standin.state
    state.record_usage(_key(org), at=NOW - 60, input_tokens=1, output_tokens=1)
    state.usage[-1].batch = True
    state.record_usage(_key(org), at=NOW - 60, input_tokens=9, output_tokens=1)
    results = _results(_usage(org, start_time=NOW - 60, bucket_width="1m", batch="true"))
    assert [r["input_tokens"] for r in results] == [1]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    width=st.sampled_from([("1m", 60, 1440), ("1h", 3_600, 168), ("1d", DAY, 31)]),
    start_offset=st.integers(min_value=0, max_value=2 * DAY),
    span_buckets=st.floats(min_value=0.01, max_value=60),
    limit_fraction=st.floats(min_value=0, max_value=1),
)
def test_usage_pages_cover_window_with_independently_counted_buckets(
    org: Org, width: tuple[str, int, int], start_offset: int, span_buckets: float, limit_fraction: float
) -> None:
    # GIVEN a random window and page size
    name, seconds, maximum = width
    start = NOW - 5 * DAY - start_offset
    end = start + max(1, int(span_buckets * seconds))
    limit = 1 + int(limit_fraction * (min(maximum, 40) - 1))
    # WHEN every page is read by following next_page
    buckets, pages, page = [], 0, None
    while True:
        body = _usage(org, start_time=start, end_time=end, bucket_width=name, limit=limit, page=page).json()
        pages += 1
        assert len(body["data"]) == limit or body["next_page"] is None
        assert body["has_more"] is (body["next_page"] is not None)
        buckets += body["data"]
        page = body["next_page"]
        if page is None:
            break
    # THEN the buckets tile [start, end): one per UTC-aligned interval touched, the first at start_time
    expected = -(-end // seconds) - start // seconds
    assert len(buckets) == expected and pages == -(-expected // limit)
    assert buckets[0]["start_time"] == start and buckets[-1]["end_time"] == end
    assert all(
        a["end_time"] == b["start_time"] and b["start_time"] % seconds == 0 for a, b in itertools.pairwise(buckets)
    )


def test_costs_amount_is_float_usd_summed_per_bucket(org: Org) -> None:
    key = _key(org)
    org.standin.state.record_cost(key, 1, at=NOW - 100)
    org.standin.state.record_cost(key, 0.125, at=NOW - 50, line_item="gpt-4.1, output")
    response = org.call("GET", "/organization/costs", params={"start_time": NOW - 200})
    [result] = response.json()["data"][0]["results"]
    assert result["amount"] == {"value": 1.125, "currency": "usd"}
    assert '"value": 1.125' in response.text and result["line_item"] is None


def test_costs_group_by_line_item(org: Org) -> None:
    key = _key(org)
    org.standin.state.record_cost(key, 1.0, at=NOW - 100, line_item="a")
    org.standin.state.record_cost(key, 2.0, at=NOW - 100, line_item="b")
    results = org.call(
        "GET", "/organization/costs", params={"start_time": NOW - 200, "group_by[]": "line_item"}
    ).json()["data"][0]["results"]
    assert sorted((r["line_item"], r["amount"]["value"]) for r in results) == [("a", 1.0), ("b", 2.0)]
