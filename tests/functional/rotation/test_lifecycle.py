"""No key outlives its purpose: promotion is recorded, finishSecret revokes what a promotion displaced, an emergency
ends with exactly one live keyrot key, and a failed cleanup never undoes a promotion."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyrot.constants import TAG_PROMOTED
from keyrot.openai_admin import KeyStatus, OpenAIKeyProbe, OpenAITransport, ServerError
from keyrot.rotation import contain
from keyrot.rotation.naming import ServiceAccountName
from lab.openai_standin import Fault
from lab.scenario import RotationWorld


def _status(world: RotationWorld, api_key: str) -> KeyStatus:
    return OpenAIKeyProbe(OpenAITransport(world.openai.base_url)).check(api_key).status


def _live_keyrot_keys(world: RotationWorld, key_name: str = "chat-backend") -> set[str]:
    prefix = f"keyrot:{world.environment}:{key_name}:"
    state = world.openai.state
    with state.lock:
        return {k.id for k in state.keys.values() if k.owner_name.startswith(prefix) and state.key_is_live(k.id)}


def test_finish_records_the_promotion_before_it_moves_awscurrent(world: RotationWorld) -> None:
    # GIVEN the Secrets Manager calls of a rotation, recorded
    calls: list[tuple[str, dict[str, Any]]] = []
    world.secrets.meta.events.register(
        "provide-client-params.secrets-manager.*", lambda params, model, **_: calls.append((model.name, dict(params)))
    )
    arn = world.create_managed_secret("chat-backend")
    # WHEN it rotates
    run = world.driver().rotate(arn)
    # THEN keyrot:promoted names the new version and was written before AWSCURRENT moved onto it
    assert run.succeeded, run.failures
    names = [name for name, _ in calls]
    tag = names.index("TagResource")
    move = next(
        i
        for i, (name, p) in enumerate(calls)
        if name == "UpdateSecretVersionStage" and p["VersionStage"] == "AWSCURRENT"
    )
    assert tag < move
    tags = {t["Key"]: t["Value"] for t in world.secrets.describe_secret(SecretId=arn)["Tags"]}
    version, at = tags[TAG_PROMOTED].split("@")
    assert version == run.token and abs(int(at) - world.now().timestamp()) < 60


def test_the_next_rotation_revokes_a_key_displaced_inside_its_grace_period(world: RotationWorld) -> None:
    # GIVEN a current key and a previous key still inside its grace period
    arn = world.create_managed_secret("chat-backend")
    driver = world.driver()
    assert driver.rotate(arn).succeeded and driver.rotate(arn).succeeded
    displaced, kept = world.previous(arn), world.current(arn)
    assert displaced is not None
    # WHEN another rotation runs inside that grace period (a manual rotation right after a scheduled one)
    assert driver.rotate(arn).succeeded
    # THEN the key it pushed out of AWSPREVIOUS is dead: the current and the (new) previous key are the only live ones
    assert _status(world, displaced.api_key) is KeyStatus.DEAD
    assert _status(world, kept.api_key) is KeyStatus.VALID
    assert _live_keyrot_keys(world) == {world.current(arn).key_id, kept.key_id}


def test_a_key_labelled_revoked_but_still_live_is_revoked_by_the_next_rotation(world: RotationWorld) -> None:
    # GIVEN the previous key labelled KEYROT_REVOKED by hand while it still works
    arn = world.create_managed_secret("chat-backend")
    driver = world.driver()
    assert driver.rotate(arn).succeeded and driver.rotate(arn).succeeded
    previous = world.previous(arn)
    assert previous is not None
    version = next(v for v, s in world.stages(arn).items() if "AWSPREVIOUS" in s)
    world.secrets.update_secret_version_stage(SecretId=arn, VersionStage="KEYROT_REVOKED", MoveToVersionId=version)
    # WHEN the next rotation displaces it THEN it is revoked, the label notwithstanding
    assert driver.rotate(arn).succeeded
    assert _status(world, previous.api_key) is KeyStatus.DEAD


def test_a_failed_cleanup_never_undoes_the_promotion(world: RotationWorld) -> None:
    # GIVEN a key about to be displaced, and OpenAI failing every service-account deletion
    arn = world.create_managed_secret("chat-backend")
    driver = world.driver()
    assert driver.rotate(arn).succeeded and driver.rotate(arn).succeeded
    displaced = world.previous(arn)
    assert displaced is not None
    world.openai.faults.add(Fault(endpoint="delete_service_account", status=500))
    # WHEN the next rotation runs
    run = driver.rotate(arn)
    # THEN it succeeded and promoted its key; the displaced key is still live, for the janitor to revoke
    assert run.succeeded, run.failures
    assert world.stages(arn)[run.token] == ["AWSCURRENT"]
    assert _status(world, world.current(arn).api_key) is KeyStatus.VALID
    assert _status(world, displaced.api_key) is KeyStatus.VALID
    # AND once OpenAI recovers, replaying finishSecret (Secrets Manager's retry) revokes it
    world.openai.faults.clear()
    driver.step(arn, run.token, "finishSecret")
    assert _status(world, displaced.api_key) is KeyStatus.DEAD


# --- emergency: contain whichever key leaked ----------------------------------------------------------------------


@pytest.fixture
def emergency(world: RotationWorld) -> RotationWorld:
    return world.with_settings(grace_period_seconds=0)


def test_emergency_revokes_the_previous_key_too_whichever_key_leaked(
    world: RotationWorld, emergency: RotationWorld
) -> None:
    # GIVEN a current key and a previous key still in its grace period: the leaked copy may be either
    arn = world.create_managed_secret("chat-backend")
    emergency.declare("chat-backend", arn)
    assert world.driver().rotate(arn).succeeded and world.driver().rotate(arn).succeeded
    leaked = [world.current(arn), world.previous(arn)]
    # WHEN an emergency rotation runs
    assert emergency.driver().rotate(arn).succeeded
    # THEN both are dead, and the new key is the one live keyrot key of the secret
    assert [_status(world, key.api_key) for key in leaked if key] == [KeyStatus.DEAD, KeyStatus.DEAD]
    assert _live_keyrot_keys(world) == {world.current(arn).key_id}


def test_emergency_also_revokes_displaced_keys_and_leftover_accounts(
    world: RotationWorld, emergency: RotationWorld
) -> None:
    # GIVEN a displaced key (its version unlabelled by hand) and an abandoned attempt's account, both live
    arn = world.create_managed_secret("chat-backend")
    emergency.declare("chat-backend", arn)
    assert world.driver().rotate(arn).succeeded
    version = next(iter(world.stages(arn)))
    leftover_name = str(ServiceAccountName("dev", "chat-backend", "44444444-5555-4666-8777-888888888888"))
    account, leftover = world.openai.state.create_service_account(
        world.project_id, leftover_name, with_key=True, expires_in=None
    )
    account.created_at -= 3600
    assert leftover is not None
    first = world.current(arn)
    # (the first rotation's key becomes displaced: a second promotion by hand leaves it unlabelled)
    token = world.driver().start(arn)
    for step in ("createSecret", "setSecret", "testSecret"):
        world.driver().step(arn, token, step)
    world.secrets.update_secret_version_stage(
        SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=version
    )
    world.secrets.update_secret_version_stage(SecretId=arn, VersionStage="AWSPREVIOUS", RemoveFromVersionId=version)
    world.secrets.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=token)
    # WHEN an emergency rotation runs
    assert emergency.driver().rotate(arn).succeeded
    # THEN the displaced key and the leftover are dead too: one live keyrot key remains
    assert _status(world, first.api_key) is KeyStatus.DEAD
    assert _status(world, leftover.value) is KeyStatus.DEAD
    assert _live_keyrot_keys(world) == {world.current(arn).key_id}


def test_containment_leaves_a_newer_rotation_in_progress_alone(world: RotationWorld, emergency: RotationWorld) -> None:
    # GIVEN a rotated secret and a newer rotation that has minted (and stored) its key but not finished
    arn = world.create_managed_secret("chat-backend")
    emergency.declare("chat-backend", arn)
    assert world.driver().rotate(arn).succeeded and world.driver().rotate(arn).succeeded
    token = world.driver().start(arn)
    world.driver().step(arn, token, "createSecret")
    pending = world.pending(arn)
    assert pending is not None
    # WHEN containment runs (the CLI's --emergency, after its own rotation)
    result = contain(emergency.context(), arn)
    # THEN the previous key is revoked, the current key works, and the pending key is untouched and reported
    assert pending.service_account_id in result.left_in_progress and not result.failures
    assert _status(world, pending.api_key) is KeyStatus.VALID
    assert _status(world, world.current(arn).api_key) is KeyStatus.VALID
    assert world.previous(arn) is not None and _status(world, world.previous(arn).api_key) is KeyStatus.DEAD  # type: ignore[union-attr]


def test_a_failed_containment_fails_finish_and_the_retry_completes_it(
    world: RotationWorld, emergency: RotationWorld
) -> None:
    # GIVEN a previous key, and OpenAI failing deletions during the emergency rotation's finishSecret
    arn = world.create_managed_secret("chat-backend")
    emergency.declare("chat-backend", arn)
    assert world.driver().rotate(arn).succeeded and world.driver().rotate(arn).succeeded
    leaked = world.current(arn)
    driver = emergency.driver()
    token = driver.start(arn)
    for step in ("createSecret", "setSecret", "testSecret"):
        driver.step(arn, token, step)
    world.openai.faults.add(Fault(endpoint="delete_service_account", status=500))
    # WHEN finishSecret runs THEN it fails after promoting (AWSPENDING stays, so Secrets Manager retries)
    with pytest.raises(ServerError, match="delete service account"):
        driver.step(arn, token, "finishSecret")
    assert sorted(world.stages(arn)[token]) == ["AWSCURRENT", "AWSPENDING"]
    # AND the retry, once OpenAI recovers, revokes the leaked key and completes the rotation
    world.openai.faults.clear()
    driver.step(arn, token, "finishSecret")
    assert _status(world, leaked.api_key) is KeyStatus.DEAD
    assert world.stages(arn)[token] == ["AWSCURRENT"]
    assert json.loads(world.secrets.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
