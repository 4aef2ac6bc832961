"""error_from_response and Retry-After parsing: every OpenAI error shape maps to one typed, scrubbed error."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from keyrot.openai_admin import (
    BadRequestError,
    BillingLimitError,
    InvalidKeyError,
    NotFoundError,
    OpenAIError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
)
from keyrot.openai_admin.errors import BILLING_ERROR_CODES
from keyrot.openai_admin.transport import _retry_after, error_from_response

ADMIN_KEY = "sk-admin-Zq8wXv3Lm0Pn5Rt7Yu2Io4As6Df9Gh1Jk3Lz5Xc7Vb9Nm"
OTHER_KEY = "sk-svcacct-Hy6Tg5Rf4Ed3Ws2Qa1Zx0Cv9Bn8Mk7Lj6Hg5Fd4Sa3"


def _response(status: int, body: Any = None, *, raw: bytes | None = None, **headers: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = raw if raw is not None else json.dumps(body).encode()
    response.encoding = "utf-8"
    response.headers.update({name.replace("_", "-"): value for name, value in headers.items()})
    return response


def _body(code: str | None = None, error_type: str = "invalid_request_error", message: str = "boom") -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


def _map(response: requests.Response, secrets: tuple[str, ...] = (ADMIN_KEY,)) -> OpenAIError:
    return error_from_response(response, operation="test op", secrets=secrets)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, _body("invalid_api_key"), InvalidKeyError),
        (401, _body(None, message="Missing scopes: api.model.read"), PermissionDeniedError),
        (401, _body("invalid_organization"), PermissionDeniedError),
        (403, _body("unsupported_country_region_territory"), PermissionDeniedError),
        (404, _body("model_not_found"), NotFoundError),
        (400, _body(None), BadRequestError),
        (409, _body(None), BadRequestError),
        (422, _body(None), BadRequestError),
        (429, _body("rate_limit_exceeded", "requests"), RateLimitedError),
        (500, _body(None, "server_error"), ServerError),
        (503, _body(None, "server_error", "Slow Down"), ServerError),
    ],
)
def test_error_from_response_maps_status_and_code(status: int, body: dict[str, Any], expected: type) -> None:
    error = _map(_response(status, body, x_request_id="req_123"))
    assert type(error) is expected
    assert (error.status, error.code, error.request_id) == (status, body["error"]["code"], "req_123")


@pytest.mark.parametrize("code", sorted(BILLING_ERROR_CODES))
def test_error_from_response_billing_429_is_never_retryable(code: str) -> None:
    error = _map(_response(429, _body(code, "insufficient_quota"), retry_after="1"))
    assert type(error) is BillingLimitError and not error.retryable


def test_error_from_response_billing_type_without_code_is_billing() -> None:
    # OpenAI's quota errors carry type insufficient_quota; a body that drops the code must not turn into a retry loop
    error = _map(_response(429, _body(None, "insufficient_quota", "You exceeded your current quota")))
    assert type(error) is BillingLimitError and not error.retryable


def test_error_from_response_rate_limit_carries_retry_after() -> None:
    error = _map(_response(429, _body("rate_limit_exceeded"), retry_after="7"))
    assert error.retryable and error.retry_after == 7.0


@pytest.mark.parametrize("status", [500, 502, 504])
def test_error_from_response_non_json_5xx_is_retryable_server_error(status: int) -> None:
    error = _map(_response(status, raw=b"<html>502 Bad Gateway</html>"))
    assert type(error) is ServerError and error.retryable and error.code is None


def test_error_from_response_non_json_4xx_is_not_retried() -> None:
    # A proxy's HTML 400 is still a refusal of the request: retrying it cannot help
    error = _map(_response(400, raw=b"<html>bad</html>"))
    assert type(error) is BadRequestError and not error.retryable


@pytest.mark.parametrize(
    "body", [[], "text", None, 42, {"error": "flat string"}, {"error": {"message": 5, "code": 7, "type": []}}]
)
def test_error_from_response_tolerates_odd_json(body: Any) -> None:
    error = _map(_response(400, body))
    assert isinstance(error, OpenAIError) and error.code is None and error.error_type is None


@pytest.mark.parametrize(
    "echo",
    [
        "sk-adm********************************************Vb9Nm",
        "sk-...****Vb9Nm",
        "sk-admin-Zq8***Nm",
        "sk-********Vb9Nm",
        "sk-proj-Zq8…Vb9Nm",
    ],
)
def test_error_from_response_scrubs_masked_echo_of_key(echo: str) -> None:
    message = f"Incorrect API key provided: {echo}. You can find your API key at https://platform.openai.com."
    error = _map(_response(401, _body("invalid_api_key", message=message)))
    for text in (str(error), repr(error), *map(str, error.args)):
        assert echo not in text and "Vb9Nm" not in text
    assert "Incorrect API key provided" in str(error)


def test_error_from_response_scrubs_full_key_anywhere_in_message() -> None:
    message = f"key {ADMIN_KEY} and {OTHER_KEY} rejected"
    error = _map(_response(400, _body(message=message)))
    assert ADMIN_KEY not in str(error) and OTHER_KEY not in str(error) and "Vb9Nm" not in repr(error)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_error_dicts = st.fixed_dictionaries(
    {},
    optional={
        "message": st.text(max_size=400) | st.integers(),
        "type": st.sampled_from(["invalid_request_error", "server_error", "requests", "insufficient_quota"]) | _json,
        "code": st.sampled_from([None, "invalid_api_key", "rate_limit_exceeded", *BILLING_ERROR_CODES]) | _json,
        "param": _json,
    },
)


@given(
    status=st.integers(min_value=400, max_value=599),
    body=st.one_of(_json, st.builds(lambda e: {"error": e}, _error_dicts)),
    retry_after=st.none() | st.sampled_from(["1", "0.5", "-3", "soon", "", "Wed, 21 Oct 2015 07:28:00 GMT", "inf"]),
)
def test_error_from_response_never_raises_and_types_every_body(status: int, body: Any, retry_after: str | None) -> None:
    headers = {"retry_after": retry_after} if retry_after is not None else {}
    error = _map(_response(status, body, **headers))
    assert isinstance(error, OpenAIError) and error.status == status
    assert error.retryable == (isinstance(error, (RateLimitedError, ServerError)))
    assert error.retry_after is None or error.retry_after >= 0
    if status == 429 and isinstance(body, dict) and isinstance(body.get("error"), dict):
        code, error_type = body["error"].get("code"), body["error"].get("type")
        assert isinstance(error, BillingLimitError) == (
            (isinstance(code, str) and code in BILLING_ERROR_CODES)
            or (isinstance(error_type, str) and error_type in BILLING_ERROR_CODES)
        )


@given(
    secret=st.text(
        st.sampled_from("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"), min_size=24, max_size=60
    ),
    before=st.integers(min_value=0, max_value=340),
)
def test_error_from_response_never_leaks_a_slice_of_an_opaque_secret(secret: str, before: int) -> None:
    # GIVEN a secret of no known key shape, placed anywhere in a long message (even across the truncation point)
    message = "x" * before + secret + " trailing text"
    error = _map(_response(400, _body(message=message)), secrets=(secret,))
    # THEN no 10-character slice of it past the short prefix redaction shows survives
    tail = secret[8:]
    assert all(tail[i : i + 10] not in str(error) for i in range(len(tail) - 9))


def test_error_from_response_keeps_the_param_openai_names() -> None:
    # GIVEN a refusal naming the field at fault (a rate limit above the organization's)
    body = {
        "error": {
            "message": "too high",
            "type": "invalid_request_error",
            "param": "max_tokens_per_1_minute",
            "code": None,
        }
    }
    # THEN the typed error carries it, for a message that names the setting
    assert _map(_response(400, body)).param == "max_tokens_per_1_minute"


@pytest.mark.parametrize("param", [None, 7, ["a"], {"x": 1}])
def test_error_from_response_param_is_none_unless_a_string(param: Any) -> None:
    body = {"error": {"message": "m", "type": "invalid_request_error", "param": param, "code": None}}
    assert _map(_response(400, body)).param is None


def test_error_from_response_scrubs_a_key_put_in_param() -> None:
    body = {"error": {"message": "m", "type": "invalid_request_error", "param": f"value {ADMIN_KEY}", "code": None}}
    error = _map(_response(400, body))
    assert error.param is not None and ADMIN_KEY not in error.param and "sk-admin-Zq8w" not in error.param


def test_retry_after_prefers_milliseconds() -> None:
    assert _retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after-ms": "x", "retry-after": "2"}, 2.0),
        ({}, None),
    ],
)
def test_retry_after_parses_seconds(headers: dict[str, str], expected: float | None) -> None:
    assert _retry_after(headers) == expected


def test_retry_after_parses_http_date() -> None:
    moment = datetime.now(UTC) + timedelta(seconds=30)
    seconds = _retry_after({"retry-after": format_datetime(moment, usegmt=True)})
    assert seconds is not None and 25 <= seconds <= 31


def test_retry_after_http_date_in_the_past_is_zero() -> None:
    assert _retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
