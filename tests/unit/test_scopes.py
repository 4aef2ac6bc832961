"""Scopes, pure: which names may be declared, which request validates a scope set, how the secret value and the
rotation function's setting carry them, and that a bad declaration is refused with a message saying what to do."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyrot.errors import ConfigurationError, SecretContractError
from keyrot.scopes import (
    DOCUMENTED_SCOPES,
    MODEL_READ_SCOPE,
    ScopesError,
    missing_scopes,
    parse_scopes,
    validation_plan,
)
from keyrot.secret_model import ManagedKey
from keyrot.settings import RotationSettings

SECRET_VALUE = "sk-svcacct-unit-" + "x" * 40
ADMIN_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrot/dev/openai-admin-key-AbCdEf"
CHAT_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrot/dev/chat-backend-AbCdEf"

scope_sets = st.lists(st.sampled_from(sorted(DOCUMENTED_SCOPES)), min_size=1, unique=True).map(tuple)
# Names shaped like scopes that keyrot does not document (OpenAI's spec lists none; guessing is what this refuses).
unknown_scopes = st.from_regex(r"\A[a-z]{1,8}(\.[a-z_]{1,8}){1,3}\Z").filter(lambda s: s not in DOCUMENTED_SCOPES)


def _value(**changes: object) -> str:
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
    return json.dumps(payload)


def _settings(scopes: str) -> RotationSettings:
    return RotationSettings.from_env(
        {
            "KEYROT_ENVIRONMENT": "dev",
            "KEYROT_ADMIN_SECRET_ARN": ADMIN_ARN,
            "KEYROT_MANAGED_SECRETS": json.dumps({"chat-backend": CHAT_ARN}),
            "KEYROT_KEY_SCOPES": scopes,
        }
    )


# --- the documented list -----------------------------------------------------------------------------------------


def test_every_documented_scope_names_its_source() -> None:
    # GIVEN the list keyrot accepts THEN each name says where OpenAI documents or shows it
    assert all(source.strip() for source in DOCUMENTED_SCOPES.values())
    assert MODEL_READ_SCOPE in DOCUMENTED_SCOPES


@given(scopes=scope_sets)
def test_any_set_of_documented_scopes_is_accepted_as_declared(scopes: tuple[str, ...]) -> None:
    # WHEN a declaration lists documented scopes, each once THEN it reads back in the declared order
    assert parse_scopes(list(scopes)) == scopes


@given(known=scope_sets, unknown=unknown_scopes, at=st.integers(min_value=0, max_value=8))
def test_a_scope_openai_does_not_document_is_refused_naming_it_and_how_to_proceed(
    known: tuple[str, ...], unknown: str, at: int
) -> None:
    # GIVEN a declaration with one name keyrot does not document, anywhere in the list
    declared = list(known)
    declared.insert(min(at, len(declared)), unknown)
    # WHEN it is read THEN it is refused naming its position and the name, and saying what to do about it
    with pytest.raises(ScopesError) as caught:
        parse_scopes(declared)
    message = caught.value.at("scopes")
    assert f"scopes[{declared.index(unknown)}]: {unknown!r} is not a scope OpenAI documents" in message
    assert "keyrot/scopes.py" in message and "omit `scopes` for an unrestricted key" in message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "scopes: is empty"),
        ("api.model.read", "scopes: must be a list of scope names"),
        ({"api.model.read": True}, "scopes: must be a list of scope names"),
        (["api.model.read", 7], "scopes[1]: must be a scope name"),
        (["model.request", "model.request"], "scopes[1]: lists 'model.request' a second time"),
    ],
)
def test_a_malformed_scope_list_is_refused_with_what_is_wrong(value: object, message: str) -> None:
    with pytest.raises(ScopesError) as caught:
        parse_scopes(value)
    assert message in caught.value.at("scopes")


def test_a_key_pasted_as_a_scope_is_not_echoed() -> None:
    # GIVEN an API key pasted where a scope belongs WHEN refused THEN the message does not carry it
    with pytest.raises(ScopesError) as caught:
        parse_scopes([SECRET_VALUE])
    assert SECRET_VALUE not in str(caught.value) and SECRET_VALUE[:20] not in str(caught.value)


# --- which request validates a scope set ------------------------------------------------------------------------


@given(scopes=scope_sets)
def test_a_scope_set_with_model_read_is_validated_by_a_success_on_the_request_it_allows(
    scopes: tuple[str, ...],
) -> None:
    # GIVEN any scope set that includes api.model.read WHEN its plan is chosen THEN GET /v1/models must succeed
    plan = validation_plan((*scopes, MODEL_READ_SCOPE) if MODEL_READ_SCOPE not in scopes else scopes)
    assert (plan.method, plan.path, plan.allowed) == ("GET", "/models", True)
    assert plan.request == "GET /v1/models"


@given(scopes=scope_sets.filter(lambda s: MODEL_READ_SCOPE not in s))
def test_a_scope_set_without_a_token_free_request_is_validated_by_authentication(scopes: tuple[str, ...]) -> None:
    # GIVEN a scope set that allows no token-free request WHEN its plan is chosen
    plan = validation_plan(scopes)
    # THEN GET /v1/models is sent, and a missing-scope refusal on it counts as proof (not a dead key)
    assert (plan.method, plan.path, plan.allowed) == ("GET", "/models", False)


def test_an_unrestricted_key_keeps_the_long_standing_validation() -> None:
    plan = validation_plan(None)
    assert (plan.request, plan.allowed) == ("GET /v1/models", False)


@pytest.mark.parametrize(
    ("message", "scopes"),
    [
        (
            "You have insufficient permissions for this operation. Missing scopes: api.model.read. Check that you "
            "have the correct role in your organization (Reader, Writer, Owner)",
            ("api.model.read",),
        ),
        ("Missing scopes: api.responses.read, api.responses.write", ("api.responses.read", "api.responses.write")),
        ("Incorrect API key provided: sk-abc***xyz.", ()),
    ],
)
def test_the_scopes_an_openai_refusal_names_are_read_from_its_message(message: str, scopes: tuple[str, ...]) -> None:
    assert missing_scopes(message) == scopes


# --- the secret value -------------------------------------------------------------------------------------------


@given(scopes=scope_sets)
def test_a_scoped_key_s_value_records_its_scopes_and_reads_back(scopes: tuple[str, ...]) -> None:
    key = ManagedKey.from_json(_value(scopes=list(scopes)))
    assert key.scopes == scopes
    assert ManagedKey.from_json(key.to_json()) == key


def test_a_value_written_before_scopes_reads_as_unrestricted_and_is_written_back_unchanged() -> None:
    # GIVEN a value as keyrot wrote it before scopes existed
    text = _value(expires_at=None)
    key = ManagedKey.from_json(text)
    # THEN it is an unrestricted key, and serialising it adds no field
    assert key.scopes is None
    assert json.loads(key.to_json()) == json.loads(text)


@pytest.mark.parametrize("scopes", [[], "api.model.read", [7], ["Not A Scope"], [SECRET_VALUE], ["a.b"] * 65])
def test_a_malformed_scopes_field_is_refused_without_quoting_the_value(scopes: object) -> None:
    with pytest.raises(SecretContractError, match="field scopes must be a non-empty list of scope names") as caught:
        ManagedKey.from_json(_value(scopes=scopes))
    assert SECRET_VALUE[:16] not in str(caught.value)


# --- the rotation function's setting ----------------------------------------------------------------------------


def test_the_rotation_function_reads_each_key_s_scopes() -> None:
    settings = _settings(json.dumps({"chat-backend": ["model.request", "api.model.read"]}))
    assert settings.scopes_for("chat-backend") == ("model.request", "api.model.read")
    assert settings.scopes_for("batch-embeddings") is None


def test_a_deployment_without_the_setting_mints_unrestricted_keys() -> None:
    settings = RotationSettings.from_env({"KEYROT_ENVIRONMENT": "dev", "KEYROT_ADMIN_SECRET_ARN": ADMIN_ARN})
    assert settings.key_scopes is None and settings.scopes_for("chat-backend") is None


@given(unknown=unknown_scopes)
def test_the_rotation_function_refuses_an_undocumented_scope_naming_the_variable_and_key(unknown: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _settings(json.dumps({"chat-backend": ["model.request", unknown]}))
    message = str(caught.value)
    assert "KEYROT_KEY_SCOPES entry 'chat-backend': scopes[1]:" in message
    assert "is not a scope OpenAI documents" in message


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not json", "must be a JSON object"),
        ('["model.request"]', "must be a JSON object"),
        ('{"Chat": ["model.request"]}', "invalid key name"),
        ('{"batch-embeddings": ["model.request"]}', "not in KEYROT_MANAGED_SECRETS"),
        ('{"chat-backend": []}', "scopes: is empty"),
        ("{" + '"chat-backend": ["model.request"],' * 200 + "}", "longer than"),
    ],
)
def test_a_malformed_scopes_setting_is_refused_naming_the_variable(raw: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match="KEYROT_KEY_SCOPES") as caught:
        _settings(raw)
    assert message in str(caught.value)
