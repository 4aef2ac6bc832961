"""`keyrot admin-key set`: read from a hidden prompt or stdin (never argv), validate with OpenAI, then store."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from keyrot.cli import interaction
from keyrot.secret_model import AdminCredentials
from lab.scenario import RotationWorld

from .conftest import Cli

SET = ("admin-key", "set", "--env", "dev")


def _stored(world: RotationWorld) -> tuple[AdminCredentials, str]:
    response = world.secrets.get_secret_value(SecretId=world.admin_secret_arn, VersionStage="AWSCURRENT")
    return AdminCredentials.from_json(response["SecretString"]), response["VersionId"]


def test_admin_key_set_reads_the_key_from_stdin_and_stores_it(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a new admin key, piped on stdin
    new_key = world.openai.state.add_admin_key("replacement")
    # WHEN it is set
    result = cli(*SET, "--key-id", "key_replacement1", input=f"{new_key}\n")
    # THEN it is stored with its id, and only a redacted prefix and the version are printed
    assert result.exit_code == 0, result.output
    stored, version = _stored(world)
    assert (stored.admin_key, stored.key_id) == (new_key, "key_replacement1")
    assert f"Stored admin key {new_key[:8]}…(redacted)" in result.stdout
    assert version in result.stdout


def test_admin_key_set_prompts_with_hidden_input_at_a_terminal(
    world: RotationWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(interaction, "stdin_is_tty", lambda: True)
    new_key = world.openai.state.add_admin_key("replacement")
    result = cli(*SET, input=f"{new_key}\n")
    assert result.exit_code == 0, result.output
    assert "OpenAI admin key (input hidden):" in result.stdout
    assert _stored(world)[0].admin_key == new_key


def test_admin_key_set_refuses_an_invalid_key_and_stores_nothing(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a key OpenAI does not know
    _, before = _stored(world)
    bogus = "sk-admin-not-a-real-key-0123456789abcdefghijklmnop"
    # WHEN it is set
    result = cli(*SET, input=bogus)
    # THEN OpenAI's rejection exits 7 and the secret is unchanged
    assert result.exit_code == 7
    assert "OpenAI rejected the admin key sk-admin…(redacted); nothing stored" in result.stderr
    assert bogus not in result.output
    assert _stored(world) == (AdminCredentials(world.admin_key), before)


def test_admin_key_set_refuses_a_project_key(world: RotationWorld, cli: Cli) -> None:
    _, project_key = world.openai.state.add_user_key(world.project_id)
    result = cli(*SET, input=project_key)
    assert result.exit_code == 7
    assert "nothing stored" in result.stderr
    assert project_key not in result.output


def test_admin_key_set_refuses_an_admin_key_that_cannot_read_usage(world: RotationWorld, cli: Cli) -> None:
    # GIVEN an admin key that manages projects but lacks the usage read scope the monitor needs
    _, before = _stored(world)
    narrow = world.openai.state.add_admin_key("no usage", scopes={"api.management.read", "api.management.write"})
    # WHEN it is set THEN it is refused with the scope named, and nothing is stored
    result = cli(*SET, input=f"{narrow}\n")
    assert result.exit_code == 7
    assert "cannot read usage, which the monitor needs" in result.stderr and "nothing stored" in result.stderr
    assert narrow not in result.output
    assert _stored(world) == (AdminCredentials(world.admin_key), before)


def test_admin_key_set_with_empty_stdin_exits_2(world: RotationWorld, cli: Cli) -> None:
    result = cli(*SET, input="\n")
    assert result.exit_code == 2
    assert "no admin key given" in result.stderr


def test_admin_key_set_never_takes_the_key_from_argv(world: RotationWorld, cli: Cli) -> None:
    new_key = world.openai.state.add_admin_key("replacement")
    result = cli(*SET, new_key)
    assert result.exit_code == 2
    assert "never from the command line" in result.stderr
    assert _stored(world)[0].admin_key == world.admin_key


def test_usage_errors_never_echo_a_key_typed_as_an_argument(world: RotationWorld, cli: Cli) -> None:
    result = cli("status", world.admin_key)  # the leak check in `cli` is the assertion
    assert result.exit_code == 2


def test_admin_key_set_for_an_unknown_environment_exits_4_before_asking(world: RotationWorld, cli: Cli) -> None:
    result = cli("admin-key", "set", "--env", "qa", input="sk-admin-whatever-0123456789")
    assert result.exit_code == 4
    assert "no admin-key secret for environment qa in region us-east-1" in result.stderr


def test_admin_key_set_without_put_permission_exits_5(
    world: RotationWorld, cli: Cli, deny: Callable[[str], None]
) -> None:
    deny("PutSecretValue")
    new_key = world.openai.state.add_admin_key("replacement")
    result = cli(*SET, input=new_key)
    assert result.exit_code == 5
    assert "secretsmanager:PutSecretValue" in result.stderr
    assert _stored(world)[0].admin_key == world.admin_key


def test_admin_key_set_finds_the_admin_secret_by_its_tag(world: RotationWorld, cli: Cli) -> None:
    # GIVEN an admin-key secret with another name, tagged as the stack tags it
    tagged = world.secrets.create_secret(
        Name="org/openai-admin",
        Tags=[{"Key": "keyrot:environment", "Value": "dev"}, {"Key": "keyrot:admin-key", "Value": "dev"}],
    )["ARN"]
    new_key = world.openai.state.add_admin_key("replacement")
    # WHEN the admin key is set
    result = cli(*SET, input=new_key)
    # THEN it lands in the tagged secret
    assert result.exit_code == 0, result.output
    stored = world.secrets.get_secret_value(SecretId=tagged, VersionStage="AWSCURRENT")["SecretString"]
    assert AdminCredentials.from_json(stored).admin_key == new_key
    assert "org/openai-admin" in result.stdout
