"""`keyrot exec`: run a command with OPENAI_API_KEY set to the current key, without ever printing the key."""

from __future__ import annotations

import os
import subprocess
from typing import Annotated

import typer

from keyrot.cli.errors import CliError, UsageError
from keyrot.cli.options import Environment, KeyName, cli_of
from keyrot.client import KeyProvider
from keyrot.constants import STAGE_CURRENT

COMMAND_NOT_FOUND = 127
COMMAND_NOT_EXECUTABLE = 126


def exec_with_key(
    ctx: typer.Context,
    env: Environment,
    key: KeyName,
    command: Annotated[list[str] | None, typer.Argument(help="The command and its arguments, after --.")] = None,
) -> None:
    """Run CMD with OPENAI_API_KEY set to the key's current value; exit with CMD's exit code."""
    argv = list(command or []) + list(ctx.args)
    if not argv:
        raise UsageError("no command given: keyrot exec --env <env> --key <key> -- CMD [ARGS...]")
    cli = cli_of(ctx)
    target = cli.key(env, key)
    if target.description.version_with(STAGE_CURRENT) is None:
        raise CliError(
            f"{target.name} has no current key yet (never rotated): run `keyrot rotate --env {env} --key {key}`"
        )
    provider = KeyProvider(target.arn, client=cli.secrets)
    environment = {**os.environ, "OPENAI_API_KEY": provider()}
    try:
        completed = subprocess.run(argv, env=environment, check=False)  # noqa: S603 - the operator's own command
    except FileNotFoundError:
        raise CliError(f"command not found: {argv[0]}", COMMAND_NOT_FOUND) from None
    except PermissionError:
        raise CliError(f"command not executable: {argv[0]}", COMMAND_NOT_EXECUTABLE) from None
    code = completed.returncode
    raise typer.Exit(128 - code if code < 0 else code)  # killed by signal N: 128 + N, as shells report
