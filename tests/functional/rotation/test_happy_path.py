"""A rotation mints a key on a new service account, validates it and promotes it; every step is idempotent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyrot.openai_admin import KeyStatus, OpenAIKeyProbe, OpenAITransport
from keyrot.rotation.naming import ServiceAccountName
from lab.scenario import RotationWorld


def _probe(world: RotationWorld, api_key: str) -> KeyStatus:
    return OpenAIKeyProbe(OpenAITransport(world.openai.base_url)).check(api_key).status


def test_first_rotation_of_an_empty_secret_mints_a_working_key(world: RotationWorld) -> None:
    # GIVEN a secret as the infrastructure creates it: tagged, rotation enabled, no value
    arn = world.create_managed_secret("chat-backend")
    # WHEN Secrets Manager rotates it
    run = world.driver().rotate(arn)
    # THEN the new key is current, works, and carries the whole secret contract
    assert run.succeeded and run.attempts == 1, run.failures
    current = world.current(arn)
    assert _probe(world, current.api_key) is KeyStatus.VALID
    assert (current.environment, current.key_name, current.project_id) == ("dev", "chat-backend", world.project_id)
    assert current.key_id.startswith("key_") and current.service_account_id.startswith("svc_acct_")
    assert world.stages(arn) == {run.token: ["AWSCURRENT"]}
    (account,) = world.keyrot_accounts()
    assert account.id == current.service_account_id
    assert ServiceAccountName.parse(account.name) == ServiceAccountName("dev", "chat-backend", run.token)


def test_secret_value_is_the_documented_json_contract(world: RotationWorld) -> None:
    arn = world.create_managed_secret("chat-backend")
    world.driver().rotate(arn)
    text = world.secrets.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]
    payload = json.loads(text)
    assert set(payload) == {
        "api_key",
        "key_id",
        "service_account_id",
        "project_id",
        "environment",
        "key_name",
        "created_at",
        "expires_at",
    }
    assert payload["created_at"].endswith("Z")
    assert payload["expires_at"] is None


def test_second_rotation_keeps_the_previous_key_valid_for_its_grace_period(world: RotationWorld) -> None:
    arn = world.create_managed_secret("chat-backend")
    driver = world.driver()
    driver.rotate(arn)
    first = world.current(arn)
    run = driver.rotate(arn)
    assert run.succeeded, run.failures
    second, previous = world.current(arn), world.previous(arn)
    assert previous is not None and previous.key_id == first.key_id and second.key_id != first.key_id
    assert _probe(world, first.api_key) is KeyStatus.VALID
    assert _probe(world, second.api_key) is KeyStatus.VALID
    assert sorted(world.stages(arn).values()) == [["AWSCURRENT"], ["AWSPREVIOUS"]]
    assert len(world.keyrot_accounts()) == 2


def test_every_step_invoked_twice_mints_exactly_one_key(world: RotationWorld) -> None:
    arn = world.create_managed_secret("chat-backend")
    driver = world.driver()
    token = driver.start(arn)
    for step in (
        "createSecret",
        "createSecret",
        "setSecret",
        "setSecret",
        "testSecret",
        "testSecret",
        "finishSecret",
        "finishSecret",
    ):
        driver.step(arn, token, step)
    assert len(world.openai.calls_to("create_service_account")) == 1
    assert len(world.keyrot_accounts()) == 1
    assert world.stages(arn) == {token: ["AWSCURRENT"]}
    # and a whole second pass with the same token changes nothing
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        driver.step(arn, token, step)
    assert len(world.openai.calls_to("create_service_account")) == 1


def test_expiry_backstop_is_requested_from_openai_and_recorded(openai_standin: Any, secrets_client: Any) -> None:
    world = RotationWorld.create(openai_standin, secrets_client, key_expiry_seconds=40 * 86400)
    arn = world.create_managed_secret("chat-backend")
    world.driver().rotate(arn)
    current = world.current(arn)
    assert current.expires_at is not None
    assert (current.expires_at - current.created_at).total_seconds() == 40 * 86400
    stored = openai_standin.state.keys[current.key_id]
    assert stored.expires_at == stored.created_at + 40 * 86400


def test_rotation_passes_the_rotation_token_and_reads_with_explicit_stages(world: RotationWorld) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    world.secrets.meta.events.register(
        "provide-client-params.secrets-manager.*",
        lambda params, model, **_: calls.append((model.name, dict(params))),
    )
    events: list[dict[str, Any]] = []
    invoke = world.invoker()

    def recording(event: dict[str, Any]) -> Any:
        events.append(event)
        return invoke(event)

    arn = world.create_managed_secret("chat-backend")
    world.driver(recording).rotate(arn)
    world.driver(recording).rotate(arn)
    # PutSecretValue carries the RotationToken of the createSecret event that made it, exactly
    puts = [params for name, params in calls if name == "PutSecretValue"]
    create_tokens = [event["RotationToken"] for event in events if event["Step"] == "createSecret"]
    assert [params.get("RotationToken") for params in puts] == create_tokens
    assert all(params["VersionStages"] == ["AWSPENDING"] for params in puts)
    reads = [params for name, params in calls if name == "GetSecretValue"]
    assert reads and all("VersionStage" in params for params in reads)


def test_an_event_without_rotation_token_rotates_and_sends_none(world: RotationWorld) -> None:
    # Secrets Manager adds RotationToken only in some cases (and older events lack it): none is invented
    from lab.rotation_driver import RotationDriver

    calls: list[dict[str, Any]] = []
    world.secrets.meta.events.register(
        "provide-client-params.secrets-manager.PutSecretValue", lambda params, **_: calls.append(dict(params))
    )
    arn = world.create_managed_secret("chat-backend")
    run = RotationDriver(world.secrets, world.invoker(), rotation_token=False).rotate(arn)
    assert run.succeeded, run.failures
    assert calls and all("RotationToken" not in params for params in calls)


def test_restricted_pending_key_is_promoted_because_it_authenticates(world: RotationWorld, caplog: Any) -> None:
    arn = world.create_managed_secret("chat-backend")
    driver = world.driver()
    token = driver.start(arn)
    driver.step(arn, token, "createSecret")
    pending = world.pending(arn)
    assert pending is not None
    world.openai.state.keys[pending.key_id].restriction = "Missing scopes: api.model.read"
    caplog.set_level("WARNING", logger="keyrot")
    for step in ("setSecret", "testSecret", "finishSecret"):
        driver.step(arn, token, step)
    assert world.current(arn).key_id == pending.key_id
    assert any("authenticates but is restricted" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_environments_rotate_independently(openai_standin: Any, secrets_client: Any, environment: str) -> None:
    world = RotationWorld.create(openai_standin, secrets_client, environment=environment)
    arn = world.create_managed_secret("search")
    assert world.driver().rotate(arn).succeeded
    assert world.current(arn).environment == environment
