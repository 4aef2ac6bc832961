"""`keyrot exec`: the child gets OPENAI_API_KEY, its exit code passes through, the key is never printed."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable

from lab.scenario import RotationWorld

from .conftest import Cli, rotated

EXEC = ("exec", "--env", "dev", "--key", "chat-backend", "--")


def _child_checking(expected_sha256: str) -> tuple[str, ...]:
    """A child that exits 0 when OPENAI_API_KEY hashes to `expected_sha256`, 3 otherwise, and prints nothing."""
    code = (
        "import hashlib, os, sys; "
        "key = os.environ.get('OPENAI_API_KEY', ''); "
        f"sys.exit(0 if hashlib.sha256(key.encode()).hexdigest() == {expected_sha256!r} else 3)"
    )
    return (sys.executable, "-c", code)


def test_exec_gives_the_child_the_current_key(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a key rotated twice (the child must get the current one, not the previous)
    arn = rotated(world, "chat-backend", times=2)
    expected = hashlib.sha256(world.current(arn).api_key.encode()).hexdigest()
    # WHEN a command runs under exec
    result = cli(*EXEC, *_child_checking(expected))
    # THEN the child saw the current key, and nothing was printed
    assert result.exit_code == 0, result.output
    assert result.stdout == ""


def test_exec_passes_the_child_exit_code_through(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    result = cli(*EXEC, sys.executable, "-c", "import sys; sys.exit(42)")
    assert result.exit_code == 42


def test_exec_of_a_missing_command_exits_127(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    result = cli(*EXEC, "keyrot-no-such-command-here")
    assert result.exit_code == 127
    assert "command not found: keyrot-no-such-command-here" in result.stderr


def test_exec_without_a_command_exits_2(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    result = cli(*EXEC)
    assert result.exit_code == 2
    assert "no command given" in result.stderr


def test_exec_of_a_key_that_was_never_rotated_exits_1(world: RotationWorld, cli: Cli) -> None:
    world.create_managed_secret("chat-backend")
    result = cli(*EXEC, sys.executable, "-c", "pass")
    assert result.exit_code == 1
    assert "has no current key yet (never rotated)" in result.stderr


def test_exec_of_an_unknown_key_exits_4(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    result = cli("exec", "--env", "dev", "--key", "other", "--", sys.executable, "-c", "pass")
    assert result.exit_code == 4


def test_exec_without_read_permission_exits_5(world: RotationWorld, cli: Cli, deny: Callable[[str], None]) -> None:
    rotated(world, "chat-backend")
    deny("GetSecretValue")
    result = cli(*EXEC, sys.executable, "-c", "pass")
    assert result.exit_code == 5
    assert "access denied: this identity may not call secretsmanager:GetSecretValue" in result.stderr
