"""The old admin key is deleted once no function can hold it, with the new key; nothing keyrot minted is left behind;
a human-made admin key is deleted only when the deployment opts in."""

from __future__ import annotations

import uuid

import pytest

from keyrot.admin_rotation import AdminKeyName, AdminRotationTooSoonError
from keyrot.constants import ADMIN_ROTATION_TIMEOUT_SECONDS, CLOCK_SKEW_SECONDS
from lab.openai_standin.audit import Actor
from lab.openai_standin.state import OWNER_EMAIL, OWNER_USER_ID

from .world import AdminWorld

ABANDONED_AFTER = ADMIN_ROTATION_TIMEOUT_SECONDS + CLOCK_SKEW_SECONDS + 1


def _rotated_twice(world: AdminWorld) -> str:
    """Two rotations (the second after the first key's grace); returns the first keyrot key's value."""
    world.rotate()
    first = world.current().admin_key
    world.advance(world.settings.grace_period_seconds + 1)
    world.rotate()
    return first


def _mint_by_hand(world: AdminWorld, name: str) -> str:
    owner = Actor.session(OWNER_USER_ID, OWNER_EMAIL)
    return world.openai.state.create_admin_key(name, expires_in=None, actor=owner).value


def test_the_previous_keyrot_key_lives_through_its_grace_then_is_deleted(admin_world: AdminWorld) -> None:
    # GIVEN a keyrot admin key just replaced by the next rotation
    world = admin_world
    first = _rotated_twice(world)
    # WHEN the cleanup runs within the grace period
    early = world.cleanup()
    # THEN the previous key is kept, and the cleanup says until when
    assert early.deleted == () and world.authenticates(first)
    assert early.previous_due_at is not None
    # WHEN it runs once the grace has passed
    world.advance(world.settings.grace_period_seconds)
    late = world.cleanup()
    # THEN it is deleted, no longer authenticates, and the version is labelled KEYROT_REVOKED
    assert [doomed.reason for doomed in late.deleted] == ["previous"]
    assert not world.authenticates(first)
    previous_version = next(v for v, stages in world.stages().items() if "AWSPREVIOUS" in stages)
    assert "KEYROT_REVOKED" in world.stages()[previous_version]
    # AND a later run has nothing left to do
    assert world.cleanup().deleted == ()


def test_the_bootstrap_key_stays_live_unless_the_deployment_opts_in(admin_world: AdminWorld) -> None:
    # GIVEN the first rotation replaced the console-made key, and its grace has passed
    world = admin_world
    world.rotate()
    world.advance(world.settings.grace_period_seconds + 1)
    # WHEN the cleanup runs without deleteBootstrapKey
    cleanup = world.cleanup()
    # THEN the bootstrap key is left live, and the cleanup says why
    assert cleanup.deleted == () and world.authenticates(world.bootstrap_key)
    assert any("bootstrap" in note for note in cleanup.notes)


def test_the_bootstrap_key_is_deleted_after_the_first_rotation_when_opted_in(admin_world: AdminWorld) -> None:
    # GIVEN deleteBootstrapKey, and the first rotation done
    world = admin_world.with_settings(delete_bootstrap_key=True)
    world.rotate()
    # WHEN the cleanup runs after the grace
    assert world.cleanup().deleted == ()
    world.advance(world.settings.grace_period_seconds + 1)
    cleanup = world.cleanup()
    # THEN the human-made key is deleted: no admin key made by a person stays live for this environment
    assert [(d.key_id, d.reason) for d in cleanup.deleted] == [(world.bootstrap_key_id, "bootstrap")]
    assert not world.authenticates(world.bootstrap_key)


def test_a_bootstrap_key_stored_without_its_id_is_never_guessed(openai_standin: object, secrets_client: object) -> None:
    # GIVEN a bootstrap key put without --key-id, and deleteBootstrapKey on
    world = AdminWorld.create(openai_standin, secrets_client, record_key_id=False, delete_bootstrap_key=True)  # type: ignore[arg-type]
    world.rotate()
    world.advance(world.settings.grace_period_seconds + 1)
    # WHEN the cleanup runs
    cleanup = world.cleanup()
    # THEN no admin key is deleted (keyrot never guesses which human-made key it was), and it says how to fix that
    assert cleanup.deleted == () and world.authenticates(world.bootstrap_key)
    assert any("--key-id" in note for note in cleanup.notes)


def test_keys_of_an_abandoned_attempt_are_deleted_once_no_invocation_can_store_them(admin_world: AdminWorld) -> None:
    # GIVEN a keyrot-named admin key of this environment that no version holds (an attempt that crashed)
    world = admin_world
    world.rotate()
    orphan = _mint_by_hand(world, str(AdminKeyName("dev", str(uuid.uuid4()))))
    # WHEN the cleanup runs while an invocation could still store it
    assert world.cleanup().deleted == ()
    assert world.authenticates(orphan)
    # THEN once it is older than any invocation can live, it is deleted
    world.advance(ABANDONED_AFTER)
    cleanup = world.cleanup()
    assert [doomed.reason for doomed in cleanup.deleted] == ["abandoned"]
    assert not world.authenticates(orphan)


def test_another_environments_admin_keys_are_never_touched(admin_world: AdminWorld) -> None:
    # GIVEN prod's keyrot admin key in the same organization, and dev's copy of it as its previous key
    world = admin_world.with_settings(delete_bootstrap_key=True)
    prod_key = _mint_by_hand(world, str(AdminKeyName("prod", str(uuid.uuid4()))))
    world.rotate()
    world.advance(world.settings.grace_period_seconds + ABANDONED_AFTER)
    # WHEN dev's cleanup runs
    cleanup = world.cleanup()
    # THEN prod's key still works
    assert world.authenticates(prod_key)
    assert all(doomed.key_id != world.openai.state.admin_keys[prod_key].id for doomed in cleanup.deleted)


def test_a_previous_key_that_is_another_environments_keyrot_key_is_kept(
    openai_standin: object, secrets_client: object
) -> None:
    # GIVEN an operator who put prod's keyrot admin key into dev's secret, then dev rotated, deleteBootstrapKey on
    world = AdminWorld.create(openai_standin, secrets_client, delete_bootstrap_key=True)  # type: ignore[arg-type]
    prod_key = _mint_by_hand(world, str(AdminKeyName("prod", str(uuid.uuid4()))))
    prod_id = world.openai.state.admin_keys[prod_key].id
    world.secrets.put_secret_value(
        SecretId=world.arn, SecretString=f'{{"admin_key": "{prod_key}", "key_id": "{prod_id}"}}'
    )
    world.advance(world.settings.grace_period_seconds + 1)  # (the bootstrap key it displaced is deleted first)
    world.rotate()
    world.advance(world.settings.grace_period_seconds + 1)
    # WHEN dev's cleanup runs
    cleanup = world.cleanup()
    # THEN prod's key is kept, and the cleanup says whose it is
    assert world.authenticates(prod_key)
    assert any("environment prod" in note for note in cleanup.notes)


def test_a_probe_account_left_by_an_interrupted_test_is_deleted(admin_world: AdminWorld) -> None:
    # GIVEN a keyless probe account an interrupted testSecret left in the project
    world = admin_world
    world.rotate()
    token = str(uuid.uuid4())
    world.openai.state.create_service_account(
        world.project_id, f"keyrot-admin-probe:dev:{token}", with_key=False, expires_in=None
    )
    # WHEN the cleanup runs after any invocation could have ended
    world.advance(ABANDONED_AFTER)
    cleanup = world.cleanup()
    # THEN it is gone
    assert len(cleanup.probes_deleted) == 1 and world.probe_accounts() == []


def test_a_rotation_within_the_previous_keys_grace_is_refused_without_minting(admin_world: AdminWorld) -> None:
    # GIVEN an admin key rotated twice: the first keyrot key is AWSPREVIOUS, in its grace
    world = admin_world
    _rotated_twice(world)
    minted = len(world.openai.calls_to("create_admin_api_key"))
    # WHEN a third rotation starts at once
    driver = world.driver()
    token = driver.start(world.arn)
    with pytest.raises(AdminRotationTooSoonError, match="grace period until"):
        driver.step(world.arn, token, "createSecret")
    # THEN nothing was minted: two keyrot admin keys live, never three
    assert len(world.openai.calls_to("create_admin_api_key")) == minted
    assert len(world.live_keyrot_keys()) == 2
    # AND once the grace has passed, the retry deletes the previous key first, then mints
    world.advance(world.settings.grace_period_seconds + 1)
    run = driver.rotate(world.arn, token=token)
    assert run.succeeded, run.failures
    assert len(world.live_keyrot_keys()) == 2


def test_with_no_grace_finish_secret_deletes_the_previous_key_at_once(admin_world: AdminWorld) -> None:
    # GIVEN a grace of 0 (an emergency: the old admin key may have leaked)
    world = admin_world.with_settings(grace_period_seconds=0)
    world.rotate()
    first = world.current().admin_key
    # WHEN the next rotation finishes
    world.rotate()
    # THEN the previous admin key is already dead
    assert not world.authenticates(first)


def test_a_cleanup_before_any_admin_key_was_put_does_nothing(openai_standin: object, secrets_client: object) -> None:
    # GIVEN an admin-key secret as the infrastructure creates it: no value yet
    world = AdminWorld.create(openai_standin, secrets_client)  # type: ignore[arg-type]
    empty = world.secrets.create_secret(Name="keyrot/qa/openai-admin-key")["ARN"]
    world = world.with_settings(admin_secret_arn=empty)
    world.arn = empty
    world.openai.reset_calls()
    # WHEN the scheduled cleanup runs THEN it succeeds without calling OpenAI
    cleanup = world.cleanup()
    assert cleanup.deleted == () and cleanup.failures == ()
    assert world.openai.calls == []
