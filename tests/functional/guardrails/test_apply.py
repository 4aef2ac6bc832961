"""Applying declared guardrails to a stand-in project with keyrot's admin client: converged in one apply, no changing
call on the second, OpenAI's "only lowered" rule reported by setting with nothing else changed, settings removed from
the block back to OpenAI's default where the API allows it and left as they were where it does not."""

from __future__ import annotations

import pytest

from keyrot.guardrails import GuardrailsApplyError, apply_guardrails, compare, parse_guardrails, read_actual

from .conftest import BLOCK, Project


def test_one_apply_gives_the_project_the_declared_guardrails(project: Project) -> None:
    # GIVEN a fresh project (OpenAI's defaults) and the declared block
    declared = parse_guardrails(BLOCK)
    # WHEN it is applied
    report = apply_guardrails(project.admin(), project.project_id, declared)
    # THEN OpenAI holds each declared value
    rails = project.rails
    assert rails.rate_limits["rl-gpt-4o-mini"].values["max_requests_per_1_minute"] == 500
    assert rails.rate_limits["rl-gpt-4o-mini"].values["max_tokens_per_1_minute"] == 200_000
    assert rails.rate_limits["rl-gpt-4.1"].values["batch_1_day_max_input_tokens"] == 1_000_000
    assert rails.spend_limit_cents == 10_000
    listed = rails.spend_alerts.values()
    alerts = [(a["threshold_amount"], tuple(a["notification_channel"]["recipients"])) for a in listed]
    assert sorted(alerts) == [
        (5_000, ("finance@example.com",)),
        (8_000, ("finance@example.com", "oncall@example.com")),
    ]
    assert rails.model_permissions == ("allow_list", ("gpt-4.1", "gpt-4o-mini"))
    # AND the report lists each change
    assert len(report.changes) == 6 and report.changed


def test_a_second_apply_makes_only_the_four_reads(project: Project) -> None:
    # GIVEN the block applied once
    declared = parse_guardrails(BLOCK)
    apply_guardrails(project.admin(), project.project_id, declared)
    project.standin.reset_calls()
    # WHEN it is applied again
    report = apply_guardrails(project.admin(), project.project_id, declared)
    # THEN OpenAI received no changing call, only the reads
    assert report.changes == () and project.writes() == []
    assert sorted(call.endpoint for call in project.standin.calls) == [
        "get_model_permissions",
        "get_spend_limit",
        "list_rate_limits",
        "list_spend_alerts",
    ]


def test_a_rate_limit_above_what_openai_allows_is_refused_by_setting_and_nothing_else_changes(
    project: Project,
) -> None:
    # GIVEN a block lowering gpt-4o-mini, setting a spend limit and raising gpt-4.1 above the organization's limit
    block = {
        "rateLimits": {
            "gpt-4o-mini": {"max_requests_per_1_minute": 500},
            "gpt-4.1": {"max_requests_per_1_minute": 1_000_000},
        },
        "spendLimitUsd": 100,
    }
    # WHEN it is applied
    with pytest.raises(GuardrailsApplyError) as caught:
        apply_guardrails(project.admin(), project.project_id, parse_guardrails(block))
    # THEN the error names the setting and says OpenAI only lets limits be lowered
    message = str(caught.value)
    assert message.startswith("the declared guardrails cannot be applied:\n  ")
    assert 'keyrot:guardrails.rateLimits["gpt-4.1"].max_requests_per_1_minute: 1000000 is above what OpenAI' in message
    assert "only lets a project's rate limits be lowered" in message and "nothing was changed" in message
    # AND the raise was tried first, so nothing else changed
    assert project.writes() == ["update_rate_limit"]
    assert project.rails.rate_limits["rl-gpt-4o-mini"].values["max_requests_per_1_minute"] == 10_000
    assert project.rails.spend_limit_cents is None


def test_raising_a_limit_back_up_to_the_organizations_limit_is_applied(project: Project) -> None:
    # GIVEN gpt-4o-mini lowered to 100 in the console
    project.standin.console.update_rate_limit(project.project_id, "gpt-4o-mini", max_requests_per_1_minute=100)
    # WHEN a block declaring 5000 (below the organization's 10000) is applied
    declared = parse_guardrails({"rateLimits": {"gpt-4o-mini": {"max_requests_per_1_minute": 5_000}}})
    apply_guardrails(project.admin(), project.project_id, declared)
    # THEN the project has it
    assert project.rails.rate_limits["rl-gpt-4o-mini"].values["max_requests_per_1_minute"] == 5_000


def test_a_model_the_project_has_no_rate_limit_for_is_refused_before_any_change(project: Project) -> None:
    declared = parse_guardrails({"spendLimitUsd": 5, "rateLimits": {"gpt-5-turbo": {"max_requests_per_1_minute": 1}}})
    with pytest.raises(GuardrailsApplyError, match="no rate limit for model gpt-5-turbo"):
        apply_guardrails(project.admin(), project.project_id, declared)
    assert project.writes() == [] and project.rails.spend_limit_cents is None


def test_settings_removed_from_the_block_go_back_to_openais_default_where_the_api_allows(project: Project) -> None:
    # GIVEN the full block applied
    apply_guardrails(project.admin(), project.project_id, parse_guardrails(BLOCK))
    # WHEN the block is reduced to nothing
    apply_guardrails(project.admin(), project.project_id, parse_guardrails({}))
    # THEN the hard limit, the alerts and the model permissions are OpenAI's defaults again
    rails = project.rails
    assert rails.spend_limit_cents is None and rails.spend_alerts == {} and rails.model_permissions is None
    # AND the rate limits, which OpenAI cannot reset, are left as they were
    assert rails.rate_limits["rl-gpt-4o-mini"].values["max_requests_per_1_minute"] == 500


def test_an_alert_someone_added_in_the_console_is_removed_by_the_next_apply(project: Project) -> None:
    declared = parse_guardrails(BLOCK)
    apply_guardrails(project.admin(), project.project_id, declared)
    project.standin.console.create_spend_alert(project.project_id, 1_000, ["someone@example.com"])
    report = apply_guardrails(project.admin(), project.project_id, declared)
    assert [change.split(" at ")[1] for change in report.changes] == ["$10.00 deleted"]
    assert compare(declared, read_actual(project.admin(), project.project_id)).in_step
