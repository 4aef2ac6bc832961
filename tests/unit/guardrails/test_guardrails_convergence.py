"""Invariants of the apply over any declared block and any starting project (Hypothesis, the fake admin):

- one apply converges: afterwards the project compares in step with the block;
- a second apply makes no changing call;
- an apply that fails at any changing call (before or after the call took effect) leaves every setting at its old
  or its declared value, and the next apply converges with no twin alert;
- a declared setting the project cannot take changes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyrot.guardrails import GuardrailsApplyError, apply_guardrails, compare, parse_guardrails, read_actual
from keyrot.openai_admin.errors import ServerError
from keyrot.openai_admin.guardrails import ModelPermissions, SpendLimit
from tests.unit.guardrails.fake_admin import MAXIMA, FakeAdmin

PROJECT = "proj_unit"
EMAILS = st.sampled_from(["a@example.com", "b@example.com", "c@example.com"])
THRESHOLDS = st.sampled_from([1_000, 2_500, 5_000, 9_999])
MODELS = st.sampled_from(["gpt-4o-mini", "gpt-4.1", "whisper-1", "o3"])


@st.composite
def blocks(draw: st.DrawFn) -> dict[str, Any]:
    block: dict[str, Any] = {}
    limits: dict[str, dict[str, int]] = {}
    for model in draw(st.sets(st.sampled_from(sorted(MAXIMA)), max_size=3)):
        fields = draw(st.sets(st.sampled_from(sorted(MAXIMA[model])), min_size=1))
        limits[model] = {name: draw(st.integers(0, MAXIMA[model][name])) for name in fields}
    if limits:
        block["rateLimits"] = limits
    if draw(st.booleans()):
        block["spendLimitUsd"] = 100
    alerts = draw(st.lists(st.tuples(THRESHOLDS, st.sets(EMAILS, min_size=1)), unique_by=lambda a: a[0], max_size=3))
    if alerts:
        block["spendAlerts"] = [{"thresholdUsd": c / 100, "recipients": sorted(r)} for c, r in alerts]
    if draw(st.booleans()):
        block["models"] = {draw(st.sampled_from(["allow", "deny"])): draw(st.lists(MODELS, min_size=1, unique=True))}
    return block


@st.composite
def projects(draw: st.DrawFn) -> FakeAdmin:
    admin = FakeAdmin.with_models()
    for model in draw(st.sets(st.sampled_from(sorted(MAXIMA)))):
        name = draw(st.sampled_from(sorted(MAXIMA[model])))
        admin.update_rate_limit(PROJECT, f"rl-{model}", **{name: draw(st.integers(0, MAXIMA[model][name]))})
    if draw(st.booleans()):
        admin.spend_limit = SpendLimit(draw(THRESHOLDS), "USD", "month", "enforcing")
    for cents, recipients in draw(st.lists(st.tuples(THRESHOLDS, st.sets(EMAILS, min_size=1)), max_size=4)):
        admin.add_alert(cents, *sorted(recipients))
    if draw(st.booleans()):
        mode = draw(st.sampled_from(["allow_list", "deny_list"]))
        admin.permissions = ModelPermissions(mode, tuple(draw(st.lists(MODELS, min_size=1))))
    admin.calls.clear()
    return admin


def snapshot(admin: FakeAdmin) -> dict[str, Any]:
    """Every setting's value, alerts as a multiset by threshold (ids aside)."""
    alerts = sorted((a.threshold_cents, tuple(sorted(a.recipients))) for a in admin.alerts.values())
    permissions = admin.permissions
    return {
        "limits": {model: limit.limits for model, limit in admin.limits.items()},
        "spend": admin.spend_limit.threshold_cents if admin.spend_limit else None,
        "alerts": alerts,
        "models": None if permissions is None else (permissions.mode, tuple(sorted(set(permissions.model_ids)))),
    }


@settings(max_examples=150, deadline=None)
@given(block=blocks(), admin=projects())
def test_one_apply_converges_and_a_second_changes_nothing(block: dict[str, Any], admin: FakeAdmin) -> None:
    declared = parse_guardrails(block)
    # WHEN the block is applied
    apply_guardrails(admin, PROJECT, declared)
    # THEN the project compares in step
    assert compare(declared, read_actual(admin, PROJECT)).in_step
    # AND applying again makes no changing call
    admin.calls.clear()
    assert apply_guardrails(admin, PROJECT, declared).changes == ()
    assert admin.writes == []


@settings(max_examples=150, deadline=None)
@given(block=blocks(), admin=projects(), data=st.data())
def test_an_apply_stopped_at_any_call_leaves_old_or_declared_values_and_the_next_one_converges(
    block: dict[str, Any], admin: FakeAdmin, data: st.DataObject
) -> None:
    declared = parse_guardrails(block)
    before = snapshot(admin)
    planned = [type(op).__name__ for op in compare(declared, read_actual(admin, PROJECT)).operations]
    if not planned:
        return
    # GIVEN OpenAI fails one of the planned changing calls, before or after its effect
    target = data.draw(st.sampled_from(sorted(set(planned))), label="failing call")
    admin.fail_on = {
        "UpdateRateLimit": "update_rate_limit",
        "SetSpendLimit": "set_spend_limit",
        "DeleteSpendLimit": "delete_spend_limit",
        "CreateSpendAlert": "create_spend_alert",
        "UpdateSpendAlert": "update_spend_alert",
        "DeleteSpendAlert": "delete_spend_alert",
        "SetModelPermissions": "set_model_permissions",
        "DeleteModelPermissions": "delete_model_permissions",
    }[target]
    admin.after_effect = data.draw(st.booleans(), label="after effect")
    # WHEN the apply runs
    with pytest.raises(ServerError):
        apply_guardrails(admin, PROJECT, declared)
    # THEN every setting is at its old or its declared value
    middle = snapshot(admin)
    apply_guardrails(admin, PROJECT, declared)
    after = snapshot(admin)
    for model, limits in middle["limits"].items():
        for name, value in limits.items():
            assert value in (before["limits"][model][name], after["limits"][model][name])
    assert middle["spend"] in (before["spend"], after["spend"])
    assert middle["models"] in (before["models"], after["models"])
    # AND the next apply converges, with exactly the declared alerts (no twin of an alert created before a failure)
    assert compare(declared, read_actual(admin, PROJECT)).in_step
    assert after["alerts"] == [(a.threshold_cents, a.recipients) for a in declared.spend_alerts]


def test_a_setting_the_project_cannot_take_changes_nothing() -> None:
    # GIVEN a block whose spend limit is fine but names a model the project has no rate limit for
    admin = FakeAdmin.with_models()
    declared = parse_guardrails({"spendLimitUsd": 5, "rateLimits": {"o3": {"max_requests_per_1_minute": 1}}})
    # WHEN it is applied
    with pytest.raises(GuardrailsApplyError) as caught:
        apply_guardrails(admin, PROJECT, declared)
    # THEN nothing was changed, and the error says so and names the setting
    assert admin.writes == []
    assert "keyrot:guardrails.rateLimits.o3" in str(caught.value) and "nothing was changed" in str(caught.value)


def test_a_raise_above_the_organizations_limit_stops_before_any_other_change() -> None:
    # GIVEN a block raising gpt-4.1 above OpenAI's maximum, lowering gpt-4o-mini and setting a spend limit
    admin = FakeAdmin.with_models()
    declared = parse_guardrails(
        {
            "rateLimits": {
                "gpt-4.1": {"max_requests_per_1_minute": 20_000},
                "gpt-4o-mini": {"max_requests_per_1_minute": 5},
            },
            "spendLimitUsd": 5,
        }
    )
    # WHEN it is applied
    with pytest.raises(GuardrailsApplyError) as caught:
        apply_guardrails(admin, PROJECT, declared)
    # THEN OpenAI's refusal names the setting and says limits can only be lowered; nothing else was changed
    message = str(caught.value)
    assert 'keyrot:guardrails.rateLimits["gpt-4.1"].max_requests_per_1_minute: 20000 is above what OpenAI' in message
    assert "only lets a project's rate limits be lowered" in message and "nothing was changed" in message
    assert admin.writes == ["update_rate_limit"] and admin.spend_limit is None
    assert admin.limits["gpt-4o-mini"].max_requests_per_1_minute == 10_000
