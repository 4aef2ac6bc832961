"""The secret contract: parsing, serialising and tag reading never leak the value and name what is wrong."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyrot.errors import AdminKeyError, SecretContractError
from keyrot.secret_model import AdminCredentials, ManagedKey, Promotion, SecretIdentity

SECRET_VALUE = "sk-svcacct-unit-" + "x" * 40


def _payload(**changes: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "api_key": SECRET_VALUE,
        "key_id": "key_abc",
        "service_account_id": "svc_acct_abc",
        "project_id": "proj_abc",
        "environment": "dev",
        "key_name": "chat-backend",
        "created_at": "2026-11-26T10:00:00Z",
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


def test_managed_key_round_trips_through_json() -> None:
    key = ManagedKey.from_json(json.dumps(_payload(expires_at="2026-12-26T10:00:00+00:00")))
    again = ManagedKey.from_json(key.to_json())
    assert again == key
    assert again.created_at == datetime(2026, 11, 26, 10, tzinfo=UTC)
    assert json.loads(key.to_json())["created_at"] == "2026-11-26T10:00:00Z"


def test_managed_key_repr_hides_the_api_key() -> None:
    key = ManagedKey.from_json(json.dumps(_payload()))
    assert SECRET_VALUE not in repr(key)
    assert "key_abc" in repr(key)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "is empty"),
        ("   ", "is empty"),
        ('{"api_key": "' + SECRET_VALUE, "is not valid JSON"),
        ("[1, 2]", "must be a JSON object, not list"),
        (json.dumps(_payload(key_id=None)), "missing field(s): key_id"),
        (json.dumps(_payload(service_account_id=None, project_id=None)), "service_account_id, project_id"),
        (json.dumps(_payload(api_key=7)), "must be non-empty strings: api_key"),
        (json.dumps(_payload(key_id="key with spaces")), "key_id is not a valid OpenAI id"),
        (json.dumps(_payload(created_at="yesterday")), "created_at is not an ISO 8601 timestamp"),
        (json.dumps(_payload(created_at="2026-11-26T10:00:00")), "created_at must carry a UTC offset"),
        (json.dumps(_payload(expires_at=5)), "expires_at must be an ISO 8601 string or null"),
        (json.dumps(_payload(environment="Prod!")), "keyrot:environment has an invalid value"),
    ],
)
def test_managed_key_rejects_malformed_values_without_quoting_them(text: str | None, message: str) -> None:
    with pytest.raises(SecretContractError) as caught:
        ManagedKey.from_json(text)
    assert message in str(caught.value)
    assert SECRET_VALUE not in str(caught.value)
    assert caught.value.__cause__ is None  # the JSON decoder's message would quote the document


def test_identity_from_tags_names_every_missing_tag() -> None:
    with pytest.raises(SecretContractError, match="keyrot:key-name, keyrot:openai-project-id"):
        SecretIdentity.from_tags([{"Key": "keyrot:environment", "Value": "dev"}])


def test_identity_from_tags_rejects_an_invalid_key_name() -> None:
    tags = [
        {"Key": "keyrot:environment", "Value": "dev"},
        {"Key": "keyrot:key-name", "Value": "Chat Backend"},
        {"Key": "keyrot:openai-project-id", "Value": "proj_1"},
    ]
    with pytest.raises(SecretContractError, match="tag keyrot:key-name has an invalid value 'Chat Backend'"):
        SecretIdentity.from_tags(tags)


def test_check_identity_reports_the_mismatching_field() -> None:
    key = ManagedKey.from_json(json.dumps(_payload()))
    with pytest.raises(SecretContractError, match="project_id is 'proj_abc' but the secret's tags say 'proj_other'"):
        key.check_identity(SecretIdentity("dev", "chat-backend", "proj_other"))


def test_admin_credentials_parse_and_hide_the_key() -> None:
    credentials = AdminCredentials.from_json(json.dumps({"admin_key": " sk-admin-abc ", "key_id": "key_1"}))
    assert credentials.admin_key == "sk-admin-abc"
    assert "sk-admin-abc" not in repr(credentials)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "admin-key secret value is empty"),
        ("sk-admin-plain-text-key", "admin-key secret value is not valid JSON"),
        ('{"key_id": "key_1"}', "no non-empty string field admin_key"),
        ('{"admin_key": "sk-admin-x", "key_id": 3}', "key_id must be an OpenAI key id or absent"),
    ],
)
def test_admin_credentials_reject_malformed_values(text: str, message: str) -> None:
    with pytest.raises(AdminKeyError, match=message) as caught:
        AdminCredentials.from_json(text)
    assert "sk-admin-plain-text-key" not in str(caught.value)


def test_an_empty_describe_answer_is_a_typed_aws_error() -> None:
    # botocore reads a 200 whose body is not JSON (a proxy's HTML page) as an empty answer
    from keyrot.aws.secrets import SecretStore
    from keyrot.errors import AwsCallError

    class EmptyAnswers:
        def describe_secret(self, **_: object) -> dict[str, object]:
            return {"ResponseMetadata": {"HTTPStatusCode": 200}}

    with pytest.raises(AwsCallError) as caught:
        SecretStore(EmptyAnswers()).describe("keyrot/dev/chat-backend")
    assert (caught.value.operation, caught.value.code) == ("DescribeSecret", "MalformedResponse")


# --- keyrot:promoted ------------------------------------------------------------------------------------------------

TOKEN = "0b9e7d3c-1f4a-4c55-9a51-3c8d2e6f7a10"


def test_a_promotion_round_trips_through_its_tag() -> None:
    moment = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)
    tag = Promotion(TOKEN, moment).to_tag()
    assert tag == {"Key": "keyrot:promoted", "Value": f"{TOKEN}@{int(moment.timestamp())}"}
    assert Promotion.from_tags([{"Key": "other", "Value": "x"}, tag]) == Promotion(TOKEN, moment)


@pytest.mark.parametrize(
    "value",
    ["", "@1800000000", f"{TOKEN}", f"{TOKEN}@", f"{TOKEN}@-5", f"{TOKEN}@1e9", "short@1800000000", f"{TOKEN}@9" * 2],
)
def test_a_malformed_promotion_tag_reads_as_no_promotion(value: str) -> None:
    # GIVEN a keyrot:promoted tag someone garbled WHEN read THEN there is no promotion (the older, safer reading)
    assert Promotion.from_tags([{"Key": "keyrot:promoted", "Value": value}]) is None


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=120))
def test_any_promotion_tag_reads_as_a_promotion_of_a_version_or_as_none(value: str) -> None:
    promotion = Promotion.from_tags([{"Key": "keyrot:promoted", "Value": value}])
    assert promotion is None or (value == f"{promotion.version_id}@{int(promotion.at.timestamp())}")
