"""`keyrot rotate`: RotateSecret followed to the end, failures, resuming, --discard-pending and --emergency."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from keyrot.cli import interaction
from keyrot.constants import STAGE_PENDING, STAGE_REVOKED
from lab.rotation_service import RotationService
from lab.scenario import RotationWorld

from .conftest import Cli, LambdaLogs, rotated

FAST = ("--poll-interval", "0.02")


def _pending(world: RotationWorld, arn: str) -> str | None:
    return next((v for v, stages in world.stages(arn).items() if STAGE_PENDING in stages), None)


def _failed_rotation(world: RotationWorld, rotation: RotationService, arn: str) -> str:
    """A rotation whose new key never authenticates: it minted and stored the key, then testSecret failed."""
    world.openai.state.activation_delay_seconds = 3600
    token = str(world.secrets.rotate_secret(SecretId=arn)["VersionId"])
    rotation.wait()
    world.openai.state.activation_delay_seconds = 0
    return token


def test_rotate_follows_the_rotation_until_the_new_key_is_current(
    world: RotationWorld, cli: Cli, rotation: RotationService
) -> None:
    # GIVEN a key in service
    arn = rotated(world, "chat-backend")
    before = world.current(arn).key_id
    # WHEN rotate runs
    result = cli("rotate", "--env", "dev", "--key", "chat-backend", *FAST)
    # THEN it reports each milestone and ends with the new key current and nothing pending
    assert result.exit_code == 0, result.output
    after = world.current(arn).key_id
    assert after != before
    assert "new key promoted to AWSCURRENT (finishSecret)" in result.stdout
    assert "AWSPENDING label removed: rotation complete" in result.stdout
    assert f"Rotation complete: current key {after} (was {before})" in result.stdout
    assert _pending(world, arn) is None


def test_rotate_shows_each_step_from_the_rotation_log(
    world: RotationWorld, cli: Cli, rotation: RotationService, lambda_logs: LambdaLogs
) -> None:
    # GIVEN the rotation function's log group exists
    lambda_logs.create_group()
    arn = world.create_managed_secret("chat-backend")
    # WHEN rotate runs
    result = cli("rotate", "--env", "dev", "--key", "chat-backend", *FAST)
    # THEN the steps the function logged are shown
    assert result.exit_code == 0, result.output
    key_id = world.current(arn).key_id
    assert f"createSecret: minted ({key_id})" in result.stdout
    assert "testSecret: validated (valid)" in result.stdout
    assert f"finishSecret: promoted ({key_id})" in result.stdout


def test_rotate_reports_failures_and_exits_6_on_timeout(
    world: RotationWorld, cli: Cli, rotation: RotationService, lambda_logs: LambdaLogs
) -> None:
    # GIVEN new keys never authenticate, so testSecret fails on every attempt
    lambda_logs.create_group()
    arn = rotated(world, "chat-backend")
    before = world.current(arn).key_id
    world.openai.state.activation_delay_seconds = 3600
    # WHEN rotate runs with a short timeout (long enough for a loaded machine to log the first failure)
    result = cli("rotate", "--env", "dev", "--key", "chat-backend", "--timeout", "3", *FAST)
    # THEN the failures are shown as they appear, and it exits 6 with the last error
    assert result.exit_code == 6
    assert "testSecret failed: KeyValidationError" in result.stdout
    assert "did not finish within 3 s; last error: testSecret: KeyValidationError" in result.stderr
    assert world.current(arn).key_id == before


def test_rotate_resumes_a_pending_rotation_with_its_token(
    world: RotationWorld, cli: Cli, rotation: RotationService
) -> None:
    # GIVEN a rotation that failed and left its version pending; the cause is now fixed
    arn = rotated(world, "chat-backend")
    token = _failed_rotation(world, rotation, arn)
    # WHEN rotate runs
    result = cli("rotate", "--env", "dev", "--key", "chat-backend", *FAST)
    # THEN the same rotation completes
    assert result.exit_code == 0, result.output
    assert f"Resuming the pending rotation {token}" in result.stdout
    assert world.stages(arn)[token] == ["AWSCURRENT"]


def test_rotate_discard_pending_deletes_the_attempt_and_starts_over(
    world: RotationWorld, cli: Cli, rotation: RotationService
) -> None:
    # GIVEN a stuck rotation whose service account holds a key that was never promoted
    arn = rotated(world, "chat-backend")
    token = _failed_rotation(world, rotation, arn)
    attempt = f"keyrot:dev:chat-backend:{token}"
    assert attempt in [account.name for account in world.keyrot_accounts()]
    # WHEN rotate runs with --discard-pending
    result = cli("rotate", "--env", "dev", "--key", "chat-backend", "--discard-pending", *FAST)
    # THEN the attempt is gone (label and account) and a new rotation made a new key current
    assert result.exit_code == 0, result.output
    assert f"Discarded pending rotation {token}" in result.stdout
    assert "1 service account(s) deleted" in result.stdout
    assert attempt not in [account.name for account in world.keyrot_accounts()]
    assert STAGE_PENDING not in world.stages(arn).get(token, [])
    assert world.current(arn).service_account_id in {account.id for account in world.keyrot_accounts()}
    assert _pending(world, arn) is None


def test_rotate_emergency_on_a_non_terminal_without_yes_exits_2_and_changes_nothing(
    world: RotationWorld, cli: Cli, rotation: RotationService
) -> None:
    arn = rotated(world, "chat-backend")
    before = world.stages(arn)
    result = cli("rotate", "--env", "dev", "--key", "chat-backend", "--emergency", *FAST)
    assert result.exit_code == 2
    assert "pass --yes" in result.stderr
    assert world.stages(arn) == before


def test_rotate_emergency_declined_at_the_prompt_exits_1(
    world: RotationWorld, cli: Cli, rotation: RotationService, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = rotated(world, "chat-backend")
    before = world.stages(arn)
    monkeypatch.setattr(interaction, "stdin_is_tty", lambda: True)
    result = cli("rotate", "--env", "dev", "--key", "chat-backend", "--emergency", *FAST, input="n\n")
    assert result.exit_code == 1
    assert world.current(arn).key_id in result.stdout  # the prompt names the key it will revoke
    assert world.stages(arn) == before


def test_rotate_emergency_revokes_the_previous_key_once_the_new_one_is_live(
    world: RotationWorld, cli: Cli, rotation: RotationService
) -> None:
    # GIVEN a key that leaked
    arn = rotated(world, "chat-backend")
    leaked = world.current(arn)
    # WHEN an emergency rotation runs
    result = cli("rotate", "--env", "dev", "--key", "chat-backend", "--emergency", "--yes", *FAST)
    # THEN a new key is current and the leaked one is revoked at OpenAI and marked on its version
    assert result.exit_code == 0, result.output
    assert world.current(arn).key_id != leaked.key_id
    assert f"Revoked {leaked.key_id} (every key of keyrot/dev/chat-backend but the new one)" in result.stdout
    assert f"Exactly one live key is left: {world.current(arn).key_id} (the new one)" in result.stdout
    assert not world.openai.state.key_is_live(leaked.key_id)
    previous_version = next(v for v, stages in world.stages(arn).items() if "AWSPREVIOUS" in stages)
    assert STAGE_REVOKED in world.stages(arn)[previous_version]


def test_rotate_unknown_key_exits_4_listing_the_known_keys(
    world: RotationWorld, cli: Cli, rotation: RotationService
) -> None:
    rotated(world, "chat-backend")
    result = cli("rotate", "--env", "dev", "--key", "chat-frontend", *FAST)
    assert result.exit_code == 4
    assert "no key 'chat-frontend' in environment dev (region us-east-1); known keys: chat-backend" in result.stderr


def test_rotate_access_denied_exits_5_naming_rotate_secret(
    world: RotationWorld, cli: Cli, rotation: RotationService, deny: Callable[[str], None]
) -> None:
    arn = rotated(world, "chat-backend")
    deny("RotateSecret")
    result = cli("rotate", "--env", "dev", "--key", "chat-backend", *FAST)
    assert result.exit_code == 5
    assert "secretsmanager:RotateSecret" in result.stderr
    assert _pending(world, arn) is None
