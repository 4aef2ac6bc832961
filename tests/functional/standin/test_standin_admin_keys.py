"""Admin API keys in the stand-in: create with the spec's expiry, retrieve, list, delete; a deleted or expired admin
key stops authenticating at once; every call is attributed to the admin key that made it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from lab.openai_standin import ManualClock, OpenAIStandIn
from tests.support.openapi import assert_calls_conform

NOW = 1_767_225_600 + 40 * 86_400


@dataclass
class Org:
    standin: OpenAIStandIn
    clock: ManualClock
    session: requests.Session
    admin: str

    def call(self, method: str, path: str, key: str | None = None, *, params: Any = None, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {self.admin if key is None else key}"}
        url = f"{self.standin.base_url}{path}"
        return self.session.request(method, url, headers=headers, params=params, json=body, timeout=5)

    def create(self, key: str | None = None, **body: Any) -> dict[str, Any]:
        response = self.call("POST", "/organization/admin_api_keys", key, body={"name": "next", **body})
        assert response.status_code == 200, response.text
        return dict(response.json())

    def listed(self, key: str | None = None) -> list[str]:
        return [item["id"] for item in self.call("GET", "/organization/admin_api_keys", key).json()["data"]]

    def status(self, key: str) -> tuple[int, str | None]:
        response = self.call("GET", "/organization/admin_api_keys", key, params={"limit": 1})
        return response.status_code, (response.json().get("error") or {}).get("code")


@pytest.fixture
def org() -> Iterator[Org]:
    clock = ManualClock(NOW)
    with OpenAIStandIn(clock=clock) as standin, requests.Session() as session:
        yield Org(standin, clock, session, standin.state.add_admin_key())
        assert_calls_conform(standin.calls)


def test_created_admin_key_authenticates_and_is_listed_without_its_value(org: Org) -> None:
    # GIVEN an admin key created through the API
    created = org.create()
    # THEN it authenticates, is listed and retrievable, and no read shows its value
    assert org.status(created["value"]) == (200, None)
    assert created["id"] in org.listed()
    reads = [
        org.call("GET", "/organization/admin_api_keys").text,
        org.call("GET", f"/organization/admin_api_keys/{created['id']}").text,
    ]
    assert all(created["value"] not in text and '"value"' not in text for text in reads)


def test_expiring_admin_key_stops_authenticating_at_its_expiry(org: Org) -> None:
    # GIVEN an admin key that expires in a day
    created = org.create(expires_in_seconds=86_400)
    assert created["expires_at"] == NOW + 86_400
    # WHEN the clock reaches the expiry THEN the key is dead (invalid_api_key), one second before it was not
    org.clock.advance(86_399)
    assert org.status(created["value"]) == (200, None)
    org.clock.advance(1)
    assert org.status(created["value"]) == (401, "invalid_api_key")


def test_admin_key_without_expiry_has_null_expires_at_and_never_expires(org: Org) -> None:
    created = org.create()
    org.clock.advance(3 * 365 * 86_400)
    assert created["expires_at"] is None and org.status(created["value"]) == (200, None)


@pytest.mark.parametrize("bad", [0, -5, 31_536_001, "3600", 1.5, True])
def test_expiry_outside_the_spec_range_is_a_400_that_creates_nothing(org: Org, bad: Any) -> None:
    before = org.listed()
    response = org.call("POST", "/organization/admin_api_keys", body={"name": "n", "expires_in_seconds": bad})
    assert (response.status_code, response.json()["error"]["param"]) == (400, "expires_in_seconds")
    assert org.listed() == before


def test_deleted_admin_key_no_longer_authenticates_anywhere(org: Org) -> None:
    # GIVEN a second admin key, and a project
    project = org.standin.state.add_project()
    doomed = org.create()
    # WHEN the first key deletes it
    assert org.call("DELETE", f"/organization/admin_api_keys/{doomed['id']}").json()["deleted"] is True
    # THEN it is refused as a dead key on every admin endpoint, and gone from the list and from retrieve
    for path in (
        "/organization/admin_api_keys",
        f"/organization/projects/{project}/api_keys",
        "/organization/audit_logs",
    ):
        response = org.call("GET", path, doomed["value"])
        assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_api_key"), path
    assert doomed["id"] not in org.listed()
    assert org.call("GET", f"/organization/admin_api_keys/{doomed['id']}").status_code == 404


def test_admin_key_can_delete_itself_and_is_dead_after(org: Org) -> None:
    # GIVEN a rotation's new key  WHEN the old key deletes itself (whether OpenAI allows this is unconfirmed)
    successor = org.create()
    own_id = org.standin.state.admin_keys[org.admin].id
    assert org.call("DELETE", f"/organization/admin_api_keys/{own_id}").status_code == 200
    # THEN the old key is dead and the new one carries on
    assert org.status(org.admin) == (401, "invalid_api_key")
    assert org.status(successor["value"]) == (200, None)


def test_admin_key_made_with_an_admin_key_belongs_to_the_same_owner(org: Org) -> None:
    created = org.create()
    owner = org.call("GET", f"/organization/admin_api_keys/{created['id']}").json()["owner"]
    first = org.standin.state.admin_keys[org.admin]
    assert (owner["type"], owner["id"]) == ("user", first.owner_id)


def test_every_call_records_the_admin_key_that_made_it(org: Org) -> None:
    # GIVEN two admin keys
    second = org.create()
    org.standin.reset_calls()
    # WHEN each makes a call
    org.listed()
    org.listed(second["value"])
    # THEN each call record names its key's id (never its value)
    ids = [call.key_id for call in org.standin.calls]
    assert ids == [org.standin.state.admin_keys[org.admin].id, second["id"]]
    assert all(second["value"] not in repr(call) for call in org.standin.calls)


def test_admin_key_lacking_write_permission_cannot_create_or_delete(org: Org) -> None:
    # GIVEN an admin key limited (in the stand-in's model) to reading
    reader = org.standin.state.add_admin_key("reader", scopes={"api.management.read"})
    before = org.listed()
    # THEN create and delete are the missing-permission answer and change nothing
    create = org.call("POST", "/organization/admin_api_keys", reader, body={"name": "x"})
    delete = org.call("DELETE", f"/organization/admin_api_keys/{org.standin.state.admin_keys[org.admin].id}", reader)
    assert [(r.status_code, r.json()["error"]["code"]) for r in (create, delete)] == [(401, None), (401, None)]
    assert org.listed() == before
