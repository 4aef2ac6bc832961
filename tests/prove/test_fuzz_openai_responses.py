"""Bad answers from OpenAI: every response is either read correctly or refused with a typed keyrot error whose
message is bounded and carries no key, at each layer that reads it (transport, models, paging, usage and costs)."""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from keyrot import metric_names as m
from keyrot.errors import KeyrotError
from keyrot.monitor.usage import KIND_FIELDS, MalformedUsageError, fetch_costs_today, fetch_usage
from keyrot.openai_admin import (
    BadRequestError,
    BillingLimitError,
    InvalidKeyError,
    MalformedResponseError,
    MintedServiceAccount,
    NotFoundError,
    OpenAIAdminClient,
    OpenAIError,
    OpenAITransport,
    PermissionDeniedError,
    ProjectApiKey,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    ServiceAccount,
)
from keyrot.openai_admin.audit_log import (
    LATEST_UNIX_SECONDS,
    AuditCursor,
    AuditEvent,
    MalformedAuditEvent,
    UnknownAuditEvent,
    parse_audit_entry,
)
from keyrot.openai_admin.guardrails import ModelPermissions, RateLimit, SpendAlert, SpendLimit
from keyrot.openai_admin.models import AdminApiKey, MintedAdminApiKey
from keyrot.openai_admin.transport import ApiResponse, error_from_response
from tests.prove.strategies import (
    MARKER,
    SERVICE_ACCOUNT,
    created_service_accounts,
    error_bodies,
    json_values,
    list_envelopes,
    mutated,
    project_api_keys,
    retry_after_headers,
    usage_results,
)

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BEARER = "sk-admin-FUZZBEARERq7Zp3Lx9Vb2Nk5Rt8Yw1Ec4Ua6Hs0Dj0Kk"
_MAX_MESSAGE = 401  # 400 characters and an ellipsis


def _response(status: int, content: bytes, headers: Mapping[str, str]) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = content
    response.headers.update(headers)
    response.url = "https://api.openai.com/v1/organization/projects/proj_1/service_accounts"
    return response


def _clean(error: BaseException) -> None:
    text = str(error)
    assert MARKER not in text and BEARER not in text, "an error message carries a key"
    assert len(text) <= _MAX_MESSAGE + 200, len(text)  # the operation's own prefix may add a little


# --- the models ---------------------------------------------------------------------------------------------------


@FUZZ
@given(body=created_service_accounts())
def test_a_created_service_account_is_read_exactly_or_refused(body: Any) -> None:
    try:
        minted = MintedServiceAccount.from_api(body)
    except MalformedResponseError as exc:
        _clean(exc)
        return
    key = body["api_key"]
    assert (minted.service_account_id, minted.name, minted.key_id, minted.api_key) == (
        body["id"],
        body["name"],
        key["id"],
        key["value"],
    )
    assert all(isinstance(value, str) and value for value in (minted.service_account_id, minted.key_id, minted.api_key))
    assert isinstance(minted.created_at, int) and not isinstance(minted.created_at, bool)
    if not any(minted.api_key in field for field in (minted.service_account_id, minted.name, minted.key_id)):
        assert minted.api_key not in repr(minted)  # the value itself is kept out of the repr


@FUZZ
@given(body=st.one_of(json_values, mutated(SERVICE_ACCOUNT)))
def test_a_listed_service_account_is_read_exactly_or_refused(body: Any) -> None:
    try:
        account = ServiceAccount.from_api(body)
    except MalformedResponseError as exc:
        _clean(exc)
        return
    assert (account.id, account.name, account.role, account.created_at) == (
        body["id"],
        body["name"],
        body["role"],
        body["created_at"],
    )


@FUZZ
@given(body=project_api_keys())
def test_a_project_api_key_is_read_exactly_or_refused(body: Any) -> None:
    try:
        key = ProjectApiKey.from_api(body)
    except MalformedResponseError as exc:
        _clean(exc)
        return
    assert key.id == body["id"] and key.owner_type == body["owner"]["type"]
    assert key.last_used_at is None or (isinstance(key.last_used_at, int) and not isinstance(key.last_used_at, bool))
    assert key.owner_id is None or isinstance(key.owner_id, str)
    assert "redacted_value" not in repr(key)


# --- error responses ------------------------------------------------------------------------------------------------


@FUZZ
@given(status=st.integers(400, 599), content=error_bodies(), headers=retry_after_headers())
def test_an_error_response_maps_to_one_typed_scrubbed_error(
    status: int, content: bytes, headers: dict[str, str]
) -> None:
    error = error_from_response(
        _response(status, content, headers), operation="create service account", secrets=(BEARER,)
    )
    _clean(error)
    assert isinstance(error, OpenAIError) and error.status == status
    expected: type[OpenAIError]
    if status == 401 and error.code == "invalid_api_key":
        expected = InvalidKeyError
    elif status in (401, 403):
        expected = PermissionDeniedError
    elif status == 404:
        expected = NotFoundError
    elif status == 429:
        expected = BillingLimitError if isinstance(error, BillingLimitError) else RateLimitedError
    elif status >= 500:
        expected = ServerError
    else:
        expected = BadRequestError
    assert type(error) is expected
    if error.retry_after is not None:
        assert error.retry_after >= 0 and not math.isnan(error.retry_after)


# --- the transport: what a whole call does with any answer --------------------------------------------------------


class _ScriptedSession(requests.Session):
    """Answers every request with the next scripted response."""

    def __init__(self, responses: list[requests.Response]) -> None:
        super().__init__()
        self._responses = iter(responses)

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        return next(self._responses)


answers = st.tuples(
    st.one_of(st.integers(200, 204), st.integers(400, 599), st.sampled_from([200, 201, 302, 429, 500, 503])),
    st.one_of(error_bodies(), created_service_accounts().map(lambda body: json.dumps(body).encode())),
    retry_after_headers(),
)


@FUZZ
@given(script=st.lists(answers, min_size=4, max_size=4))
def test_a_call_returns_json_or_raises_one_typed_error_within_its_bounds(script: list[tuple[int, bytes, dict]]) -> None:
    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=4, max_elapsed_seconds=30)
    session = _ScriptedSession([_response(*answer) for answer in script])
    transport = OpenAITransport("https://api.openai.com/v1", session=session, retry=policy, sleep=sleeps.append)
    try:
        response = transport.request(
            "POST", "/organization/projects/p/service_accounts", bearer=BEARER, operation="create service account"
        )
    except OpenAIError as exc:
        _clean(exc)
    else:
        assert 200 <= response.status < 300 and 1 <= response.attempts <= 4
        assert BEARER not in repr(response) and MARKER not in repr(response)
    assert len(sleeps) <= 3 and all(0 <= pause <= policy.max_retry_after_seconds for pause in sleeps)


# --- paging ---------------------------------------------------------------------------------------------------------


class _PagedTransport:
    """A transport whose GETs return the scripted pages in turn, then an empty last page."""

    base_url = "https://api.openai.com/v1"

    def __init__(self, pages: list[Any]) -> None:
        self.pages = list(pages)
        self.calls = 0

    def request(self, method: str, path: str, **_: Any) -> ApiResponse:
        self.calls += 1
        body = self.pages.pop(0) if self.pages else {"object": "list", "data": [], "has_more": False, "last_id": None}
        return ApiResponse(200, body, {}, attempts=1)


@FUZZ
@given(pages=st.lists(list_envelopes(st.one_of(mutated(SERVICE_ACCOUNT), st.just(SERVICE_ACCOUNT))), max_size=4))
def test_a_listing_is_read_page_by_page_or_refused(pages: list[Any]) -> None:
    transport = _PagedTransport(pages)
    client = OpenAIAdminClient(BEARER, transport)  # type: ignore[arg-type]
    try:
        accounts = list(client.iter_service_accounts("proj_1"))
    except MalformedResponseError as exc:
        _clean(exc)
        return
    assert all(isinstance(account, ServiceAccount) for account in accounts)
    assert transport.calls <= len(pages) + 1  # stops at has_more=false, never loops


@FUZZ
@given(pages=st.lists(list_envelopes(project_api_keys()), max_size=3))
def test_a_key_inventory_is_read_or_refused(pages: list[Any]) -> None:
    client = OpenAIAdminClient(BEARER, _PagedTransport(pages))  # type: ignore[arg-type]
    try:
        keys = list(client.iter_project_api_keys("proj_1"))
    except MalformedResponseError as exc:
        _clean(exc)
        return
    assert all(isinstance(key, ProjectApiKey) for key in keys)


# --- usage and costs, through a fake admin client ------------------------------------------------------------------

START = 1_700_000_040  # minute-aligned
MINUTES = 4
KEY_IDS: list[str | None] = ["key_a", "key_b", None]


class _FakeAdmin:
    """Yields the generated pages, as OpenAIAdminClient does: each a mapping whose `data` is a list."""

    def __init__(self, pages: list[list[Any]]) -> None:
        self.pages = pages

    def iter_usage_pages(self, kind: str, params: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        for data in self.pages:
            yield {"object": "page", "data": data, "has_more": False, "next_page": None}

    def iter_cost_pages(self, params: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        yield from self.iter_usage_pages("costs", params)


def _bucket(start: int, results: list[Any]) -> dict[str, Any]:
    return {"object": "bucket", "start_time": start, "end_time": start + 60, "results": results}


@st.composite
def usage_pages(draw: Any) -> list[list[Any]]:
    """The buckets of the window (some missing, doubled or mangled), cut into pages."""
    fields = list(KIND_FIELDS["completions"])
    buckets: list[Any] = [
        _bucket(START + minute * 60, draw(st.lists(usage_results(fields, KEY_IDS), max_size=3)))
        for minute in range(MINUTES)
    ]
    damage = draw(st.sampled_from(["none", "none", "drop", "double", "mangle", "misalign"]))
    index = draw(st.integers(0, MINUTES - 1))
    if damage == "drop":
        del buckets[index]
    elif damage == "double":
        buckets.append(buckets[index])
    elif damage == "mangle":
        buckets[index] = draw(st.one_of(json_values, mutated(buckets[index])))
    elif damage == "misalign":
        buckets[index] = {**buckets[index], "start_time": START + index * 60 + draw(st.integers(-600, 600))}
    cuts = sorted(draw(st.lists(st.integers(0, len(buckets)), max_size=2)))
    edges = [0, *cuts, len(buckets)]
    return [buckets[low:high] for low, high in itertools.pairwise(edges)]


def _huge(value: int) -> list[list[Any]]:
    results = [{"api_key_id": "key_a", "num_model_requests": value, "input_tokens": 1, "output_tokens": 1}]
    return [[_bucket(START + minute * 60, results if minute == 1 else []) for minute in range(MINUTES)]]


@FUZZ
@given(pages=usage_pages())
@example(pages=_huge(10**400))  # beyond any float: publishing it would crash
@example(pages=_huge(2**64 + 7))  # no longer exact as a float
def test_usage_is_summed_exactly_or_nothing_is_returned(pages: list[list[Any]]) -> None:
    try:
        totals = fetch_usage(_FakeAdmin(pages), ["completions"], "proj_1", START, START + MINUTES * 60)  # type: ignore[arg-type]
    except MalformedUsageError as exc:
        _clean(exc)
        return
    expected: dict[tuple[int, str | None], Counter[str]] = {}
    buckets = [bucket for page in pages for bucket in page]
    assert sorted(bucket["start_time"] for bucket in buckets) == [START + minute * 60 for minute in range(MINUTES)]
    for bucket in buckets:
        for result in bucket["results"]:
            counter = expected.setdefault((bucket["start_time"], result.get("api_key_id")), Counter())
            for name, metric in KIND_FIELDS["completions"].items():
                counter[metric] += result[name]
                assert isinstance(result[name], int) and result[name] >= 0
    assert {key: Counter({k: v for k, v in c.items()}) for key, c in totals.items()} == expected
    assert all(value <= 2**53 for counter in totals.values() for value in counter.values()), "unpublishable count"


amounts = st.one_of(
    st.floats(0, 1e6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.sampled_from([10**400, -1.0, math.inf, math.nan]),
    json_values,
)


@FUZZ
@given(
    results=st.lists(
        st.one_of(
            st.builds(
                lambda key_id, value, currency: {
                    "api_key_id": key_id,
                    "amount": {"value": value, "currency": currency},
                },
                st.sampled_from(KEY_IDS),
                amounts,
                st.sampled_from(["usd", "USD", "eur", None]),
            ),
            json_values,
        ),
        max_size=4,
    )
)
def test_costs_are_summed_or_refused(results: list[Any]) -> None:
    admin = _FakeAdmin([[_bucket(START, results)]])
    try:
        costs = fetch_costs_today(admin, "proj_1", datetime.fromtimestamp(START, UTC))  # type: ignore[arg-type]
    except MalformedUsageError as exc:
        _clean(exc)
        return
    assume(results)
    assert all(math.isfinite(value) for value in costs.per_key.values()), "a cost CloudWatch cannot take"
    assert math.isfinite(costs.total)


# --- audit log and governance objects ------------------------------------------------------------------------------

AUDIT_ENTRY = {
    "id": "audit_log-abc_20260101",
    "type": "api_key.created",
    "effective_at": 1_767_225_600,
    "project": {"id": "proj_1", "name": "p"},
    "actor": {
        "type": "api_key",
        "api_key": {"id": "key_admin", "type": "user", "user": {"id": "u", "email": "o@x.io"}},
    },
    "api_key.created": {"id": "key_1", "data": {"scopes": ["model.request"]}},
}
AUDIT_ACTOR = AUDIT_ENTRY["actor"]
AUDIT_PAYLOAD = AUDIT_ENTRY["api_key.created"]
audit_entries = st.one_of(
    json_values,
    mutated(AUDIT_ENTRY),
    mutated(AUDIT_ACTOR).map(lambda actor: {**AUDIT_ENTRY, "actor": actor}),
    mutated(AUDIT_PAYLOAD).map(lambda payload: {**AUDIT_ENTRY, "api_key.created": payload}),
    st.sampled_from(
        ["rate_limit.updated", "service_account.created", "tenant.admin_api_key.deleted", "login.failed"]
    ).map(lambda kind: {**AUDIT_ENTRY, "type": kind, kind: {"id": MARKER, "changes_requested": {"role": MARKER}}}),
)


@FUZZ
@given(item=audit_entries, position=st.integers(0, 99))
def test_an_audit_entry_is_one_typed_result_that_holds_no_key(item: Any, position: int) -> None:
    # Never raises: a bad entry is a MalformedAuditEvent, and nothing key-shaped is kept from any entry
    entry = parse_audit_entry(item, position)
    assert isinstance(entry, AuditEvent | UnknownAuditEvent | MalformedAuditEvent)
    assert MARKER not in repr(entry) and "sk-" not in repr(entry)
    if isinstance(entry, MalformedAuditEvent):
        assert entry.position == position and len(entry.reason) < 120


@FUZZ
@given(pages=st.lists(list_envelopes(audit_entries), max_size=3), since=st.integers(0, LATEST_UNIX_SECONDS))
def test_an_audit_log_read_returns_a_batch_or_one_typed_error(pages: list[Any], since: int) -> None:
    client = OpenAIAdminClient(BEARER, _PagedTransport(pages))  # type: ignore[arg-type]
    try:
        batch = client.read_audit_log(since=since)
    except MalformedResponseError as exc:
        _clean(exc)
        return
    assert batch.cursor.effective_at >= since and all(len(i) <= 200 for i in batch.cursor.seen_ids)
    assert MARKER not in repr(batch) and MARKER not in json.dumps(batch.cursor.to_dict())
    assert AuditCursor.from_dict(batch.cursor.to_dict()) == batch.cursor


@pytest.mark.parametrize("since", [-1, LATEST_UNIX_SECONDS + 1, True])
def test_a_first_read_from_a_moment_no_cursor_can_hold_is_refused_before_any_call(since: Any) -> None:
    # GIVEN a client whose transport would fail the test if called
    transport = _PagedTransport([])
    client = OpenAIAdminClient(BEARER, transport)  # type: ignore[arg-type]
    # WHEN a first read starts before the epoch, after the year 9999, or from a bool
    with pytest.raises(ValueError, match="since must be Unix seconds"):
        client.read_audit_log(since=since)
    # THEN nothing was asked of OpenAI
    assert transport.calls == 0


RATE_LIMIT = {
    "object": "project.rate_limit",
    "id": "rl-gpt-4.1",
    "model": "gpt-4.1",
    "max_requests_per_1_minute": 5,
    "max_tokens_per_1_minute": 9,
}
SPEND_ALERT = {
    "id": "alert_1",
    "object": "project.spend_alert",
    "threshold_amount": 5,
    "currency": "USD",
    "interval": "month",
    "notification_channel": {"type": "email", "recipients": ["a@b.co"]},
}
ADMIN_KEY = {
    "object": "organization.admin_api_key",
    "id": "key_a",
    "name": "n",
    "redacted_value": "sk-adm...xyz",
    "created_at": 1,
    "expires_at": None,
    "last_used_at": None,
    "owner": {"type": "user", "id": "u"},
    "value": MARKER,
}


@FUZZ
@given(
    parser=st.sampled_from([RateLimit, SpendAlert, SpendLimit, ModelPermissions, AdminApiKey, MintedAdminApiKey]),
    body=st.one_of(json_values, mutated(RATE_LIMIT), mutated(SPEND_ALERT), mutated(ADMIN_KEY)),
)
def test_a_governance_object_is_read_or_refused_and_never_shows_a_key(parser: Any, body: Any) -> None:
    try:
        parsed = parser.from_api(body)
    except MalformedResponseError as exc:
        _clean(exc)
        return
    assert MARKER not in repr(parsed) and MARKER not in str(parsed)


def test_every_typed_error_here_is_a_keyrot_error() -> None:
    assert issubclass(MalformedUsageError, KeyrotError) and issubclass(OpenAIError, KeyrotError)
    assert m.REQUESTS in KIND_FIELDS["completions"].values()
