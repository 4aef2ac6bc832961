"""Revoking the previous key: delete its account, confirm it is dead, record it; idempotent and refusing danger."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyrot.errors import RevocationError
from keyrot.openai_admin import KeyStatus, OpenAIKeyProbe, OpenAITransport
from keyrot.rotation import revoke_previous, revoke_version
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


# --- revocation deletes only what keyrot minted (issue 12) --------------------------------------------------------


def _forge_previous(world: RotationWorld, arn: str, account_id: str, key_id: str, api_key: str) -> str:
    """Put a forged value (naming `account_id`/`key_id`) in a new version and make it AWSPREVIOUS. Returns it."""
    value = json.loads(world.secrets.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
    forged = {**value, "service_account_id": account_id, "key_id": key_id, "api_key": api_key}
    version = "33333333-4444-4555-8666-777777777777"
    world.secrets.put_secret_value(
        SecretId=arn, ClientRequestToken=version, SecretString=json.dumps(forged), VersionStages=["FORGED"]
    )
    previous = next(v for v, stages in world.stages(arn).items() if "AWSPREVIOUS" in stages)
    world.secrets.update_secret_version_stage(
        SecretId=arn, VersionStage="AWSPREVIOUS", MoveToVersionId=version, RemoveFromVersionId=previous
    )
    return version


def test_a_forged_value_naming_another_teams_account_is_refused_and_nothing_is_deleted(world: RotationWorld) -> None:
    # GIVEN a previous version rewritten by someone in the account to name another team's service account
    arn = _rotated_twice(world)
    account, key = world.openai.state.create_service_account(
        world.project_id, "billing-export", with_key=True, expires_in=None
    )
    assert key is not None
    _forge_previous(world, arn, account.id, key.id, key.value)
    # WHEN the previous key is revoked (the janitor, the CLI)
    with pytest.raises(RevocationError, match="named 'billing-export', not 'keyrot:dev:chat-backend:") as caught:
        revoke_previous(world.context(), arn)
    # THEN nothing was deleted: the other team's key still works, and the refusal names the account, not the key
    assert world.openai.calls_to("delete_service_account") == []
    assert _status(world, key.value) is KeyStatus.VALID
    assert account.id in str(caught.value)


def test_a_forged_value_naming_a_keyrot_account_of_another_key_is_refused(world: RotationWorld) -> None:
    # GIVEN two managed keys; the previous version of one forged to name the current account of the other
    arn = _rotated_twice(world)
    other = world.create_managed_secret("batch")
    assert world.driver().rotate(other).succeeded
    victim = world.current(other)
    _forge_previous(world, arn, victim.service_account_id, victim.key_id, victim.api_key)
    # WHEN revoked THEN refused before any deletion: the forged value belongs to the other key's secret, not this one
    with pytest.raises(RevocationError):
        revoke_previous(world.context(), arn)
    assert world.openai.calls_to("delete_service_account") == []
    assert _status(world, victim.api_key) is KeyStatus.VALID


def test_a_value_naming_an_account_outside_the_project_is_refused_while_its_key_works(world: RotationWorld) -> None:
    # GIVEN a previous version naming an account (and a working key) of another project of the organization
    arn = _rotated_twice(world)
    elsewhere = world.openai.state.add_project()
    account, key = world.openai.state.create_service_account(elsewhere, "other-project", with_key=True, expires_in=None)
    assert key is not None
    _forge_previous(world, arn, account.id, key.id, key.value)
    # WHEN revoked THEN nothing is deleted anywhere and the error says the account is not the project's
    with pytest.raises(RevocationError, match=f"not an account of project {world.project_id}"):
        revoke_previous(world.context(), arn)
    assert world.openai.calls_to("delete_service_account") == []
    assert _status(world, key.value) is KeyStatus.VALID


def test_a_version_that_is_both_current_and_previous_is_never_revoked(world: RotationWorld) -> None:
    # GIVEN AWSPREVIOUS moved onto the current version (by hand, or a confused tool)
    arn = _rotated_twice(world)
    stages = world.stages(arn)
    current = next(v for v, s in stages.items() if "AWSCURRENT" in s)
    previous = next(v for v, s in stages.items() if "AWSPREVIOUS" in s)
    world.secrets.update_secret_version_stage(
        SecretId=arn, VersionStage="AWSPREVIOUS", MoveToVersionId=current, RemoveFromVersionId=previous
    )
    # WHEN the previous key is revoked THEN refused, and the current key works
    with pytest.raises(RevocationError, match="it is AWSCURRENT"):
        revoke_previous(world.context(), arn)
    assert world.openai.calls_to("delete_service_account") == []
    assert _status(world, world.current(arn).api_key) is KeyStatus.VALID


def test_a_key_labelled_revoked_that_still_authenticates_is_revoked_again(world: RotationWorld) -> None:
    # GIVEN the previous version labelled KEYROT_REVOKED by hand while its account is alive (the label alone lies)
    arn = _rotated_twice(world)
    previous = world.previous(arn)
    assert previous is not None
    version = next(v for v, s in world.stages(arn).items() if "AWSPREVIOUS" in s)
    world.secrets.update_secret_version_stage(SecretId=arn, VersionStage="KEYROT_REVOKED", MoveToVersionId=version)
    # WHEN revoked THEN the account is deleted and the key is dead
    assert revoke_previous(world.context(), arn).status == "revoked"
    assert _status(world, previous.api_key) is KeyStatus.DEAD


def test_revoke_version_revokes_a_displaced_unlabelled_version(world: RotationWorld) -> None:
    # GIVEN two promotions inside one grace period made by hand (no finishSecret to clean up after them): the first
    # key lost every label, unrevoked
    arn = world.create_managed_secret("chat-backend")
    driver = world.driver()
    assert driver.rotate(arn).succeeded
    first = world.current(arn)
    (first_version,) = world.stages(arn)
    for _ in range(2):
        token = driver.start(arn)
        for step in ("createSecret", "setSecret", "testSecret"):
            driver.step(arn, token, step)
        current = next(v for v, s in world.stages(arn).items() if "AWSCURRENT" in s)
        world.secrets.update_secret_version_stage(
            SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=current
        )
        world.secrets.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=token)
    assert world.stages(arn)[first_version] == [] and _status(world, first.api_key) is KeyStatus.VALID
    # WHEN that version is revoked by id THEN its key is dead, and no label moved onto it
    result = revoke_version(world.context(), arn, first_version)
    assert (result.status, result.key_id) == ("revoked", first.key_id)
    assert _status(world, first.api_key) is KeyStatus.DEAD
    assert world.stages(arn)[first_version] == []
