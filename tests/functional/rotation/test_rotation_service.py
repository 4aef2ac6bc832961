"""The emulated RotateSecret behaves as Secrets Manager does, so the CLI and the demo can rely on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lab.rotation_service import RotationService, installed
from lab.scenario import ROTATION_LAMBDA_ARN, RotationWorld


@pytest.fixture
def service(world: RotationWorld) -> Iterator[RotationService]:
    service = RotationService()
    service.register(ROTATION_LAMBDA_ARN, world.invoker())
    with installed(service):
        yield service


def test_rotate_secret_rotates_an_empty_secret_in_the_background(
    world: RotationWorld, service: RotationService
) -> None:
    arn = world.create_managed_secret("chat-backend", rotation=False)
    response = world.secrets.rotate_secret(
        SecretId=arn, RotationLambdaARN=ROTATION_LAMBDA_ARN, RotationRules={"AutomaticallyAfterDays": 30}
    )
    service.wait()
    assert world.stages(arn) == {response["VersionId"]: ["AWSCURRENT"]}
    assert [event.name for event in service.events_for(arn)] == ["RotationStarted", "RotationSucceeded"]
    assert world.secrets.describe_secret(SecretId=arn)["RotationEnabled"] is True


def test_a_failing_rotation_is_retried_then_blocks_new_rotations(
    world: RotationWorld, service: RotationService
) -> None:
    arn = world.create_managed_secret("chat-backend")
    world.openai.state.activation_delay_seconds = 3600  # every new key fails testSecret
    token = world.secrets.rotate_secret(SecretId=arn, RotationLambdaARN=ROTATION_LAMBDA_ARN)["VersionId"]
    service.wait()
    names = [(event.name, event.step) for event in service.events_for(arn)]
    assert names == [("RotationStarted", None)] + [("RotationFailed", "testSecret")] * 3
    with pytest.raises(ClientError, match="A previous rotation isn't complete"):
        world.secrets.rotate_secret(SecretId=arn)
    # the same token resumes (what Secrets Manager does when it reattempts)
    world.openai.state.activation_delay_seconds = 0
    world.secrets.rotate_secret(SecretId=arn, ClientRequestToken=token)
    service.wait()
    assert world.stages(arn)[token] == ["AWSCURRENT"]
    assert len(world.keyrot_accounts()) == 1


def test_unknown_function_and_missing_configuration_are_refused(world: RotationWorld, service: RotationService) -> None:
    arn = world.secrets.create_secret(Name="plain")["ARN"]
    with pytest.raises(ClientError, match="No Lambda rotation function ARN"):
        world.secrets.rotate_secret(SecretId=arn)
    with pytest.raises(ClientError, match="Resource not found for ARN"):
        world.secrets.rotate_secret(SecretId=arn, RotationLambdaARN=ROTATION_LAMBDA_ARN + "-other")


def test_rotate_immediately_false_only_tests_and_cleans_up(world: RotationWorld, service: RotationService) -> None:
    arn = world.create_managed_secret("chat-backend")
    world.secrets.rotate_secret(SecretId=arn, RotationLambdaARN=ROTATION_LAMBDA_ARN)
    service.wait()
    before: dict[str, Any] = world.stages(arn)
    current = world.current(arn).key_id
    world.secrets.rotate_secret(SecretId=arn, RotateImmediately=False)
    service.wait()
    assert [event.name for event in service.events_for(arn)][-1] == "RotationSucceeded"
    assert world.stages(arn).keys() >= before.keys()
    assert not any("AWSPENDING" in stages for stages in world.stages(arn).values())
    assert world.current(arn).key_id == current
    assert len(world.keyrot_accounts()) == 1


def test_configuring_rotation_on_an_empty_secret_does_not_fail(world: RotationWorld, service: RotationService) -> None:
    # GIVEN a fresh secret and no admin key yet: the infrastructure enables rotation without rotating
    arn = world.create_managed_secret("chat-backend", rotation=False)
    world.secrets.rotate_secret(SecretId=arn, RotationLambdaARN=ROTATION_LAMBDA_ARN, RotateImmediately=False)
    service.wait()
    # THEN the configuration check passes, nothing is minted, and no pending version is left behind
    assert [event.name for event in service.events_for(arn)] == ["RotationStarted", "RotationSucceeded"]
    assert world.keyrot_accounts() == []
    assert not any("AWSPENDING" in stages for stages in world.stages(arn).values())
