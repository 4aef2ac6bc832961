"""The CLI finds its region as the AWS CLI does: --region, AWS_REGION, AWS_DEFAULT_REGION, then the profile."""

from __future__ import annotations

import json

import pytest

from lab.scenario import RotationWorld

from .conftest import REGION, Cli


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
