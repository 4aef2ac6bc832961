"""Output that reads well in a terminal, a pipe and a CI log; --json wherever a command reports a result.

The runner's stdout is not a terminal, like `keyrot … | cat` or a CI job: nothing may be wrapped there, whatever
COLUMNS says. A terminal is simulated by giving `output.terminal_width` a width.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from contextlib import redirect_stdout

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyrot.cli import output
from keyrot.redaction import scrub
from lab.rotation_service import RotationService
from lab.scenario import RotationWorld

from .conftest import Cli, LambdaLogs, rotated
from .test_structure import command_paths

FAST = ("--poll-interval", "0.02")
KEY = ("--env", "dev", "--key", "chat-backend")
NARROW = {"COLUMNS": "40"}  # what an unexported or small COLUMNS would make Rich use
# Ids, ARNs and tokens; never key-shaped (`sk-…`: output redacts those by design, keyrot.redaction)
_TOKENS = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-_/:."), min_size=1, max_size=120).filter(
    lambda token: scrub(token) == token
)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """terminal(60): stdout and stderr are a terminal 60 columns wide."""

    def set_width(width: int) -> None:
        monkeypatch.setattr(output, "terminal_width", lambda *, stderr=False: width)

    return set_width


@given(words=st.lists(_TOKENS, min_size=1, max_size=30))
def test_a_line_in_a_pipe_is_one_line_whatever_its_length(words: list[str]) -> None:
    # GIVEN a line of tokens (ids, ARNs, tokens), WHEN it is printed to a pipe, THEN it comes out as it went in
    text = " ".join(words)
    with redirect_stdout(io.StringIO()) as piped:
        output.line(text)
    assert piped.getvalue() == f"{text}\n"


@given(rows=st.lists(st.lists(_TOKENS, min_size=3, max_size=3), min_size=1, max_size=5))
def test_a_table_in_a_pipe_keeps_every_row_on_one_line(rows: list[list[str]]) -> None:
    # GIVEN a table of any width, WHEN it is printed to a pipe
    with redirect_stdout(io.StringIO()) as piped:
        output.table("title", ("A", "B", "C"), rows)
    lines = piped.getvalue().splitlines()
    # THEN each row is one line holding all of its cells, unbroken
    for row in rows:
        assert any(all(cell in line for cell in row) for line in lines), row


def test_rotate_piped_never_splits_a_token(world: RotationWorld, cli: Cli, rotation: RotationService) -> None:
    # GIVEN a key in service, WHEN `keyrot rotate … | cat` runs with a narrow COLUMNS
    arn = rotated(world, "chat-backend")
    result = cli("rotate", *KEY, *FAST, env=NARROW)
    # THEN the token line and the summary are whole lines
    assert result.exit_code == 0, result.output
    token = next(v for v, stages in world.stages(arn).items() if "AWSCURRENT" in stages)
    assert f"Rotating keyrot/dev/chat-backend (token {token})\n" in result.stdout
    assert f"Rotation complete: current key {world.current(arn).key_id} (was " in result.stdout


def test_status_piped_keeps_each_key_on_one_row(world: RotationWorld, cli: Cli) -> None:
    # GIVEN two keys, WHEN status is piped with a narrow COLUMNS
    first, second = rotated(world, "chat-backend"), rotated(world, "batch-embeddings-nightly")
    result = cli("status", "--env", "dev", env=NARROW)
    # THEN every header and every key's row is whole: no `rotatio n`, no id split across lines
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "Current key" in line)
    for column in ("Key", "Current key", "Age", "Last rotated", "Next rotation", "Rotation", "Previous key", "Alarms"):
        assert column in header
    for key_name, arn in (("chat-backend", first), ("batch-embeddings-nightly", second)):
        assert any(key_name in line and world.current(arn).key_id in line for line in lines), key_name


def test_status_in_a_narrow_terminal_shows_one_block_per_key(
    world: RotationWorld, cli: Cli, terminal: Callable[[int], None]
) -> None:
    # GIVEN a terminal too narrow for the status table
    arn = rotated(world, "chat-backend")
    terminal(60)
    # WHEN status runs
    result = cli("status", "--env", "dev")
    # THEN each key is a block of labelled lines, with its values whole
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "chat-backend" in lines
    assert any(line.split() == ["Current", "key", world.current(arn).key_id] for line in lines)
    assert any(line.split()[:1] == ["Rotation"] for line in lines)
    assert not any(line.startswith(("┏", "│")) for line in lines)


def test_status_in_a_wide_terminal_is_a_table(world: RotationWorld, cli: Cli, terminal: Callable[[int], None]) -> None:
    rotated(world, "chat-backend")
    terminal(400)
    result = cli("status", "--env", "dev")
    assert any(line.startswith("┏") for line in result.stdout.splitlines())


def test_every_command_that_reports_a_result_has_json() -> None:
    # GIVEN every command but exec (whose output is its child's)
    for words, command in command_paths().items():
        if words == "exec":
            continue
        # THEN it takes --json
        assert "--json" in {decl for param in command.params for decl in getattr(param, "opts", [])}, words


def test_rotate_json_is_one_document_with_progress_on_stderr(
    world: RotationWorld, cli: Cli, rotation: RotationService, lambda_logs: LambdaLogs
) -> None:
    # GIVEN a key in service and a readable rotation log
    arn = rotated(world, "chat-backend")
    before = world.current(arn).key_id
    lambda_logs.create_group()
    # WHEN rotate runs with --json
    result = cli("rotate", *KEY, *FAST, "--json")
    # THEN stdout is exactly one document in the status envelope, naming the old and the new key
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["schema"] == "keyrot.cli.rotate/v1"
    assert document["ok"] is True and document["error"] is None
    assert (document["previous_key_id"], document["current_key_id"]) == (before, world.current(arn).key_id)
    assert document["secret_arn"] == arn
    assert any(step["text"].startswith("finishSecret") for step in document["steps"])
    # AND the progress went to stderr
    assert "Rotation complete" in result.stderr


def test_rotate_emergency_json_reports_the_containment(
    world: RotationWorld, cli: Cli, rotation: RotationService
) -> None:
    # GIVEN a key in service
    arn = rotated(world, "chat-backend")
    before = world.current(arn).key_id
    # WHEN an emergency rotation runs with --json
    document = json.loads(cli("rotate", *KEY, *FAST, "--emergency", "--yes", "--json").stdout)
    # THEN the document names the key it revoked and says exactly one live key is left: the new one
    revocation = document["revocation"]
    assert (revocation["leaked_key_id"], revocation["revoked"]) == (before, [before])
    assert revocation["leaked_key_dead"] is True and revocation["one_live_key"] is True
    assert revocation["live_keys"] == [world.current(arn).key_id] == [document["current_key_id"]]


def test_rotate_json_failure_is_a_document_and_exit_6(
    world: RotationWorld, cli: Cli, rotation: RotationService
) -> None:
    # GIVEN a rotation whose new key never authenticates
    rotated(world, "chat-backend")
    world.openai.state.activation_delay_seconds = 3600
    # WHEN rotate --json gives up
    result = cli("rotate", *KEY, "--timeout", "1", "--poll-interval", "0.05", "--json")
    # THEN the exit code says so, and stdout still holds a document saying why
    assert result.exit_code == 6
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert "did not finish within" in document["error"]


def test_admin_key_set_json_names_the_version_and_only_a_redacted_prefix(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a new admin key on stdin
    new_key = world.openai.state.add_admin_key("replacement")
    # WHEN it is set with --json
    result = cli("admin-key", "set", "--env", "dev", "--key-id", "key_replacement1", "--json", input=f"{new_key}\n")
    # THEN one document names where it went, its version and id, and shows only a redacted prefix
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["schema"] == "keyrot.cli.admin-key-set/v1"
    stored = world.secrets.describe_secret(SecretId=world.admin_secret_arn)
    current = next(v for v, stages in stored["VersionIdsToStages"].items() if "AWSCURRENT" in stages)
    assert (document["version_id"], document["key_id"]) == (current, "key_replacement1")
    assert document["admin_key"] == f"{new_key[:8]}…(redacted)"
