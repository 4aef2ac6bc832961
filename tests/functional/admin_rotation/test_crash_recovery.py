"""A crash right after any remote call of an admin rotation, then Secrets Manager's retry, converges: one current
admin key that works, no twin, no probe account, the previous key kept for its grace."""

from __future__ import annotations

import dataclasses
import itertools
import re
from typing import Any

import boto3
import pytest

from keyrot.admin_rotation import AdminKeyName
from keyrot.constants import ADMIN_ROTATION_TIMEOUT_SECONDS, CLOCK_SKEW_SECONDS
from lab.openai_standin import Fault, OpenAIStandIn
from lab.openai_standin.audit import Actor
from lab.openai_standin.state import OWNER_EMAIL, OWNER_USER_ID
from lab.remote_calls import RemoteCallLog, SimulatedCrash
from lab.rotation_driver import RotationDriver

from .world import AdminWorld

REGION = "us-east-1"
_environments = itertools.count(1)


def _fresh(openai: OpenAIStandIn, secrets: Any, *, rotated: bool) -> AdminWorld:
    world = AdminWorld.create(openai, secrets, environment=f"crash-{next(_environments)}")
    if rotated:  # a keyrot key current, the bootstrap key previous and past its grace
        world.rotate()
        world.advance(world.settings.grace_period_seconds + 1)
    return world


def _lambda_driver(world: AdminWorld, log: RemoteCallLog) -> RotationDriver:
    """Secrets Manager's side plain; only the function's own calls are recorded (and crash)."""
    client = log.attach(boto3.client("secretsmanager", region_name=REGION))
    function_world = dataclasses.replace(world, secrets=client, session_factory=log.session)
    return RotationDriver(world.secrets, function_world.invoker())


@pytest.mark.parametrize("rotated", [False, True], ids=["first-rotation", "later-rotation"])
def test_crash_after_each_remote_call_then_retry_converges(
    openai_standin: OpenAIStandIn, secrets_client: Any, rotated: bool
) -> None:
    # GIVEN the remote calls of one successful admin rotation
    recording = RemoteCallLog()
    scratch = _fresh(openai_standin, secrets_client, rotated=rotated)
    assert _lambda_driver(scratch, recording).rotate(scratch.arn).succeeded
    sequence = list(recording.calls)
    assert any("admin_api_keys" in call for call in sequence) and "aws:PutSecretValue" in sequence
    for index, call in enumerate(sequence, start=1):
        world = _fresh(openai_standin, secrets_client, rotated=rotated)
        before = world.current()
        # WHEN the function dies right after remote call number `index`
        log = RemoteCallLog()
        log.crash_after = index
        driver = _lambda_driver(world, log)
        token = driver.start(world.arn)
        with pytest.raises(SimulatedCrash):
            driver.rotate(world.arn, token=token)
        assert _shape(log.calls[-1]) == _shape(call), f"crash point moved: {log.calls}"
        # THEN whatever is current still works, and so does the key it replaced (its grace has not even begun)
        assert world.authenticates(world.current().admin_key), call
        assert world.authenticates(before.admin_key), call
        # AND Secrets Manager's retry with the same token converges
        log.crash_after = None
        run = driver.rotate(world.arn, token=token)
        assert run.succeeded, (call, run.failures)
        current = world.current()
        assert world.authenticates(current.admin_key)
        assert "AWSPENDING" not in str(world.stages())
        assert [key.id for key in world.live_keyrot_keys() if key.name.endswith(token)] == [current.key_id], call
        assert world.probe_accounts() == [], call
        expected = {current.key_id} | ({before.key_id} if rotated else set())
        assert {key.id for key in world.live_keyrot_keys()} == expected, call


def _shape(call: str) -> str:
    """A call's name without the admin key id in its path (ids differ from one world to the next)."""
    return re.sub(r"/admin_api_keys/[^/]+", "/admin_api_keys/{key}", call)


def test_a_lost_create_answer_is_not_retried_and_leaves_no_twin(admin_world: AdminWorld) -> None:
    # GIVEN OpenAI creates the admin key but the answer is lost (a 500 after the effect)
    world = admin_world
    world.openai.faults.add(Fault(endpoint="create_admin_api_key", calls={1}, status=500, after_effect=True))
    # WHEN Secrets Manager rotates (and retries)
    run = world.driver().rotate(world.arn)
    # THEN the create was never retried blindly, the retry minted once more, and the twin was deleted by name
    assert run.succeeded and run.attempts == 2, run.failures
    assert len(world.openai.calls_to("create_admin_api_key")) == 2
    assert [key.id for key in world.live_keyrot_keys()] == [world.current().key_id]


def _leftover(world: AdminWorld, token: str, age_seconds: float) -> str:
    owner = Actor.session(OWNER_USER_ID, OWNER_EMAIL)
    key = world.openai.state.create_admin_key(str(AdminKeyName(world.environment, token)), expires_in=None, actor=owner)
    key.created_at = int(world.now().timestamp() - age_seconds)
    return key.id


def _order(world: AdminWorld) -> list[str]:
    wanted = ("create_admin_api_key", "delete_admin_api_key")
    return [call.endpoint for call in world.openai.calls if call.endpoint in wanted]


def test_an_abandoned_key_of_the_rotation_is_deleted_before_minting_again(admin_world: AdminWorld) -> None:
    # GIVEN an admin key minted for this rotation longer ago than any invocation lives, never stored
    world = admin_world
    token = world.driver().start(world.arn)
    orphan = _leftover(world, token, ADMIN_ROTATION_TIMEOUT_SECONDS + CLOCK_SKEW_SECONDS + 30)
    # WHEN the rotation runs THEN the orphan is deleted first, then the new key minted
    run = world.driver().rotate(world.arn, token=token)
    assert run.succeeded, run.failures
    assert _order(world) == ["delete_admin_api_key", "create_admin_api_key"]
    assert orphan not in {key.id for key in world.live_keyrot_keys()}


def test_a_recent_key_of_the_rotation_is_deleted_only_after_the_new_key_is_stored(admin_world: AdminWorld) -> None:
    # GIVEN an admin key minted for this rotation seconds ago: a duplicate invocation may be about to store it
    world = admin_world
    token = world.driver().start(world.arn)
    _leftover(world, token, age_seconds=5)
    # WHEN the rotation runs THEN it mints and stores first, and only then deletes the leftover
    run = world.driver().rotate(world.arn, token=token)
    assert run.succeeded, run.failures
    assert _order(world) == ["create_admin_api_key", "delete_admin_api_key"]
    assert [key.id for key in world.live_keyrot_keys()] == [world.current().key_id]
