"""keyrot's admin client on the governance endpoints, against the stand-in: admin keys, keyless service accounts and
scoped keys, rate limits, spend limit, spend alerts, model permissions. Typed results that never show a key, paging,
OpenAI's refusals as typed errors, and bad arguments refused before any request is sent."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from keyrot.openai_admin import (
    NO_RETRY,
    BadRequestError,
    InvalidKeyError,
    OpenAIAdminClient,
    OpenAITransport,
    PermissionDeniedError,
    RetryPolicy,
    ServerError,
)
from keyrot.openai_admin.guardrails import RATE_LIMIT_FIELDS
from lab.openai_standin import Fault, ManualClock, OpenAIStandIn, server_error
from lab.openai_standin.guardrails import ORGANIZATION_MAXIMA
from tests.support.openapi import assert_calls_conform

NOW = 1_767_225_600 + 80 * 86_400
RETRY = RetryPolicy(max_attempts=3)


@dataclass
class Env:
    standin: OpenAIStandIn
    clock: ManualClock
    project: str
    admin_key: str = field(init=False, repr=False)
    waits: list[float] = field(default_factory=list)

    def client(self, key: str | None = None, retry: RetryPolicy = RETRY) -> OpenAIAdminClient:
        transport = OpenAITransport(self.standin.base_url, retry=retry, sleep=self.waits.append)
        return OpenAIAdminClient(key or self.admin_key, transport)

    def requests_to(self, endpoint: str) -> int:
        return len(self.standin.calls_to(endpoint))


@pytest.fixture
def env() -> Iterator[Env]:
    clock = ManualClock(NOW)
    with OpenAIStandIn(clock=clock) as standin:
        env = Env(standin, clock, standin.state.add_project())
        env.admin_key = standin.state.add_admin_key()
        yield env
        assert_calls_conform(standin.calls)


# --- admin API keys ----------------------------------------------------------------------------------------------


def test_minted_admin_key_works_and_its_value_is_in_no_repr(env: Env) -> None:
    # WHEN an admin key is minted with a 30-day expiry
    minted = env.client().create_admin_api_key("keyrot-admin-2", expires_in_seconds=30 * 86_400)
    # THEN its metadata is typed, its value authenticates, and neither repr nor str shows the value
    assert (minted.key.name, minted.key.expires_at, minted.key.created_at) == ("keyrot-admin-2", NOW + 30 * 86_400, NOW)
    assert minted.value not in repr(minted) and minted.value not in str(minted) and minted.value not in repr(minted.key)
    env.client(minted.value).check_admin_key()


def test_admin_keys_are_listed_across_pages_and_retrieved(env: Env) -> None:
    # GIVEN 150 admin keys (the client pages 100 at a time)
    made = [env.client().create_admin_api_key(f"k{i}").key.id for i in range(149)]
    # THEN all are listed in creation order, in two pages, and one is retrievable by id
    listed = [key.id for key in env.client().iter_admin_api_keys()]
    assert listed == [env.standin.state.admin_keys[env.admin_key].id, *made]
    assert env.requests_to("list_admin_api_keys") == 2
    assert env.client().get_admin_api_key(made[7]).name == "k7"


def test_deleted_admin_key_is_dead_to_the_client(env: Env) -> None:
    # GIVEN a second admin key  WHEN the first deletes it
    minted = env.client().create_admin_api_key("doomed")
    assert env.client().delete_admin_api_key(minted.key.id) is True
    # THEN the client holding it gets InvalidKeyError, and a second delete reports it already gone
    with pytest.raises(InvalidKeyError) as raised:
        env.client(minted.value, retry=NO_RETRY).check_admin_key()
    assert minted.value not in str(raised.value)
    assert env.client().delete_admin_api_key(minted.key.id) is False


@pytest.mark.parametrize(
    ("name", "expires"), [("", None), ("  ", None), ("ok", 0), ("ok", 31_536_001), ("ok", 2.5), ("ok", True)]
)
def test_bad_admin_key_arguments_are_refused_before_any_request(env: Env, name: str, expires: Any) -> None:
    with pytest.raises(ValueError, match=r"name|expires_in_seconds"):
        env.client().create_admin_api_key(name, expires_in_seconds=expires)
    assert env.requests_to("create_admin_api_key") == 0


def test_admin_key_create_is_not_retried_after_an_ambiguous_failure(env: Env) -> None:
    # GIVEN a 500 after OpenAI made the key (the answer is lost)
    env.standin.faults.add(Fault("create_admin_api_key", status=500, after_effect=True))
    # WHEN keyrot mints THEN it fails once, without a second create that would leave a twin no one holds
    with pytest.raises(ServerError):
        env.client().create_admin_api_key("lost")
    assert env.requests_to("create_admin_api_key") == 1


# --- service accounts without a key, and scoped keys -----------------------------------------------------------


def test_keyless_account_then_a_scoped_key(env: Env) -> None:
    # GIVEN an account made without a key
    account = env.client().create_service_account_without_key(env.project, "keyrot-scoped")
    assert account.role == "none"
    # WHEN a key limited to model requests is added
    minted = env.client().create_service_account_key(
        env.project, account.id, name="app", scopes=["model.request", "model.request"]
    )
    # THEN it belongs to the account, carries the scopes asked for (once each), and hides its value
    assert (minted.service_account_id, minted.name, minted.scopes) == (account.id, "app", ("model.request",))
    assert env.standin.state.keys[minted.key_id].scopes == frozenset({"model.request"})
    assert minted.api_key not in repr(minted)


def test_unrestricted_key_sends_no_scopes(env: Env) -> None:
    account = env.client().create_service_account_without_key(env.project, "svc")
    minted = env.client().create_service_account_key(env.project, account.id)
    assert minted.scopes is None and env.standin.state.keys[minted.key_id].scopes is None


@pytest.mark.parametrize(
    "scopes", [[], ["API.MODEL.READ"], ["api.model.read", ""], ["has space.read"], "api.model.read", [None]]
)
def test_bad_scopes_are_refused_before_any_request(env: Env, scopes: Any) -> None:
    account = env.client().create_service_account_without_key(env.project, "svc")
    with pytest.raises(ValueError, match="scope"):
        env.client().create_service_account_key(env.project, account.id, scopes=scopes)
    assert env.requests_to("create_service_account_key") == 0


def test_a_scope_openai_refuses_is_a_bad_request_naming_it(env: Env) -> None:
    env.standin.state.known_scopes = frozenset({"api.model.read"})
    account = env.client().create_service_account_without_key(env.project, "svc")
    with pytest.raises(BadRequestError, match=r"api\.model\.teleport") as raised:
        env.client().create_service_account_key(env.project, account.id, scopes=["api.model.teleport"])
    assert raised.value.param == "scopes"


# --- rate limits -------------------------------------------------------------------------------------------------


def test_rate_limits_are_read_per_model_with_only_the_fields_each_has(env: Env) -> None:
    limits = {limit.model: limit for limit in env.client().iter_rate_limits(env.project)}
    assert set(limits) == set(env.standin.models)
    for model, limit in limits.items():
        assert limit.limits == ORGANIZATION_MAXIMA[model]


def test_lowering_a_limit_returns_the_new_limits(env: Env) -> None:
    updated = env.client().update_rate_limit(env.project, "rl-gpt-4.1", max_requests_per_1_minute=250)
    assert (updated.model, updated.max_requests_per_1_minute) == ("gpt-4.1", 250)


def test_raising_a_limit_above_the_maximum_is_a_bad_request_naming_the_field(env: Env) -> None:
    with pytest.raises(BadRequestError, match="only be set at or below") as raised:
        env.client().update_rate_limit(env.project, "rl-gpt-4.1", max_tokens_per_1_minute=10**12)
    assert raised.value.param == "max_tokens_per_1_minute"


@pytest.mark.parametrize(
    "limits", [{}, {"max_requests_per_day": 5}, {"max_requests_per_1_minute": -1}, {RATE_LIMIT_FIELDS[0]: "5"}]
)
def test_bad_rate_limit_arguments_are_refused_before_any_request(env: Env, limits: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        env.client().update_rate_limit(env.project, "rl-gpt-4.1", **limits)
    assert env.requests_to("update_rate_limit") == 0


# --- spend limit, alerts, model permissions ----------------------------------------------------------------------


def test_spend_limit_round_trip(env: Env) -> None:
    client = env.client()
    assert client.get_spend_limit(env.project) is None
    assert client.set_spend_limit(env.project, 50_000).threshold_cents == 50_000
    limit = client.get_spend_limit(env.project)
    assert limit is not None and (limit.currency, limit.interval, limit.enforcement_status) == (
        "USD",
        "month",
        "enforcing",
    )
    client.delete_spend_limit(env.project)
    assert client.get_spend_limit(env.project) is None


@pytest.mark.parametrize("cents", [0, -1, 1.5, "100", True])
def test_bad_spend_limit_is_refused_before_any_request(env: Env, cents: Any) -> None:
    with pytest.raises(ValueError, match="threshold_cents"):
        env.client().set_spend_limit(env.project, cents)
    assert env.requests_to("set_spend_limit") == 0


def test_spend_alerts_round_trip_across_pages(env: Env) -> None:
    client = env.client()
    made = [client.create_spend_alert(env.project, 1_000 * (i + 1), ["oncall@example.com"]).id for i in range(105)]
    assert [alert.id for alert in client.iter_spend_alerts(env.project)] == made
    assert env.requests_to("list_spend_alerts") == 2
    updated = client.update_spend_alert(
        env.project, made[0], 777, ["a@example.com", "b@example.com"], subject_prefix="[p]"
    )
    assert (updated.threshold_cents, updated.recipients, updated.subject_prefix) == (
        777,
        ("a@example.com", "b@example.com"),
        "[p]",
    )
    assert client.delete_spend_alert(env.project, made[0]) is True
    assert client.delete_spend_alert(env.project, made[0]) is False


@pytest.mark.parametrize("recipients", [[], ["nobody"], "oncall@example.com", [None]])
def test_bad_alert_recipients_are_refused_before_any_request(env: Env, recipients: Any) -> None:
    with pytest.raises(ValueError, match="recipients"):
        env.client().create_spend_alert(env.project, 100, recipients)
    assert env.requests_to("create_spend_alert") == 0


def test_model_permissions_round_trip(env: Env) -> None:
    client = env.client()
    assert (client.get_model_permissions(env.project).mode, client.get_model_permissions(env.project).model_ids) == (
        "deny_list",
        (),
    )
    set_to = client.set_model_permissions(env.project, "allow_list", ["gpt-4o-mini"])
    assert (set_to.mode, set_to.model_ids) == ("allow_list", ("gpt-4o-mini",))
    client.delete_model_permissions(env.project)
    assert client.get_model_permissions(env.project).model_ids == ()


@pytest.mark.parametrize(
    ("mode", "models"), [("block_list", ["gpt-4.1"]), ("allow_list", "gpt-4.1"), ("allow_list", [" gpt-4.1"])]
)
def test_bad_model_permissions_are_refused_before_any_request(env: Env, mode: Any, models: Any) -> None:
    with pytest.raises(ValueError):
        env.client().set_model_permissions(env.project, mode, models)
    assert env.requests_to("set_model_permissions") == 0


# --- transient failures and refusals -------------------------------------------------------------------------------


def test_guardrail_reads_and_idempotent_writes_are_retried_through_5xx(env: Env) -> None:
    env.standin.faults.add(server_error("list_rate_limits", calls={1}))
    env.standin.faults.add(server_error("update_rate_limit", calls={1}, status=503))
    assert len(list(env.client().iter_rate_limits(env.project))) == len(env.standin.models)
    assert (
        env.client()
        .update_rate_limit(env.project, "rl-gpt-4o-mini", max_requests_per_1_minute=9)
        .max_requests_per_1_minute
        == 9
    )
    assert (env.requests_to("list_rate_limits"), env.requests_to("update_rate_limit")) == (2, 2)


def test_project_key_on_guardrail_endpoints_is_permission_denied(env: Env) -> None:
    _, value = env.standin.state.add_user_key(env.project)
    with pytest.raises(PermissionDeniedError) as raised:
        env.client(value, retry=NO_RETRY).get_spend_limit(env.project)
    assert value not in str(raised.value)
