"""`keyrot:keys[i].scopes` (and `KeyArgs.scopes`): validated at preview against the scopes OpenAI documents, passed to
the rotation function exactly as declared, and absent from every stack that declares none (nothing changes there)."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from infra_harness import Deployment, Recorded, deployed, run_component, run_program, stack_config

from keyrot import constants as c
from keyrot.pulumi.config import ConfigError, parse_config
from keyrot.pulumi.environment import args_from_config, validate_args
from keyrot.pulumi.lambda_settings import environment_size_problems
from keyrot.scopes import DOCUMENTED_SCOPES
from keyrot.settings import RotationSettings

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.filterwarnings("ignore:aws.ec2/encryptioncontrol:DeprecationWarning"),
]

FUNCTION = "aws:lambda/function:Function"
SCOPED = ["model.request", "api.model.read"]


def _raw(stack: str = "dev") -> dict[str, Any]:
    return {k.split(":", 1)[1]: v for k, v in stack_config(stack).items() if k.startswith("keyrot:")}


def _with_scopes(stack: str, scopes: dict[int, Any]) -> dict[str, Any]:
    """The stack's keyrot:* values with `keys[i].scopes` set for each index given."""
    raw = _raw(stack)
    keys = json.loads(raw["keys"])
    for index, value in scopes.items():
        keys[index]["scopes"] = value
    raw["keys"] = json.dumps(keys)
    return raw


def _function(d: Deployment, purpose: str) -> Recorded:
    (found,) = d.find(FUNCTION, lambda r: r.inputs["name"] == f"keyrot-{d.stack}-{purpose}")
    return found


def _variables(d: Deployment, purpose: str) -> dict[str, str]:
    return dict(_function(d, purpose).inputs["environment"]["variables"])


# --- existing stacks do not change ------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_stack_that_declares_no_scopes_gives_no_function_a_scopes_setting(stack: str) -> None:
    # GIVEN a committed stack, which declares no scopes
    d = deployed(stack)
    # THEN no function is told about scopes: every key is minted unrestricted, as before
    for fn in d.of_type(FUNCTION):
        assert c.ENV_KEY_SCOPES not in fn.inputs["environment"]["variables"]
    assert all(key.scopes is None for key in parse_config(_raw(stack), stack=stack).keys)


# --- declared scopes reach the rotation function ----------------------------------------------------------------


def test_declared_scopes_reach_the_rotation_function_exactly_as_declared() -> None:
    # GIVEN dev with scopes on its first key only
    config = {f"keyrot:{k}": v for k, v in _with_scopes("dev", {0: SCOPED}).items()}
    config.update({k: v for k, v in stack_config("dev").items() if not k.startswith("keyrot:")})
    # WHEN the program runs
    d = run_program("dev", config)
    # THEN the rotation function reads those scopes for that key, and none for the other
    settings_ = RotationSettings.from_env(_variables(d, "rotation"))
    assert settings_.scopes_for("chat-backend") == tuple(SCOPED)
    assert settings_.scopes_for("batch-embeddings") is None
    # AND only the rotation function, which mints, is told
    assert c.ENV_KEY_SCOPES not in _variables(d, "monitor")


def test_a_component_key_s_scopes_reach_its_rotation_function() -> None:
    # GIVEN KeyrotEnvironment declared by a program of one's own, with KeyArgs.scopes on one key
    args: dict[str, Any] = dict(args_from_config(parse_config(_raw("dev"), stack="dev")))
    args["keys"] = [{**args["keys"][0], "scopes": ["model.request"]}, args["keys"][1]]
    # WHEN it is declared
    d = run_component(args)
    # THEN the rotation function mints that key with that scope
    (rotation,) = d.find(FUNCTION, lambda r: r.inputs["name"] == "keyrot-dev-rotation")
    variables = rotation.inputs["environment"]["variables"]
    assert json.loads(variables[c.ENV_KEY_SCOPES]) == {"chat-backend": ["model.request"]}


def test_the_args_the_stack_program_builds_keep_the_declared_scopes() -> None:
    # GIVEN a stack configuration with scopes, turned into KeyrotEnvironmentArgs and validated again
    config = parse_config(_with_scopes("dev", {1: ["api.responses.write", "model.request"]}), stack="dev")
    again = validate_args(dict(args_from_config(config)))
    # THEN the component sees the same scopes, and a key without them stays unrestricted
    assert [key.scopes for key in again.keys] == [None, ("api.responses.write", "model.request")]


# --- bad input fails at preview, naming the setting -------------------------------------------------------------


scope_like = st.from_regex(r"\A[a-z]{1,8}(\.[a-z_]{1,8}){1,3}\Z").filter(lambda s: s not in DOCUMENTED_SCOPES)


@settings(max_examples=40, deadline=None)
@given(unknown=scope_like, key=st.sampled_from([0, 1]), position=st.integers(min_value=0, max_value=2))
def test_a_scope_openai_does_not_document_fails_preview_naming_the_key_s_scopes(
    unknown: str, key: int, position: int
) -> None:
    # GIVEN a key declared with one scope keyrot does not know, anywhere in its list
    declared = ["model.request", "api.model.read"]
    declared.insert(position, unknown)
    # WHEN the configuration is validated THEN that is the one problem, naming keyrot:keys[i].scopes and the name
    with pytest.raises(ConfigError) as caught:
        parse_config(_with_scopes("dev", {key: declared}), stack="dev")
    (problem,) = caught.value.problems
    assert problem.startswith(f"keyrot:keys[{key}].scopes[{position}]: {unknown!r} is not a scope OpenAI documents")
    assert "keyrot/scopes.py" in problem


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([], "keyrot:keys[0].scopes: is empty"),
        ("model.request", "keyrot:keys[0].scopes: must be a list of scope names"),
        (["model.request", "model.request"], "keyrot:keys[0].scopes[1]: lists 'model.request' a second time"),
        ([7], "keyrot:keys[0].scopes[0]: must be a scope name"),
    ],
)
def test_a_malformed_scope_list_fails_preview_naming_the_setting(value: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_with_scopes("dev", {0: value}), stack="dev")
    assert [p for p in caught.value.problems if p.startswith(expected)], caught.value.problems


def test_scopes_passed_as_outputs_are_refused_at_preview() -> None:
    # GIVEN a program that passes a scope as an Output (it must be known at preview: it is the function's setting)
    args: dict[str, Any] = dict(args_from_config(parse_config(_raw("dev"), stack="dev")))

    def program() -> dict[str, Any]:
        args["keys"] = [{**args["keys"][0], "scopes": [pulumi.Output.from_input("model.request")]}, args["keys"][1]]
        return args

    # WHEN it is declared THEN it fails naming the key's scopes
    with pytest.raises(Exception, match=r"keyrot:keys\[0\]\.scopes: must be plain values"):
        run_component(program)


def test_scopes_that_push_the_rotation_function_past_4_kb_fail_preview_saying_so() -> None:
    # GIVEN dev with many keys, each declared with every documented scope
    raw = _raw("dev")
    keys = [{"name": f"service-key-{i:02d}", "scopes": sorted(DOCUMENTED_SCOPES)} for i in range(18)]
    config = parse_config({**raw, "keys": json.dumps(keys)}, stack="dev")
    # WHEN the environment's size is checked at preview THEN the problem names the scopes among the causes
    problems = environment_size_problems(config, partition="aws", region="us-east-1", account_id="111111111111")
    assert any("KEYROT_KEY_SCOPES their scopes" in p and "fewer scopes" in p for p in problems), problems
