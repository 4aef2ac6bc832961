"""Bad input ends in a clear error and changes no secret and no service account."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from keyrot.errors import AdminKeyError, KeyValidationError, RotationEventError, RotationStateError, SecretContractError
from keyrot.openai_admin import NotFoundError
from keyrot.rotation import UndeclaredSecretError
from lab.moto_gaps import create_pending_placeholder, disable_rotation
from lab.scenario import RotationWorld

REGION = "us-east-1"


def snapshot(world: RotationWorld) -> dict[str, Any]:
    """Every secret's versions, labels and values, and every live service account and key."""
    secrets: dict[str, Any] = {}
    for entry in world.secrets.list_secrets()["SecretList"]:
        arn = entry["ARN"]
        versions = world.secrets.describe_secret(SecretId=arn).get("VersionIdsToStages") or {}
        values = {}
        for version, stages in versions.items():
            try:
                values[version] = (
                    tuple(stages),
                    world.secrets.get_secret_value(SecretId=arn, VersionId=version, VersionStage=stages[0])[
                        "SecretString"
                    ]
                    if stages
                    else None,
                )
            except world.secrets.exceptions.ResourceNotFoundException:
                values[version] = (tuple(stages), None)
        secrets[arn] = values
    accounts = sorted(a.id for a in world.openai.state.live_service_accounts())
    return {"secrets": secrets, "accounts": accounts}


def _rotated(world: RotationWorld, key_name: str = "chat-backend") -> str:
    arn = world.create_managed_secret(key_name)
    assert world.driver().rotate(arn).succeeded
    return arn


def _attempt(world: RotationWorld, arn: str, step: str = "createSecret", token: str | None = None) -> None:
    driver = world.driver()
    token = token or driver.start(arn)
    driver.step(arn, token, step)


def test_missing_tags_are_named_and_nothing_is_minted(world: RotationWorld) -> None:
    arn = world.create_managed_secret("chat-backend", tags=[{"Key": "keyrot:environment", "Value": "dev"}])
    token = world.driver().start(arn)
    before = snapshot(world)
    with pytest.raises(SecretContractError, match="missing required tag"):
        _attempt(world, arn, token=token)
    assert snapshot(world) == before


def test_secret_of_another_environment_is_refused(world: RotationWorld) -> None:
    # GIVEN a secret declared to this function but tagged for another environment
    prod = dataclasses.replace(world, environment="prod")
    arn = prod.create_managed_secret("chat-backend", declare=False)
    world.declare("chat-backend", arn)
    token = world.driver().start(arn)
    before = snapshot(world)
    with pytest.raises(RotationStateError, match="belongs to environment 'prod'; this function rotates 'dev' only"):
        _attempt(world, arn, token=token)
    assert snapshot(world) == before


@pytest.mark.parametrize("step", ["createSecret", "testSecret", "finishSecret"])
def test_a_secret_the_deployment_does_not_declare_is_refused_and_nothing_changes(
    world: RotationWorld, step: str
) -> None:
    # GIVEN a decoy someone created and tagged exactly as keyrot's own secrets are, with rotation pointed at keyrot
    arn = world.create_managed_secret("chat-backend", declare=False)
    token = world.driver().start(arn)
    before = snapshot(world)
    # WHEN any step is invoked for it THEN it is refused, naming the declaration, and nothing is minted or changed
    with pytest.raises(UndeclaredSecretError, match="not one of the secrets this deployment manages"):
        _attempt(world, arn, step=step, token=token)
    assert snapshot(world) == before


@pytest.mark.parametrize(
    ("tag", "value", "message"),
    [
        ("keyrot:key-name", "billing", "tagged for key 'billing' but the deployment declares it for 'chat-backend'"),
        ("keyrot:openai-project-id", "proj_elsewhere", "tagged for OpenAI project proj_elsewhere"),
    ],
)
def test_a_declared_secret_whose_tags_disagree_with_the_deployment_is_refused(
    world: RotationWorld, tag: str, value: str, message: str
) -> None:
    # GIVEN the declared secret of chat-backend whose tag was rewritten (TagResource by someone in the account)
    arn = world.create_managed_secret("chat-backend")
    world.secrets.tag_resource(SecretId=arn, Tags=[{"Key": tag, "Value": value}])
    token = world.driver().start(arn)
    before = snapshot(world)
    # WHEN the rotation runs THEN the deployment wins: refused, nothing minted or stored
    with pytest.raises(UndeclaredSecretError, match=message):
        _attempt(world, arn, token=token)
    assert snapshot(world) == before


def test_unknown_token_is_refused(world: RotationWorld) -> None:
    arn = _rotated(world)
    before = snapshot(world)
    with pytest.raises(RotationStateError, match="has no version 00000000-0000-4000-8000-000000000000"):
        _attempt(world, arn, token="00000000-0000-4000-8000-000000000000")
    assert snapshot(world) == before


def test_rotation_disabled_is_refused(world: RotationWorld) -> None:
    arn = _rotated(world)
    token = world.driver().start(arn)
    disable_rotation(REGION, arn)
    before = snapshot(world)
    with pytest.raises(RotationStateError, match="rotation is not enabled"):
        _attempt(world, arn, token=token)
    assert snapshot(world) == before


@pytest.mark.parametrize(
    ("pending_value", "message"),
    [
        ("not json at all", "pending secret value is not valid JSON"),
        ('{"api_key": "sk-partial"}', "pending secret value is missing field(s): key_id"),
    ],
)
def test_malformed_pending_value_is_reported_without_minting(
    world: RotationWorld, pending_value: str, message: str
) -> None:
    arn = _rotated(world)
    token = "11111111-2222-4333-8444-555555555555"
    world.secrets.put_secret_value(
        SecretId=arn, ClientRequestToken=token, SecretString=pending_value, VersionStages=["AWSPENDING"]
    )
    before = snapshot(world)
    with pytest.raises(SecretContractError) as caught:
        _attempt(world, arn, token=token)
    assert message in str(caught.value)
    assert "sk-partial" not in str(caught.value)
    assert snapshot(world) == before


def test_pending_value_for_another_project_is_refused(world: RotationWorld) -> None:
    arn = _rotated(world)
    current = json.loads(world.secrets.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
    token = "11111111-2222-4333-8444-666666666666"
    world.secrets.put_secret_value(
        SecretId=arn,
        ClientRequestToken=token,
        VersionStages=["AWSPENDING"],
        SecretString=json.dumps({**current, "project_id": "proj_somebody_else"}),
    )
    before = snapshot(world)
    with pytest.raises(SecretContractError, match="project_id is 'proj_somebody_else' but the secret's tags say"):
        _attempt(world, arn, step="testSecret", token=token)
    assert snapshot(world) == before


def test_project_that_openai_does_not_know_fails_cleanly(world: RotationWorld) -> None:
    # GIVEN a deployment (and its secret) for a project OpenAI does not have
    world = dataclasses.replace(world, project_id="proj_missing")
    arn = world.create_managed_secret(
        "chat-backend",
        tags=[
            {"Key": "keyrot:environment", "Value": "dev"},
            {"Key": "keyrot:key-name", "Value": "chat-backend"},
            {"Key": "keyrot:openai-project-id", "Value": "proj_missing"},
        ],
    )
    token = world.driver().start(arn)
    before = snapshot(world)
    with pytest.raises(NotFoundError, match="HTTP 404"):
        _attempt(world, arn, token=token)
    assert snapshot(world) == before


def _admin_secret(world: RotationWorld, value: str | None) -> RotationWorld:
    kwargs: dict[str, Any] = {"Name": f"keyrot/dev/admin-{len(world.secrets.list_secrets()['SecretList'])}"}
    if value is not None:
        kwargs["SecretString"] = value
    arn = world.secrets.create_secret(**kwargs)["ARN"]
    return world.with_settings(admin_secret_arn=arn)


@pytest.mark.parametrize(
    ("admin_value", "message"),
    [
        (None, "holds no value: put the OpenAI admin key with `keyrot admin-key set --env dev`"),
        ("sk-admin-pasted-raw-not-json", "admin-key secret value is not valid JSON"),
        ('{"admin_key": ""}', "no non-empty string field admin_key"),
        ('{"admin_key": "sk-admin-unknown-to-openai-0000000000"}', "admin key was rejected as invalid or revoked"),
    ],
)
def test_missing_or_invalid_admin_key_is_explained(world: RotationWorld, admin_value: str | None, message: str) -> None:
    arn = world.create_managed_secret("chat-backend")
    broken = _admin_secret(world, admin_value)
    token = broken.driver().start(arn)
    before = snapshot(world)
    with pytest.raises(AdminKeyError) as caught:
        _attempt(broken, arn, token=token)
    assert message in str(caught.value)
    assert "pasted-raw" not in str(caught.value) and "0000000000" not in str(caught.value)
    assert snapshot(world) == before


def test_admin_key_without_write_scope_is_explained(world: RotationWorld) -> None:
    read_only = world.openai.state.add_admin_key(scopes={"api.management.read", "api.usage.read"})
    arn = world.create_managed_secret("chat-backend")
    broken = _admin_secret(world, json.dumps({"admin_key": read_only}))
    token = broken.driver().start(arn)
    before = snapshot(world)
    with pytest.raises(AdminKeyError, match="lacks permission"):
        _attempt(broken, arn, token=token)
    assert snapshot(world) == before


def test_validation_failure_aborts_with_current_untouched_and_resumes_later(world: RotationWorld) -> None:
    arn = _rotated(world)
    before_key = world.current(arn).key_id
    # GIVEN new keys take longer to become usable than testSecret is willing to wait
    world.openai.state.activation_delay_seconds = 3600
    run = world.driver().rotate(arn, max_attempts=2)
    # THEN the rotation fails in testSecret and AWSCURRENT is unchanged
    assert not run.succeeded
    assert {step for step, _ in run.failures} == {"testSecret"}
    assert all(isinstance(error, KeyValidationError) for _, error in run.failures)
    assert world.current(arn).key_id == before_key
    assert world.pending(arn) is not None
    assert len(world.openai.calls_to("create_service_account")) == 2  # only the first rotation's and this one's
    # WHEN the key becomes usable, the retry (same token) resumes from the stored pending value
    world.openai.state.activation_delay_seconds = 0
    resumed = world.driver().rotate(arn, token=run.token)
    assert resumed.succeeded
    assert world.current(arn).key_id != before_key
    assert len(world.openai.calls_to("create_service_account")) == 2


def test_pending_key_outside_the_project_is_not_promoted(world: RotationWorld) -> None:
    arn = _rotated(world)
    before_key = world.current(arn).key_id
    driver = world.driver()
    token = driver.start(arn)
    driver.step(arn, token, "createSecret")
    pending = world.pending(arn)
    assert pending is not None
    account = world.openai.state.service_accounts[pending.service_account_id]
    world.openai.state.delete_service_account(account)
    with pytest.raises(KeyValidationError, match=f"pending key {pending.key_id} is not a key of OpenAI project"):
        driver.step(arn, token, "testSecret")
    assert world.current(arn).key_id == before_key


def test_finish_refuses_to_promote_an_empty_pending_version(world: RotationWorld) -> None:
    arn = _rotated(world)
    token = "11111111-2222-4333-8444-777777777777"
    create_pending_placeholder(REGION, arn, token)
    before = snapshot(world)
    with pytest.raises(RotationStateError, match=f"version {token} of secret keyrot/dev/chat-backend holds no value"):
        _attempt(world, arn, step="finishSecret", token=token)
    assert snapshot(world) == before


@pytest.mark.parametrize(
    "event",
    [
        {"Step": "deleteSecret", "SecretId": "x", "ClientRequestToken": "11111111-2222-4333-8444-777777777777"},
        {"Step": "createSecret", "ClientRequestToken": "11111111-2222-4333-8444-777777777777"},
    ],
)
def test_malformed_events_change_nothing(world: RotationWorld, event: dict[str, Any]) -> None:
    _rotated(world)
    before = snapshot(world)
    with pytest.raises(RotationEventError):
        world.invoker()(event)
    assert snapshot(world) == before
