"""The audit log from the CLI: `keyrot admin-key set` records the key's id when OpenAI leaves no doubt and says when the
audit log cannot be read (and how to turn it on) without refusing the key; `keyrot doctor` has an audit-log line."""

from __future__ import annotations

import json

from keyrot.secret_model import AdminCredentials
from lab.scenario import RotationWorld

from .conftest import Cli, rotated

SET = ("admin-key", "set", "--env", "dev")
DOCTOR = ("doctor", "--env", "dev", "--key", "chat-backend", "--json")


def _stored(world: RotationWorld) -> AdminCredentials:
    response = world.secrets.get_secret_value(SecretId=world.admin_secret_arn, VersionStage="AWSCURRENT")
    return AdminCredentials.from_json(response["SecretString"])


def _replace_the_only_admin_key(world: RotationWorld) -> tuple[str, str]:
    """A new admin key, the organization's only one afterwards. Returns (value, id)."""
    state = world.openai.state
    new_key = state.add_admin_key("replacement")
    state.revoke_admin_key(world.admin_key)
    return new_key, state.admin_keys[new_key].id


def test_admin_key_set_records_the_id_of_the_organizations_only_admin_key(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a new admin key, the organization's only one, set without --key-id
    new_key, key_id = _replace_the_only_admin_key(world)
    # WHEN it is set
    result = cli(*SET, input=f"{new_key}\n")
    # THEN its id is recorded beside it, and said
    assert result.exit_code == 0, result.output
    assert _stored(world) == AdminCredentials(new_key, key_id)
    assert f"recorded the key's id {key_id}" in result.stderr


def test_admin_key_set_among_several_admin_keys_asks_for_the_id_and_stores_the_key(
    world: RotationWorld, cli: Cli
) -> None:
    new_key = world.openai.state.add_admin_key("second")
    result = cli(*SET, input=f"{new_key}\n")
    assert result.exit_code == 0, result.output
    assert _stored(world) == AdminCredentials(new_key, None)
    assert "pass --key-id" in result.stderr and "tripwire" in result.stderr


def test_admin_key_set_says_how_to_turn_on_an_audit_log_that_is_off_and_still_stores_the_key(
    world: RotationWorld, cli: Cli
) -> None:
    # GIVEN an organization whose audit logging is off
    world.openai.state.audit.enabled = False
    new_key, _ = _replace_the_only_admin_key(world)
    # WHEN an admin key is set
    result = cli(*SET, "--json", input=f"{new_key}\n")
    # THEN it is stored, and the operator reads how to turn audit logging on, in text and in the JSON
    assert result.exit_code == 0, result.output
    assert _stored(world).admin_key == new_key
    assert "Organization settings > Data controls" in result.stderr
    document = json.loads(result.stdout)
    assert document["audit_log"]["readable"] is False and "Data controls" in document["audit_log"]["problem"]


def test_admin_key_set_names_the_missing_audit_log_permission(world: RotationWorld, cli: Cli) -> None:
    # GIVEN an admin key without the audit-log read permission
    scopes = {"api.management.read", "api.management.write", "api.usage.read"}
    narrow = world.openai.state.add_admin_key("no audit", scopes=scopes)
    result = cli(*SET, input=f"{narrow}\n")
    assert result.exit_code == 0, result.output
    assert "api.audit_log.read" in result.stderr and narrow not in result.output


def test_doctor_has_an_ok_audit_log_line_when_it_can_be_read(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    findings = {f["check"]: f for f in json.loads(cli(*DOCTOR).stdout)["findings"]}
    assert findings["OpenAI audit log"]["status"] == "ok"


def test_doctor_warns_with_the_fix_when_the_audit_log_is_off(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    world.openai.state.audit.enabled = False
    result = cli(*DOCTOR)
    finding = {f["check"]: f for f in json.loads(result.stdout)["findings"]}["OpenAI audit log"]
    assert finding["status"] == "warn" and "Data controls" in finding["detail"]
    assert finding["hint"] == "docs/runbook.md#audit-log-unreadable"
    assert result.exit_code == 0  # a warning: the rotation works without it
