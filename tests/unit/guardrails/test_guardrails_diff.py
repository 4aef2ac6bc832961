"""Declared against actual: the differences, the plan that removes them (in a safe order) and the declared settings a
project cannot take, refused before any change. The fake admin plays OpenAI's rules; nothing leaves the process."""

from __future__ import annotations

from typing import Any

from keyrot.guardrails import compare, parse_guardrails, read_actual
from keyrot.guardrails.plan import (
    CreateSpendAlert,
    DeleteModelPermissions,
    DeleteSpendAlert,
    DeleteSpendLimit,
    SetModelPermissions,
    SetSpendLimit,
    UpdateRateLimit,
    UpdateSpendAlert,
)
from keyrot.openai_admin.guardrails import ModelPermissions, SpendLimit
from tests.unit.guardrails.fake_admin import FakeAdmin

PROJECT = "proj_unit"


def comparison(block: dict[str, Any], admin: FakeAdmin) -> Any:
    return compare(parse_guardrails(block), read_actual(admin, PROJECT))


def test_a_project_with_openais_defaults_matches_an_empty_block() -> None:
    # GIVEN a fresh project and a block declaring nothing
    found = comparison({}, FakeAdmin.with_models())
    # THEN nothing differs and nothing would be changed
    assert found.in_step and found.operations == ()


def test_a_lowered_rate_limit_is_one_difference_per_field_and_one_update_per_model() -> None:
    # GIVEN two lowered fields of one model
    admin = FakeAdmin.with_models()
    lowered = {"max_requests_per_1_minute": 5, "max_tokens_per_1_minute": 9}
    found = comparison({"rateLimits": {"gpt-4o-mini": lowered}}, admin)
    # THEN each field is a difference naming the rate limit's id, and one update sets both
    assert [(d.setting, d.declared, d.actual, d.resource_id) for d in found.differences] == [
        ("rateLimits.gpt-4o-mini.max_requests_per_1_minute", "5", "10000", "rl-gpt-4o-mini"),
        ("rateLimits.gpt-4o-mini.max_tokens_per_1_minute", "9", "10000000", "rl-gpt-4o-mini"),
    ]
    assert found.operations == (
        UpdateRateLimit(
            "gpt-4o-mini",
            "rl-gpt-4o-mini",
            {"max_requests_per_1_minute": 5, "max_tokens_per_1_minute": 9},
            {"max_requests_per_1_minute": 10_000, "max_tokens_per_1_minute": 10_000_000},
        ),
    )


def test_updates_that_raise_a_limit_come_first_so_a_refused_raise_stops_before_other_changes() -> None:
    # GIVEN gpt-4.1 lowered earlier (to be raised back) and gpt-4o-mini to be lowered, plus a spend limit
    admin = FakeAdmin.with_models()
    admin.update_rate_limit(PROJECT, "rl-gpt-4.1", max_requests_per_1_minute=10)
    block = {
        "rateLimits": {"gpt-4o-mini": {"max_requests_per_1_minute": 5}, "gpt-4.1": {"max_requests_per_1_minute": 50}},
        "spendLimitUsd": 10,
    }
    # THEN the raise is planned before the lowering and the spend limit
    kinds = [(type(op).__name__, getattr(op, "model", None)) for op in comparison(block, admin).operations]
    assert kinds == [("UpdateRateLimit", "gpt-4.1"), ("UpdateRateLimit", "gpt-4o-mini"), ("SetSpendLimit", None)]


def test_a_model_the_project_has_no_rate_limit_for_is_a_problem_naming_the_setting() -> None:
    found = comparison({"rateLimits": {"gpt-9": {"max_requests_per_1_minute": 1}}}, FakeAdmin.with_models())
    assert [str(p) for p in found.problems] == [
        "keyrot:guardrails.rateLimits.gpt-9: the project has no rate limit for model gpt-9 at OpenAI, which has no "
        "call to add one (models with rate limits: gpt-4.1, gpt-4o-mini, whisper-1)"
    ]
    assert not found.in_step


def test_a_limit_the_model_does_not_have_is_a_problem() -> None:
    found = comparison({"rateLimits": {"gpt-4o-mini": {"max_images_per_1_minute": 1}}}, FakeAdmin.with_models())
    assert [str(p) for p in found.problems] == [
        "keyrot:guardrails.rateLimits.gpt-4o-mini.max_images_per_1_minute: does not apply to model gpt-4o-mini: "
        "OpenAI lists no such limit for it"
    ]


def test_models_and_fields_not_declared_are_left_as_openai_has_them() -> None:
    # GIVEN limits lowered by someone on models and fields the block does not name
    admin = FakeAdmin.with_models()
    admin.update_rate_limit(PROJECT, "rl-whisper-1", max_requests_per_1_day=3)
    admin.update_rate_limit(PROJECT, "rl-gpt-4o-mini", max_tokens_per_1_minute=3)
    # THEN a block naming another field of gpt-4o-mini sees no difference
    found = comparison({"rateLimits": {"gpt-4o-mini": {"max_requests_per_1_minute": 10_000}}}, admin)
    assert found.in_step


def test_a_spend_limit_is_set_when_it_differs_and_removed_when_the_block_has_none() -> None:
    admin = FakeAdmin(spend_limit=SpendLimit(20_000, "USD", "month", "enforcing"))
    assert comparison({"spendLimitUsd": 100}, admin).operations == (SetSpendLimit(10_000),)
    removal = comparison({}, admin)
    assert removal.operations == (DeleteSpendLimit(),)
    assert [(d.setting, d.declared, d.actual) for d in removal.differences] == [
        ("spendLimitUsd", "none", "$200.00 a month")
    ]


def test_alerts_are_matched_by_threshold_missing_ones_created_others_deleted_last() -> None:
    # GIVEN alerts at $50 (other recipients), $50 again (a twin), $70 (not declared), and none at $90
    admin = FakeAdmin()
    kept = admin.add_alert(5_000, "old@example.com")
    twin = admin.add_alert(5_000, "old@example.com")
    extra = admin.add_alert(7_000, "x@example.com")
    block = {
        "spendAlerts": [
            {"thresholdUsd": 50, "recipients": ["a@example.com"]},
            {"thresholdUsd": 90, "recipients": ["a@example.com"]},
        ]
    }
    # THEN the first $50 alert is updated, $90 created, and only then the twin and the $70 alert deleted
    assert comparison(block, admin).operations == (
        UpdateSpendAlert(kept, 5_000, ("a@example.com",)),
        CreateSpendAlert(9_000, ("a@example.com",)),
        DeleteSpendAlert(twin, 5_000),
        DeleteSpendAlert(extra, 7_000),
    )


def test_alert_recipients_are_compared_as_a_set() -> None:
    admin = FakeAdmin()
    admin.add_alert(5_000, "b@example.com", "a@example.com")
    block = {"spendAlerts": [{"thresholdUsd": 50, "recipients": ["a@example.com", "b@example.com"]}]}
    assert comparison(block, admin).in_step


def test_model_permissions_are_compared_as_a_set_and_removed_when_the_block_has_none() -> None:
    admin = FakeAdmin(permissions=ModelPermissions("allow_list", ("o3", "gpt-4.1", "o3")))
    assert comparison({"models": {"allow": ["gpt-4.1", "o3"]}}, admin).in_step
    assert comparison({"models": {"deny": ["o3"]}}, admin).operations == (SetModelPermissions("deny_list", ("o3",)),)
    assert comparison({}, admin).operations == (DeleteModelPermissions(),)


def test_descriptions_carry_ids_and_amounts() -> None:
    admin = FakeAdmin.with_models()
    block = {
        "rateLimits": {"gpt-4o-mini": {"max_requests_per_1_minute": 5}},
        "spendLimitUsd": 12.5,
        "models": {"allow": ["gpt-4o-mini"]},
    }
    assert [op.describe() for op in comparison(block, admin).operations] == [
        "rate limits of gpt-4o-mini: max_requests_per_1_minute 10000 -> 5",
        "hard spend limit set to $12.50 a month",
        "model permissions set to allow only gpt-4o-mini",
    ]
