"""The `guardrails` block in the stack configuration and the component's args: one validator (keyrot.guardrails),
its problems reported with the rest of the configuration's, each named `keyrot:guardrails.<path>`, before anything
is declared."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from infra_harness import run_component, stack_config

from keyrot.guardrails import GuardrailsConfigError, parse_guardrails
from keyrot.pulumi.config import MAX_GUARDRAILS_DOCUMENT_BYTES, ConfigError, parse_config
from keyrot.pulumi.environment import args_from_config, validate_args

pytestmark = pytest.mark.timeout(120)


def raw(**overrides: Any) -> dict[str, Any]:
    merged = {k.split(":", 1)[1]: v for k, v in stack_config("dev").items() if k.startswith("keyrot:")}
    for key, value in overrides.items():
        merged[key] = json.dumps(value) if isinstance(value, (dict, list)) else value
    return merged


def config_problems(**overrides: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw(**overrides), stack="dev")
    return caught.value.problems


# Blocks a user might write, some wrong in several ways at once.
_VALUES = st.one_of(
    st.integers(-5, 10**13),
    st.text(max_size=6),
    st.floats(allow_nan=True),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)
_BLOCKS = st.fixed_dictionaries(
    {},
    optional={
        "rateLimits": st.dictionaries(
            st.sampled_from(["gpt-4o-mini", "gpt-4.1", "bad model!", "sk-proj-" + "x" * 30]),
            st.dictionaries(st.sampled_from(["max_requests_per_1_minute", "max_tokens", "x"]), _VALUES, max_size=2),
            max_size=2,
        ),
        "spendLimitUsd": _VALUES,
        "spendAlerts": st.lists(
            st.fixed_dictionaries({"thresholdUsd": _VALUES, "recipients": st.just(["ops@example.com"])}), max_size=2
        ),
        "models": st.one_of(st.just({"allow": ["gpt-4o-mini"]}), st.just({"deny": []}), st.just({"allow": []})),
        "enforce": st.sampled_from(["notify", "restore", "fix"]),
        "spendLimit": _VALUES,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(block=_BLOCKS)
def test_the_stack_config_reports_exactly_the_guardrails_validators_problems(block: dict[str, Any]) -> None:
    # GIVEN any block, and what keyrot.guardrails says of it
    try:
        declared = parse_guardrails(block)
        expected: list[str] = []
    except GuardrailsConfigError as exc:
        declared, expected = None, [str(problem) for problem in exc.problems]
    # WHEN the stack's configuration holds it (everything else valid)
    try:
        config = parse_config(raw(guardrails=block), stack="dev")
        found: list[str] = []
    except ConfigError as exc:
        config, found = None, list(exc.problems)
    # THEN the configuration reports the same problems, each named keyrot:guardrails.<path>, and nothing else
    assert found == expected
    assert all(problem.startswith("keyrot:guardrails") for problem in found)
    if config is not None:
        assert config.guardrails == declared


def test_a_bad_block_is_reported_with_the_other_settings_problems_in_one_preview() -> None:
    found = config_problems(
        guardrails={"rateLimits": {"gpt-4o-mini": {"max_requests_per_1_minute": -5}}, "spendLimit": 10},
        dailySpendLimitUsd="0",
    )
    assert found == (
        "keyrot:dailySpendLimitUsd: must be greater than 0, got '0'",
        "keyrot:guardrails.spendLimit: is not a guardrails field; did you mean spendLimitUsd?",
        "keyrot:guardrails.rateLimits.gpt-4o-mini.max_requests_per_1_minute: must not be negative, got -5",
    )


def test_an_alert_above_the_hard_limit_is_refused_naming_the_alert() -> None:
    (problem,) = config_problems(
        guardrails={"spendLimitUsd": 100, "spendAlerts": [{"thresholdUsd": 150, "recipients": ["a@example.com"]}]}
    )
    assert problem.startswith("keyrot:guardrails.spendAlerts[0].thresholdUsd:")


def test_a_key_pasted_into_the_block_is_never_echoed() -> None:
    key = "sk-proj-" + "A1b2C3d4" * 6
    problems = config_problems(guardrails={"models": {"allow": [key]}})
    assert problems and not any(key in problem for problem in problems)


def test_a_document_too_large_for_its_parameter_is_refused_at_preview() -> None:
    # GIVEN a deny list of hundreds of long model ids (each valid)
    models = [f"ft:gpt-4o-mini-2024-07-18:acme:{'x' * 40}:{i:06d}" for i in range(160)]
    (problem,) = config_problems(guardrails={"models": {"deny": models}})
    assert problem.startswith("keyrot:guardrails: the declared document would take ")
    assert f"over the {MAX_GUARDRAILS_DOCUMENT_BYTES} an SSM parameter holds" in problem


def test_the_component_takes_the_same_block_and_the_same_words() -> None:
    # GIVEN the dev stack's settings as component args, with a bad block
    base = raw()
    config = parse_config(base, stack="dev")
    args: dict[str, Any] = dict(args_from_config(config))
    args["guardrails"] = {"rateLimits": {"gpt-4o-mini": {"max_requests_per_1_minute": -5}}}
    with pytest.raises(ConfigError) as caught:
        validate_args(args)
    # THEN the component refuses it in the stack config's words (OpenAI's limit names keep their underscores)
    assert caught.value.problems == config_problems(guardrails=args["guardrails"])


def test_the_components_args_give_the_stack_configs_guardrails_back() -> None:
    config = parse_config(raw(), stack="dev")
    assert config.guardrails is not None
    assert validate_args(args_from_config(config)).guardrails == config.guardrails


def test_guardrails_given_as_outputs_are_refused_before_anything_is_declared() -> None:
    # GIVEN a program that computes a limit from another resource
    def args() -> dict[str, Any]:
        base = dict(args_from_config(parse_config(raw(), stack="dev")))
        base["guardrails"] = {"spendLimitUsd": pulumi.Output.from_input(100)}
        return base

    # THEN the component refuses it: the digest must be known at preview
    with pytest.raises(Exception, match=r"keyrot:guardrails: must be given as plain values"):
        run_component(args)
