"""`keyrot rotate --emergency` contains the leak whichever key it was: it ends with exactly one live key, the new one,
and says so; `revoke-previous` revokes only the version it showed the operator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyrot.cli.commands import revoke_previous as revoke_previous_command
from lab.openai_standin import server_error
from lab.rotation_service import RotationService
from lab.scenario import RotationWorld
from tests.functional.monitor.tampering import unlabel_previous

from .conftest import Cli, rotated

EMERGENCY = ("rotate", "--env", "dev", "--key", "chat-backend", "--emergency", "--yes", "--poll-interval", "0.02")


def _live_keyrot_keys(world: RotationWorld) -> set[str]:
    state = world.openai.state
    with state.lock:
        return {k.id for k in state.keys.values() if k.owner_name.startswith("keyrot:dev:") and state.key_is_live(k.id)}


def test_an_emergency_revokes_a_leaked_previous_key_still_in_its_grace_period(
    world: RotationWorld, cli: Cli, rotation: RotationService
) -> None:
    # GIVEN a key rotated twice: the previous key (still in its grace period) is the one that leaked
    arn = rotated(world, "chat-backend", times=2)
    leaked = world.previous(arn)
    assert leaked is not None and world.openai.state.key_is_live(leaked.key_id)
    # WHEN an emergency rotation runs
    result = cli(*EMERGENCY)
    # THEN the leaked previous key is dead too, and the new key is the only live keyrot key
    assert result.exit_code == 0, result.output
    current = world.current(arn).key_id
    assert not world.openai.state.key_is_live(leaked.key_id)
    assert _live_keyrot_keys(world) == {current}
    assert f"Exactly one live key is left: {current} (the new one)" in result.stdout
    # AND status no longer shows it as a key that works
    status = json.loads(cli("status", "--env", "dev", "--json").stdout)
    [key] = status["environments"][0]["keys"]
    assert key["previous"]["revoked"] is True and key["previous"]["checked_at_openai"] is True


def test_an_emergency_leaves_no_displaced_key_live(world: RotationWorld, cli: Cli, rotation: RotationService) -> None:
    # GIVEN a key pushed out of every label while OpenAI still honours it
    arn = rotated(world, "chat-backend", times=2)
    displaced = world.previous(arn)
    assert displaced is not None
    unlabel_previous(world.secrets, arn)
    # WHEN an emergency rotation runs
    result = cli(*EMERGENCY, "--json")
    # THEN it is dead with the rest (finishSecret or the containment revoked it), and the document says one live
    # key is left: the new one
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert not world.openai.state.key_is_live(displaced.key_id)
    assert document["revocation"]["one_live_key"] is True
    assert document["revocation"]["live_keys"] == [world.current(arn).key_id]
    assert _live_keyrot_keys(world) == {world.current(arn).key_id}


def test_an_emergency_whose_containment_fails_exits_6_saying_how_to_finish(
    world: RotationWorld, cli: Cli, rotation: RotationService
) -> None:
    # GIVEN OpenAI failing every service-account deletion (the rotation itself deletes nothing on a first run)
    arn = rotated(world, "chat-backend")
    leaked = world.current(arn)
    world.openai.faults.add(server_error("delete_service_account"))
    # WHEN an emergency rotation runs
    result = cli(*EMERGENCY, "--json")
    # THEN the new key is live, the CLI exits 6 naming what failed and how to finish, and nothing is hidden
    assert result.exit_code == 6
    assert world.current(arn).key_id != leaked.key_id
    document = json.loads(result.stdout)
    assert document["ok"] is False and "containing the old keys failed" in document["error"]
    assert "keyrot revoke-previous --env dev --key chat-backend" in result.stderr


def test_revoke_previous_refuses_when_a_rotation_lands_after_the_prompt(
    world: RotationWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a previous key shown to the operator, and a rotation that lands while they read the prompt
    arn = rotated(world, "chat-backend", times=2)
    shown = world.previous(arn)
    assert shown is not None

    def rotation_meanwhile(*_: Any, **__: Any) -> None:
        assert world.driver().rotate(arn).succeeded

    monkeypatch.setattr(revoke_previous_command, "confirm", rotation_meanwhile)
    # WHEN the operator confirms
    result = cli("revoke-previous", "--env", "dev", "--key", "chat-backend", "--yes")
    # THEN the key that became previous meanwhile (nobody was asked about it) is left alone, and the CLI says why
    assert result.exit_code == 1
    assert "moved from" in result.stderr and "not revoking" in result.stderr
    now_previous = world.previous(arn)
    assert now_previous is not None and now_previous.key_id != shown.key_id
    assert world.openai.state.key_is_live(now_previous.key_id)
