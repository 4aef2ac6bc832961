"""Scoped service-account keys in the stand-in: a key is refused exactly where it lacks the scope, with OpenAI's
missing-scope answer (401, code null), and still authenticates everywhere else; keys can be added to an account
that was created without one."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.openai_standin import ManualClock, OpenAIStandIn
from lab.openai_standin.server import MODEL_READ_SCOPE, MODEL_REQUEST_SCOPE
from tests.support.openapi import assert_calls_conform

NOW = 1_767_225_600 + 12 * 86_400
OTHER_SCOPES = ("api.responses.write", "api.files.read", "api.assistants.write")


@dataclass
class Org:
    standin: OpenAIStandIn
    session: requests.Session
    project: str
    # Not an init field: Hypothesis prints a failing example's fixtures field by field, and this is a key.
    admin: str = field(init=False, repr=False)

    def call(self, method: str, path: str, key: str, *, body: Any = None) -> requests.Response:
        url = f"{self.standin.base_url}{path}"
        return self.session.request(method, url, headers={"Authorization": f"Bearer {key}"}, json=body, timeout=5)

    def bare_account(self) -> str:
        path = f"/organization/projects/{self.project}/service_accounts"
        response = self.call("POST", path, self.admin, body={"name": "bare", "create_service_account_only": True})
        assert response.status_code == 200, response.text
        return str(response.json()["id"])

    def key(self, account: str, scopes: list[str] | None) -> requests.Response:
        path = f"/organization/projects/{self.project}/service_accounts/{account}/api_keys"
        return self.call(
            "POST", path, self.admin, body={"name": "k"} | ({"scopes": scopes} if scopes is not None else {})
        )

    def models(self, key: str) -> requests.Response:
        return self.call("GET", "/models", key)

    def chat(self, key: str) -> requests.Response:
        return self.call(
            "POST",
            "/chat/completions",
            key,
            body={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        )


@pytest.fixture
def org() -> Iterator[Org]:
    with OpenAIStandIn(clock=ManualClock(NOW)) as standin, requests.Session() as session:
        org = Org(standin, session, standin.state.add_project())
        org.admin = standin.state.add_admin_key()
        yield org
        assert_calls_conform(standin.calls)


def _refusal(response: requests.Response) -> tuple[int, str | None, str]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["message"]


def test_key_without_model_read_is_refused_by_models_but_authenticates_for_chat(org: Org) -> None:
    # GIVEN a key scoped to making model requests only
    value = org.key(org.bare_account(), [MODEL_REQUEST_SCOPE]).json()["value"]
    # WHEN it lists models THEN OpenAI's missing-scope answer: 401, code null, naming the scope
    status, code, message = _refusal(org.models(value))
    assert (status, code) == (401, None) and f"Missing scopes: {MODEL_READ_SCOPE}" in message
    # AND a chat completion, which its scope allows, succeeds
    assert org.chat(value).status_code == 200


def test_key_without_model_request_is_refused_by_chat_but_can_list_models(org: Org) -> None:
    value = org.key(org.bare_account(), [MODEL_READ_SCOPE]).json()["value"]
    status, code, message = _refusal(org.chat(value))
    assert (status, code) == (401, None) and f"Missing scopes: {MODEL_REQUEST_SCOPE}" in message
    assert org.models(value).status_code == 200


def test_unrestricted_key_passes_every_model_endpoint(org: Org) -> None:
    value = org.key(org.bare_account(), None).json()["value"]
    assert (org.models(value).status_code, org.chat(value).status_code) == (200, 200)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scopes=st.lists(st.sampled_from((MODEL_READ_SCOPE, MODEL_REQUEST_SCOPE, *OTHER_SCOPES)), unique=True))
def test_each_model_endpoint_is_allowed_exactly_when_the_key_holds_its_scope(org: Org, scopes: list[str]) -> None:
    # GIVEN a key with any set of scopes
    value = org.key(org.bare_account(), scopes).json()["value"]
    # WHEN it calls each model endpoint
    outcomes = {MODEL_READ_SCOPE: org.models(value), MODEL_REQUEST_SCOPE: org.chat(value)}
    for scope, response in outcomes.items():
        # THEN it passes iff it holds the endpoint's scope; a refusal is never "invalid key" (the key is live)
        if scope in scopes:
            assert response.status_code == 200, response.text
        else:
            assert _refusal(response)[:2] == (401, None)


def test_deleted_account_kills_its_scoped_keys_with_invalid_api_key(org: Org) -> None:
    # GIVEN a scoped key, refused by /v1/models for its scope only
    account = org.bare_account()
    value = org.key(account, [MODEL_REQUEST_SCOPE]).json()["value"]
    # WHEN its account is deleted
    org.call("DELETE", f"/organization/projects/{org.project}/service_accounts/{account}", org.admin)
    # THEN the refusal becomes the dead-key answer, which a prober can tell from a scope refusal
    assert _refusal(org.models(value))[:2] == (401, "invalid_api_key")
    assert _refusal(org.chat(value))[:2] == (401, "invalid_api_key")


def test_account_created_without_key_gets_several_keys(org: Org) -> None:
    # GIVEN an account made without a key
    account = org.bare_account()
    # WHEN two keys are added with different scopes
    first, second = org.key(account, [MODEL_READ_SCOPE]).json(), org.key(account, [MODEL_REQUEST_SCOPE]).json()
    # THEN both are live keys of that account, each with its own scopes
    state = org.standin.state
    assert {state.keys[first["id"]].owner_id, state.keys[second["id"]].owner_id} == {account}
    assert org.models(first["value"]).status_code == 200 and org.chat(second["value"]).status_code == 200


@pytest.mark.parametrize("scopes", ["api.model.read", [1], [None], {"a": 1}])
def test_scopes_that_are_not_a_list_of_strings_are_a_400_that_mints_nothing(org: Org, scopes: Any) -> None:
    account = org.bare_account()
    before = len(org.standin.state.keys)
    response = org.key(account, scopes)
    assert (response.status_code, response.json()["error"]["param"]) == (400, "scopes")
    assert len(org.standin.state.keys) == before


def test_known_scopes_hook_refuses_an_unknown_scope_and_mints_nothing(org: Org) -> None:
    # GIVEN a stand-in told which scopes exist (the spec lists none, so by default any name is accepted)
    org.standin.state.known_scopes = frozenset({MODEL_READ_SCOPE, MODEL_REQUEST_SCOPE})
    account, before = org.bare_account(), len(org.standin.state.keys)
    # WHEN a key is asked for with a scope OpenAI does not know THEN 400 naming it, and no key exists
    response = org.key(account, [MODEL_READ_SCOPE, "api.model.teleport"])
    assert response.status_code == 400 and "api.model.teleport" in response.json()["error"]["message"]
    assert len(org.standin.state.keys) == before
