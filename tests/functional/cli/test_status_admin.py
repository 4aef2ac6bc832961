"""`keyrot status` shows the environment's admin key: its id, its age and its next rotation, in the table's footer and
in the JSON document; an admin-key secret it cannot read never hides the keys."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from keyrot.cli import context as cli_context
from lab.scenario import RotationWorld
from tests.functional.admin_rotation.world import AdminWorld

from .conftest import Cli, rotated


def test_status_shows_the_admin_key_id_age_and_next_rotation(world: RotationWorld, cli: Cli) -> None:
    # GIVEN an environment whose admin key keyrot rotated
    rotated(world, "chat-backend")
    admin = AdminWorld.adopt(world)
    admin.rotate()
    # WHEN status runs
    result = cli("status", "--env", "dev")
    # THEN the admin key's id, age and next rotation are shown, and the bootstrap key waiting to be deleted
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if line.startswith("Admin key:"))
    assert admin.current().key_id in line and "age " in line and "next rotation" in line
    assert f"previous admin key {admin.bootstrap_key_id}: not deleted yet" in result.stdout


def test_status_json_carries_the_admin_key(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a rotated admin key
    rotated(world, "chat-backend")
    admin = AdminWorld.adopt(world)
    admin.rotate()
    # WHEN status runs with --json
    result = cli("status", "--env", "dev", "--json")
    # THEN each environment has an admin_key object: ids, age from the key's creation, the rotation schedule
    assert result.exit_code == 0, result.output
    [environment] = json.loads(result.stdout)["environments"]
    key = environment["admin_key"]
    assert key["key_id"] == admin.current().key_id
    assert key["age_from"] == "minted" and key["age_seconds"] >= 0
    assert key["rotation_enabled"] is True and key["rotation_interval_days"] == 30
    assert key["previous"] == {
        "version_id": key["previous"]["version_id"],
        "key_id": admin.bootstrap_key_id,
        "deleted": False,
    }
    assert key["pending"] is None and key["problem"] is None


def test_status_of_a_bootstrap_key_counts_its_age_from_when_it_was_stored(world: RotationWorld, cli: Cli) -> None:
    # GIVEN the admin key an owner put, never rotated, admin key rotation not enabled
    rotated(world, "chat-backend")
    # WHEN status runs
    result = cli("status", "--env", "dev", "--json")
    # THEN its age counts from when it was stored (keyrot does not know when it was made), with no next rotation
    key = json.loads(result.stdout)["environments"][0]["admin_key"]
    assert key["age_from"] == "stored" and key["next_rotation"] is None and key["rotation_enabled"] is False


def test_status_with_an_unreadable_admin_key_secret_still_shows_the_keys(world: RotationWorld, cli: Cli) -> None:
    # GIVEN an admin-key secret whose value breaks the contract
    rotated(world, "chat-backend")
    world.secrets.put_secret_value(SecretId=world.admin_secret_arn, SecretString="not json")
    # WHEN status runs
    result = cli("status", "--env", "dev", "--json")
    # THEN the keys are shown, and the admin key says why its id is unknown
    assert result.exit_code == 0, result.output
    [environment] = json.loads(result.stdout)["environments"]
    assert environment["keys"][0]["key_name"] == "chat-backend"
    assert environment["admin_key"]["key_id"] is None and "not valid JSON" in environment["admin_key"]["problem"]


def test_status_without_read_access_to_the_admin_key_secret_says_so_and_shows_the_keys(
    world: RotationWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN an operator whom the admin-key secret's resource policy denies GetSecretValue (not an administrator)
    rotated(world, "chat-backend")
    original = cli_context.new_session

    def refuse(model: Any, params: Any, **_: Any) -> None:
        if model.name == "GetSecretValue" and params.get("SecretId") == world.admin_secret_arn:
            message = "User: arn:aws:iam::123456789012:user/oncall is not authorized to perform: GetSecretValue"
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": message}}, model.name)

    def session(profile: str | None, region: str | None) -> Any:
        created = original(profile, region)
        created.events.register("before-parameter-build.secrets-manager.GetSecretValue", refuse)
        return created

    monkeypatch.setattr(cli_context, "new_session", session)
    # WHEN status runs
    result = cli("status", "--env", "dev", "--json")
    # THEN the keys are shown, and the admin key's id is unknown with the reason
    assert result.exit_code == 0, result.output
    [environment] = json.loads(result.stdout)["environments"]
    assert environment["keys"][0]["current"]["key_id"] == world.current(environment["keys"][0]["secret_arn"]).key_id
    assert environment["admin_key"]["key_id"] is None
    assert "AccessDenied" in environment["admin_key"]["problem"]
