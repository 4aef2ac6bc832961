"""A crash right after any remote call of a rotation, then Secrets Manager's retry, converges with no orphan."""

from __future__ import annotations

import dataclasses
from typing import Any

import boto3
import pytest

from keyrot.constants import CLOCK_SKEW_SECONDS, ROTATION_TIMEOUT_SECONDS
from keyrot.openai_admin import KeyStatus, OpenAIKeyProbe, OpenAITransport
from keyrot.rotation.naming import ServiceAccountName
from lab.remote_calls import RemoteCallLog, SimulatedCrash
from lab.rotation_driver import RotationDriver
from lab.scenario import RotationWorld

REGION = "us-east-1"


def _instrumented(world: RotationWorld, log: RemoteCallLog) -> RotationWorld:
    client = log.attach(boto3.client("secretsmanager", region_name=REGION))
    return dataclasses.replace(world, secrets=client, session_factory=log.session)


def _lambda_driver(world: RotationWorld, log: RemoteCallLog) -> RotationDriver:
    """Secrets Manager's side stays uninstrumented; only the function's own calls are recorded (and crash)."""
    return RotationDriver(world.secrets, _instrumented(world, log).invoker())


def _rotation_calls(world: RotationWorld, *, with_previous: bool) -> list[str]:
    """The remote calls of one successful rotation, recorded on a scratch secret."""
    arn = world.create_managed_secret("scratch" + ("-second" if with_previous else "-first"))
    if with_previous:
        world.driver().rotate(arn)
    log = RemoteCallLog()
    assert _lambda_driver(world, log).rotate(arn).succeeded
    return list(log.calls)


@pytest.mark.parametrize("with_previous", [False, True], ids=["first-rotation", "later-rotation"])
def test_crash_after_each_remote_call_then_retry_converges(world: RotationWorld, with_previous: bool) -> None:
    sequence = _rotation_calls(world, with_previous=with_previous)
    assert any(call.startswith("openai:POST") for call in sequence) and "aws:PutSecretValue" in sequence
    probe = OpenAIKeyProbe(OpenAITransport(world.openai.base_url))
    for index, call in enumerate(sequence, start=1):
        # GIVEN a secret (with a previous key for later rotations)
        arn = world.create_managed_secret(f"crash-{int(with_previous)}-{index}")
        if with_previous:
            world.driver().rotate(arn)
        before = world.current(arn) if with_previous else None
        # WHEN the Lambda dies right after remote call number `index`
        log = RemoteCallLog()
        log.crash_after = index
        driver = _lambda_driver(world, log)
        token = driver.start(arn)
        with pytest.raises(SimulatedCrash):
            driver.rotate(arn, token=token)
        assert log.calls[-1] == call, f"crash point moved: {log.calls}"
        # THEN whatever is current still works, and the retry with the same token converges
        if before is not None:
            mid_crash = world.current(arn)  # the old key, or the new one if the crash came after promotion
            assert probe.check(mid_crash.api_key).status is KeyStatus.VALID
            assert probe.check(before.api_key).status is KeyStatus.VALID  # the grace period is not cut short
        log.crash_after = None
        run = driver.rotate(arn, token=token)
        assert run.succeeded, (call, run.failures)
        current = world.current(arn)
        assert probe.check(current.api_key).status is KeyStatus.VALID
        assert "AWSPENDING" not in str(world.stages(arn))
        names = [a.name for a in world.keyrot_accounts() if a.name.endswith(token)]
        assert len(names) == 1, f"orphan after crash at {call}: {names}"
        owners = {a.id for a in world.keyrot_accounts() if f":crash-{int(with_previous)}-{index}:" in a.name}
        assert owners == {current.service_account_id} | ({before.service_account_id} if before else set())


def test_lost_create_response_is_retried_without_leaving_a_twin(world: RotationWorld) -> None:
    from lab.openai_standin import Fault

    # GIVEN OpenAI creates the account but the answer is lost (a 500 after the effect), then succeeds
    world.openai.faults.add(Fault(endpoint="create_service_account", calls={1}, status=500, after_effect=True))
    arn = world.create_managed_secret("chat-backend")
    run = world.driver().rotate(arn)
    # THEN createSecret fails without retrying the create (it may have taken effect), Secrets Manager's retry mints
    # a second account, and the engine deletes the first: one account, the stored one
    assert run.succeeded, run.failures
    assert len(world.openai.calls_to("create_service_account")) == 2
    (account,) = world.keyrot_accounts()
    assert account.id == world.current(arn).service_account_id


def _leftover(world: RotationWorld, key_name: str, token: str, age_seconds: float) -> str:
    """An account minted for `token` `age_seconds` ago whose key was never stored (its invocation died)."""
    name = str(ServiceAccountName(world.environment, key_name, token))
    account, _ = world.openai.state.create_service_account(world.project_id, name, with_key=True, expires_in=None)
    account.created_at = int(world.now().timestamp() - age_seconds)
    return account.id


def _order(world: RotationWorld) -> list[str]:
    return [
        c.endpoint for c in world.openai.calls if c.endpoint in ("create_service_account", "delete_service_account")
    ]


def test_an_abandoned_account_of_the_rotation_is_deleted_before_minting_again(world: RotationWorld) -> None:
    # GIVEN an account minted for this rotation longer ago than any invocation lives, its key never stored
    arn = world.create_managed_secret("chat-backend")
    token = world.driver().start(arn)
    orphan = _leftover(world, "chat-backend", token, age_seconds=ROTATION_TIMEOUT_SECONDS + CLOCK_SKEW_SECONDS + 30)
    # WHEN the rotation runs
    run = world.driver().rotate(arn, token=token)
    # THEN the orphan is deleted before the new account is minted, and only the stored account remains
    assert run.succeeded, run.failures
    assert _order(world) == ["delete_service_account", "create_service_account"]
    assert orphan not in {a.id for a in world.keyrot_accounts()}
    assert [a.id for a in world.keyrot_accounts()] == [world.current(arn).service_account_id]


def test_a_recent_account_of_the_rotation_is_deleted_only_after_the_new_key_is_stored(world: RotationWorld) -> None:
    # GIVEN an account minted for this rotation seconds ago: a running duplicate invocation may be about to store it
    arn = world.create_managed_secret("chat-backend")
    token = world.driver().start(arn)
    _leftover(world, "chat-backend", token, age_seconds=5)
    # WHEN the rotation runs THEN it mints first, stores, and only then deletes the leftover
    run = world.driver().rotate(arn, token=token)
    assert run.succeeded, run.failures
    assert _order(world) == ["create_service_account", "delete_service_account"]
    assert [a.id for a in world.keyrot_accounts()] == [world.current(arn).service_account_id]


def test_failed_put_of_the_pending_value_deletes_the_unstored_account(world: RotationWorld) -> None:
    arn = world.create_managed_secret("chat-backend")
    failing: dict[str, Any] = {"left": 1}

    def reject_put(params: Any, **_: Any) -> None:
        if failing["left"]:
            failing["left"] -= 1
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "InternalServiceError", "Message": "boom"}}, "PutSecretValue")

    world.secrets.meta.events.register("provide-client-params.secrets-manager.PutSecretValue", reject_put)
    driver = world.driver()
    token = driver.start(arn)
    with pytest.raises(Exception, match="PutSecretValue failed: InternalServiceError"):
        driver.step(arn, token, "createSecret")
    assert world.keyrot_accounts() == []
    assert driver.rotate(arn, token=token).succeeded
    assert len(world.keyrot_accounts()) == 1
