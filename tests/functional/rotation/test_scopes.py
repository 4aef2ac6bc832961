"""Least-privilege keys, end to end against the stand-in: each rotation mints a key with exactly the declared scopes,
testSecret judges it with a request those scopes allow, and a lost answer never leaves a twin or an orphan."""

from __future__ import annotations

import json

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyrot.errors import ConfigurationError, KeyValidationError
from keyrot.openai_admin import MalformedResponseError, OpenAIConnectionError, ServerError
from keyrot.scopes import DOCUMENTED_SCOPES
from lab.openai_standin import Fault
from lab.scenario import RotationWorld

KEY = "chat-backend"
CHAT_ONLY = ("model.request",)
READ_AND_CHAT = ("api.model.read", "model.request")


def _scoped(world: RotationWorld, scopes: tuple[str, ...] | None) -> tuple[RotationWorld, str]:
    """A world whose rotation function declares `scopes` for KEY, and KEY's secret (declared, no value yet)."""
    arn = world.create_managed_secret(KEY)
    return world.with_settings(key_scopes={KEY: scopes} if scopes is not None else None), arn


def _models(world: RotationWorld, api_key: str) -> requests.Response:
    return requests.get(f"{world.openai.base_url}/models", headers={"Authorization": f"Bearer {api_key}"}, timeout=5)


def _chat(world: RotationWorld, api_key: str) -> requests.Response:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    headers = {"Authorization": f"Bearer {api_key}"}
    return requests.post(f"{world.openai.base_url}/chat/completions", json=body, headers=headers, timeout=5)


def _live_attempt_keys(world: RotationWorld, token: str) -> list[str]:
    """Ids of the live keys minted for rotation `token` of KEY."""
    state, name = world.openai.state, f"keyrot:{world.environment}:{KEY}:{token}"
    with state.lock:
        ids = [key.id for key in state.keys.values() if key.owner_name == name]
    return [key_id for key_id in ids if state.key_is_live(key_id)]


def test_a_key_is_minted_with_exactly_the_declared_scopes_on_an_account_named_for_the_rotation(
    world: RotationWorld,
) -> None:
    # GIVEN a key declared with two scopes
    world, arn = _scoped(world, READ_AND_CHAT)
    # WHEN it rotates
    run = world.driver().rotate(arn)
    # THEN OpenAI holds the key with exactly those scopes, on the one account named for the rotation's version
    assert run.succeeded, run.failures
    current = world.current(arn)
    minted = world.openai.state.keys[current.key_id]
    assert minted.scopes == frozenset(READ_AND_CHAT)
    assert minted.owner_name == f"keyrot:{world.environment}:{KEY}:{run.token}"
    assert _live_attempt_keys(world, run.token) == [current.key_id]
    # AND the secret value records the scopes it was minted with
    assert current.scopes == READ_AND_CHAT


def test_a_key_without_model_read_scope_is_promoted_on_openai_s_missing_scope_refusal(world: RotationWorld) -> None:
    # GIVEN a key declared for chat only: GET /v1/models is outside its scopes
    world, arn = _scoped(world, CHAT_ONLY)
    # WHEN it rotates
    run = world.driver().rotate(arn)
    # THEN it was promoted, although /v1/models refuses it (the scoped 401 proves it authenticates)
    assert run.succeeded, run.failures
    current = world.current(arn)
    refusal = _models(world, current.api_key)
    assert refusal.status_code == 401 and refusal.json()["error"]["code"] is None
    assert "Missing scopes: api.model.read" in refusal.json()["error"]["message"]
    # AND the promoted key does what it was minted for
    assert _chat(world, current.api_key).status_code == 200


def test_a_scoped_key_that_does_not_authenticate_is_never_promoted(world: RotationWorld) -> None:
    # GIVEN a chat-only key whose pending key, still listed as keyrot's, OpenAI does not accept (revoked at OpenAI)
    world, arn = _scoped(world, CHAT_ONLY)
    assert world.driver().rotate(arn).succeeded
    before = world.current(arn).key_id
    driver = world.driver()
    token = driver.start(arn)
    driver.step(arn, token, "createSecret")
    pending = world.pending(arn)
    assert pending is not None
    world.openai.state.keys[pending.key_id].revoked_at = world.openai.state.clock()
    # WHEN testSecret runs THEN it refuses the key as dead, and AWSCURRENT is unchanged
    with pytest.raises(KeyValidationError, match="invalid_api_key"):
        world.driver().step(arn, token, "testSecret")
    assert world.current(arn).key_id == before


def test_a_key_refused_a_request_its_scopes_allow_is_not_promoted(world: RotationWorld) -> None:
    # GIVEN a key declared with api.model.read whose pending key OpenAI minted without it
    world, arn = _scoped(world, ("api.model.read",))
    assert world.driver().rotate(arn).succeeded
    before = world.current(arn).key_id
    driver = world.driver()
    token = driver.start(arn)
    driver.step(arn, token, "createSecret")
    pending = world.pending(arn)
    assert pending is not None
    world.openai.state.keys[pending.key_id].scopes = frozenset({"model.request"})
    probes = len(world.openai.calls_to("list_models"))
    # WHEN testSecret runs
    with pytest.raises(KeyValidationError, match="lacks a scope it was minted with") as caught:
        world.driver().step(arn, token, "testSecret")
    # THEN it tried every configured attempt, refused the key naming the request, and AWSCURRENT is unchanged
    assert len(world.openai.calls_to("list_models")) - probes == world.settings.validation_attempts  # type: ignore[union-attr]
    assert "GET /v1/models" in str(caught.value) and "AWSCURRENT is unchanged" in str(caught.value)
    assert world.current(arn).key_id == before


def test_a_key_without_declared_scopes_is_minted_unrestricted_in_one_call_as_before(world: RotationWorld) -> None:
    # GIVEN a deployment that declares no scopes (every stack before scopes existed)
    world, arn = _scoped(world, None)
    # WHEN it rotates
    assert world.driver().rotate(arn).succeeded
    # THEN the key came inline with its account, unrestricted, and the secret value has no scopes field at all
    assert len(world.openai.calls_to("create_service_account")) == 1
    assert not world.openai.calls_to("create_service_account_key")
    current = world.current(arn)
    assert world.openai.state.keys[current.key_id].scopes is None
    assert "scopes" not in json.loads(world.secrets.get_secret_value(SecretId=arn)["SecretString"])


def test_the_expiry_backstop_applies_to_a_scoped_key(world: RotationWorld) -> None:
    # GIVEN keys that must expire on their own after a week
    world, arn = _scoped(world, CHAT_ONLY)
    world = world.with_settings(key_expiry_seconds=7 * 86400)
    # WHEN it rotates
    assert world.driver().rotate(arn).succeeded
    # THEN OpenAI holds the scoped key with that expiry, and the value records it
    current = world.current(arn)
    minted = world.openai.state.keys[current.key_id]
    assert minted.expires_at is not None and minted.expires_at - minted.created_at == 7 * 86400
    assert current.expires_at is not None


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault("create_service_account_key", {1}, drop_connection=True, after_effect=True), OpenAIConnectionError),
        (Fault("create_service_account_key", {1}, status=500), ServerError),
        (
            Fault("create_service_account_key", {1}, status=200, non_json=True, after_effect=True),
            MalformedResponseError,
        ),
    ],
    ids=["answer-lost-after-the-key-was-made", "server-error", "garbled-answer-after-the-key-was-made"],
)
def test_a_failed_scoped_key_create_leaves_no_key_and_the_retry_mints_one(
    world: RotationWorld, fault: Fault, error: type[Exception]
) -> None:
    # GIVEN the scoped key's create fails, possibly after OpenAI made the key
    world, arn = _scoped(world, CHAT_ONLY)
    world.openai.faults.add(fault)
    driver = world.driver()
    token = driver.start(arn)
    # WHEN createSecret runs THEN it fails, and no key minted for the rotation is live (its account was deleted)
    with pytest.raises(error):
        driver.step(arn, token, "createSecret")
    assert _live_attempt_keys(world, token) == []
    # AND Secrets Manager's retry mints exactly one key and leaves exactly one account for the rotation
    assert world.driver().rotate(arn, token=token).succeeded
    assert _live_attempt_keys(world, token) == [world.current(arn).key_id]
    assert [a.id for a in world.keyrot_accounts()] == [world.current(arn).service_account_id]


def test_a_failed_scoped_key_create_whose_cleanup_fails_too_is_swept_by_the_retry(world: RotationWorld) -> None:
    # GIVEN the key's answer is lost after OpenAI made it, and deleting its account fails as well
    world, arn = _scoped(world, CHAT_ONLY)
    world.openai.faults.add(Fault("create_service_account_key", {1}, drop_connection=True, after_effect=True))
    world.openai.faults.add(Fault("delete_service_account", None, status=500))
    driver = world.driver()
    token = driver.start(arn)
    with pytest.raises(OpenAIConnectionError):
        driver.step(arn, token, "createSecret")
    assert len(_live_attempt_keys(world, token)) == 1  # the twin-to-be, held by nobody
    # WHEN Secrets Manager retries, once OpenAI deletes again, THEN the retry's key is the only live key of the
    # rotation, on the only account
    world.openai.faults.clear()
    assert world.driver().rotate(arn, token=token).succeeded
    assert _live_attempt_keys(world, token) == [world.current(arn).key_id]
    assert [a.id for a in world.keyrot_accounts()] == [world.current(arn).service_account_id]


def test_a_scope_openai_refuses_fails_naming_the_setting_and_mints_nothing(world: RotationWorld) -> None:
    # GIVEN an OpenAI that does not know a declared scope (it answers 400 on the key's create)
    world, arn = _scoped(world, CHAT_ONLY)
    assert world.driver().rotate(arn).succeeded
    before = world.current(arn).key_id
    world = world.with_settings(key_scopes={KEY: ("api.responses.write",)})
    world.openai.state.known_scopes = frozenset({"model.request", "api.model.read"})
    # WHEN a rotation runs
    run = world.driver().rotate(arn, max_attempts=1)
    # THEN createSecret fails naming the setting, no key of the attempt is left, and AWSCURRENT is unchanged
    assert not run.succeeded
    step, error = run.failures[0]
    assert step == "createSecret" and isinstance(error, ConfigurationError)
    assert "keyrot:keys[].scopes" in str(error) and "api.responses.write" in str(error)
    assert _live_attempt_keys(world, run.token) == []
    assert world.current(arn).key_id == before


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scopes=st.lists(st.sampled_from(sorted(DOCUMENTED_SCOPES)), min_size=1, unique=True).map(tuple))
def test_any_documented_scope_set_rotates_to_a_key_with_exactly_those_scopes(
    world: RotationWorld, scopes: tuple[str, ...]
) -> None:
    # GIVEN a key declared with any non-empty set of documented scopes (a fresh secret per example)
    key_name = f"key-{len(world.settings.managed_secrets or {})}"  # type: ignore[union-attr]
    arn = world.create_managed_secret(key_name)
    scoped = world.with_settings(key_scopes={key_name: scopes})
    # WHEN it rotates THEN it is promoted, OpenAI holds exactly those scopes, and the value records them
    assert scoped.driver().rotate(arn).succeeded
    current = scoped.current(arn)
    assert scoped.openai.state.keys[current.key_id].scopes == frozenset(scopes)
    assert current.scopes == scopes
