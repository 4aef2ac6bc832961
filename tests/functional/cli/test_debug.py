"""`keyrot --debug`: keyrot's own debug log and scrubbed tracebacks, never a key, never a different exit code.

Each invocation runs with the logging of a fresh `keyrot` process (no root handler, root at WARNING, no logger
levels set), as an operator's shell gives it; pytest's own handlers would otherwise hide what a real run prints.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from typer.testing import Result

from keyrot.redaction import THIRD_PARTY_LOGGERS
from lab.rotation_service import RotationService
from lab.scenario import RotationWorld

from .conftest import Cli, rotated
from .test_structure import command_paths

KEY = ("--env", "dev", "--key", "chat-backend")


@contextmanager
def _fresh_process_logging() -> Iterator[None]:
    """Logging as a new interpreter has it (no root handler, root at WARNING, no levels set), restored afterwards.

    Entered around each invocation, inside the test's call phase: pytest adds its own root handlers for that phase.
    """
    root = logging.getLogger()
    loggers = [logging.getLogger(name) for name in ("keyrot", *THIRD_PARTY_LOGGERS)]
    saved_root = (root.level, list(root.handlers))
    saved = [(logger, logger.level, list(logger.handlers)) for logger in loggers]
    root.handlers.clear()
    root.setLevel(logging.WARNING)
    for logger in loggers:
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)
    try:
        yield
    finally:
        root.setLevel(saved_root[0])
        root.handlers[:] = saved_root[1]
        for logger, level, handlers in saved:
            logger.setLevel(level)
            logger.handlers[:] = handlers


@pytest.fixture
def keyrot(cli: Cli) -> Callable[..., Result]:
    """Runs `keyrot ARGS...` as a fresh process would log (the Cli runner still checks every output for keys)."""

    def run(*args: str, input: str | None = None) -> Result:
        with _fresh_process_logging():
            return cli(*args, input=input)

    return run


@dataclass(frozen=True)
class Run:
    """One command as an operator runs it under --debug, on a world prepared for it."""

    args: tuple[str, ...]
    prepare: Callable[[RotationWorld], str | None]  # returns stdin, if the command reads it


def _rotated_twice(world: RotationWorld) -> None:
    rotated(world, "chat-backend", times=2)


def _rotated_once(world: RotationWorld) -> None:
    rotated(world, "chat-backend")


def _new_admin_key(world: RotationWorld) -> str:
    return world.openai.state.add_admin_key("replacement") + "\n"


# Every command, on the path that reads the most key material (values, the admin key, a key on stdin).
RUNS = {
    "status": Run(("status", "--env", "dev"), _rotated_twice),
    "rotate": Run(("rotate", *KEY, "--emergency", "--yes", "--poll-interval", "0.02"), _rotated_twice),
    "revoke-previous": Run(("revoke-previous", *KEY, "--yes"), _rotated_twice),
    "audit": Run(("audit", "--env", "dev"), _rotated_once),
    "admin-key set": Run(("admin-key", "set", "--env", "dev"), _new_admin_key),
    "exec": Run(("exec", *KEY, "--", sys.executable, "-c", "pass"), _rotated_once),
    "doctor": Run(("doctor", *KEY), _rotated_once),
    "guardrails": Run(("guardrails", "--env", "dev"), _rotated_once),
}


def test_every_command_is_run_under_debug() -> None:
    # GIVEN the commands keyrot has, THEN each one is in the --debug hygiene runs below
    assert set(RUNS) == set(command_paths())


@pytest.mark.parametrize("command", sorted(RUNS))
def test_debug_shows_keyrots_own_log_and_never_a_key(
    world: RotationWorld, keyrot: Callable[..., Result], rotation: RotationService, command: str
) -> None:
    # GIVEN a world where the command reads keys (current, previous, admin, or one piped on stdin)
    run = RUNS[command]
    stdin = run.prepare(world)
    # WHEN it runs with --debug
    result = keyrot("--debug", *run.args, input=stdin)
    # THEN it succeeds, shows keyrot's own debug lines and nothing from botocore or urllib3
    # (the Cli runner fails the test if any key the stand-in issued reached stdout or stderr)
    assert result.exit_code == 0, result.output
    assert "DEBUG keyrot.cli.context: AWS " in result.stderr
    assert [name for name in _loggers(result.stderr) if name.split(".")[0] != "keyrot"] == []


def _loggers(stderr: str) -> list[str]:
    """The logger names of the log lines (`LEVEL name: message`) in `stderr`."""
    levels = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    return [
        line.split(" ", 2)[1].rstrip(":") for line in stderr.splitlines() if line.startswith(levels) and " " in line
    ]


def _no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.parametrize(
    ("failure", "args", "code"),
    [
        ("no credentials", ("status", "--env", "dev"), 3),
        ("unknown environment", ("status", "--env", "nope"), 4),
        ("unknown key", ("doctor", "--env", "dev", "--key", "nope", "--json"), 1),
        ("never rotated", ("exec", *KEY, "--", "true"), 1),
    ],
)
def test_debug_keeps_the_exit_code_and_adds_only_a_traceback(
    world: RotationWorld,
    keyrot: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
    args: tuple[str, ...],
    code: int,
) -> None:
    # GIVEN a failure with a documented exit code
    world.create_managed_secret("chat-backend")
    if failure == "no credentials":
        _no_credentials(monkeypatch)
    # WHEN the command runs without and with --debug
    plain = keyrot(*args)
    debug = keyrot("--debug", *args)
    # THEN both exit with the documented code and print the same one-line error; --debug adds the traceback
    assert (plain.exit_code, debug.exit_code) == (code, code), debug.output
    errors = [line for line in debug.stderr.splitlines() if line.startswith("keyrot: error:")]
    assert errors == [line for line in plain.stderr.splitlines() if line.startswith("keyrot: error:")]
    if errors:
        assert "Traceback (most recent call last)" in debug.stderr
        assert "Traceback" not in plain.stderr


def test_debug_traceback_is_scrubbed(world: RotationWorld, keyrot: Callable[..., Result]) -> None:
    # GIVEN an operator who pasted the admin key where a URL belongs
    # WHEN the command fails with --debug (the traceback quotes the exception's message)
    result = keyrot("--debug", "status", "--openai-base-url", f"ftp://{world.admin_key}")
    # THEN the exit code is the usage error's, and the traceback shows only a redacted prefix
    # (the Cli runner fails the test if the key itself appears)
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "…(redacted)" in result.stderr
