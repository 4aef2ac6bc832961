"""`keyrot rotate --admin`: the admin key rotated through its own function and followed to the end; its id, age and
next rotation shown; --emergency deletes the old admin key at once; --discard-pending starts over."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from keyrot.admin_rotation import AdminKeyName
from keyrot.admin_rotation import telemetry as admin_telemetry
from keyrot.cli import interaction
from keyrot.constants import STAGE_PENDING
from keyrot.handlers import rotate_admin
from lab.openai_standin.audit import Actor
from lab.openai_standin.state import OWNER_EMAIL, OWNER_USER_ID
from lab.rotation_service import RotationService, installed
from lab.scenario import RotationWorld
from tests.functional.admin_rotation.world import ADMIN_ROTATION_LAMBDA_ARN, AdminWorld

from .conftest import Cli

FAST = ("--poll-interval", "0.02")


@contextmanager
def _unpublished_metric(**_: Any) -> Iterator[None]:
    yield None


@pytest.fixture
def admin(world: RotationWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[AdminWorld]:
    """The admin rotation function deployed for the world's admin-key secret, answering RotateSecret."""
    world.create_managed_secret("chat-backend")
    admin_world = AdminWorld.adopt(world)
    for name, value in admin_world.environment_variables().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setattr(admin_telemetry, "single_metric", _unpublished_metric)  # Lambda's stdout, not the CLI's
    service = RotationService()
    service.register(ADMIN_ROTATION_LAMBDA_ARN, lambda event: rotate_admin.handler(event, None))
    with installed(service):
        yield admin_world


def test_rotate_admin_rotates_the_admin_key_and_shows_its_id_age_and_next_rotation(admin: AdminWorld, cli: Cli) -> None:
    # GIVEN the bootstrap admin key in service
    # WHEN the operator rotates the admin key
    result = cli("rotate", "--admin", "--env", "dev", *FAST)
    # THEN the new admin key is current, and the output names it, its age and its next rotation
    assert result.exit_code == 0, result.output
    current = admin.current()
    assert current.admin_key != admin.bootstrap_key and admin.authenticates(current.admin_key)
    assert f"Rotation complete: current admin key {current.key_id} (was {admin.bootstrap_key_id})" in result.stdout
    assert f"Admin key {current.key_id}: age " in result.stdout and "next rotation ~" in result.stdout
    # AND the old admin key still works: the scheduled cleanup deletes it after its grace
    assert admin.authenticates(admin.bootstrap_key)
    assert "deleted by the scheduled cleanup" in result.stdout


def test_rotate_admin_json_is_the_rotate_document_with_the_admin_key(admin: AdminWorld, cli: Cli) -> None:
    # WHEN the admin key is rotated with --json
    result = cli("rotate", "--admin", "--env", "dev", "--json", *FAST)
    # THEN stdout is one rotate document naming the admin key's ids, age and next rotation
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["schema"] == "keyrot.cli.rotate/v1"
    assert (document["ok"], document["admin"], document["key_name"]) == (True, True, None)
    assert document["previous_key_id"] == admin.bootstrap_key_id
    assert document["current_key_id"] == admin.current().key_id
    key = document["admin_key"]
    assert key["key_id"] == admin.current().key_id and key["age_from"] == "minted"
    assert key["age_seconds"] >= 0 and key["next_rotation"] and key["expires_at"]


@pytest.mark.parametrize("args", [(), ("--key", "chat-backend", "--admin")], ids=["neither", "both"])
def test_rotate_needs_exactly_one_of_key_and_admin(admin: AdminWorld, cli: Cli, args: tuple[str, ...]) -> None:
    # WHEN rotate is given neither --key nor --admin, or both
    result = cli("rotate", "--env", "dev", *args)
    # THEN it is a usage error and nothing rotates
    assert result.exit_code == 2
    assert "--admin" in result.stderr
    assert admin.current().admin_key == admin.bootstrap_key


def test_rotate_admin_without_an_admin_rotation_function_says_how_to_enable_it(world: RotationWorld, cli: Cli) -> None:
    # GIVEN an environment deployed without admin key rotation
    world.create_managed_secret("chat-backend")
    # WHEN the operator rotates the admin key THEN it fails, saying which configuration enables it
    result = cli("rotate", "--admin", "--env", "dev")
    assert result.exit_code == 1
    assert "adminKeyRotation" in result.stderr


def test_rotate_admin_emergency_deletes_the_old_admin_key_once_the_new_one_is_current(
    admin: AdminWorld, cli: Cli
) -> None:
    # GIVEN an admin key that may have leaked (the bootstrap key)
    # WHEN the operator runs an emergency rotation
    result = cli("rotate", "--admin", "--env", "dev", "--emergency", "--yes", "--json", *FAST)
    # THEN the new admin key is current and the old one is already dead, as the document says
    assert result.exit_code == 0, result.output
    assert not admin.authenticates(admin.bootstrap_key)
    assert admin.authenticates(admin.current().admin_key)
    assert json.loads(result.stdout)["revocation"]["deleted"] == [admin.bootstrap_key_id]


def test_rotate_admin_emergency_without_yes_and_no_terminal_changes_nothing(admin: AdminWorld, cli: Cli) -> None:
    result = cli("rotate", "--admin", "--env", "dev", "--emergency")
    assert result.exit_code == 2
    assert admin.current().admin_key == admin.bootstrap_key


def test_rotate_admin_emergency_names_every_admin_key_it_will_delete_and_stops_when_declined(
    admin: AdminWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a keyrot admin key current and the bootstrap key previous, still live
    admin.rotate()
    before = admin.stages()
    monkeypatch.setattr(interaction, "stdin_is_tty", lambda: True)
    # WHEN the operator declines the emergency at the prompt
    result = cli("rotate", "--admin", "--env", "dev", "--emergency", *FAST, input="n\n")
    # THEN the prompt named both keys it would delete, and nothing changed
    assert result.exit_code == 1
    assert admin.current().key_id in result.stdout and admin.bootstrap_key_id in result.stdout
    assert admin.stages() == before and admin.authenticates(admin.bootstrap_key)


def test_rotate_admin_discard_pending_deletes_the_stuck_attempts_key_and_starts_over(
    admin: AdminWorld, cli: Cli
) -> None:
    # GIVEN a stuck admin rotation: its key minted and stored, never promoted
    driver = admin.driver()
    token = driver.start(admin.arn)
    driver.step(admin.arn, token, "createSecret")
    stuck = admin.pending()
    assert stuck is not None
    # WHEN the operator starts over
    result = cli("rotate", "--admin", "--env", "dev", "--discard-pending", "--json", *FAST)
    # THEN the stuck key is deleted, a new rotation completes, and only its key is live
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["discarded"]["admin_keys_deleted"] == [stuck.key_id]
    assert not admin.authenticates(stuck.admin_key)
    assert [key.id for key in admin.live_keyrot_keys()] == [admin.current().key_id]
    assert STAGE_PENDING not in json.dumps(admin.stages())


def test_rotate_admin_discard_pending_never_deletes_another_keyrot_admin_key(admin: AdminWorld, cli: Cli) -> None:
    # GIVEN a stuck attempt, and prod's keyrot admin key in the same organization
    owner = Actor.session(OWNER_USER_ID, OWNER_EMAIL)
    prod = admin.openai.state.create_admin_key(str(AdminKeyName("prod", "t")), expires_in=None, actor=owner)
    driver = admin.driver()
    token = driver.start(admin.arn)
    driver.step(admin.arn, token, "createSecret")
    # WHEN the operator discards it
    result = cli("rotate", "--admin", "--env", "dev", "--discard-pending", *FAST)
    # THEN prod's key is untouched
    assert result.exit_code == 0, result.output
    assert admin.authenticates(prod.value)
