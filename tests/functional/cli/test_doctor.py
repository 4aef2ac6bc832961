"""`keyrot doctor`: one finding per check, each classified; exit 0 without a failing check, 1 otherwise."""

from __future__ import annotations

import json
import socket
from datetime import timedelta
from typing import Any

import pytest

from keyrot.cli import context as cli_context
from lab.openai_standin import insufficient_quota, rate_limited
from lab.rotation_service import RotationService
from lab.scenario import RotationWorld

from .conftest import Cli, LambdaLogs, rotated

DOCTOR = ("doctor", "--env", "dev", "--key", "chat-backend")


def _findings(cli: Cli, *extra: str) -> tuple[int, dict[str, dict[str, Any]]]:
    result = cli(*DOCTOR, "--json", *extra)
    document = json.loads(result.stdout)
    assert document["schema"] == "keyrot.cli.doctor/v1"
    return result.exit_code, {finding["check"]: finding for finding in document["findings"]}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_doctor_on_a_healthy_key_exits_0_with_every_check_ok(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    result = cli(*DOCTOR, "--inference-probe")
    assert result.exit_code == 0, result.output
    for check in ("AWS credentials", "secret found", "secret readable", "key valid at OpenAI", "rate-limit headroom"):
        assert f"[ ok ] {check}" in result.stdout
    assert "[ ok ] admin key: present and valid" in result.stdout
    assert "0 failing" in result.stdout


def test_doctor_classifies_a_deleted_key_as_dead(world: RotationWorld, cli: Cli) -> None:
    # GIVEN the current key's service account was deleted in the OpenAI dashboard
    arn = rotated(world, "chat-backend")
    state = world.openai.state
    state.delete_service_account(state.service_accounts[world.current(arn).service_account_id])
    # WHEN doctor runs
    code, findings = _findings(cli)
    # THEN the key is DEAD, which fails, and the hint is to rotate
    probe = findings["key valid at OpenAI"]
    assert code == 1
    assert probe["status"] == "fail"
    assert probe["detail"].startswith("DEAD")
    assert "keyrot rotate --env dev --key chat-backend" in probe["hint"]


def test_doctor_classifies_a_refused_key_as_restricted(world: RotationWorld, cli: Cli) -> None:
    arn = rotated(world, "chat-backend")
    world.openai.state.keys[world.current(arn).key_id].restriction = "Your IP is not in the allow-list."
    code, findings = _findings(cli)
    probe = findings["key valid at OpenAI"]
    assert (probe["status"], code) == ("warn", 0)
    assert probe["detail"].startswith("RESTRICTED")


def test_doctor_classifies_an_exhausted_quota_as_billing(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    world.openai.faults.add(insufficient_quota("list_models"))
    code, findings = _findings(cli)
    probe = findings["key valid at OpenAI"]
    assert (probe["status"], code) == ("fail", 1)
    assert probe["detail"].startswith("quota or billing limit")
    assert "billing" in probe["hint"]


def test_doctor_classifies_throttling_as_rate_limited(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    world.openai.faults.add(rate_limited("list_models", retry_after=0.01))
    code, findings = _findings(cli)
    probe = findings["key valid at OpenAI"]
    assert (probe["status"], code) == ("warn", 0)
    assert probe["detail"].startswith("rate limited")


def test_doctor_classifies_a_closed_port_as_unreachable(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    code, findings = _findings(cli, "--openai-base-url", f"http://127.0.0.1:{_closed_port()}/v1")
    probe = findings["key valid at OpenAI"]
    assert (probe["status"], code) == ("fail", 1)
    assert probe["detail"].startswith("OpenAI unreachable")
    assert findings["admin key"]["status"] == "fail"


def test_doctor_reads_rate_limits_from_a_one_token_completion_when_asked(world: RotationWorld, cli: Cli) -> None:
    # GIVEN a project allowed 2 requests a minute (the doctor's key check spends one)
    rotated(world, "chat-backend")
    world.openai.requests_per_minute = 2
    # WHEN the doctor is asked for the documented source of the headers
    _, findings = _findings(cli, "--inference-probe")
    # THEN it reads them from a one-token completion and warns of the low headroom
    headroom = findings["rate-limit headroom"]
    assert headroom["status"] == "warn" and "0/2 requests left" in headroom["detail"]
    assert "gpt-4o-mini completion" in headroom["detail"] or "close to the requests limit" in headroom["hint"]
    assert len(world.openai.calls_to("chat_completions")) == 1


def test_doctor_says_where_rate_limits_can_be_read_when_models_has_none(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    _, findings = _findings(cli)
    headroom = findings["rate-limit headroom"]
    assert headroom["status"] == "warn" and "no x-ratelimit-* headers on GET /v1/models" in headroom["detail"]
    assert "--inference-probe" in headroom["hint"]
    assert world.openai.calls_to("chat_completions") == []  # no tokens spent unless asked


def test_doctor_fails_a_stuck_rotation_with_its_logged_failure(
    world: RotationWorld,
    cli: Cli,
    rotation: RotationService,
    lambda_logs: LambdaLogs,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a rotation whose testSecret failed on every attempt (the function logged why), an hour ago
    lambda_logs.create_group()
    arn = rotated(world, "chat-backend")
    world.openai.state.activation_delay_seconds = 3600
    token = world.secrets.rotate_secret(SecretId=arn)["VersionId"]
    rotation.wait()
    later = cli_context.utc_now() + timedelta(hours=1)
    monkeypatch.setattr(cli_context, "utc_now", lambda: later)
    # WHEN doctor runs
    code, findings = _findings(cli)
    # THEN the pending rotation is stuck, with the failing step and what to do
    pending = findings["pending rotation"]
    assert (pending["status"], code) == ("fail", 1)
    assert pending["detail"].startswith(f"STUCK: version {token}")
    assert "last failure testSecret: KeyValidationError" in pending["detail"]
    assert "--discard-pending" in pending["hint"]


def test_doctor_fails_a_rejected_admin_key(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    world.openai.state.revoke_admin_key(world.admin_key)
    code, findings = _findings(cli)
    admin = findings["admin key"]
    assert (admin["status"], code) == ("fail", 1)
    assert "keyrot admin-key set --env dev" in admin["hint"]


def test_doctor_warns_about_a_previous_key_not_yet_revoked(world: RotationWorld, cli: Cli) -> None:
    arn = rotated(world, "chat-backend", times=2)
    code, findings = _findings(cli)
    previous = world.previous(arn)
    assert previous is not None
    assert findings["previous key"]["status"] == "warn"
    assert findings["previous key"]["detail"] == f"{previous.key_id} not revoked yet"
    assert code == 0


def test_doctor_of_an_unknown_key_reports_a_failing_check(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    result = cli("doctor", "--env", "dev", "--key", "nope")
    assert result.exit_code == 1
    assert "[fail] secret found: no key 'nope' in environment dev" in result.stdout


def test_doctor_without_credentials_reports_a_failing_check(
    world: RotationWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, findings = _findings(cli)
    assert code == 1
    assert findings["AWS credentials"]["status"] == "fail"
    assert len(findings) == 1
