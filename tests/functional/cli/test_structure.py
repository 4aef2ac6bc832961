"""The CLI's shape: one module per command, shared options declared once and handed over as one context object."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
import typer.main

from keyrot.cli import commands
from keyrot.cli.app import app
from lab.scenario import RotationWorld

from .conftest import Cli

COMMANDS_DIR = Path(commands.__file__).parent
SHARED = {"--profile", "--region", "--openai-base-url"}


def command_paths() -> dict[str, Any]:
    """Every leaf command of `keyrot`, by the words the operator types."""
    root = typer.main.get_command(app)
    found = {}
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        children = getattr(command, "commands", None)
        if children:
            found.update({f"{name} {child}": sub for child, sub in children.items()})
        else:
            found[name] = command
    return found


def test_each_command_lives_in_a_module_named_as_it_is_typed() -> None:
    # GIVEN the commands the operator can type
    typed = set(command_paths())
    # WHEN their module names are derived the way the brief spells them (`admin-key set` lives in admin_key.py)
    expected = {words.split(" ")[0].replace("-", "_") for words in typed}
    modules = {path.stem for path in COMMANDS_DIR.glob("*.py") if path.stem != "__init__"}
    # THEN every command has its module, and there is no module without a command
    assert modules == expected


def test_commands_never_import_another_command() -> None:
    # GIVEN every command module
    for path in COMMANDS_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        # WHEN its imports are read
        imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        # THEN none of them is another command (shared helpers live one level up)
        assert not any(name.startswith("keyrot.cli.commands") for name in imported), path.name


def test_every_command_takes_the_shared_options_and_none_declares_them_itself() -> None:
    for words, command in command_paths().items():
        # GIVEN a command's options
        options = {decl for param in command.params for decl in getattr(param, "opts", [])}
        exposed = {param.name for param in command.params if param.expose_value}
        # THEN the shared options are there, and reach the command only through its context object
        assert options >= SHARED, words
        assert not exposed & {"profile", "region", "openai_base_url"}, words


@pytest.mark.parametrize("position", ["before", "after"])
def test_the_shared_options_reach_the_command_before_or_after_it(world: RotationWorld, cli: Cli, position: str) -> None:
    # GIVEN a world in us-east-1 and a default region elsewhere
    world.create_managed_secret("chat-backend")
    region = ["--region", "us-east-1"]
    args = [*region, "status", "--json"] if position == "before" else ["status", "--json", *region]
    # WHEN --region is given on either side of the command
    result = cli(*args)
    # THEN the command ran in that region
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["region"] == "us-east-1"


def test_the_option_after_the_command_beats_the_one_before(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a world in us-east-1
    world.create_managed_secret("chat-backend")
    # WHEN the global --region names another region and the command's own names us-east-1
    result = cli("--region", "eu-west-3", "status", "--json", "--region", "us-east-1")
    # THEN the command's own value wins
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["region"] == "us-east-1"
