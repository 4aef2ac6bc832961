"""Talking to the operator: confirmations and hidden input, refusing to guess when stdin is not a terminal."""

from __future__ import annotations

import sys

import typer

from keyrot.cli.errors import CliError, UsageError
from keyrot.cli.exit_codes import ExitCode


def stdin_is_tty() -> bool:
    """True when a person can answer prompts (tests replace this)."""
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def confirm(question: str, *, yes: bool, action: str) -> None:
    """Ask `question` unless --yes. Without a terminal and without --yes, refuse: never act on a guess."""
    if yes:
        return
    if not stdin_is_tty():
        raise UsageError(f"{action} needs confirmation and stdin is not a terminal: pass --yes to proceed")
    if not typer.confirm(question, default=False):
        raise CliError(f"{action} cancelled; nothing was changed", ExitCode.FAILURE)


def read_secret(prompt: str, *, what: str) -> str:
    """A secret from a hidden prompt on a terminal, or from stdin otherwise. Never echoed, never from argv."""
    if stdin_is_tty():
        value: str = typer.prompt(prompt, hide_input=True, default="", show_default=False)
    else:
        value = sys.stdin.read()
    value = value.strip()
    if not value:
        raise UsageError(f"no {what} given (type it at the prompt, or pipe it on stdin)")
    if any(character.isspace() for character in value):
        raise UsageError(f"the {what} must be a single token without spaces or line breaks")
    return value
