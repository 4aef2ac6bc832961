"""keyrot's OpenAI admin client, transport and key probe against the stand-in: operations, paging, retries, typed
errors, and that no error or repr ever shows a key, not even OpenAI's masked echo of one."""

from __future__ import annotations

import re
import time
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import requests.adapters
import urllib3

from keyrot.openai_admin import (
    NO_RETRY,
    ApiResponse,
    BadRequestError,
    BillingLimitError,
    InvalidKeyError,
    KeyStatus,
    MalformedResponseError,
    NotFoundError,
    OpenAIAdminClient,
    OpenAIConnectionError,
    OpenAIError,
    OpenAIKeyProbe,
    OpenAITransport,
    PermissionDeniedError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    Timeouts,
)
from lab.openai_standin import (
    Fault,
    ManualClock,
    OpenAIStandIn,
    insufficient_quota,
    rate_limited,
    server_error,
)
from tests.support.openapi import assert_calls_conform

NOW = 1_767_225_600 + 30 * 86_400 + 999
UNKNOWN_ADMIN_KEY = "sk-admin-unknown0000unknown0000abcd"
UNKNOWN_PROJECT_KEY = "sk-proj-unknownunknown0000wxyz"
POLICY = RetryPolicy(max_attempts=5, max_elapsed_seconds=60, max_retry_after_seconds=20)
TIMEOUTS = Timeouts(1.0, 2.0)


class FakeTime:
    """Stands in for both time.sleep and time.monotonic: sleeping moves the clock and records the wait."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


@dataclass
class Env:
    standin: OpenAIStandIn
    clock: ManualClock
    project: str
    admin_key: str
    time: FakeTime = field(default_factory=FakeTime)

    def transport(self, retry: RetryPolicy = POLICY, timeouts: Timeouts = TIMEOUTS) -> OpenAITransport:
        return OpenAITransport(
            self.standin.base_url, retry=retry, timeouts=timeouts, sleep=self.time.sleep, clock=self.time
        )

    def client(self, retry: RetryPolicy = POLICY, key: str | None = None, **kwargs: Any) -> OpenAIAdminClient:
        return OpenAIAdminClient(key or self.admin_key, self.transport(retry, **kwargs))

    def probe(self, retry: RetryPolicy = NO_RETRY) -> OpenAIKeyProbe:
        return OpenAIKeyProbe(self.transport(retry))

    def accounts(self, count: int) -> list[str]:
        state = self.standin.state
        return [
            state.create_service_account(self.project, f"s{i}", with_key=True, expires_in=None)[0].id
            for i in range(count)
        ]


@pytest.fixture
def env() -> Iterator[Env]:
    clock = ManualClock(NOW)
    with OpenAIStandIn(clock=clock) as standin:
        yield Env(standin, clock, standin.state.add_project(), standin.state.add_admin_key())
        assert_calls_conform(standin.calls)


# --- operations --------------------------------------------------------------------------------------------------


def test_create_service_account_returns_minted_key(env: Env) -> None:
    minted = env.client().create_service_account(env.project, "rot-1")
    key = env.standin.state.keys[minted.key_id]
    assert (minted.api_key, key.owner_id) == (key.value, minted.service_account_id)
    assert len(env.standin.calls_to("create_service_account")) == 1
    assert env.standin.state.key_is_live(minted.key_id)


def test_create_service_account_sends_expiry(env: Env) -> None:
    minted = env.client().create_service_account(env.project, "rot-exp", expires_in_seconds=7_200)
    assert env.standin.state.keys[minted.key_id].expires_at == NOW + 7_200


def test_iter_service_accounts_pages_beyond_100(env: Env) -> None:
    made = env.accounts(205)
    listed = [account.id for account in env.client().iter_service_accounts(env.project)]
    assert sorted(listed) == sorted(made) and len(listed) == 205
    calls = env.standin.calls_to("list_service_accounts")
    assert [call.query["limit"] for call in calls] == [["100"]] * 3 and "after" in calls[-1].query


def test_delete_service_account_true_then_false(env: Env) -> None:
    minted = env.client().create_service_account(env.project, "doomed")
    assert env.client().delete_service_account(env.project, minted.service_account_id) is True
    assert not env.standin.state.key_is_live(minted.key_id)
    assert env.client().delete_service_account(env.project, minted.service_account_id) is False


def test_iter_project_api_keys_sends_any_and_sees_inactive_keys(env: Env) -> None:
    user_id, _ = env.standin.state.add_user_key(env.project)
    env.standin.state.keys[user_id].owner_project_access = "inactive"
    minted = env.client().create_service_account(env.project, "svc")
    keys = {key.id: key for key in env.client().iter_project_api_keys(env.project)}
    assert set(keys) == {user_id, minted.key_id}
    assert (keys[minted.key_id].owner_type, keys[minted.key_id].owner_id) == (
        "service_account",
        minted.service_account_id,
    )
    assert keys[user_id].owner_project_access == "inactive"
    assert env.standin.calls_to("list_project_api_keys")[0].query["owner_project_access"] == ["any"]


def test_get_project_api_key_parses_and_404s(env: Env) -> None:
    minted = env.client().create_service_account(env.project, "svc")
    key = env.client().get_project_api_key(env.project, minted.key_id)
    assert (key.id, key.owner_id, key.last_used_at) == (minted.key_id, minted.service_account_id, None)
    with pytest.raises(NotFoundError):
        env.client().get_project_api_key(env.project, "key_missing")


def test_check_admin_key_passes_for_admin_key(env: Env) -> None:
    env.client().check_admin_key()
    assert env.standin.calls_to("list_admin_api_keys")[0].query["limit"] == ["1"]


def test_check_admin_key_revoked_is_invalid_key(env: Env) -> None:
    env.standin.state.revoke_admin_key(env.admin_key)
    with pytest.raises(InvalidKeyError):
        env.client().check_admin_key()


def test_check_admin_key_with_project_key_is_permission_denied(env: Env) -> None:
    minted = env.client().create_service_account(env.project, "svc")
    with pytest.raises(PermissionDeniedError):
        env.client(key=minted.api_key).check_admin_key()


def test_iter_usage_pages_follows_next_page(env: Env) -> None:
    minted = env.client().create_service_account(env.project, "svc")
    for day in range(10):
        env.standin.state.record_usage(minted.key_id, at=NOW - day * 86_400, input_tokens=day, output_tokens=1)
    params = {"start_time": NOW - 20 * 86_400, "limit": 3, "group_by": ["api_key_id", "model"]}
    pages = list(env.client().iter_usage_pages("completions", params))
    buckets = [bucket for page in pages for bucket in page["data"]]
    assert len(pages) == 7 and len(buckets) == 21 and pages[-1]["next_page"] is None
    assert sum(r["input_tokens"] for b in buckets for r in b["results"]) == sum(range(10))
    assert env.standin.calls_to("usage")[0].query["group_by"] == ["api_key_id", "model"]


def test_iter_usage_pages_sends_booleans_as_openai_spells_them(env: Env) -> None:
    minted = env.client().create_service_account(env.project, "svc")
    env.standin.state.record_usage(minted.key_id, at=NOW - 60, input_tokens=5, output_tokens=1)
    pages = list(env.client().iter_usage_pages("completions", {"start_time": NOW - 120, "batch": False}))
    assert env.standin.calls_to("usage")[0].query["batch"] == ["false"]
    assert [r["input_tokens"] for page in pages for b in page["data"] for r in b["results"]] == [5]


def test_iter_usage_pages_rejects_unknown_kind(env: Env) -> None:
    with pytest.raises(ValueError, match="unknown usage kind"):
        list(env.client().iter_usage_pages("teleportation", {"start_time": 0}))


def test_iter_cost_pages_follows_next_page(env: Env) -> None:
    minted = env.client().create_service_account(env.project, "svc")
    env.standin.state.record_cost(minted.key_id, 0.75, at=NOW - 3 * 86_400)
    pages = list(env.client().iter_cost_pages({"start_time": NOW - 9 * 86_400, "limit": 4}))
    amounts = [r["amount"]["value"] for page in pages for b in page["data"] for r in b["results"]]
    assert len(pages) == 3 and amounts == [0.75]


class _CannedTransport:
    """Answers every request with the same body: for envelopes the stand-in never sends."""

    base_url = "canned"

    def __init__(self, body: Any) -> None:
        self.body = body
        self.calls = 0

    def request(self, *args: Any, **kwargs: Any) -> ApiResponse:
        self.calls += 1
        return ApiResponse(200, self.body, {}, attempts=1)


@pytest.mark.parametrize(
    "body",
    [
        {"data": [], "has_more": True, "last_id": None},
        {"data": [{"id": "x"}], "has_more": True, "last_id": "x"},  # the cursor stops advancing on page 2
        {"data": "nope", "has_more": False},
        [],
    ],
)
def test_iter_list_refuses_broken_envelopes(body: Any) -> None:
    transport = _CannedTransport(body)
    client = OpenAIAdminClient("sk-admin-x", transport)  # type: ignore[arg-type]
    with pytest.raises(MalformedResponseError):
        list(client.iter_service_accounts("proj"))
    assert transport.calls <= 2


def test_iter_pages_refuses_repeating_next_page() -> None:
    transport = _CannedTransport({"data": [], "has_more": True, "next_page": "page_same"})
    client = OpenAIAdminClient("sk-admin-x", transport)  # type: ignore[arg-type]
    with pytest.raises(MalformedResponseError, match="does not advance"):
        list(client.iter_cost_pages({"start_time": 0}))
    assert transport.calls == 2


# --- retries -----------------------------------------------------------------------------------------------------


def test_retry_honours_retry_after(env: Env) -> None:
    env.standin.faults.add(rate_limited("create_service_account", calls={1, 2}, retry_after=3))
    # A 429 refuses the create before any work: retrying it cannot make a twin
    env.client().create_service_account(env.project, "svc")
    assert env.time.waits == [3.0, 3.0]
    assert [a.name for a in env.standin.state.live_service_accounts(env.project)] == ["svc"]


def test_retry_honours_retry_after_ms(env: Env) -> None:
    env.standin.faults.add(rate_limited("list_service_accounts", calls={1}, retry_after=0.25))
    list(env.client().iter_service_accounts(env.project))
    assert env.time.waits == [0.25]


def test_retry_after_above_cap_ends_retries_at_once(env: Env) -> None:
    env.standin.faults.add(rate_limited("list_service_accounts", retry_after=60))
    with pytest.raises(RateLimitedError) as raised:
        list(env.client().iter_service_accounts(env.project))
    assert (raised.value.retry_after, env.time.waits) == (60.0, [])
    assert len(env.standin.calls_to("list_service_accounts")) == 1


def test_retry_without_retry_after_backs_off_with_jitter(env: Env) -> None:
    env.standin.faults.add(rate_limited("list_service_accounts", calls={1, 2}, retry_after=None))
    list(env.client().iter_service_accounts(env.project))
    first, second = env.time.waits
    assert 0.5 <= first <= 1.0 and 1.0 <= second <= 1.5


@pytest.mark.parametrize(
    "fault",
    [
        server_error("list_service_accounts", calls={1, 2}),
        server_error("list_service_accounts", calls={1, 2}, status=503),
        Fault("list_service_accounts", calls={1, 2}, drop_connection=True),
        Fault("list_service_accounts", calls={1, 2}, status=502, non_json=True),
        Fault("list_service_accounts", calls={1, 2}, status=200, non_json=True),
    ],
    ids=["500", "503", "dropped", "non-json-502", "non-json-200"],
)
def test_retry_transient_failures_then_succeed(env: Env, fault: Fault) -> None:
    env.accounts(1)
    env.standin.faults.add(fault)
    response = env.transport().request(
        "GET", f"/organization/projects/{env.project}/service_accounts", bearer=env.admin_key, operation="list"
    )
    assert (response.status, response.attempts, len(env.time.waits)) == (200, 3, 2)
    assert len(response.body["data"]) == 1


def test_retry_bounded_by_max_attempts(env: Env) -> None:
    env.standin.faults.add(server_error("list_service_accounts"))
    with pytest.raises(ServerError):
        list(env.client(RetryPolicy(max_attempts=4, max_elapsed_seconds=600)).iter_service_accounts(env.project))
    assert (len(env.standin.calls_to("list_service_accounts")), len(env.time.waits)) == (4, 3)


def test_retry_bounded_by_max_elapsed_seconds(env: Env) -> None:
    # GIVEN every call is rate limited for 10 s, and a 25 s budget
    env.standin.faults.add(rate_limited("list_service_accounts", retry_after=10))
    policy = RetryPolicy(max_attempts=50, max_elapsed_seconds=25, max_retry_after_seconds=20)
    # THEN the third wait would end past the budget, so the third failure is final
    with pytest.raises(RateLimitedError):
        list(env.client(policy).iter_service_accounts(env.project))
    assert env.time.waits == [10.0, 10.0] and len(env.standin.calls_to("list_service_accounts")) == 3


def test_retry_never_retries_billing_429(env: Env) -> None:
    env.standin.faults.add(insufficient_quota("create_service_account"))
    with pytest.raises(BillingLimitError) as raised:
        env.client().create_service_account(env.project, "svc")
    assert raised.value.code == "insufficient_quota" and env.time.waits == []
    assert len(env.standin.calls_to("create_service_account")) == 1


@pytest.mark.parametrize(
    "fault",
    [
        Fault("create_service_account", calls={1}, status=500, after_effect=True),
        Fault("create_service_account", calls={1}, status=503),
        Fault("create_service_account", calls={1}, drop_connection=True, after_effect=True),
        Fault("create_service_account", calls={1}, status=200, non_json=True, after_effect=True),
        Fault("create_service_account", calls={1}, status=None, latency_seconds=0.3, after_effect=True),
    ],
    ids=["500-after-effect", "503", "dropped-after-effect", "garbled-200", "read-timeout-after-effect"],
)
def test_a_create_that_may_have_taken_effect_is_not_retried(env: Env, fault: Fault) -> None:
    # GIVEN a create whose answer is lost or garbled, and that OpenAI may (or may not) have carried out
    env.standin.faults.add(fault)
    with pytest.raises(OpenAIError) as raised:
        env.client(timeouts=Timeouts(1.0, 0.1)).create_service_account(env.project, "rot-tok")
    # THEN it is sent once and the failure is the caller's to resolve (createSecret's retry sweeps by name):
    # a blind retry would mint a twin whose key nobody ever sees
    assert raised.value.retryable and env.time.waits == []
    deadline = time.monotonic() + 5  # a timed-out call is recorded when the stand-in finishes answering it
    while not env.standin.calls_to("create_service_account") and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.35)  # past the injected latency: a retry, had there been one, would be recorded by now
    assert len(env.standin.calls_to("create_service_account")) == 1
    assert len(env.standin.state.live_service_accounts(env.project)) <= 1


class _RefusedOnce(requests.adapters.HTTPAdapter):
    """The first request fails as urllib3 reports a refused connection (it never left); later ones go through."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.refused:
            self.refused += 1
            reason = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: refused")
            raise requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, request.url, reason))
        return super().send(request, *args, **kwargs)


def test_a_create_that_never_connected_is_retried(env: Env) -> None:
    # GIVEN the first attempt cannot connect at all (connection refused: the request never left)
    session, adapter = requests.Session(), _RefusedOnce()
    session.mount("http://", adapter)
    transport = OpenAITransport(
        env.standin.base_url, session=session, retry=POLICY, sleep=env.time.sleep, clock=env.time
    )
    minted = OpenAIAdminClient(env.admin_key, transport).create_service_account(env.project, "svc")
    # THEN the create is retried once and exactly one account exists
    assert adapter.refused == 1 and len(env.time.waits) == 1 and minted.name == "svc"
    assert [a.name for a in env.standin.state.live_service_accounts(env.project)] == ["svc"]


def test_read_timeout_is_connection_error(env: Env) -> None:
    env.standin.faults.add(Fault("list_service_accounts", status=None, latency_seconds=0.3))
    with pytest.raises(OpenAIConnectionError, match="timed out"):
        list(env.client(NO_RETRY, timeouts=Timeouts(1.0, 0.05)).iter_service_accounts(env.project))


def test_read_timeout_is_retried(env: Env) -> None:
    env.standin.faults.add(Fault("list_service_accounts", calls={1}, status=None, latency_seconds=0.3))
    response = env.transport(timeouts=Timeouts(1.0, 0.05)).request(
        "GET", f"/organization/projects/{env.project}/service_accounts", bearer=env.admin_key, operation="list"
    )
    assert response.attempts == 2


# --- typed errors and leaks ----------------------------------------------------------------------------------------


def _raise(env: Env, case: str) -> OpenAIError:
    """Provoke one failure without retries and return the error the client raised."""
    state, faults, client = env.standin.state, env.standin.faults, env.client(NO_RETRY)
    minted = env.client().create_service_account(env.project, "victim")
    actions: Mapping[str, Any] = {
        "unknown admin key": lambda: env.client(NO_RETRY, key=UNKNOWN_ADMIN_KEY).check_admin_key(),
        "minted key as admin": lambda: env.client(NO_RETRY, key=minted.api_key).check_admin_key(),
        "missing key": lambda: client.get_project_api_key(env.project, "key_missing"),
        "rate limited": lambda: (faults.add(rate_limited("list_admin_api_keys")), client.check_admin_key()),
        "billing": lambda: (faults.add(insufficient_quota("list_admin_api_keys")), client.check_admin_key()),
        "server error": lambda: (faults.add(server_error("list_admin_api_keys")), client.check_admin_key()),
        "dropped": lambda: (faults.add(Fault("list_admin_api_keys", drop_connection=True)), client.check_admin_key()),
        "non-json 200": lambda: (
            faults.add(Fault("list_admin_api_keys", status=200, non_json=True)),
            client.check_admin_key(),
        ),
        "archived": lambda: client.create_service_account(state.add_project(archived=True), "x"),
        "forbidden": lambda: (
            faults.add(Fault("list_admin_api_keys", status=403, code=None)),
            client.check_admin_key(),
        ),
    }
    with pytest.raises(OpenAIError) as raised:
        actions[case]()
    return raised.value


ERROR_CASES = {
    "unknown admin key": InvalidKeyError,
    "minted key as admin": PermissionDeniedError,
    "missing key": NotFoundError,
    "rate limited": RateLimitedError,
    "billing": BillingLimitError,
    "server error": ServerError,
    "dropped": OpenAIConnectionError,
    "non-json 200": MalformedResponseError,
    "archived": BadRequestError,
    "forbidden": PermissionDeniedError,
}


@pytest.mark.parametrize(("case", "expected"), ERROR_CASES.items(), ids=list(ERROR_CASES))
def test_error_is_typed_per_case(env: Env, case: str, expected: type[OpenAIError]) -> None:
    assert type(_raise(env, case)) is expected


def _forbidden_texts(env: Env) -> list[str]:
    """Every secret the stand-in issued, plus every masked echo of a key it put into an error message."""
    echoes = [
        match
        for call in env.standin.calls
        if isinstance(call.body, dict) and isinstance(call.body.get("error"), dict)
        for match in re.findall(r"sk-\S*\*\S*", call.body["error"]["message"])
    ]
    unknown = [UNKNOWN_ADMIN_KEY, UNKNOWN_PROJECT_KEY]
    return [*env.standin.state.minted_values, env.admin_key, *unknown, *(echo.rstrip(".") for echo in echoes)]


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_error_text_never_shows_a_key_or_its_masked_echo(env: Env, case: str) -> None:
    # GIVEN an error provoked with real keys in play
    error = _raise(env, case)
    forbidden = _forbidden_texts(env)
    if case == "unknown admin key":
        assert any("*" in text for text in forbidden), "the stand-in echoed no masked key: the check would be vacuous"
    # THEN neither its message, repr, args nor the formatted traceback (with causes) contains any of them
    rendered = [str(error), repr(error), *map(repr, error.args), "".join(traceback.format_exception(error))]
    for text in forbidden:
        assert all(text not in shown for shown in rendered), f"{case}: leaked {text[:12]}…"


def test_results_repr_never_shows_a_key(env: Env) -> None:
    # GIVEN the objects a caller may log: the minted account, the raw create response, a listed key, a probe result
    client = env.client()
    minted = client.create_service_account(env.project, "svc")
    raw = env.transport().request(
        "POST",
        f"/organization/projects/{env.project}/service_accounts",
        bearer=env.admin_key,
        operation="create",
        json_body={"name": "raw"},
    )
    listed = next(iter(client.iter_project_api_keys(env.project)))
    redacted = [
        k["redacted_value"] for call in env.standin.calls_to("list_project_api_keys") for k in call.body["data"]
    ]
    checks = [env.probe().check(minted.api_key), env.probe().check(UNKNOWN_PROJECT_KEY)]
    # THEN no repr shows a key, OpenAI's redacted form of one, or the client's admin key
    forbidden = [*_forbidden_texts(env), *redacted]
    for shown in map(repr, (minted, raw, listed, client, *checks)):
        assert all(text not in shown for text in forbidden), shown


# --- probe -------------------------------------------------------------------------------------------------------


def test_probe_reads_rate_limit_headers_from_a_one_token_completion(env: Env) -> None:
    minted = env.client().create_service_account(env.project, "svc")
    # GET /v1/models carries none (OpenAI documents them on model responses only)
    check = env.probe().check(minted.api_key)
    assert check.status is KeyStatus.VALID and check.rate_limits is None
    limits = env.probe().rate_limits_from_completion(minted.api_key, "gpt-4o-mini")
    assert limits is not None
    assert (limits.limit_requests, limits.remaining_requests) == (5000, 4998)  # the models list counted too
    assert (limits.reset_tokens, limits.limit_tokens) == ("6m0s", 2_000_000)


def test_probe_dead_after_service_account_delete(env: Env) -> None:
    minted = env.client().create_service_account(env.project, "svc")
    env.client().delete_service_account(env.project, minted.service_account_id)
    assert env.probe().check(minted.api_key).status is KeyStatus.DEAD


def test_probe_dead_after_expiry(env: Env) -> None:
    minted = env.client().create_service_account(env.project, "svc", expires_in_seconds=60)
    assert env.probe().check(minted.api_key).status is KeyStatus.VALID
    env.clock.advance(60)
    assert env.probe().check(minted.api_key).status is KeyStatus.DEAD


def test_probe_dead_for_unknown_key(env: Env) -> None:
    assert env.probe().check("sk-proj-neverexistedneverexisted1234").status is KeyStatus.DEAD


def test_probe_restricted_for_key_with_restriction(env: Env) -> None:
    minted = env.client().create_service_account(env.project, "svc")
    env.standin.state.keys[minted.key_id].restriction = "Missing scopes: api.model.read"
    check = env.probe().check(minted.api_key)
    assert check.status is KeyStatus.RESTRICTED and "Missing scopes" in check.detail


def test_probe_restricted_for_admin_key(env: Env) -> None:
    assert env.probe().check(env.admin_key).status is KeyStatus.RESTRICTED


def test_probe_raises_on_rate_limit_instead_of_calling_key_dead(env: Env) -> None:
    minted = env.client().create_service_account(env.project, "svc")
    env.standin.faults.add(rate_limited("list_models", retry_after=None))
    with pytest.raises(RateLimitedError):
        env.probe().check(minted.api_key)


class _AlwaysTimesOut(requests.adapters.HTTPAdapter):
    """Every attempt runs into its read timeout: the fake clock moves by the whole attempt's worst case."""

    def __init__(self, time: FakeTime, timeouts: Timeouts) -> None:
        super().__init__()
        self.time, self.timeouts, self.attempts = time, timeouts, 0

    def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        self.attempts += 1
        self.time.now += self.timeouts.worst_attempt_seconds
        raise requests.ReadTimeout("read timed out")


def test_max_elapsed_bounds_the_whole_call_including_slow_attempts(env: Env) -> None:
    # GIVEN attempts that each take their full 13 s (connect 3 s + read 10 s), and a 30 s budget
    timeouts, session = Timeouts(3.0, 10.0), requests.Session()
    adapter = _AlwaysTimesOut(env.time, timeouts)
    session.mount("http://", adapter)
    policy = RetryPolicy(max_attempts=10, max_elapsed_seconds=30, backoff_initial_seconds=0.5, jitter_seconds=0)
    transport = OpenAITransport(
        env.standin.base_url, session=session, timeouts=timeouts, retry=policy, sleep=env.time.sleep, clock=env.time
    )
    started = env.time()
    # WHEN every attempt times out
    with pytest.raises(OpenAIConnectionError):
        transport.request("GET", "/models", bearer=env.admin_key, operation="list models")
    # THEN no attempt was started that could end past the budget: two attempts (13 s, wait, 13 s) and no third
    assert adapter.attempts == 2 and env.time() - started <= 30


def test_no_retry_starts_that_could_end_after_the_deadline(env: Env) -> None:
    # GIVEN a transport whose invocation ends 15 s from now, and an endpoint that keeps failing fast
    env.standin.faults.add(server_error("list_service_accounts"))
    policy = RetryPolicy(max_attempts=10, max_elapsed_seconds=600, backoff_initial_seconds=0.5, jitter_seconds=0)
    transport = OpenAITransport(
        env.standin.base_url,
        timeouts=Timeouts(3.0, 10.0),
        retry=policy,
        sleep=env.time.sleep,
        clock=env.time,
        deadline=env.time() + 15,
    )
    # WHEN the call fails THEN it stops once another attempt (up to 13 s) could outlast the invocation
    with pytest.raises(ServerError):
        list(OpenAIAdminClient(env.admin_key, transport).iter_service_accounts(env.project))
    assert len(env.standin.calls_to("list_service_accounts")) == 3 and env.time.waits == [0.5, 1.0]


def test_the_openai_deadline_is_the_invocation_end_less_a_margin() -> None:
    from keyrot.handlers.invocation import FAILURE_MARGIN_SECONDS, openai_deadline

    class LambdaContext:
        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    before = time.monotonic()
    deadline = openai_deadline(LambdaContext())
    assert deadline is not None
    assert before + 60 - FAILURE_MARGIN_SECONDS <= deadline <= time.monotonic() + 60 - FAILURE_MARGIN_SECONDS
    assert openai_deadline(None) is None  # outside Lambda: no invocation limit
