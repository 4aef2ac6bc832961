"""The CLI finds its region as the AWS CLI does: --region, AWS_REGION, AWS_DEFAULT_REGION, then the profile."""

from __future__ import annotations

import json

import pytest

from lab.scenario import RotationWorld

from .conftest import REGION, Cli, rotated


def _region(cli: Cli, *args: str) -> str:
    result = cli(*args, "status", "--json")
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["region"])


def test_aws_region_alone_is_enough(world: RotationWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a shell (CloudShell, a container) that sets only AWS_REGION, as the CLI's own error message suggests
    world.create_managed_secret("chat-backend")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", REGION)
    # WHEN status runs, THEN it works in that region
    assert _region(cli) == REGION


def test_aws_region_beats_aws_default_region(world: RotationWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    world.create_managed_secret("chat-backend")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    assert _region(cli) == REGION


def test_the_region_option_beats_aws_region(world: RotationWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    world.create_managed_secret("chat-backend")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert _region(cli, "--region", REGION) == REGION


def test_no_region_at_all_exits_3_saying_how_to_set_one(
    world: RotationWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN no region anywhere
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    # WHEN status runs, THEN it exits 3 with the advice that now works
    result = cli("status", "--env", "dev")
    assert result.exit_code == 3
    assert "no AWS region: pass --region or set AWS_REGION" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ("rotate", "--env", "dev", "--key", "chat-backend", "--yes"),
        ("rotate", "--env", "dev", "--key", "chat-backend", "--emergency", "--yes"),
        ("revoke-previous", "--env", "dev", "--key", "chat-backend", "--yes"),
    ],
    ids=["rotate", "emergency", "revoke-previous"],
)
def test_a_command_that_changes_keys_in_the_wrong_region_exits_4_and_changes_nothing(
    world: RotationWorld, cli: Cli, command: tuple[str, ...]
) -> None:
    # GIVEN a key rotated twice in us-east-1 (a current and a previous key, both live)
    arn = rotated(world, "chat-backend")
    assert world.driver().rotate(arn).succeeded
    before = (world.stages(arn), _live_keys(world))
    assert len(before[1]) == 2
    # WHEN an operator at 3 a.m. runs it against another region
    result = cli("--region", "eu-west-1", *command)
    # THEN it exits 4 naming the region it looked in, and no label, version or OpenAI key changed
    assert result.exit_code == 4, result.output
    assert "eu-west-1" in result.stderr
    assert (world.stages(arn), _live_keys(world)) == before


def _live_keys(world: RotationWorld) -> list[str]:
    state = world.openai.state
    return sorted(key_id for key_id in state.keys if state.key_is_live(key_id))
