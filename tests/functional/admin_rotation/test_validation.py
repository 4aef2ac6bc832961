"""testSecret refuses a new admin key that cannot do everything keyrot needs; AWSCURRENT is never touched."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyrot.admin_rotation import AdminKeyValidationError, StalePendingAdminKeyError
from keyrot.secret_model import AdminCredentials
from lab.moto_gaps import enable_rotation
from lab.openai_standin.state import ADMIN_SCOPES

from .world import ADMIN_ROTATION_LAMBDA_ARN, AdminWorld

# What each stand-in admin scope lets keyrot do, as testSecret names it when the new key lacks it.
CAPABILITY_OF_SCOPE = {
    "api.management.read": "list admin keys",
    "api.management.write": "create and delete a service account",
    "api.usage.read": "read usage",
    "api.audit_log.read": "read the audit log",
}


def _minted(world: AdminWorld) -> tuple[str, str]:
    """A rotation started and its new key minted; returns (token, the pending key's id)."""
    driver = world.driver()
    token = driver.start(world.arn)
    driver.step(world.arn, token, "createSecret")
    pending = world.pending()
    assert pending is not None and pending.key_id is not None
    return token, pending.key_id


@pytest.mark.parametrize("scope", sorted(ADMIN_SCOPES))
def test_a_new_admin_key_missing_a_permission_is_never_promoted(admin_world: AdminWorld, scope: str) -> None:
    # GIVEN a new admin key that OpenAI narrowed: it lacks one permission keyrot needs
    world = admin_world
    assert set(CAPABILITY_OF_SCOPE) == set(ADMIN_SCOPES)
    token, key_id = _minted(world)
    world.admin_key(key_id).scopes = ADMIN_SCOPES - {scope}
    # WHEN testSecret runs
    with pytest.raises(AdminKeyValidationError, match=CAPABILITY_OF_SCOPE[scope]) as raised:
        world.driver().step(world.arn, token, "testSecret")
    # THEN it names the key and what it cannot do, and the bootstrap key is still current and working
    assert key_id in str(raised.value)
    assert world.current().admin_key == world.bootstrap_key
    assert world.authenticates(world.bootstrap_key)


def test_secrets_manager_retries_never_promote_a_key_that_cannot_read_usage(admin_world: AdminWorld) -> None:
    # GIVEN a new admin key that cannot read usage
    world = admin_world
    token, key_id = _minted(world)
    world.admin_key(key_id).scopes = ADMIN_SCOPES - {"api.usage.read"}
    # WHEN Secrets Manager runs the whole rotation, retrying it
    run = world.driver().rotate(world.arn, token=token)
    # THEN every attempt fails in testSecret, nothing more is minted and AWSCURRENT is the bootstrap key
    assert not run.succeeded and {step for step, _ in run.failures} == {"testSecret"}
    assert len(world.openai.calls_to("create_admin_api_key")) == 1
    assert world.current().admin_key == world.bootstrap_key


def test_an_organization_without_audit_logging_still_rotates(admin_world: AdminWorld) -> None:
    # GIVEN an organization whose audit logging is off (no admin key can read it)
    world = admin_world
    world.openai.state.audit.enabled = False
    # WHEN the admin key rotates
    run = world.driver().rotate(world.arn)
    # THEN the new key is promoted: the audit log is the organization's setting, not the key's defect
    assert run.succeeded, run.failures
    assert world.current().admin_key != world.bootstrap_key


def test_a_pending_value_naming_a_key_keyrot_did_not_mint_is_refused(admin_world: AdminWorld) -> None:
    # GIVEN someone with PutSecretValue stores their own admin key as the pending value of a rotation
    world = admin_world
    planted = world.openai.state.add_admin_key(name="attacker")
    planted_id = world.openai.state.admin_keys[planted].id
    driver = world.driver()
    token = driver.start(world.arn)
    world.secrets.put_secret_value(
        SecretId=world.arn,
        ClientRequestToken=token,
        SecretString=AdminCredentials(planted, planted_id).to_json(),
        VersionStages=["AWSPENDING"],
    )
    # WHEN the rotation runs
    driver.step(world.arn, token, "createSecret")
    with pytest.raises(AdminKeyValidationError, match="keyrot did not mint it for this version"):
        driver.step(world.arn, token, "testSecret")
    # THEN it is not promoted
    assert world.current().admin_key == world.bootstrap_key


def test_a_project_the_new_key_cannot_reach_is_named(admin_world: AdminWorld) -> None:
    # GIVEN a deployment declaring a project that does not exist in the organization
    world = admin_world.with_settings(project_id="proj_doesnotexist00000000")
    token, _ = _minted(world)
    # WHEN testSecret runs THEN it refuses, naming the project
    with pytest.raises(AdminKeyValidationError, match="proj_doesnotexist00000000"):
        world.driver().step(world.arn, token, "testSecret")


def test_a_pending_key_too_close_to_its_expiry_is_discarded_not_promoted(admin_world: AdminWorld) -> None:
    # GIVEN a pending admin key minted, then a rotation stalled for two weeks (44 days of life minus 14)
    world = admin_world
    token, key_id = _minted(world)
    world.advance(14 * 86400)
    # WHEN finishSecret is reached
    with pytest.raises(StalePendingAdminKeyError, match=key_id):
        world.driver().step(world.arn, token, "finishSecret")
    # THEN the key is deleted, AWSPENDING is gone and the bootstrap key is still current
    assert not world.live_keyrot_keys()
    assert "AWSPENDING" not in json.dumps(world.stages())
    assert world.current().admin_key == world.bootstrap_key


def test_testing_alone_checks_the_current_bootstrap_key(admin_world: AdminWorld) -> None:
    # GIVEN RotateImmediately=false: testSecret runs alone on a copy of the current (bootstrap) value
    world = admin_world
    driver = world.driver()
    token = driver.start(world.arn)
    text = world.secrets.get_secret_value(SecretId=world.arn, VersionStage="AWSCURRENT")["SecretString"]
    world.secrets.put_secret_value(
        SecretId=world.arn, ClientRequestToken=token, SecretString=text, VersionStages=["AWSPENDING"]
    )
    # WHEN testSecret runs THEN the bootstrap key passes (its name is not keyrot's, and need not be)
    driver.step(world.arn, token, "testSecret")
    assert world.openai.calls_to("create_service_account")


def test_configuring_rotation_before_any_admin_key_was_put_tests_nothing_and_fails_nothing(
    openai_standin: Any, secrets_client: Any
) -> None:
    # GIVEN the admin-key secret as the infrastructure creates it (no value), rotation configured with
    # RotateImmediately=false: Secrets Manager runs testSecret alone on an empty pending version
    world = AdminWorld.create(openai_standin, secrets_client)
    empty = world.secrets.create_secret(Name="keyrot/qa/openai-admin-key")["ARN"]
    enable_rotation("us-east-1", empty, ADMIN_ROTATION_LAMBDA_ARN)
    world = world.with_settings(admin_secret_arn=empty)
    world.arn = empty
    driver = world.driver()
    token = driver.start(empty)
    world.openai.reset_calls()
    # WHEN testSecret runs THEN it succeeds without calling OpenAI (deploying the schedule must not fail)
    outcome = driver.step(empty, token, "testSecret")
    assert outcome.action == "nothing to test: the secret has no value yet"
    assert world.openai.calls == []
