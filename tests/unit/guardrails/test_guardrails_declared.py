"""The guardrails block's validator: what a user declares, read into cents and OpenAI's terms, and every mistake a
user makes at `pulumi preview` named by its setting (`keyrot:guardrails.<path>: ...`), all of them at once."""

from __future__ import annotations

import json

import pytest

from keyrot.errors import ConfigurationError
from keyrot.guardrails import DeclaredAlert, DeclaredModels, GuardrailsConfigError, parse_guardrails

FULL = {
    "rateLimits": {
        "gpt-4o-mini": {"max_requests_per_1_minute": 500, "max_tokens_per_1_minute": 200_000},
        "gpt-4.1": {"batch_1_day_max_input_tokens": 1_000_000},
    },
    "spendLimitUsd": 100,
    "spendAlerts": [
        {"thresholdUsd": 80.5, "recipients": ["oncall@example.com", "finance@example.com"]},
        {"thresholdUsd": "50", "recipients": ["finance@example.com"]},
    ],
    "models": {"allow": ["gpt-4o-mini", "gpt-4.1"]},
    "enforce": "restore",
}


def problems_of(raw: object) -> list[str]:
    with pytest.raises(GuardrailsConfigError) as caught:
        parse_guardrails(raw)
    return [str(problem) for problem in caught.value.problems]


def test_a_full_block_is_read_into_cents_openai_modes_and_sorted_lists() -> None:
    # GIVEN a block using every field
    # WHEN it is read
    declared = parse_guardrails(FULL)
    # THEN amounts are cents, alerts are ordered by threshold, lists are sorted, the mode is OpenAI's word
    assert declared.rate_limits == {
        "gpt-4.1": {"batch_1_day_max_input_tokens": 1_000_000},
        "gpt-4o-mini": {"max_requests_per_1_minute": 500, "max_tokens_per_1_minute": 200_000},
    }
    assert declared.spend_limit_cents == 10_000
    assert declared.spend_alerts == (
        DeclaredAlert(5_000, ("finance@example.com",)),
        DeclaredAlert(8_050, ("finance@example.com", "oncall@example.com")),
    )
    assert declared.models == DeclaredModels("allow_list", ("gpt-4.1", "gpt-4o-mini"))
    assert declared.enforce == "restore"


def test_settings_left_out_mean_openais_defaults_and_enforce_notify() -> None:
    # GIVEN an empty block
    declared = parse_guardrails({})
    # THEN no hard limit, no alerts, every model, no rate limit managed, and drift is only notified
    assert (declared.rate_limits, declared.spend_limit_cents, declared.spend_alerts, declared.models) == (
        {},
        None,
        (),
        None,
    )
    assert declared.enforce == "notify"


def test_json_text_from_the_stack_configuration_reads_like_the_mapping_a_program_passes() -> None:
    # GIVEN the block as `pulumi config` hands it to the program (JSON text)
    # THEN it reads the same as the native mapping
    assert parse_guardrails(json.dumps(FULL)) == parse_guardrails(FULL)


def test_a_negative_limit_is_refused_naming_the_setting() -> None:
    # GIVEN a negative tokens-per-minute limit
    problems = problems_of({"rateLimits": {"gpt-4o": {"max_tokens_per_1_minute": -5}}})
    # THEN the message names the setting as `pulumi config set --path` spells it
    assert problems == ["keyrot:guardrails.rateLimits.gpt-4o.max_tokens_per_1_minute: must not be negative, got -5"]


@pytest.mark.parametrize("value", [1.5, 500.0, "1e3", "12a", True, None, [5], {"n": 5}, ""])
def test_a_limit_that_is_not_a_whole_number_is_refused(value: object) -> None:
    # GIVEN a rate limit that is a fraction, a float, text that is not digits, a boolean, nothing or a structure
    problems = problems_of({"rateLimits": {"gpt-4o": {"max_requests_per_1_minute": value}}})
    # THEN it is refused as not a whole number, naming the field
    assert len(problems) == 1
    assert problems[0].startswith("keyrot:guardrails.rateLimits.gpt-4o.max_requests_per_1_minute: must be a whole")


def test_digits_as_text_are_read_as_the_number() -> None:
    # GIVEN a limit set with `pulumi config set --path` (text)
    declared = parse_guardrails({"rateLimits": {"gpt-4o": {"max_requests_per_1_minute": " 500 "}}})
    # THEN it is the number
    assert declared.rate_limits == {"gpt-4o": {"max_requests_per_1_minute": 500}}


def test_a_model_with_a_dot_is_named_in_brackets() -> None:
    # GIVEN a limit on gpt-4.1 (the dot would split a --path)
    problems = problems_of({"rateLimits": {"gpt-4.1": {"max_requests_per_1_minute": -1}}})
    # THEN the setting is named the way `pulumi config set --path` takes it
    assert problems[0].startswith('keyrot:guardrails.rateLimits["gpt-4.1"].max_requests_per_1_minute: ')


def test_an_unknown_rate_limit_is_refused_with_the_closest_name() -> None:
    problems = problems_of({"rateLimits": {"gpt-4o": {"max_tokens_per_minute": 5}}})
    assert problems == [
        "keyrot:guardrails.rateLimits.gpt-4o.max_tokens_per_minute: is not an OpenAI rate limit; "
        "did you mean max_tokens_per_1_minute?"
    ]


def test_unknown_fields_are_refused_with_a_suggestion() -> None:
    # GIVEN a misspelt top-level field and an unknown alert field
    problems = problems_of(
        {"spendLimitUSD": 5, "spendAlerts": [{"thresholdUsd": 1, "recipients": ["a@example.com"], "sms": "x"}]}
    )
    # THEN both are named, the first with what was meant
    assert "keyrot:guardrails.spendLimitUSD: is not a guardrails field; did you mean spendLimitUsd?" in problems
    assert any(p.startswith("keyrot:guardrails.spendAlerts[0].sms: is not a guardrails field") for p in problems)


def test_an_alert_above_the_hard_limit_is_refused_saying_why() -> None:
    problems = problems_of(
        {"spendLimitUsd": 100, "spendAlerts": [{"thresholdUsd": 150, "recipients": ["a@example.com"]}]}
    )
    assert problems == [
        "keyrot:guardrails.spendAlerts[0].thresholdUsd: $150.00 is above the hard limit spendLimitUsd ($100.00): "
        "OpenAI stops the project's requests at the hard limit, so this alert would never fire"
    ]


def test_an_alert_at_the_hard_limit_is_accepted() -> None:
    declared = parse_guardrails(
        {"spendLimitUsd": 100, "spendAlerts": [{"thresholdUsd": 100, "recipients": ["a@example.com"]}]}
    )
    assert declared.spend_alerts == (DeclaredAlert(10_000, ("a@example.com",)),)


@pytest.mark.parametrize("model", ["gpt 4o", "", "-gpt", "gpt/4o", "x" * 129, "gpt-4o\n", "模型"])
def test_a_model_id_that_is_not_well_formed_is_refused(model: str) -> None:
    # GIVEN a malformed model id as a rate-limit key and in an allow list
    for block, where in (
        ({"rateLimits": {model: {"max_requests_per_1_minute": 1}}}, "rateLimits"),
        ({"models": {"allow": [model]}}, "models.allow[0]"),
    ):
        # THEN it is refused as not well-formed, naming where it is
        problems = problems_of(block)
        assert len(problems) == 1
        assert problems[0].startswith(f"keyrot:guardrails.{where}: has a model id that is not well-formed")


def test_a_key_pasted_as_a_model_id_is_refused_without_showing_it() -> None:
    # GIVEN an operator who pasted an API key where a model id goes
    pasted = "sk-proj-" + "A1b2C3d4" * 6
    with pytest.raises(GuardrailsConfigError) as caught:
        parse_guardrails({"models": {"deny": [pasted]}, "rateLimits": {pasted: {"max_requests_per_1_minute": 1}}})
    # THEN the error says it looks like a key and never carries it
    assert "looks like an API key" in str(caught.value)
    assert pasted not in str(caught.value) and pasted[:12] not in str(caught.value)


@pytest.mark.parametrize("amount", [0, -1, "0.001", 12.345, "ten", float("nan"), float("inf"), True, 10**9])
def test_an_amount_must_be_positive_whole_cents_within_bounds(amount: object) -> None:
    problems = problems_of({"spendLimitUsd": amount})
    assert len(problems) == 1 and problems[0].startswith("keyrot:guardrails.spendLimitUsd: must ")


def test_models_takes_exactly_one_of_allow_or_deny() -> None:
    both = problems_of({"models": {"allow": ["o3"], "deny": ["gpt-4o"]}})
    neither = problems_of({"models": {}})
    assert both[0].startswith("keyrot:guardrails.models: must be an object with one of allow or deny")
    assert neither[0].startswith("keyrot:guardrails.models: must be an object with one of allow or deny")


def test_an_empty_allow_list_is_refused_because_it_would_block_every_model() -> None:
    assert problems_of({"models": {"allow": []}}) == [
        "keyrot:guardrails.models.allow: is empty, which would block every model; list the models to allow, or use deny"
    ]


def test_an_empty_deny_list_means_every_model_is_allowed() -> None:
    assert parse_guardrails({"models": {"deny": []}}).models is None


@pytest.mark.parametrize(
    ("block", "setting"),
    [
        ({"models": {"deny": ["o3", "o3"]}}, "models.deny: lists a model twice"),
        (
            {"spendAlerts": [{"thresholdUsd": 5, "recipients": ["a@example.com", "A@example.com"]}]},
            "spendAlerts[0].recipients: lists an address twice",
        ),
        (
            {
                "spendAlerts": [
                    {"thresholdUsd": 5, "recipients": ["a@example.com"]},
                    {"thresholdUsd": "5.00", "recipients": ["b@example.com"]},
                ]
            },
            "spendAlerts[1].thresholdUsd: repeats the threshold $5.00",
        ),
    ],
)
def test_repeats_are_refused(block: dict[str, object], setting: str) -> None:
    assert problems_of(block) == [f"keyrot:guardrails.{setting}"]


@pytest.mark.parametrize("recipients", [[], "a@example.com", ["not-an-address"], None])
def test_alert_recipients_must_be_e_mail_addresses(recipients: object) -> None:
    problems = problems_of({"spendAlerts": [{"thresholdUsd": 5, "recipients": recipients}]})
    assert problems and all(p.startswith("keyrot:guardrails.spendAlerts[0].recipients") for p in problems)


def test_an_alert_needs_its_threshold() -> None:
    assert problems_of({"spendAlerts": [{"recipients": ["a@example.com"]}]}) == [
        "keyrot:guardrails.spendAlerts[0].thresholdUsd: is required: the monthly spend in US dollars"
    ]


def test_enforce_is_notify_or_restore() -> None:
    assert problems_of({"enforce": "fix"}) == ["keyrot:guardrails.enforce: must be one of notify | restore, got 'fix'"]


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", 5, ["rateLimits"], None])
def test_a_block_that_is_not_an_object_is_refused_with_an_example(raw: object) -> None:
    problems = problems_of(raw)
    assert len(problems) == 1
    assert problems[0].startswith("keyrot:guardrails: must be an object")
    assert "pulumi config set --path 'keyrot:guardrails.spendLimitUsd' 100" in problems[0]


def test_every_problem_is_reported_at_once_and_is_a_configuration_error() -> None:
    # GIVEN a block with four independent mistakes
    block = {
        "rateLimits": {"gpt-4o": {"max_tokens_per_1_minute": -5}},
        "spendLimitUsd": 10,
        "spendAlerts": [{"thresholdUsd": 20, "recipients": ["a@example.com"]}],
        "models": {"allow": []},
        "enforce": "sometimes",
    }
    with pytest.raises(ConfigurationError) as caught:
        parse_guardrails(block)
    # THEN one error lists all four, each naming its setting (the infra validator files them under their keys)
    assert isinstance(caught.value, GuardrailsConfigError)
    keys = [problem.config_key for problem in caught.value.problems]
    assert keys == [
        "guardrails.rateLimits.gpt-4o.max_tokens_per_1_minute",
        "guardrails.spendAlerts[0].thresholdUsd",
        "guardrails.models.allow",
        "guardrails.enforce",
    ]
    assert str(caught.value).count("keyrot:guardrails.") == len(keys)


def test_the_input_is_left_as_it_was() -> None:
    # GIVEN the block a program passes
    block = json.loads(json.dumps(FULL))
    # WHEN it is read
    parse_guardrails(block)
    # THEN it is unchanged (the validator is pure)
    assert block == FULL
