"""`keyrot revoke-previous`: confirm, revoke, and report revoked / already-revoked / nothing-to-revoke."""

from __future__ import annotations

import json
from collections.abc import Callable

from lab.scenario import RotationWorld

from .conftest import Cli, rotated

REVOKE = ("revoke-previous", "--env", "dev", "--key", "chat-backend")


def test_revoke_previous_revokes_the_previous_key_at_openai(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a rotated key whose previous key still works
    arn = rotated(world, "chat-backend", times=2)
    previous = world.previous(arn)
    assert previous is not None and world.openai.state.key_is_live(previous.key_id)
    # WHEN it is revoked
    result = cli(*REVOKE, "--yes")
    # THEN OpenAI rejects it and the current key is untouched
    assert result.exit_code == 0, result.output
    assert f"revoked: previous key {previous.key_id}" in result.stdout
    assert not world.openai.state.key_is_live(previous.key_id)
    assert world.openai.state.key_is_live(world.current(arn).key_id)


def test_revoke_previous_twice_reports_already_revoked(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend", times=2)
    cli(*REVOKE, "--yes")
    result = cli(*REVOKE)  # nothing left at risk: no confirmation needed
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("already-revoked:")


def test_revoke_previous_without_a_previous_key_reports_nothing_to_revoke(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    result = cli(*REVOKE)  # nothing to confirm: no key is at risk
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("nothing-to-revoke:")


def test_revoke_previous_on_a_non_terminal_without_yes_exits_2(world: RotationWorld, cli: Cli) -> None:
    arn = rotated(world, "chat-backend", times=2)
    previous = world.previous(arn)
    assert previous is not None
    result = cli(*REVOKE)
    assert result.exit_code == 2
    assert "revocation needs confirmation and stdin is not a terminal: pass --yes" in result.stderr
    assert world.openai.state.key_is_live(previous.key_id)


def test_revoke_previous_json_names_the_status_and_key(world: RotationWorld, cli: Cli) -> None:
    arn = rotated(world, "chat-backend", times=2)
    previous = world.previous(arn)
    assert previous is not None
    document = json.loads(cli(*REVOKE, "--yes", "--json").stdout)
    assert document["schema"] == "keyrot.cli.revoke-previous/v1"
    assert (document["status"], document["key_id"]) == ("revoked", previous.key_id)


def test_revoke_previous_with_a_rejected_admin_key_exits_7(world: RotationWorld, cli: Cli) -> None:
    # GIVEN the admin key was revoked at OpenAI
    arn = rotated(world, "chat-backend", times=2)
    world.openai.state.revoke_admin_key(world.admin_key)
    # WHEN revoking
    result = cli(*REVOKE, "--yes")
    # THEN it exits 7 saying the admin key was rejected, and the previous key still works
    assert result.exit_code == 7
    assert "admin key was rejected" in result.stderr
    previous = world.previous(arn)
    assert previous is not None and world.openai.state.key_is_live(previous.key_id)


def test_revoke_previous_of_an_unknown_key_exits_4(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend", times=2)
    result = cli("revoke-previous", "--env", "dev", "--key", "chat-frontend", "--yes")
    assert result.exit_code == 4
    assert "known keys: chat-backend" in result.stderr


def test_revoke_previous_without_label_permission_exits_5_and_can_be_retried(
    world: RotationWorld, cli: Cli, deny: Callable[[str], None]
) -> None:
    # GIVEN this identity may not move labels
    arn = rotated(world, "chat-backend", times=2)
    deny("UpdateSecretVersionStage")
    # WHEN revoking
    result = cli(*REVOKE, "--yes")
    # THEN it exits 5 naming the action; the version is not marked revoked, so a retry finishes the job
    assert result.exit_code == 5
    assert "secretsmanager:UpdateSecretVersionStage" in result.stderr
    assert not any("KEYROT_REVOKED" in stages for stages in world.stages(arn).values())
