"""The inventory's loader against moto and the stand-in: only declared secrets are read, one bad secret is that
secret's problem, versions that lost their labels are found through their accounts, promotion comes from the tag."""

from __future__ import annotations

import dataclasses
from typing import Any

from keyrot.aws.secrets import SecretDescription, SecretStore
from keyrot.inventory import DisplacedReason, KeyState, load_inventory
from keyrot.openai_admin import OpenAIAdminClient, OpenAITransport
from keyrot.settings import Deployment
from lab.scenario import RotationWorld


def _admin(world: RotationWorld) -> OpenAIAdminClient:
    return OpenAIAdminClient(world.admin_key, OpenAITransport(world.openai.base_url))


def _deployment(world: RotationWorld) -> Deployment:
    assert world.settings is not None
    return world.settings.deployment


def _load(world: RotationWorld, store: Any = None, deployment: Deployment | None = None) -> Any:
    return load_inventory(
        store or SecretStore(world.secrets),
        _admin(world),
        environment=world.environment,
        deployment=deployment or _deployment(world),
        now=world.now(),
        grace_period_seconds=86400,
    )


def _reads(world: RotationWorld) -> list[str]:
    """Record the SecretId of every GetSecretValue and DescribeSecret from now on."""
    seen: list[str] = []
    world.secrets.meta.events.register(
        "provide-client-params.secrets-manager.*",
        lambda params, model, **_: (
            seen.append(params.get("SecretId", "")) if model.name in ("GetSecretValue", "DescribeSecret") else None
        ),
    )
    return seen


def test_a_decoy_tagged_for_the_environment_is_never_read(world: RotationWorld) -> None:
    # GIVEN a declared secret, and a decoy someone created and tagged keyrot:environment=dev
    arn = world.create_managed_secret("chat-backend")
    assert world.driver().rotate(arn).succeeded
    decoy = world.create_managed_secret("decoy", declare=False, rotation=False)
    reads = _reads(world)
    # WHEN the inventory is taken THEN only the declared secret is read, and the decoy is not in it
    inventory = _load(world)
    assert [s.key_name for s in inventory.secrets] == ["chat-backend"]
    assert decoy not in reads and arn in reads


def test_a_secret_that_cannot_be_read_is_its_own_problem_and_the_others_are_inventoried(world: RotationWorld) -> None:
    # GIVEN two declared secrets, one of them gone (or denied) for the loader
    arn = world.create_managed_secret("chat-backend")
    assert world.driver().rotate(arn).succeeded
    missing = arn.replace("chat-backend", "batch")
    world.declare("batch", missing)
    # WHEN the inventory is taken
    inventory = _load(world)
    # THEN the readable one is complete, and the other is reported by name
    chat = inventory.secret("chat-backend")
    assert chat is not None and chat.current is not None and chat.current.state is KeyState.CURRENT
    ((name, problem),) = inventory.problems
    assert name == missing and "cannot be read" in problem


def test_a_secret_whose_tags_disagree_with_the_deployment_is_reported_and_its_values_never_read(
    world: RotationWorld,
) -> None:
    # GIVEN the declared secret of chat-backend, retagged for another key
    arn = world.create_managed_secret("chat-backend")
    assert world.driver().rotate(arn).succeeded
    world.secrets.tag_resource(SecretId=arn, Tags=[{"Key": "keyrot:key-name", "Value": "billing"}])
    reads: list[str] = []
    world.secrets.meta.events.register(
        "provide-client-params.secrets-manager.GetSecretValue", lambda params, **_: reads.append(params["SecretId"])
    )
    # WHEN the inventory is taken THEN it is a problem of that secret, and none of its values was read
    inventory = _load(world)
    assert "deployment declares it for 'chat-backend'" in inventory.problems[0][1]
    assert arn not in reads


class AwsDescribe(SecretStore):
    """DescribeSecret as AWS answers it: versions without a label are not listed (moto lists them)."""

    def describe(self, secret_id: str) -> SecretDescription:
        description = super().describe(secret_id)
        labelled = {vid: stages for vid, stages in description.versions.items() if stages}
        return dataclasses.replace(description, versions=labelled)


def test_a_version_that_lost_its_labels_is_found_through_its_account(world: RotationWorld) -> None:
    # GIVEN a key pushed out of every label by hand (no finishSecret to revoke it), its account still live
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
    # WHEN the inventory is taken with AWS's DescribeSecret (which omits that version)
    inventory = _load(world, store=AwsDescribe(world.secrets))
    # THEN the key is there, displaced, with the version that holds it
    entry = inventory.by_key_id(first.key_id)
    assert entry is not None
    assert (entry.state, entry.reason, entry.version_id) == (
        KeyState.DISPLACED,
        DisplacedReason.UNLABELLED,
        first_version,
    )


def test_promotion_comes_from_the_tag_finish_secret_writes(world: RotationWorld) -> None:
    arn = world.create_managed_secret("chat-backend")
    before = world.now()
    assert world.driver().rotate(arn).succeeded
    chat = _load(world).secret("chat-backend")
    assert chat is not None and chat.promoted_at is not None
    assert before.replace(microsecond=0) <= chat.promoted_at <= world.now()


def test_an_older_deployment_that_declares_no_secrets_finds_them_by_tag(world: RotationWorld) -> None:
    arn = world.create_managed_secret("chat-backend", declare=False)
    world.declare("chat-backend", arn)
    assert world.driver().rotate(arn).succeeded
    inventory = _load(world, deployment=Deployment())
    assert [s.key_name for s in inventory.secrets] == ["chat-backend"]
