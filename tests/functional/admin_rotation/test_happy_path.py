"""The admin key rotates: a new admin key is minted with an expiry backstop, validated with itself, and promoted; the
old one stays live through its grace period."""

from __future__ import annotations

import json
from datetime import timedelta

from keyrot.admin_rotation import AdminKeyName
from keyrot.openai_admin import OpenAIAdminClient, OpenAITransport
from keyrot.secret_model import AdminCredentials

from .world import AdminWorld


def test_first_rotation_replaces_the_bootstrap_key_with_a_keyrot_admin_key(admin_world: AdminWorld) -> None:
    # GIVEN the admin-key secret holding the key an organization owner made in the console
    world = admin_world
    # WHEN Secrets Manager rotates it
    run = world.rotate()
    # THEN the current admin key is new, named for the rotation, works, and the bootstrap key is AWSPREVIOUS
    current = world.current()
    assert current.admin_key != world.bootstrap_key and world.authenticates(current.admin_key)
    assert world.admin_key(current.key_id or "").name == str(AdminKeyName("dev", run.token))
    previous = world.previous()
    assert previous is not None and previous.key_id == world.bootstrap_key_id
    assert world.stages() == {run.token: ["AWSCURRENT"], _other(world, run.token): ["AWSPREVIOUS"]}
    # AND the bootstrap key still works (the functions may hold it; deleting it is opt-in)
    assert world.authenticates(world.bootstrap_key)


def test_a_minted_admin_key_expires_after_the_interval_plus_slack(admin_world: AdminWorld) -> None:
    # GIVEN a 30-day schedule and 14 days of slack (the defaults)
    world = admin_world
    # WHEN it rotates
    world.rotate()
    # THEN OpenAI expires the new key 44 days after its creation, and the secret records both times
    current = world.current()
    key = world.admin_key(current.key_id or "")
    assert key.expires_at is not None and key.expires_at - key.created_at == (30 + 14) * 86400
    assert current.created_at is not None and current.expires_at is not None
    assert current.expires_at - current.created_at == timedelta(days=44)


def test_the_secret_value_keeps_the_admin_key_contract(admin_world: AdminWorld) -> None:
    # GIVEN a rotated admin-key secret
    world = admin_world
    world.rotate()
    # WHEN a reader of the contract reads it (the functions' load_admin_client)
    text = world.secrets.get_secret_value(SecretId=world.arn, VersionStage="AWSCURRENT")["SecretString"]
    credentials = AdminCredentials.from_json(text)
    # THEN it finds the admin key and its id, and the added fields are the times only
    assert (credentials.admin_key, credentials.key_id) == (world.current().admin_key, world.current().key_id)
    assert set(json.loads(text)) == {"admin_key", "key_id", "created_at", "expires_at"}


def test_the_new_admin_key_can_do_what_the_functions_do(admin_world: AdminWorld) -> None:
    # GIVEN a rotated admin key
    world = admin_world
    world.rotate()
    admin = OpenAIAdminClient(world.current().admin_key, OpenAITransport(world.openai.base_url))
    # WHEN it lists the project's service accounts and mints one (the application rotation's job)
    minted = admin.create_service_account(world.project_id, "keyrot:dev:chat-backend:t" * 1)
    # THEN it succeeds
    assert minted.api_key and admin.delete_service_account(world.project_id, minted.service_account_id)


def test_every_step_is_idempotent(admin_world: AdminWorld) -> None:
    # GIVEN a rotation started
    world = admin_world
    driver = world.driver()
    token = driver.start(world.arn)
    # WHEN every step runs twice
    for step in ("createSecret", "createSecret", "setSecret", "setSecret", "testSecret", "testSecret"):
        driver.step(world.arn, token, step)
    driver.step(world.arn, token, "finishSecret")
    driver.step(world.arn, token, "finishSecret")
    # THEN one key was minted, it is current, and no label is left behind
    assert len(world.openai.calls_to("create_admin_api_key")) == 1
    assert world.stages()[token] == ["AWSCURRENT"]
    assert [key.id for key in world.live_keyrot_keys()] == [world.current().key_id]


def test_a_second_rotation_leaves_the_first_keyrot_key_in_its_grace_period(admin_world: AdminWorld) -> None:
    # GIVEN an admin key rotated once, its predecessor's grace long over
    world = admin_world
    world.rotate()
    first = world.current()
    world.advance(world.settings.grace_period_seconds + 1)
    # WHEN it rotates again
    world.rotate()
    # THEN the first keyrot key is AWSPREVIOUS and still works; only two keyrot keys are live
    previous = world.previous()
    assert previous is not None and previous.key_id == first.key_id
    assert world.authenticates(first.admin_key)
    assert {key.id for key in world.live_keyrot_keys()} == {first.key_id, world.current().key_id}


def _other(world: AdminWorld, token: str) -> str:
    return next(version for version in world.stages() if version != token)
