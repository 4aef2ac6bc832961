"""`keyrot guardrails --env E`, doctor's guardrails line and status's spend line, run as the operator runs them
(the real typer app against moto and the stand-in; no key material in any output)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from keyrot.constants import ENV_OPENAI_ADMIN_BASE_URL
from keyrot.guardrails import apply_guardrails
from lab.scenario import RotationWorld
from tests.functional.cli.conftest import Cli, rotated

from .conftest import BLOCK, declare

GUARDRAILS = ("guardrails", "--env", "dev")


@pytest.fixture
def cli(world: RotationWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    monkeypatch.setenv(ENV_OPENAI_ADMIN_BASE_URL, world.openai.base_url)
    runner = Cli(world)
    yield runner
    for result in runner.results:
        runner.assert_no_leak(result)


@pytest.fixture
def deployed(world: RotationWorld, monkeypatch: pytest.MonkeyPatch) -> RotationWorld:
    """An environment with a managed key and the block declared and applied."""
    rotated(world, "chat-backend")
    ssm = boto3.client("ssm", region_name="us-east-1")
    declared = declare(world, ssm, monkeypatch, BLOCK)
    apply_guardrails(admin_of(world), world.project_id, declared)
    return world


def admin_of(world: RotationWorld) -> Any:
    return world.context().admin()


def test_an_environment_with_its_declared_guardrails_shows_them_side_by_side_and_exits_0(
    deployed: RotationWorld, cli: Cli
) -> None:
    result = cli(*GUARDRAILS)
    assert result.exit_code == 0, result.output
    assert "rateLimits.gpt-4o-mini.max_requests_per_1_minute" in result.stdout
    assert "$100.00 a month" in result.stdout and "allow only gpt-4.1, gpt-4o-mini" in result.stdout
    assert "dev has the declared guardrails." in result.stdout


def test_a_console_change_is_drift_naming_who_and_what_pulumi_up_would_change(
    deployed: RotationWorld, cli: Cli
) -> None:
    # GIVEN bob lowered a rate limit in the console
    bob = deployed.openai.console.as_user("bob@example.com", user_id="user_bob")
    bob.update_rate_limit(deployed.project_id, "gpt-4o-mini", max_requests_per_1_minute=20)
    # WHEN the operator looks
    result = cli(*GUARDRAILS)
    # THEN the row differs, names bob, the plan says what `pulumi up` would change, and the exit code is 1
    assert result.exit_code == 1
    assert "differs (changed by bob@example.com;" in result.stdout
    assert "rate limits of gpt-4o-mini: max_requests_per_1_minute 20 -> 500" in result.stdout


def test_the_json_document_lists_every_setting_with_its_state(deployed: RotationWorld, cli: Cli) -> None:
    deployed.openai.console.set_spend_limit(deployed.project_id, 12_345)
    document = json.loads(cli(*GUARDRAILS, "--json").stdout)
    assert document["schema"] == "keyrot.cli.guardrails/v1"
    assert (document["declared"], document["in_step"], document["enforce"]) == (True, False, "notify")
    states = {row["setting"]: (row["declared"], row["actual"], row["state"]) for row in document["settings"]}
    assert states["spendLimitUsd"] == ("$100.00 a month", "$123.45 a month (enforcing)", "differs")
    assert states["models"][2] == "ok"
    assert document["drift"]["restore_plan"] == ["hard spend limit set to $100.00 a month"]


def test_a_declared_raise_is_shown_as_allowed_only_up_to_the_organizations_limit(
    world: RotationWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN gpt-4o-mini lowered to 100, and a block declaring 5000
    rotated(world, "chat-backend")
    world.openai.console.update_rate_limit(world.project_id, "gpt-4o-mini", max_requests_per_1_minute=100)
    block = {"rateLimits": {"gpt-4o-mini": {"max_requests_per_1_minute": 5000}}}
    declare(world, boto3.client("ssm", region_name="us-east-1"), monkeypatch, block)
    # THEN the row says why `pulumi up` might be refused
    result = cli(*GUARDRAILS)
    assert "a raise: OpenAI allows it only up to the organization's limit for the model" in result.stdout


def test_a_declared_model_the_project_lacks_is_a_problem_and_doctor_fails_on_it(
    world: RotationWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    rotated(world, "chat-backend")
    block = {"rateLimits": {"gpt-9": {"max_requests_per_1_minute": 1}}}
    declare(world, boto3.client("ssm", region_name="us-east-1"), monkeypatch, block)
    result = cli(*GUARDRAILS)
    assert result.exit_code == 1 and "the project has no rate limit for model gpt-9" in result.stdout
    doctor = cli("doctor", "--env", "dev", "--key", "chat-backend", "--json")
    (finding,) = [f for f in json.loads(doctor.stdout)["findings"] if f["check"] == "OpenAI guardrails"]
    assert finding["status"] == "fail" and doctor.exit_code == 1


def test_an_environment_without_declared_guardrails_shows_openais_and_exits_0(world: RotationWorld, cli: Cli) -> None:
    rotated(world, "chat-backend")
    result = cli(*GUARDRAILS)
    assert result.exit_code == 0
    assert "No guardrails declared for dev" in result.stdout and "not declared" in result.stdout


def test_doctor_warns_on_drift_and_names_the_command(deployed: RotationWorld, cli: Cli) -> None:
    deployed.openai.console.delete_spend_limit(deployed.project_id)
    document = json.loads(cli("doctor", "--env", "dev", "--key", "chat-backend", "--json").stdout)
    (finding,) = [f for f in document["findings"] if f["check"] == "OpenAI guardrails"]
    assert finding["status"] == "warn" and "spendLimitUsd: declared $100.00 a month, actual none" in finding["detail"]
    assert finding["hint"] == "keyrot guardrails --env dev"


def test_status_shows_month_to_date_spend_against_the_hard_limit(deployed: RotationWorld, cli: Cli) -> None:
    # GIVEN $25 spent this month in a project with a $100 hard limit and alerts at $50 and $80
    deployed.openai.state.record_cost(None, 25.0, project_id=deployed.project_id)
    # WHEN on-call runs status
    result = cli("status", "--env", "dev")
    document = json.loads(cli("status", "--env", "dev", "--json").stdout)
    # THEN both say how close the project is to its hard limit
    assert "OpenAI spend this month $25.00 of the hard limit $100.00 (25%, enforcing)" in result.stdout
    assert "spend alerts at $50.00, $80.00" in result.stdout
    spend = document["environments"][0]["openai_spend"]
    assert (spend["available"], spend["month_to_date_usd"], spend["hard_limit_usd"]) == (True, 25.0, 100.0)


def test_status_without_the_admin_key_still_lists_keys_and_says_why_spend_is_missing(
    deployed: RotationWorld, cli: Cli
) -> None:
    # GIVEN an environment whose admin-key secret holds no value
    deployed.secrets.delete_secret(SecretId=deployed.admin_secret_arn, ForceDeleteWithoutRecovery=True)
    # WHEN on-call runs status
    result = cli("status", "--env", "dev", "--json")
    # THEN the keys are listed, and the spend says why it is missing
    document = json.loads(result.stdout)
    assert result.exit_code == 0 and document["environments"][0]["keys"][0]["key_name"] == "chat-backend"
    spend = document["environments"][0]["openai_spend"]
    assert spend["available"] is False and "admin-key secret" in spend["error"]


def test_status_of_an_environment_without_guardrails_says_so_and_never_calls_openai(
    world: RotationWorld, cli: Cli
) -> None:
    # GIVEN an environment that declares no guardrails
    rotated(world, "chat-backend")
    world.openai.reset_calls()
    # WHEN on-call runs status
    result = cli("status", "--env", "dev")
    # THEN the spend line says why it is missing, and the admin key went nowhere but to the project's service account
    # and key lists (status checks revocations at OpenAI: docs/cli.md#keyrot-status)
    assert "OpenAI spend: not shown, no guardrails declared (keyrot:guardrails)" in result.stdout
    listing = {"list_service_accounts", "list_project_api_keys"}
    assert [call for call in world.openai.calls if call.principal == "admin" and call.endpoint not in listing] == []
