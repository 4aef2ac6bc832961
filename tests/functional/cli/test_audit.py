"""`keyrot audit`: orphans, unmanaged keys, expired and unrevoked keys; exit 0 when clean, 1 on drift."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from keyrot.cli import context as cli_context
from lab.scenario import RotationWorld

from .conftest import Cli, rotated

AUDIT = ("audit", "--env", "dev")
TOKEN = "0b9e7d3c-1f4a-4c55-9a51-3c8d2e6f7a10"


def _later(monkeypatch: pytest.MonkeyPatch, delta: timedelta) -> None:
    moment = cli_context.utc_now() + delta
    monkeypatch.setattr(cli_context, "utc_now", lambda: moment)


def test_audit_of_a_clean_environment_exits_0(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    result = cli(*AUDIT)
    assert result.exit_code == 0, result.output
    assert "No drift in dev." in result.stdout


def test_audit_finds_an_orphaned_keyrot_service_account(
    world: RotationWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a keyrot-named account of this environment that no secret refers to (an abandoned rotation), older
    # than any rotation invocation can run (a younger one may belong to an invocation still under way)
    rotated(world, "chat-backend")
    account, key = world.openai.state.create_service_account(
        world.project_id, f"keyrot:dev:chat-backend:{TOKEN}", with_key=True, expires_in=None
    )
    assert key is not None
    _later(monkeypatch, timedelta(hours=1))
    # WHEN audited
    result = cli(*AUDIT, "--json")
    # THEN it is an orphan, listed with its token and key id, and the audit exits 1
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    [orphan] = document["orphans"]
    assert (orphan["service_account_id"], orphan["token"], orphan["key_ids"]) == (account.id, TOKEN, [key.id])
    assert document["unmanaged_keys"] == []  # its key is reported once, with the orphan
    assert document["counts"]["orphans"] == 1


def test_audit_finds_an_unmanaged_user_key_showing_only_a_redacted_prefix(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a key someone created by hand in the project
    rotated(world, "chat-backend")
    key_id, _ = world.openai.state.add_user_key(world.project_id, name="laptop key")
    # WHEN audited
    result = cli(*AUDIT)
    # THEN it is listed with its id, a redacted prefix, owner and last use
    assert result.exit_code == 1
    row = next(line for line in result.stdout.splitlines() if key_id in line)
    assert "sk-pro…" in row
    assert "user A Developer" in row
    assert "never" in row
    assert "1 unmanaged keys" in result.stdout


def test_audit_ignores_keys_minted_for_another_environment(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    world.openai.state.create_service_account(
        world.project_id, f"keyrot:prod:chat-backend:{TOKEN}", with_key=True, expires_in=None
    )
    result = cli(*AUDIT)
    assert result.exit_code == 0, result.output


def test_audit_treats_the_account_of_a_pending_rotation_as_in_progress(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a rotation that created its account but has not stored the key yet
    arn = rotated(world, "chat-backend")
    token = world.driver().start(arn)
    world.openai.state.create_service_account(
        world.project_id, f"keyrot:dev:chat-backend:{token}", with_key=True, expires_in=None
    )
    # WHEN audited
    result = cli(*AUDIT)
    # THEN that is not drift
    assert result.exit_code == 0, result.output
    assert "Rotation in progress" in result.stdout


def test_audit_finds_a_managed_key_past_its_expiry_backstop(
    world: RotationWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a key minted with a one-hour OpenAI-side expiry, two hours ago (no grace after it, so it may be promoted)
    arn = world.create_managed_secret("chat-backend")
    short_lived = world.with_settings(key_expiry_seconds=3600, grace_period_seconds=0, max_grace_period_seconds=0)
    assert short_lived.driver().rotate(arn).succeeded
    _later(monkeypatch, timedelta(hours=2))
    # WHEN audited
    document = json.loads(cli(*AUDIT, "--json").stdout)
    # THEN the current key is expired drift
    [expired] = document["expired_keys"]
    assert (expired["key_id"], expired["role"]) == (world.current(arn).key_id, "current")
    assert document["drift_found"] is True


def test_audit_reports_an_unrevoked_previous_key_within_grace_without_drift(world: RotationWorld, cli: Cli) -> None:
    arn = rotated(world, "chat-backend", times=2)
    result = cli(*AUDIT)
    assert result.exit_code == 0, result.output
    previous = world.previous(arn)
    assert previous is not None
    assert previous.key_id in result.stdout
    assert "no (within grace)" in result.stdout


def test_audit_counts_a_previous_key_past_the_grace_period_as_drift(
    world: RotationWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    rotated(world, "chat-backend", times=2)
    _later(monkeypatch, timedelta(hours=25))
    result = cli(*AUDIT, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["counts"]["unrevoked_previous_keys"] == 1


def test_audit_finds_a_current_key_deleted_at_openai(world: RotationWorld, cli: Cli) -> None:
    arn = rotated(world, "chat-backend")
    current = world.current(arn)
    world.openai.state.delete_service_account(world.openai.state.service_accounts[current.service_account_id])
    document = json.loads(cli(*AUDIT, "--json").stdout)
    assert [(m["key_id"], m["role"]) for m in document["missing_keys"]] == [(current.key_id, "current")]


def test_audit_with_a_rejected_admin_key_exits_7(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    world.openai.state.revoke_admin_key(world.admin_key)
    result = cli(*AUDIT)
    assert result.exit_code == 7
    assert "admin key was rejected" in result.stderr


def test_audit_of_an_unknown_environment_exits_4(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    result = cli("audit", "--env", "staging")
    assert result.exit_code == 4
    assert "no keyrot secrets tagged keyrot:environment=staging" in result.stderr
