"""Revoking the previous key: delete its account, confirm it is dead, record it; idempotent and refusing danger."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyrot.errors import RevocationError
from keyrot.openai_admin import KeyStatus, OpenAIKeyProbe, OpenAITransport
from keyrot.rotation import revoke_previous
from lab.scenario import RotationWorld


def _rotated_twice(world: RotationWorld, key_name: str = "chat-backend") -> str:
    arn = world.create_managed_secret(key_name)
    driver = world.driver()
    assert driver.rotate(arn).succeeded and driver.rotate(arn).succeeded
    return arn


def _status(world: RotationWorld, api_key: str) -> KeyStatus:
    return OpenAIKeyProbe(OpenAITransport(world.openai.base_url)).check(api_key).status


def test_revoke_deletes_the_previous_account_and_records_it(world: RotationWorld) -> None:
    arn = _rotated_twice(world)
    previous, current = world.previous(arn), world.current(arn)
    assert previous is not None
    result = revoke_previous(world.context(), arn)
    assert (result.status, result.key_id, result.service_account_id) == (
        "revoked",
        previous.key_id,
        previous.service_account_id,
    )
    assert _status(world, previous.api_key) is KeyStatus.DEAD
    assert _status(world, current.api_key) is KeyStatus.VALID
    assert world.stages(arn)[result.version_id] == ["AWSPREVIOUS", "KEYROT_REVOKED"]
    assert [a.id for a in world.keyrot_accounts()] == [current.service_account_id]


def test_revoke_twice_is_a_no_op(world: RotationWorld) -> None:
    arn = _rotated_twice(world)
    revoke_previous(world.context(), arn)
    deletes = len(world.openai.calls_to("delete_service_account"))
    again = revoke_previous(world.context(), arn)
    assert again.status == "already-revoked"
    assert len(world.openai.calls_to("delete_service_account")) == deletes


def test_revoke_with_no_previous_key_does_nothing(world: RotationWorld) -> None:
    arn = world.create_managed_secret("chat-backend")
    assert world.driver().rotate(arn).succeeded
    assert revoke_previous(world.context(), arn).status == "nothing-to-revoke"
    assert world.openai.calls_to("delete_service_account") == []


def test_revoke_treats_an_account_already_gone_as_success(world: RotationWorld) -> None:
    arn = _rotated_twice(world)
    previous = world.previous(arn)
    assert previous is not None
    world.openai.state.delete_service_account(world.openai.state.service_accounts[previous.service_account_id])
    result = revoke_previous(world.context(), arn)
    assert result.status == "revoked"
    assert world.stages(arn)[result.version_id] == ["AWSPREVIOUS", "KEYROT_REVOKED"]


def test_revoke_refuses_when_the_previous_account_backs_the_current_key(world: RotationWorld) -> None:
    arn = world.create_managed_secret("chat-backend")
    assert world.driver().rotate(arn).succeeded
    current_text = world.secrets.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]
    # GIVEN someone re-put the current value as a new current version (both versions share one account)
    world.secrets.put_secret_value(SecretId=arn, SecretString=json.dumps(json.loads(current_text)))
    with pytest.raises(RevocationError, match="its service account also backs the AWSCURRENT key"):
        revoke_previous(world.context(), arn)
    assert _status(world, world.current(arn).api_key) is KeyStatus.VALID
    assert world.openai.calls_to("delete_service_account") == []


def test_unconfirmed_revocation_is_not_recorded_and_completes_on_retry(world: RotationWorld) -> None:
    arn = _rotated_twice(world)
    previous = world.previous(arn)
    assert previous is not None
    world.openai.state.revocation_delay_seconds = 3600  # OpenAI keeps honouring the key for an hour
    with pytest.raises(RevocationError, match=f"key {previous.key_id} still authenticates"):
        revoke_previous(world.context(), arn)
    assert not any("KEYROT_REVOKED" in stages for stages in world.stages(arn).values())
    # WHEN the deletion has propagated, the next attempt confirms and records it
    world.openai.state.keys[previous.key_id].revoked_at = 0
    assert revoke_previous(world.context(), arn).status == "revoked"


def test_revoke_refuses_when_previous_moved_since_the_decision(world: RotationWorld) -> None:
    arn = _rotated_twice(world)
    with pytest.raises(RevocationError, match="AWSPREVIOUS of keyrot/dev/chat-backend moved from stale-version"):
        revoke_previous(world.context(), arn, expected_version="stale-version")
    assert world.openai.calls_to("delete_service_account") == []


def test_revoked_label_follows_the_latest_revocation(world: RotationWorld) -> None:
    arn = _rotated_twice(world)
    first = revoke_previous(world.context(), arn)
    assert world.driver().rotate(arn).succeeded
    second = revoke_previous(world.context(), arn)
    assert second.status == "revoked" and second.version_id != first.version_id
    labelled = [v for v, stages in world.stages(arn).items() if "KEYROT_REVOKED" in stages]
    assert labelled == [second.version_id]


def test_emergency_rotation_revokes_the_previous_key_at_once(openai_standin: Any, secrets_client: Any) -> None:
    world = RotationWorld.create(openai_standin, secrets_client, grace_period_seconds=0)
    arn = world.create_managed_secret("chat-backend")
    driver = world.driver()
    assert driver.rotate(arn).succeeded
    leaked = world.current(arn)
    assert driver.rotate(arn).succeeded
    assert _status(world, leaked.api_key) is KeyStatus.DEAD
    assert _status(world, world.current(arn).api_key) is KeyStatus.VALID
    assert [a.id for a in world.keyrot_accounts()] == [world.current(arn).service_account_id]


def test_emergency_finish_retried_after_a_crash_still_revokes(openai_standin: Any, secrets_client: Any) -> None:
    world = RotationWorld.create(openai_standin, secrets_client, grace_period_seconds=0)
    arn = world.create_managed_secret("chat-backend")
    driver = world.driver()
    assert driver.rotate(arn).succeeded
    leaked = world.current(arn)
    # GIVEN a rotation whose finishSecret promoted the key and then died before revoking
    calm = world.with_settings(grace_period_seconds=86400).driver()
    token = calm.start(arn)
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        calm.step(arn, token, step)
    assert _status(world, leaked.api_key) is KeyStatus.VALID
    # WHEN Secrets Manager retries finishSecret with the emergency function
    driver.step(arn, token, "finishSecret")
    # THEN the leaked key is dead
    assert _status(world, leaked.api_key) is KeyStatus.DEAD
