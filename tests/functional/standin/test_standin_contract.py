"""Contract: every response the OpenAI stand-in gives conforms to OpenAI's OpenAPI spec for that operation and status.

Each scenario drives one endpoint (or one error case) over real HTTP; afterwards EVERY call the stand-in recorded is
mapped to its spec operation by method and path (from the spec itself) and its body validated against the schema
the spec gives for that status (ErrorResponse for errors). Validation is strict: the stand-in may not invent fields.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from lab.openai_standin import (
    CallRecord,
    Fault,
    ManualClock,
    OpenAIStandIn,
    insufficient_quota,
    rate_limited,
    server_error,
)
from lab.openai_standin.governance_routes import ENDPOINTS as GOVERNANCE_ENDPOINTS
from lab.openai_standin.usage import USAGE_FIELDS
from tests.support.openapi import (
    assert_calls_conform,
    assert_conforms,
    component_schema,
    operation_for,
    operations,
    query_parameter,
)

NOW = 1_767_225_600 + 3 * 86_400 + 5_000  # 2026-01-04 01:23:20 UTC: not aligned to any bucket width


@dataclass
class Org:
    """A stand-in with a project, an admin key, a service account with its key, and a user key."""

    standin: OpenAIStandIn
    session: requests.Session
    project: str
    admin: str
    sa_id: str
    sa_key_id: str
    sa_key: str
    user_key_id: str
    user_key: str
    responses: list[requests.Response] = field(default_factory=list)

    def call(
        self,
        method: str,
        path: str,
        key: str | None,
        *,
        params: Any = None,
        body: Any = None,
    ) -> requests.Response:
        headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
        response = self.session.request(
            method, f"{self.standin.base_url}{path}", headers=headers, params=params, json=body, timeout=5
        )
        self.responses.append(response)
        return response

    @property
    def prefix(self) -> str:
        return f"/organization/projects/{self.project}"


@pytest.fixture
def org() -> Iterator[Org]:
    clock = ManualClock(NOW)
    with OpenAIStandIn(clock=clock) as standin, requests.Session() as session:
        state = standin.state
        project = state.add_project()
        admin = state.add_admin_key()
        account, key = state.create_service_account(project, "svc-contract", with_key=True, expires_in=None)
        assert key is not None
        user_key_id, user_key = state.add_user_key(project)
        for offset, kind in enumerate(("completions", "embeddings")):
            state.record_usage(key.id, kind, at=NOW - 86_400 - offset * 3_600, input_tokens=11, output_tokens=7)
        state.record_cost(key.id, 0.25, at=NOW - 86_400)
        yield Org(standin, session, project, admin, account.id, key.id, key.value, user_key_id, user_key)


def assert_every_call_conforms(org: Org) -> None:
    """Every recorded call maps to a spec operation and its body (and 429 headers) match that operation's schema."""
    assert org.standin.calls, "the scenario made no calls"
    assert all(call.status is not None for call in org.standin.calls), "a contract scenario dropped a connection"
    assert_calls_conform(org.standin.calls)


Scenario = Callable[[Org], list[tuple[requests.Response, int]]]
SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Scenario], Scenario]:
    def register(func: Scenario) -> Scenario:
        SCENARIOS[name] = func
        return func

    return register


# --- service accounts -------------------------------------------------------------------------------------------


@scenario("create_service_account")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    return [(o.call("POST", f"{o.prefix}/service_accounts", o.admin, body={"name": "svc-new"}), 200)]


@scenario("create_service_account_only")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    body = {"name": "svc-bare", "create_service_account_only": True}
    return [(o.call("POST", f"{o.prefix}/service_accounts", o.admin, body=body), 200)]


@scenario("create_service_account_expiring")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    body = {"name": "svc-expiring", "expires_in_seconds": 3_600}
    return [(o.call("POST", f"{o.prefix}/service_accounts", o.admin, body=body), 200)]


@scenario("create_service_account_400_missing_name")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    return [(o.call("POST", f"{o.prefix}/service_accounts", o.admin, body={}), 400)]


@scenario("create_service_account_400_archived_project")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    archived = o.standin.state.add_project(archived=True)
    path = f"/organization/projects/{archived}/service_accounts"
    return [(o.call("POST", path, o.admin, body={"name": "svc"}), 400)]


@scenario("list_service_accounts_pages")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    o.standin.state.create_service_account(o.project, "svc-second", with_key=False, expires_in=None)
    first = o.call("GET", f"{o.prefix}/service_accounts", o.admin, params={"limit": 1})
    after = first.json()["last_id"]
    second = o.call("GET", f"{o.prefix}/service_accounts", o.admin, params={"limit": 1, "after": after})
    return [(first, 200), (second, 200)]


@scenario("list_service_accounts_empty")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    empty = o.standin.state.add_project()
    return [(o.call("GET", f"/organization/projects/{empty}/service_accounts", o.admin), 200)]


@scenario("get_service_account")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    return [(o.call("GET", f"{o.prefix}/service_accounts/{o.sa_id}", o.admin), 200)]


@scenario("get_service_account_404")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    return [(o.call("GET", f"{o.prefix}/service_accounts/svc_acct_missing", o.admin), 404)]


@scenario("delete_service_account")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    path = f"{o.prefix}/service_accounts/{o.sa_id}"
    return [(o.call("DELETE", path, o.admin), 200), (o.call("DELETE", path, o.admin), 404)]


@scenario("create_service_account_key")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    body = {"name": "second key", "scopes": ["api.model.read"]}
    return [(o.call("POST", f"{o.prefix}/service_accounts/{o.sa_id}/api_keys", o.admin, body=body), 200)]


# --- project API keys --------------------------------------------------------------------------------------------


@scenario("list_project_api_keys")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    path = f"{o.prefix}/api_keys"
    return [
        (o.call("GET", path, o.admin), 200),
        (o.call("GET", path, o.admin, params={"owner_project_access": "any", "limit": 1}), 200),
        (o.call("GET", path, o.admin, params={"owner_project_access": "inactive"}), 200),
        (o.call("GET", path, o.admin, params={"owner_project_access": "everyone"}), 400),
        (o.call("GET", path, o.admin, params={"limit": 101}), 400),
    ]


@scenario("get_project_api_key")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    o.call("GET", "/models", o.user_key)  # sets last_used_at, so the nullable integer branch is exercised too
    return [
        (o.call("GET", f"{o.prefix}/api_keys/{o.user_key_id}", o.admin), 200),
        (o.call("GET", f"{o.prefix}/api_keys/{o.sa_key_id}", o.admin), 200),
        (o.call("GET", f"{o.prefix}/api_keys/key_missing", o.admin), 404),
    ]


@scenario("delete_project_api_key")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    return [
        (o.call("DELETE", f"{o.prefix}/api_keys/{o.sa_key_id}", o.admin), 400),
        (o.call("DELETE", f"{o.prefix}/api_keys/{o.user_key_id}", o.admin), 200),
        (o.call("DELETE", f"{o.prefix}/api_keys/{o.user_key_id}", o.admin), 404),
    ]


# --- organization ------------------------------------------------------------------------------------------------


@scenario("list_projects")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    o.standin.state.add_project(archived=True)
    return [
        (o.call("GET", "/organization/projects", o.admin), 200),
        (o.call("GET", "/organization/projects", o.admin, params={"include_archived": "true"}), 200),
        (o.call("GET", "/organization/projects/proj_nope/api_keys", o.admin), 404),
    ]


@scenario("list_admin_api_keys")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    o.standin.state.add_admin_key(name="second admin")
    return [(o.call("GET", "/organization/admin_api_keys", o.admin, params={"limit": 1}), 200)]


def _usage_kinds() -> list[str]:
    """The usage kinds the spec defines (test_usage_kinds_match_spec holds the stand-in to exactly these)."""
    return sorted(op.path.rsplit("/", 1)[1] for op in operations() if op.path.startswith("/organization/usage/"))


def _usage_scenario(kind: str) -> Scenario:
    def run(o: Org) -> list[tuple[requests.Response, int]]:
        state = o.standin.state
        state.record_usage(o.sa_key_id, kind, at=NOW - 600, input_tokens=3, output_tokens=2, images=1, seconds=4)
        path = f"/organization/usage/{kind}"
        dimensions = _group_by_enum(path)
        base = {"start_time": NOW - 3 * 86_400}
        results = [
            (o.call("GET", path, o.admin, params=base), 200),
            (o.call("GET", path, o.admin, params={**base, "bucket_width": "1h", "limit": 3}), 200),
            (o.call("GET", path, o.admin, params={**base, "group_by": dimensions}), 200),
            (o.call("GET", path, o.admin, params={**base, "group_by[]": dimensions[:1]}), 200),
        ]
        results += [(o.call("GET", path, o.admin, params={**base, "group_by": [name]}), 200) for name in dimensions]
        return results

    return run


for _kind in USAGE_FIELDS:  # the stand-in's kinds: reading the spec at collection would abort the whole run
    SCENARIOS[f"usage_{_kind}"] = _usage_scenario(_kind)


@scenario("usage_400s")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    path = "/organization/usage/completions"
    return [
        (o.call("GET", path, o.admin), 400),
        (o.call("GET", path, o.admin, params={"start_time": NOW - 60, "bucket_width": "1w"}), 400),
        (o.call("GET", path, o.admin, params={"start_time": NOW - 60, "limit": 32}), 400),
        (o.call("GET", path, o.admin, params={"start_time": NOW - 60, "group_by": "line_item"}), 400),
        (o.call("GET", path, o.admin, params={"start_time": NOW - 60, "page": "garbage!"}), 400),
        (o.call("GET", "/organization/usage/teleportation", o.admin, params={"start_time": NOW - 60}), 404),
    ]


@scenario("costs")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    base = {"start_time": NOW - 9 * 86_400}
    return [
        (o.call("GET", "/organization/costs", o.admin, params=base), 200),
        (o.call("GET", "/organization/costs", o.admin, params={**base, "limit": 2}), 200),
        (o.call("GET", "/organization/costs", o.admin, params={**base, "group_by": ["project_id", "line_item"]}), 200),
        (o.call("GET", "/organization/costs", o.admin, params={**base, "group_by[]": ["api_key_id"]}), 200),
        (o.call("GET", "/organization/costs", o.admin, params={**base, "bucket_width": "1h"}), 400),
        (o.call("GET", "/organization/costs", o.admin, params={**base, "limit": 181}), 400),
    ]


# --- model endpoints ---------------------------------------------------------------------------------------------


@scenario("models")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    return [
        (o.call("GET", "/models", o.sa_key), 200),
        (o.call("GET", "/models/gpt-4o-mini", o.user_key), 200),
        (o.call("GET", "/models/gpt-99", o.user_key), 404),
    ]


@scenario("chat_completions")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    messages = [{"role": "user", "content": "Say hello"}]
    return [
        (o.call("POST", "/chat/completions", o.sa_key, body={"model": "gpt-4o-mini", "messages": messages}), 200),
        (o.call("POST", "/chat/completions", o.sa_key, body={"model": "gpt-4o-mini"}), 400),
        (o.call("POST", "/chat/completions", o.sa_key, body={"model": "gpt-99", "messages": messages}), 404),
    ]


# --- auth errors -------------------------------------------------------------------------------------------------


@scenario("auth_401s")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    unknown = "sk-proj-standin-unknownunknownunknown1234"
    return [
        (o.call("GET", f"{o.prefix}/api_keys", unknown), 401),
        (o.call("GET", "/models", unknown), 401),
        (o.call("GET", "/models", None), 401),
        (o.call("GET", f"{o.prefix}/api_keys", o.user_key), 401),  # scoped: project key on the admin API
        (o.call("GET", "/organization/usage/completions", o.sa_key, params={"start_time": NOW - 60}), 401),
        (o.call("GET", "/models", o.admin), 401),  # admin key on a model endpoint
        (o.call("GET", "/organization/costs", o.standin.state.add_admin_key(scopes=()), params={"start_time": 1}), 401),
    ]


@scenario("unknown_route_404")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    return [(o.call("GET", "/organization/projects/proj_x/service_accounts/svc/api_keys", o.admin), 404)]


# --- injected faults ---------------------------------------------------------------------------------------------


@scenario("faults")
def _(o: Org) -> list[tuple[requests.Response, int]]:
    faults = o.standin.faults
    n = {name: faults.count(name) for name in ("list_models", "usage", "costs", "list_service_accounts")}
    n["create_service_account"] = faults.count("create_service_account")
    faults.add(rate_limited("list_models", calls={n["list_models"] + 1}, retry_after=2))
    faults.add(rate_limited("list_models", calls={n["list_models"] + 2}, retry_after=None))
    faults.add(insufficient_quota("list_models", calls={n["list_models"] + 3}))
    faults.add(server_error("list_models", calls={n["list_models"] + 4}))
    faults.add(server_error("list_models", calls={n["list_models"] + 5}, status=503))
    faults.add(rate_limited("usage", calls={n["usage"] + 1}, retry_after=0.25))
    faults.add(Fault("costs", calls={n["costs"] + 1}, status=None, latency_seconds=0.01))
    faults.add(Fault("list_service_accounts", calls={n["list_service_accounts"] + 1}, status=502, non_json=True))
    faults.add(Fault("create_service_account", calls={n["create_service_account"] + 1}, status=500, after_effect=True))
    return [
        *[(o.call("GET", "/models", o.sa_key), status) for status in (429, 429, 429, 500, 503, 200)],
        (o.call("GET", "/organization/usage/completions", o.admin, params={"start_time": NOW - 60}), 429),
        (o.call("GET", "/organization/costs", o.admin, params={"start_time": NOW - 60}), 200),
        (o.call("GET", f"{o.prefix}/service_accounts", o.admin), 502),
        (o.call("POST", f"{o.prefix}/service_accounts", o.admin, body={"name": "lost"}), 500),
    ]


# --- tests -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_standin_responses_conform_to_spec(org: Org, name: str) -> None:
    # GIVEN a populated stand-in  WHEN the scenario runs
    outcomes = SCENARIOS[name](org)
    # THEN every status is the expected one, and every recorded body matches the spec schema for its status
    assert [r.status_code for r, _ in outcomes] == [status for _, status in outcomes], [r.text for r, _ in outcomes]
    assert_every_call_conforms(org)


def test_scenarios_cover_every_standin_endpoint(org: Org) -> None:
    # GIVEN every scenario run against one stand-in
    for name in sorted(SCENARIOS):
        SCENARIOS[name](org)
    # THEN every route the stand-in serves (but the governance ones: test_standin_contract_governance.py) was hit,
    # with both success and error statuses
    routed = set(org.standin.endpoints) - set(GOVERNANCE_ENDPOINTS)
    hit = {call.endpoint for call in org.standin.calls}
    assert routed - hit == set()
    statuses = {call.status for call in org.standin.calls}
    assert {200, 400, 401, 404, 429, 500, 502, 503} <= statuses


def test_every_standin_route_is_a_spec_operation(org: Org) -> None:
    # GIVEN each spec operation's path with sample values  WHEN the stand-in routes it
    routed: dict[str, set[str]] = {}
    for op in operations():
        concrete = "/v1" + "/".join("sample_id" if part.startswith("{") else part for part in op.path.split("/"))
        endpoint, _, _ = org.standin._route(op.method, concrete)
        routed.setdefault(endpoint, set()).add(op.operation_id)
    # THEN every stand-in endpoint answers exactly one spec operation (usage answers one per kind)
    for _, _, name, _ in org.standin._routes:
        assert name in routed, f"stand-in endpoint {name} matches no operation of the spec"
        if name != "usage":
            assert len(routed[name]) == 1, f"{name} serves several spec operations: {routed[name]}"


def test_usage_kinds_match_spec(org: Org) -> None:
    # THEN the stand-in serves exactly the usage kinds the spec defines, no more and no fewer
    assert sorted(USAGE_FIELDS) == _usage_kinds()


def test_usage_group_by_accepts_exactly_the_spec_enum(org: Org) -> None:
    # GIVEN the group_by enum each usage operation declares, and every dimension any usage or costs call declares
    declared = {kind: _group_by_enum(f"/organization/usage/{kind}") for kind in _usage_kinds()}
    every = set(_group_by_enum("/organization/costs")).union(*declared.values())
    for kind, allowed in declared.items():
        path = f"/organization/usage/{kind}"
        # WHEN each dimension is requested alone
        statuses = {
            name: org.call("GET", path, org.admin, params={"start_time": NOW - 60, "group_by": name}).status_code
            for name in sorted(every)
        }
        # THEN the declared ones are accepted and every other one is refused
        assert {name for name, status in statuses.items() if status == 200} == set(allowed), kind
        assert {name for name, status in statuses.items() if status == 400} == every - set(allowed), kind
    assert_every_call_conforms(org)


def _group_by_enum(path: str) -> list[str]:
    op = operation_for("GET", path)
    assert op is not None
    return list((query_parameter(op, "group_by") or {}).get("schema", {}).get("items", {}).get("enum", []))


def test_error_schema_requires_all_four_fields() -> None:
    # GUARD: the schema the error contract relies on still requires message, type, param and code
    assert set(component_schema("Error")["required"]) == {"message", "type", "param", "code"}


def test_contract_check_rejects_invented_field(org: Org) -> None:
    # GUARD: the strict check can fail: a body with a field the spec does not declare is refused
    body = org.call("GET", "/models/gpt-4o-mini", org.sa_key).json()
    body["colour"] = "blue"
    with pytest.raises(AssertionError, match="colour"):
        assert_conforms(body, "Model", strict=True)


# --- query parameters the spec constrains ------------------------------------------------------------------------


def _limit_rule(path: str, width: str) -> tuple[int, int, int]:
    """(minimum, default, maximum) of `limit` for this call and bucket width, as the spec's description states."""
    description = (query_parameter(_op(path), "limit") or {})["description"]
    if path == "/organization/costs":
        found = re.search(r"between (\d+) and (\d+), and the default is (\d+)", description)
        assert found, description
        low, high, default = map(int, found.groups())
        return low, default, high
    found = re.search(rf"`bucket_width={width}`: default: (\d+), max: (\d+)", description)
    assert found, description
    return 1, int(found.group(1)), int(found.group(2))


def _op(path: str) -> Any:
    op = operation_for("GET", path)
    assert op is not None, path
    return op


@pytest.mark.parametrize(
    ("path", "width"),
    [("/organization/usage/completions", width) for width in ("1m", "1h", "1d")] + [("/organization/costs", "1d")],
)
def test_bucket_limit_default_and_range_follow_spec(org: Org, path: str, width: str) -> None:
    # GIVEN the limit rule the spec states, and a window longer than the largest page
    minimum, default, maximum = _limit_rule(path, width)
    base = {"start_time": NOW - 200 * 86_400, "bucket_width": width}
    # THEN the default page has `default` buckets, `maximum` is accepted, and values outside the range are refused
    assert len(org.call("GET", path, org.admin, params=base).json()["data"]) == default
    assert len(org.call("GET", path, org.admin, params={**base, "limit": maximum}).json()["data"]) == maximum
    for bad in (minimum - 1, maximum + 1):
        response = org.call("GET", path, org.admin, params={**base, "limit": bad})
        assert (response.status_code, response.json()["error"]["param"]) == (400, "limit")
    assert_every_call_conforms(org)


@pytest.mark.parametrize("path", ["/organization/usage/completions", "/organization/costs"])
def test_bucket_width_enum_follows_spec(org: Org, path: str) -> None:
    # GIVEN the bucket_width enum the spec declares for this operation
    declared = set((query_parameter(_op(path), "bucket_width") or {})["schema"]["enum"])
    # THEN exactly those widths are accepted
    for width in ("1m", "1h", "1d", "1w"):
        response = org.call("GET", path, org.admin, params={"start_time": NOW - 86_400, "bucket_width": width})
        assert response.status_code == (200 if width in declared else 400), width


@pytest.mark.parametrize("path", ["/organization/usage/completions", "/organization/costs"])
def test_required_query_parameters_follow_spec(org: Org, path: str) -> None:
    # GIVEN the query parameters the spec marks required
    required = [p["name"] for p in _op(path).spec["parameters"] if p.get("required") and p.get("in") == "query"]
    assert required == ["start_time"]
    # WHEN a call omits it THEN it is a 400 naming the parameter
    response = org.call("GET", path, org.admin, params={"bucket_width": "1d"})
    assert (response.status_code, response.json()["error"]["param"]) == (400, "start_time")


def test_contract_check_rejects_fractional_retry_after() -> None:
    # GUARD: the header check can fail: the spec's Retry-After is whole seconds
    call = CallRecord(1, "GET", "/v1/models", "list_models", 1, {}, 429, "project", None, "HTTP 429", 0.0, 0.0)
    call.body = {"error": {"message": "slow down", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
    call.headers = {"retry-after": "0.25"}
    with pytest.raises(AssertionError, match="whole seconds"):
        assert_calls_conform([call])
