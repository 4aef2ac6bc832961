"""On-call and the guardrails check: a drift is told once per occurrence (a console change), however many checks see
it; a restored drift is forgotten so the next change is told; the hard limit reached is told once per month and
limit; a notification that could not be sent is sent by the next check; what is remembered holds no setting."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyrot.constants import GUARDRAILS_STATE_PLACEHOLDER
from keyrot.errors import AwsCallError
from keyrot.guardrails import (
    DeclaredGuardrails,
    MonthToDate,
    Oncall,
    OncallMemory,
    drift_notification,
    enforce_guardrails,
    hard_limit_notification,
    parse_guardrails,
)
from keyrot.guardrails.drift import DriftReport
from keyrot.openai_admin.guardrails import SpendLimit
from tests.unit.guardrails.fake_admin import FakeAdmin
from tests.unit.guardrails.fake_aws import FakeSns, FakeSsm

PROJECT = "proj_unit"
TOPIC = "arn:aws:sns:us-east-1:111111111111:keyrot-prod-oncall"
STATE = "/keyrot/prod/guardrails-state"
RUNBOOK = "https://example.com/runbook.md"
BLOCK = {"rateLimits": {"gpt-4o-mini": {"max_requests_per_1_minute": 500}}, "spendLimitUsd": 100}
NOTIFY = parse_guardrails(BLOCK)
RESTORE = parse_guardrails({**BLOCK, "enforce": "restore"})
DECEMBER = MonthToDate("2026-12", 10_000, 10_000)


def oncall(ssm: FakeSsm, sns: FakeSns) -> Oncall:
    return Oncall(sns, TOPIC, ssm, STATE, "prod", RUNBOOK)


def as_declared() -> FakeAdmin:
    admin = FakeAdmin.with_models()
    admin.update_rate_limit(PROJECT, "rl-gpt-4o-mini", max_requests_per_1_minute=500)
    admin.spend_limit = SpendLimit(10_000, "USD", "month", "enforcing")
    return admin


def check(
    admin: FakeAdmin,
    ssm: FakeSsm,
    sns: FakeSns,
    declared: DeclaredGuardrails = NOTIFY,
    spend: MonthToDate | None = None,
) -> list[dict[str, str]]:
    """One scheduled check (the audit log given as read, empty) and what it published."""
    teller = oncall(ssm, sns)
    report = enforce_guardrails(admin, PROJECT, declared, [], before_restore=teller.expect)
    teller.tell(report, spend)
    return sns.drain()


def test_a_persisting_drift_is_told_once_however_many_checks_see_it() -> None:
    # GIVEN someone lowered the rate limit in the console (enforce: notify leaves it so)
    admin, ssm, sns = as_declared(), FakeSsm(), FakeSns()
    admin.update_rate_limit(PROJECT, "rl-gpt-4o-mini", max_requests_per_1_minute=100)
    # WHEN the check runs every 15 minutes for a day
    told = [check(admin, ssm, sns) for _ in range(96)]
    # THEN on-call got one notification, from the first check
    assert [len(messages) for messages in told] == [1] + [0] * 95
    assert told[0][0]["topic"] == TOPIC


def test_a_further_change_during_a_drift_is_told_with_the_whole_drift() -> None:
    admin, ssm, sns = as_declared(), FakeSsm(), FakeSns()
    admin.update_rate_limit(PROJECT, "rl-gpt-4o-mini", max_requests_per_1_minute=100)
    check(admin, ssm, sns)
    # WHEN someone also raises the hard limit
    admin.spend_limit = SpendLimit(50_000, "USD", "month", "enforcing")
    (message,) = check(admin, ssm, sns)
    # THEN the new notification lists both settings
    assert "2 setting(s) differ" in message["subject"]
    assert "declared 500, actual 100" in message["message"] and "actual $500.00 a month" in message["message"]


def test_a_restored_drift_is_forgotten_so_the_same_change_again_is_told_again() -> None:
    # GIVEN enforce: restore, and someone who lowers the limit to 100 twice, the check restoring it each time
    admin, ssm, sns = as_declared(), FakeSsm(), FakeSns()
    admin.update_rate_limit(PROJECT, "rl-gpt-4o-mini", max_requests_per_1_minute=100)
    first = check(admin, ssm, sns, RESTORE)
    quiet = check(admin, ssm, sns, RESTORE)
    admin.update_rate_limit(PROJECT, "rl-gpt-4o-mini", max_requests_per_1_minute=100)
    second = check(admin, ssm, sns, RESTORE)
    # THEN each change was told, saying it was put back, and the check between them said nothing
    assert len(first) == len(second) == 1 and quiet == []
    assert "keyrot put the declared values back" in second[0]["message"]


def test_a_restore_that_keeps_failing_is_told_once() -> None:
    # GIVEN enforce: restore and an OpenAI that refuses every spend-limit change
    admin, ssm, sns = as_declared(), FakeSsm(), FakeSns()
    admin.spend_limit = None
    told = []
    for _ in range(5):
        admin.fail_on = "set_spend_limit"
        told.append(check(admin, ssm, sns, RESTORE))
    # THEN the first check told on-call that restoring failed, and the next four said nothing
    assert [len(messages) for messages in told] == [1, 0, 0, 0, 0]
    assert "restoring failed" in told[0][0]["message"] and "says nothing more" in told[0][0]["message"]


def test_a_notification_sns_refused_is_sent_by_the_next_check() -> None:
    # GIVEN a drift, and SNS failing at the first check
    admin, ssm, sns = as_declared(), FakeSsm(), FakeSns(failing=True)
    admin.update_rate_limit(PROJECT, "rl-gpt-4o-mini", max_requests_per_1_minute=100)
    report = enforce_guardrails(admin, PROJECT, NOTIFY, [])
    with pytest.raises(AwsCallError) as caught:
        oncall(ssm, sns).tell(report, None)
    assert caught.value.code == "InternalError"
    # WHEN SNS is back
    sns.failing = False
    # THEN the next check tells it, once
    assert len(check(admin, ssm, sns)) == 1 and check(admin, ssm, sns) == []


def test_a_restore_whose_check_died_before_telling_is_told_by_the_next_check() -> None:
    # GIVEN enforce: restore, a console change, and a check that restores it then dies before its message
    admin, ssm, sns = as_declared(), FakeSsm(), FakeSns()
    admin.update_rate_limit(PROJECT, "rl-gpt-4o-mini", max_requests_per_1_minute=100)
    enforce_guardrails(admin, PROJECT, RESTORE, [], before_restore=oncall(ssm, sns).expect)
    assert admin.limits["gpt-4o-mini"].max_requests_per_1_minute == 500 and sns.messages == []
    # WHEN the next check finds the project as declared
    told = check(admin, ssm, sns, RESTORE)
    # THEN it tells on-call which setting was put back unannounced, once
    (message,) = told
    assert "restored before you were told: 1 setting(s)" in message["subject"]
    assert "rateLimits.gpt-4o-mini.max_requests_per_1_minute" in message["message"]
    assert message["message"].rstrip().endswith(f"Runbook: {RUNBOOK}#guardrail-drift")
    assert check(admin, ssm, sns, RESTORE) == []


def test_a_restored_drift_whose_message_sns_refused_is_told_by_the_next_check() -> None:
    # GIVEN enforce: restore, a hard limit removed, and SNS failing at the check that restores it
    admin, ssm, sns = as_declared(), FakeSsm(), FakeSns(failing=True)
    admin.spend_limit = None
    teller = oncall(ssm, sns)
    report = enforce_guardrails(admin, PROJECT, RESTORE, [], before_restore=teller.expect)
    with pytest.raises(AwsCallError):
        teller.tell(report, None)
    # WHEN SNS is back and the next check runs, THEN on-call hears of it
    sns.failing = False
    (message,) = check(admin, ssm, sns, RESTORE)
    assert "restored before you were told" in message["subject"] and "spendLimitUsd" in message["message"]


def test_no_drift_and_no_limit_reached_sends_nothing_and_writes_nothing() -> None:
    admin, ssm, sns = as_declared(), FakeSsm({STATE: GUARDRAILS_STATE_PLACEHOLDER}), FakeSns()
    assert check(admin, ssm, sns, spend=MonthToDate("2026-12", 9_999, 10_000)) == []
    assert ssm.puts == 0


def test_the_hard_limit_reached_is_told_once_a_month() -> None:
    admin, ssm, sns = as_declared(), FakeSsm(), FakeSns()
    # WHEN three checks in December see the limit reached, then one in January
    december = [check(admin, ssm, sns, spend=replace(DECEMBER, spent_cents=10_000 + i)) for i in range(3)]
    january = check(admin, ssm, sns, spend=MonthToDate("2027-01", 12_000, 10_000))
    # THEN December's first check told it, and January's again
    assert [len(messages) for messages in december] == [1, 0, 0] and len(january) == 1
    (message,) = december[0]
    assert message["subject"] == "[keyrot prod] OpenAI hard spend limit reached: $100.00 of $100.00"
    assert message["message"].rstrip().endswith(f"Runbook: {RUNBOOK}#hard-spend-limit-reached")
    assert "keyrot:guardrails.spendLimitUsd" in message["message"]


def test_a_raised_limit_reached_again_in_the_same_month_is_told_again() -> None:
    admin, ssm, sns = as_declared(), FakeSsm(), FakeSns()
    check(admin, ssm, sns, spend=DECEMBER)
    raised = check(admin, ssm, sns, spend=MonthToDate("2026-12", 20_000, 20_000))
    assert len(raised) == 1 and "$200.00 of $200.00" in raised[0]["subject"]


def test_spend_below_the_limit_is_not_told() -> None:
    admin, ssm, sns = as_declared(), FakeSsm(), FakeSns()
    assert check(admin, ssm, sns, spend=MonthToDate("2026-12", 9_999, 10_000)) == []


def test_the_memory_a_check_leaves_holds_digests_only_never_a_setting_or_a_value() -> None:
    # GIVEN a drift told to on-call
    admin, ssm, sns = as_declared(), FakeSsm(), FakeSns()
    admin.update_rate_limit(PROJECT, "rl-gpt-4o-mini", max_requests_per_1_minute=123)
    check(admin, ssm, sns, spend=DECEMBER)
    text = ssm.values[STATE]
    # THEN what the parameter holds names neither the setting nor its value, and reads back
    assert "gpt-4o-mini" not in text and "123" not in text and "rateLimits" not in text
    assert OncallMemory.from_text(text).pending == ()
    assert OncallMemory.from_text(text).spend == "2026-12:10000"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        '{"version":2}',
        '{"version":1,"drift":"x"}',
        '{"version":1,"drift":[],"spend":7}',
        '{"version":1,"drift":[],"pending":[1]}',
        '{"version":1,"drift":[],"pending":[],"pending_more":-1}',
    ],
)
def test_a_damaged_memory_is_read_as_empty_so_the_drift_is_told_rather_than_lost(text: str) -> None:
    # GIVEN someone wrote the memory parameter by hand
    admin, ssm, sns = as_declared(), FakeSsm({STATE: text}), FakeSns()
    admin.update_rate_limit(PROJECT, "rl-gpt-4o-mini", max_requests_per_1_minute=100)
    # THEN the check still tells the drift, and writes a memory it can read
    assert len(check(admin, ssm, sns)) == 1
    assert OncallMemory.from_text(ssm.values[STATE]).drift


def test_a_memory_that_cannot_be_written_fails_the_check_after_the_notification() -> None:
    # GIVEN SSM refusing the write
    admin, ssm, sns = as_declared(), FakeSsm(fail_puts=True), FakeSns()
    admin.update_rate_limit(PROJECT, "rl-gpt-4o-mini", max_requests_per_1_minute=100)
    report = enforce_guardrails(admin, PROJECT, NOTIFY, [])
    with pytest.raises(AwsCallError):
        oncall(ssm, sns).tell(report, None)
    # THEN on-call was told all the same (a repeat next time, never a loss)
    assert len(sns.drain()) == 1


def test_a_memory_that_cannot_be_read_costs_a_repeat_never_the_message() -> None:
    # GIVEN SSM refusing the read of the memory, at a check that restores a drift
    admin, ssm, sns = as_declared(), FakeSsm(fail_gets=True), FakeSns()
    admin.update_rate_limit(PROJECT, "rl-gpt-4o-mini", max_requests_per_1_minute=100)
    report = enforce_guardrails(admin, PROJECT, RESTORE, [])
    # WHEN on-call is told, THEN the check fails naming the read, after the message went out
    with pytest.raises(AwsCallError) as caught:
        oncall(ssm, sns).tell(report, None)
    assert caught.value.operation == "GetParameter" and len(sns.drain()) == 1


def test_both_messages_link_a_runbook_section_that_exists() -> None:
    # GIVEN the runbook's section anchors, as GitHub makes them from the headings
    text = (Path(__file__).resolve().parents[3] / "docs" / "runbook.md").read_text()
    headings = re.findall(r"^## (.+)$", text, re.M)
    anchors = {re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-") for heading in headings}
    # THEN the drift message and the hard-limit message each link one
    admin = as_declared()
    admin.update_rate_limit(PROJECT, "rl-gpt-4o-mini", max_requests_per_1_minute=100)
    bodies = [
        drift_notification(enforce_guardrails(admin, PROJECT, NOTIFY, []), "prod", RUNBOOK)[2],
        hard_limit_notification("prod", PROJECT, DECEMBER, RUNBOOK).body,
    ]
    linked = [re.findall(rf"Runbook: {re.escape(RUNBOOK)}#([a-z0-9-]+)", body) for body in bodies]
    assert linked == [["guardrail-drift"], ["hard-spend-limit-reached"]]
    assert {"guardrail-drift", "hard-spend-limit-reached"} <= anchors


# --- the occurrence rule, over any history of console changes and checks ---------------------------------------

VALUES = st.sampled_from([100, 250, 500])
LIMITS = st.sampled_from([None, 10_000, 20_000])
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("rate"), VALUES),
        st.tuples(st.just("spend"), LIMITS),
        st.tuples(st.just("check"), st.none()),
    ),
    max_size=25,
)


def _values(admin: FakeAdmin) -> dict[str, object]:
    limit = admin.spend_limit.threshold_cents if admin.spend_limit is not None else None
    return {"rate": admin.limits["gpt-4o-mini"].max_requests_per_1_minute, "spend": limit}


@settings(max_examples=200, deadline=None)
@given(steps=STEPS, restore=st.booleans())
def test_on_call_is_told_exactly_when_a_setting_is_off_both_its_declared_value_and_what_the_last_check_left(
    steps: list[tuple[str, int | None]], restore: bool
) -> None:
    # GIVEN a project applied as declared, then any sequence of console changes and checks
    admin, ssm, sns = as_declared(), FakeSsm(), FakeSns()
    declared = RESTORE if restore else NOTIFY
    wanted = _values(admin)
    left = dict(wanted)  # what the previous check left the project with
    for action, value in steps:
        if action == "rate" and value is not None:
            admin.update_rate_limit(PROJECT, "rl-gpt-4o-mini", max_requests_per_1_minute=value)
            continue
        if action == "spend":
            admin.spend_limit = None if value is None else SpendLimit(value, "USD", "month", "enforcing")
            continue
        # WHEN the check runs
        now = _values(admin)
        told = check(admin, ssm, sns, declared)
        # THEN it notified (once) exactly when some setting is off both the declared value and the last check's
        new = any(now[name] != wanted[name] and now[name] != left[name] for name in wanted)
        assert len(told) == (1 if new else 0), (steps, now, left)
        left = _values(admin)


def test_the_occurrence_names_settings_and_values_and_problems() -> None:
    admin = as_declared()
    admin.update_rate_limit(PROJECT, "rl-gpt-4o-mini", max_requests_per_1_minute=100)
    report: DriftReport = enforce_guardrails(admin, PROJECT, NOTIFY, [])
    assert report.occurrence == frozenset({"rateLimits.gpt-4o-mini.max_requests_per_1_minute=100"})
