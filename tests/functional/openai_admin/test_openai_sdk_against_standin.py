"""The official openai-python SDK as an independent client of the stand-in: it must parse every answer into its
typed models and map every error status to its exception class, exactly as against api.openai.com."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel

from lab.openai_standin import Fault, ManualClock, OpenAIStandIn, rate_limited
from tests.support.openapi import assert_calls_conform

NOW = 1_767_225_600 + 20 * 86_400 + 777
USAGE_KINDS = (
    "completions",
    "embeddings",
    "moderations",
    "images",
    "audio_speeches",
    "audio_transcriptions",
    "vector_stores",
    "code_interpreter_sessions",
    "file_search_calls",
    "web_search_calls",
)


@dataclass
class Sdk:
    standin: OpenAIStandIn
    admin: OpenAI
    project: str

    @property
    def org(self) -> Any:
        return self.admin.admin.organization

    def project_client(self, api_key: str, **kwargs: Any) -> OpenAI:
        return OpenAI(api_key=api_key, base_url=self.standin.base_url, max_retries=0, **kwargs)


@pytest.fixture
def sdk(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sdk]:
    for name in ("OPENAI_API_KEY", "OPENAI_ADMIN_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    with OpenAIStandIn(clock=ManualClock(NOW)) as standin:
        admin_key = standin.state.add_admin_key()
        client = OpenAI(admin_api_key=admin_key, base_url=standin.base_url, max_retries=0)
        yield Sdk(standin, client, standin.state.add_project())
        client.close()
        assert_calls_conform(standin.calls)


# --- admin resources ---------------------------------------------------------------------------------------------


def test_sdk_service_account_create_parses_key(sdk: Sdk) -> None:
    created = sdk.org.projects.service_accounts.create(sdk.project, name="rot-1", expires_in_seconds=600)
    assert (created.name, created.role, created.object) == ("rot-1", "member", "organization.project.service_account")
    assert created.api_key is not None and created.api_key.value.startswith("sk-")
    assert created.api_key.expires_at == NOW + 600


def test_sdk_service_account_only_has_no_key(sdk: Sdk) -> None:
    created = sdk.org.projects.service_accounts.create(sdk.project, name="bare", create_service_account_only=True)
    assert (created.role, created.api_key) == ("none", None)


def test_sdk_service_account_list_auto_paginates(sdk: Sdk) -> None:
    made = [
        sdk.standin.state.create_service_account(sdk.project, f"s{i}", with_key=True, expires_in=None)[0]
        for i in range(5)
    ]
    listed = [account.id for account in sdk.org.projects.service_accounts.list(sdk.project, limit=2)]
    assert sorted(listed) == sorted(account.id for account in made) and len(listed) == 5
    assert len(sdk.standin.calls_to("list_service_accounts")) == 3


def test_sdk_service_account_delete_then_not_found(sdk: Sdk) -> None:
    created = sdk.org.projects.service_accounts.create(sdk.project, name="doomed")
    deleted = sdk.org.projects.service_accounts.delete(created.id, project_id=sdk.project)
    assert (deleted.id, deleted.deleted) == (created.id, True)
    with pytest.raises(openai.NotFoundError):
        sdk.org.projects.service_accounts.delete(created.id, project_id=sdk.project)


def test_sdk_service_account_key_create_parses(sdk: Sdk) -> None:
    created = sdk.org.projects.service_accounts.create(sdk.project, name="holder")
    key = sdk.org.projects.service_accounts.api_keys.create(created.id, project_id=sdk.project, name="ci")
    assert (key.name, key.object) == ("ci", "organization.project.service_account.api_key") and key.value


def test_sdk_project_api_keys_list_parses_owner_union(sdk: Sdk) -> None:
    created = sdk.org.projects.service_accounts.create(sdk.project, name="owner")
    sdk.standin.state.add_user_key(sdk.project, email="ada@example.com")
    keys = list(sdk.org.projects.api_keys.list(sdk.project, owner_project_access="any"))
    by_type = {key.owner.type: key for key in keys}
    assert by_type["service_account"].owner.service_account.id == created.id
    assert by_type["user"].owner.user.email == "ada@example.com"
    assert sdk.standin.calls_to("list_project_api_keys")[0].query["owner_project_access"] == ["any"]


def test_sdk_projects_list_parses(sdk: Sdk) -> None:
    assert [project.id for project in sdk.org.projects.list()] == [sdk.project]


@pytest.mark.parametrize("kind", USAGE_KINDS)
def test_sdk_usage_parses_each_kind_into_its_typed_result(sdk: Sdk, kind: str) -> None:
    # GIVEN one usage record of this kind
    key = sdk.org.projects.service_accounts.create(sdk.project, name="user").api_key
    sdk.standin.state.record_usage(key.id, kind, at=NOW - 100, input_tokens=3, output_tokens=1)
    # WHEN the SDK reads the usage grouped by project
    page = getattr(sdk.org.usage, kind)(start_time=NOW - 3_600, bucket_width="1h", group_by=["project_id"])
    # THEN the result parses into the model whose `object` discriminator matches, with the project filled in
    [result] = [result for bucket in page.data for result in bucket.results]
    assert isinstance(result, BaseModel) and type(result).__name__.startswith("DataResultOrganizationUsage")
    assert typing.get_args(type(result).model_fields["object"].annotation) == (result.object,)
    assert result.project_id == sdk.project


def test_sdk_usage_sends_bracketed_arrays_the_standin_understands(sdk: Sdk) -> None:
    keys = [sdk.org.projects.service_accounts.create(sdk.project, name=f"k{i}").api_key.id for i in range(3)]
    for key in keys:
        sdk.standin.state.record_usage(key, at=NOW - 100, input_tokens=1, output_tokens=1)
    page = sdk.org.usage.completions(
        start_time=NOW - 3_600, bucket_width="1h", group_by=["api_key_id", "model"], api_key_ids=keys[:2]
    )
    assert sorted(r.api_key_id for b in page.data for r in b.results) == sorted(keys[:2])
    query = sdk.standin.calls_to("usage")[-1].query
    assert query["group_by[]"] == ["api_key_id", "model"] and query["api_key_ids[]"] == keys[:2]


def test_sdk_usage_next_page_round_trips(sdk: Sdk) -> None:
    first = sdk.org.usage.completions(start_time=NOW - 10 * 86_400, limit=4)
    assert first.has_more and first.next_page
    second = sdk.org.usage.completions(start_time=NOW - 10 * 86_400, limit=4, page=first.next_page)
    assert second.data[0].start_time == first.data[-1].end_time


def test_sdk_costs_parse_amount(sdk: Sdk) -> None:
    key = sdk.org.projects.service_accounts.create(sdk.project, name="spender").api_key
    sdk.standin.state.record_cost(key.id, 0.5, at=NOW - 100)
    page = sdk.org.usage.costs(start_time=NOW - 86_400, group_by=["api_key_id"])
    [result] = [result for bucket in page.data for result in bucket.results]
    assert (result.amount.value, result.amount.currency, result.api_key_id) == (0.5, "usd", key.id)


# --- governance: admin keys, scoped keys, audit log, guardrails (the SDK's admin resources) -----------------------


def test_sdk_admin_api_keys_create_list_retrieve_delete(sdk: Sdk) -> None:
    created = sdk.org.admin_api_keys.create(name="rotated", expires_in_seconds=30 * 86_400)
    assert (created.expires_at, created.owner.type) == (NOW + 30 * 86_400, "user") and created.value.startswith("sk-")
    assert created.id in [key.id for key in sdk.org.admin_api_keys.list(limit=1)]  # auto-paginates past page one
    assert sdk.org.admin_api_keys.retrieve(created.id).name == "rotated"
    assert sdk.org.admin_api_keys.delete(created.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        sdk.org.admin_api_keys.retrieve(created.id)
    with pytest.raises(openai.AuthenticationError) as raised:
        list(
            OpenAI(
                admin_api_key=created.value, base_url=sdk.standin.base_url, max_retries=0
            ).admin.organization.admin_api_keys.list()
        )
    assert raised.value.code == "invalid_api_key"


def test_sdk_scoped_key_on_a_keyless_account_is_refused_only_where_its_scope_is_missing(sdk: Sdk) -> None:
    account = sdk.org.projects.service_accounts.create(sdk.project, name="scoped", create_service_account_only=True)
    key = sdk.org.projects.service_accounts.api_keys.create(
        account.id, project_id=sdk.project, scopes=["model.request"]
    )
    app = sdk.project_client(key.value)
    with pytest.raises(openai.AuthenticationError) as raised:
        app.models.list()
    assert raised.value.code is None and "Missing scopes: api.model.read" in raised.value.message
    assert app.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]).choices


def test_sdk_audit_logs_filter_page_and_parse_actors(sdk: Sdk) -> None:
    for _ in range(3):
        sdk.org.projects.service_accounts.create(sdk.project, name="svc")
    sdk.standin.console.as_user("ada@example.com").update_rate_limit(
        sdk.project, "gpt-4.1", max_requests_per_1_minute=9
    )
    created = list(sdk.org.audit_logs.list(event_types=["service_account.created"], effective_at={"gte": NOW}, limit=2))
    assert len(created) == 3 and {event.actor.type for event in created} == {"api_key"}
    [changed] = sdk.org.audit_logs.list(actor_emails=["ada@example.com"])
    assert changed.actor.session.user.email == "ada@example.com" and changed.project.id == sdk.project
    tenant = list(sdk.org.audit_logs.list(tenant_only=True))
    assert [event.type for event in tenant] == ["tenant.admin_api_key.created"]
    query = sdk.standin.calls_to("list_audit_logs")[0].query
    assert query["event_types[]"] == ["service_account.created"] and query["effective_at[gte]"] == [str(NOW)]


def test_sdk_audit_logs_off_is_permission_denied(sdk: Sdk) -> None:
    sdk.standin.state.audit.enabled = False
    with pytest.raises(openai.PermissionDeniedError):
        list(sdk.org.audit_logs.list())


def test_sdk_rate_limits_list_update_and_refuse_a_raise(sdk: Sdk) -> None:
    limits = {limit.model: limit for limit in sdk.org.projects.rate_limits.list_rate_limits(sdk.project, limit=1)}
    assert set(limits) == set(sdk.standin.models)
    lowered = sdk.org.projects.rate_limits.update_rate_limit(
        limits["gpt-4o-mini"].id, project_id=sdk.project, max_requests_per_1_minute=60
    )
    assert lowered.max_requests_per_1_minute == 60
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.org.projects.rate_limits.update_rate_limit(
            limits["gpt-4o-mini"].id, project_id=sdk.project, max_requests_per_1_minute=10**9
        )
    assert raised.value.param == "max_requests_per_1_minute"


def test_sdk_spend_limit_and_alerts_round_trip(sdk: Sdk) -> None:
    limit = sdk.org.projects.spend_limit
    with pytest.raises(openai.NotFoundError):
        limit.retrieve(sdk.project)
    assert (
        limit.update(sdk.project, threshold_amount=20_000, currency="USD", interval="month").enforcement.status
        == "enforcing"
    )
    assert limit.retrieve(sdk.project).threshold_amount == 20_000
    assert limit.delete(sdk.project).deleted is True
    alerts = sdk.org.projects.spend_alerts
    channel = {"type": "email", "recipients": ["finance@example.com"]}
    made = alerts.create(
        sdk.project, threshold_amount=5_000, currency="USD", interval="month", notification_channel=channel
    )
    assert [a.id for a in alerts.list(sdk.project)] == [made.id]
    changed = alerts.update(
        made.id,
        project_id=sdk.project,
        threshold_amount=6_000,
        currency="USD",
        interval="month",
        notification_channel=channel,
    )
    assert (
        changed.threshold_amount == 6_000 and alerts.retrieve(made.id, project_id=sdk.project).threshold_amount == 6_000
    )
    assert alerts.delete(made.id, project_id=sdk.project).deleted is True


def test_sdk_model_permissions_round_trip_and_bite(sdk: Sdk) -> None:
    permissions = sdk.org.projects.model_permissions
    assert permissions.update(sdk.project, mode="allow_list", model_ids=["gpt-4.1"]).model_ids == ["gpt-4.1"]
    app = sdk.project_client(sdk.org.projects.service_accounts.create(sdk.project, name="app").api_key.value)
    with pytest.raises(openai.PermissionDeniedError) as raised:
        app.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.code == "model_not_found"
    assert permissions.delete(sdk.project).deleted is True
    assert permissions.retrieve(sdk.project).mode == "deny_list"


# --- model endpoints with a minted key ----------------------------------------------------------------------------


def test_sdk_models_list_with_minted_key(sdk: Sdk) -> None:
    value = sdk.org.projects.service_accounts.create(sdk.project, name="app").api_key.value
    models = sdk.project_client(value).models.list()
    assert "gpt-4o-mini" in [model.id for model in models]


def test_sdk_chat_completion_with_minted_key(sdk: Sdk) -> None:
    value = sdk.org.projects.service_accounts.create(sdk.project, name="app").api_key.value
    completion = sdk.project_client(value).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}]
    )
    assert completion.choices[0].message.content and completion.usage is not None
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


# --- errors map to the SDK's exception classes -------------------------------------------------------------------


def test_sdk_unknown_key_is_authentication_error_with_code(sdk: Sdk) -> None:
    with pytest.raises(openai.AuthenticationError) as raised:
        sdk.project_client("sk-proj-unknownunknownunknown0000").models.list()
    assert raised.value.code == "invalid_api_key" and raised.value.status_code == 401


def test_sdk_deleted_service_account_key_is_authentication_error(sdk: Sdk) -> None:
    created = sdk.org.projects.service_accounts.create(sdk.project, name="gone")
    sdk.org.projects.service_accounts.delete(created.id, project_id=sdk.project)
    with pytest.raises(openai.AuthenticationError) as raised:
        sdk.project_client(created.api_key.value).models.list()
    assert raised.value.code == "invalid_api_key"


def test_sdk_project_key_on_admin_api_is_authentication_error_without_code(sdk: Sdk) -> None:
    value = sdk.org.projects.service_accounts.create(sdk.project, name="app").api_key.value
    outsider = OpenAI(admin_api_key=value, base_url=sdk.standin.base_url, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        list(outsider.admin.organization.projects.list())
    assert raised.value.code is None and "Missing scopes" in raised.value.message


def test_sdk_delete_of_service_account_key_is_bad_request(sdk: Sdk) -> None:
    created = sdk.org.projects.service_accounts.create(sdk.project, name="svc")
    with pytest.raises(openai.BadRequestError):
        sdk.org.projects.api_keys.delete(created.api_key.id, project_id=sdk.project)


def test_sdk_archived_project_is_bad_request(sdk: Sdk) -> None:
    archived = sdk.standin.state.add_project(archived=True)
    with pytest.raises(openai.BadRequestError):
        sdk.org.projects.service_accounts.create(archived, name="svc")


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (403, openai.PermissionDeniedError),
        (404, openai.NotFoundError),
        (409, openai.ConflictError),
        (422, openai.UnprocessableEntityError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_sdk_maps_fault_status_to_exception(sdk: Sdk, status: int, exception: type[Exception]) -> None:
    sdk.standin.faults.add(Fault("list_projects", status=status, code="some_code", message="injected"))
    with pytest.raises(exception) as raised:
        list(sdk.org.projects.list())
    assert isinstance(raised.value, openai.APIStatusError) and raised.value.status_code == status
    assert raised.value.code == "some_code" and raised.value.message.endswith("injected")


def test_sdk_dropped_connection_is_connection_error(sdk: Sdk) -> None:
    sdk.standin.faults.add(Fault("list_projects", drop_connection=True))
    with pytest.raises(openai.APIConnectionError):
        list(sdk.org.projects.list())


def test_sdk_non_json_error_is_internal_server_error(sdk: Sdk) -> None:
    sdk.standin.faults.add(Fault("list_projects", status=502, non_json=True))
    with pytest.raises(openai.InternalServerError) as raised:
        list(sdk.org.projects.list())
    assert raised.value.status_code == 502


def test_sdk_retries_after_standin_retry_after(sdk: Sdk) -> None:
    # GIVEN a 429, then a 500, each asking for a 50 ms wait, then success
    sdk.standin.faults.add(rate_limited("list_projects", calls={1}, retry_after=0.05))
    sdk.standin.faults.add(Fault("list_projects", calls={2}, status=500, retry_after=0.05))
    client = sdk.admin.with_options(max_retries=2)
    # WHEN the SDK is allowed to retry THEN it honours the stand-in's retry headers and gets through
    assert [project.id for project in client.admin.organization.projects.list()] == [sdk.project]
    calls = sdk.standin.calls_to("list_projects")
    assert [call.status for call in calls] == [429, 500, 200]
    assert 0.05 <= calls[1].started - calls[0].started < 0.5 and 0.05 <= calls[2].started - calls[1].started < 0.5
