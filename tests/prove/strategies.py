"""Hypothesis strategies for what reaches keyrot from outside: events, secret payloads, tags, OpenAI responses.

Bad input is built by mutating a valid document (drop fields, add fields, retype fields, swap in huge or unicode
values), so most examples are near-misses that reach deep into the parsers rather than bouncing off the first check.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from keyrot.constants import TAG_ENVIRONMENT, TAG_KEY_NAME, TAG_PROJECT_ID
from keyrot.rotation.events import STEP_NAMES

# A value that must never appear in any error message, log or output: it plays the key.
MARKER = "sk-svcacct-FUZZMARKERq7Zp3Lx9Vb2Nk5Rt8Yw1Ec4Ua6Hs0Dj"

huge_ints = st.sampled_from([2**53 + 1, 2**63, 2**64 + 7, 10**40, 10**400, -(2**63), -(10**400)])
special_floats = st.sampled_from([math.inf, -math.inf, math.nan, 1e308, -1e-320, 0.0, -0.0, 1.5])
unicode_text = st.text(st.characters(codec="utf-8"), max_size=40)
huge_text = st.builds(
    lambda char, size: char * size, st.sampled_from(["a", "é", "😀", "\x00", "sk-"]), st.integers(5_000, 100_000)
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    huge_ints,
    st.floats(allow_nan=True, allow_infinity=True),
    special_floats,
    unicode_text,
    huge_text,
    st.just(""),
    st.just(MARKER),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(unicode_text, children, max_size=4)),
    max_leaves=12,
)


def mutated(
    valid: Mapping[str, Any], *, values: st.SearchStrategy[Any] = json_values
) -> st.SearchStrategy[dict[str, Any]]:
    """`valid` with some fields dropped, some replaced by any value, and some extra fields added."""
    fields = sorted(valid)

    @st.composite
    def build(draw: Callable[..., Any]) -> dict[str, Any]:
        document = dict(valid)
        for name in draw(st.lists(st.sampled_from(fields), unique=True, max_size=len(fields))):
            if draw(st.booleans()):
                del document[name]
            else:
                document[name] = draw(values)
        document.update(draw(st.dictionaries(unicode_text, values, max_size=3)))
        return document

    return build()


def text_of(documents: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    """A document as JSON text, sometimes truncated or not JSON at all."""
    as_json = documents.map(lambda document: json.dumps(document, allow_nan=True))
    truncated = st.tuples(as_json, st.floats(0, 1)).map(lambda pair: pair[0][: int(len(pair[0]) * pair[1])])
    not_json = st.one_of(
        unicode_text,
        huge_text,
        st.just("<html><body>502 Bad Gateway</body></html>"),
        st.just("[" * 100_000),  # deeper than the JSON decoder's recursion limit
        st.just("{" + '"a":{' * 50_000 + "}" * 50_001),
    )
    return st.one_of(as_json, as_json, truncated, not_json)


# --- secret payloads ------------------------------------------------------------------------------------------


def timestamps() -> st.SearchStrategy[str]:
    """ISO 8601 timestamps, including the edges of the representable range and every kind of offset."""
    moments = st.datetimes(timezones=st.one_of(st.none(), st.timezones(), st.just(UTC)))
    return st.one_of(
        moments.map(lambda moment: moment.isoformat()),
        moments.map(lambda moment: moment.isoformat().replace("+00:00", "Z")),
        st.sampled_from(["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2026-13-01T00:00:00Z", "now"]),
    )


def valid_key_payload(
    environment: str = "dev", key_name: str = "chat-backend", project_id: str = "proj_abc"
) -> dict[str, Any]:
    return {
        "api_key": MARKER,
        "key_id": "key_abc123",
        "service_account_id": "svc_acct_abc123",
        "project_id": project_id,
        "environment": environment,
        "key_name": key_name,
        "created_at": "2026-01-02T03:04:05Z",
        "expires_at": None,
    }


def key_payloads(**identity: str) -> st.SearchStrategy[dict[str, Any]]:
    """Managed-key documents: valid ones with new timestamps, and mutations that may carry the key anywhere."""
    values = st.one_of(json_values, timestamps(), st.just(MARKER))
    valid = valid_key_payload(**identity)
    return st.one_of(
        timestamps().map(lambda moment: {**valid, "created_at": moment}),
        mutated(valid, values=values),
    )


def admin_payloads() -> st.SearchStrategy[dict[str, Any]]:
    return mutated({"admin_key": MARKER, "key_id": "key_admin1"})


# --- tags -----------------------------------------------------------------------------------------------------

tag_values = st.one_of(
    st.sampled_from(["dev", "prod", "chat-backend", "proj_abc", "", " ", "Dev", "-x", "a" * 33, "a" * 65]),
    st.from_regex(r"[a-z][a-z0-9-]{0,40}", fullmatch=True),
    unicode_text,
    huge_text,
    st.just(MARKER),
)


@st.composite
def tag_lists(draw: Callable[..., Any]) -> list[dict[str, str]]:
    """DescribeSecret's Tags: the keyrot tags (some missing, some with odd values), others, duplicates."""
    tags: list[dict[str, str]] = []
    for name, default in ((TAG_ENVIRONMENT, "dev"), (TAG_KEY_NAME, "chat-backend"), (TAG_PROJECT_ID, "proj_abc")):
        choice = draw(st.sampled_from(["keep", "keep", "drop", "change", "no-value", "twice"]))
        if choice == "keep":
            tags.append({"Key": name, "Value": default})
        elif choice == "change":
            tags.append({"Key": name, "Value": draw(tag_values)})
        elif choice == "no-value":
            tags.append({"Key": name})  # type: ignore[typeddict-item]
        elif choice == "twice":
            tags += [{"Key": name, "Value": draw(tag_values)}, {"Key": name, "Value": default}]
    tags += draw(st.lists(st.builds(lambda k, v: {"Key": k, "Value": v}, unicode_text, tag_values), max_size=3))
    return draw(st.permutations(tags))


# --- rotation events ------------------------------------------------------------------------------------------

tokens = st.one_of(
    st.uuids().map(str),
    st.from_regex(r"[A-Za-z0-9\-]{32,64}", fullmatch=True),
    st.text(max_size=80),
    st.just("t" * 31),
    st.just("t" * 65),
)


def rotation_events() -> st.SearchStrategy[Any]:
    valid = {
        "Step": "createSecret",
        "SecretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrot/dev/chat-backend-AbCdEf",
        "ClientRequestToken": str(uuid.UUID(int=1)),
        "RotationToken": str(uuid.UUID(int=2)),
    }
    fields = st.one_of(json_values, st.sampled_from(STEP_NAMES), tokens, st.just("create_secret"))
    return st.one_of(
        json_values,  # not an object at all, mostly
        st.sampled_from(STEP_NAMES).map(lambda step: {**valid, "Step": step}),
        mutated(valid, values=fields),
    )


# --- OpenAI responses -----------------------------------------------------------------------------------------

SERVICE_ACCOUNT = {
    "object": "organization.project.service_account",
    "id": "svc_acct_abc",
    "name": "keyrot:dev:chat-backend:token",
    "role": "member",
    "created_at": 1_700_000_000,
}
API_KEY_BODY = {
    "object": "organization.project.service_account.api_key",
    "value": MARKER,
    "name": "Secret Key",
    "created_at": 1_700_000_000,
    "id": "key_abc",
    "expires_at": None,
}
PROJECT_API_KEY = {
    "object": "organization.project.api_key",
    "redacted_value": "sk-svc...abc",
    "name": "Secret Key",
    "created_at": 1_700_000_000,
    "last_used_at": None,
    "id": "key_abc",
    "owner_project_access": "active",
    "owner": {"type": "service_account", "service_account": {**SERVICE_ACCOUNT}},
}


def created_service_accounts() -> st.SearchStrategy[Any]:
    """POST .../service_accounts answers: the account with its one key, mutated at both levels."""
    return st.one_of(
        json_values,
        mutated(SERVICE_ACCOUNT).map(lambda account: {**account, "api_key": API_KEY_BODY}),
        mutated(API_KEY_BODY).map(lambda key: {**SERVICE_ACCOUNT, "api_key": key}),
        mutated({**SERVICE_ACCOUNT, "api_key": API_KEY_BODY}),
    )


def project_api_keys() -> st.SearchStrategy[Any]:
    owner = {"type": "service_account", "service_account": SERVICE_ACCOUNT}
    return st.one_of(
        json_values,
        mutated(PROJECT_API_KEY),
        mutated(owner).map(lambda changed: {**PROJECT_API_KEY, "owner": changed}),
        mutated(SERVICE_ACCOUNT).map(
            lambda account: {**PROJECT_API_KEY, "owner": {"type": "service_account", "service_account": account}}
        ),
    )


def list_envelopes(items: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    valid = {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
    return st.one_of(
        json_values,
        st.builds(
            lambda data, more, last: {**valid, "data": data, "has_more": more, "last_id": last},
            st.lists(items, max_size=3),
            st.booleans(),
            st.one_of(st.none(), st.sampled_from(["svc_acct_1", "svc_acct_2", "key_1"]), json_values),
        ),
        mutated(valid),
    )


def error_bodies() -> st.SearchStrategy[bytes]:
    """What a failed call may carry: OpenAI's error object (mutated), other JSON, HTML, truncated or invalid UTF-8."""
    error = {
        "message": f"Incorrect API key provided: {MARKER}.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    documents = st.one_of(
        json_values,
        mutated(error).map(lambda changed: {"error": changed}),
        st.builds(lambda message: {"error": {**error, "message": message}}, st.one_of(unicode_text, huge_text)),
    )
    return st.one_of(
        text_of(documents).map(lambda text: text.encode("utf-8", "surrogatepass")),
        st.binary(max_size=200),
        st.just(b"\xff\xfe\x00garbage"),
    )


def retry_after_headers() -> st.SearchStrategy[dict[str, str]]:
    values = st.one_of(
        st.sampled_from(["1", "0", "-5", "1.5", "nan", "inf", "1e400", "", " ", "Wed, 21 Oct 2015 07:28:00 GMT"]),
        st.sampled_from(
            ["Mon, 01 Jan 99999 00:00:00 GMT", "Tue, 31 Feb 2026 25:61:00 GMT", "Fri, 1 Jan 0001 0:0:0 +2359"]
        ),
        st.integers().map(str),
        unicode_text.filter(lambda text: text.isprintable() and text.isascii()),
    )
    return st.dictionaries(st.sampled_from(["retry-after", "retry-after-ms", "x-request-id"]), values, max_size=3)


# --- usage and costs ------------------------------------------------------------------------------------------

counts = st.one_of(st.integers(0, 10_000), st.integers(), huge_ints, json_values)


def usage_results(kind_fields: list[str], key_ids: list[str | None]) -> st.SearchStrategy[dict[str, Any]]:
    valid_result = st.builds(
        lambda key_id, values: {"object": "organization.usage.result", "api_key_id": key_id, **values},
        st.sampled_from(key_ids),
        st.fixed_dictionaries({name: st.integers(0, 10_000) for name in kind_fields}),
    )
    return st.one_of(valid_result, valid_result, valid_result.flatmap(lambda result: mutated(result, values=counts)))


def now_utc() -> datetime:
    return datetime.now(UTC)
