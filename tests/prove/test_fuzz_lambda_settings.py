"""Hostile Lambda environments: settings read exactly, or ConfigurationError naming a variable that is wrong.

The functions' settings readers (`RotationSettings.from_env`, `MonitorSettings.from_env`) are fed near-misses of the
environments keyrot/pulumi/lambda_settings.py builds from the committed stacks (Pulumi.dev.yaml / Pulumi.prod.yaml),
the deployment's declarations included: the managed secrets, the environments sharing the project, the keys' scopes.
Variables are dropped, garbled, made huge or unicode, or given planted keys; look-alike names are added; the process
environment holds different valid values a reader must not fall back to.

Every case ends in exactly the values the environment holds (defaults for the rest), as an independent model of the
rules re-derives them, or in ConfigurationError naming one of the variables the model finds wrong. Nothing else
escapes; nothing is changed, printed or logged; no message carries a planted key. Every variable the program sets
for either function is fuzzed. The stack configuration has its own file: test_fuzz_stack_configuration.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyrot import constants
from keyrot.errors import ConfigurationError
from keyrot.pulumi.config import parse_config
from keyrot.pulumi.lambda_settings import monitor_environment, rotation_environment
from keyrot.scopes import DOCUMENTED_SCOPES
from keyrot.secret_model import ENVIRONMENT_PATTERN, KEY_NAME_PATTERN, OPENAI_ID_PATTERN
from keyrot.settings import DEFAULT_RUNBOOK_URL, DEFAULT_USAGE_KINDS, IN_USE_POLICIES, MonitorSettings, RotationSettings
from tests.prove import config_strategies as cs
from tests.prove.config_strategies import FUZZ
from tests.prove.strategies import MARKER, json_values

_VARIABLES = (
    constants.ENV_ENVIRONMENT,
    constants.ENV_ADMIN_SECRET_ARN,
    constants.ENV_OPENAI_BASE_URL,
    constants.ENV_GRACE_PERIOD_SECONDS,
    constants.ENV_KEY_EXPIRY_SECONDS,
    constants.ENV_VALIDATION_ATTEMPTS,
    constants.ENV_VALIDATION_DELAY_SECONDS,
    constants.ENV_PROJECT_ID,
    constants.ENV_TOPIC_ARN,
    constants.ENV_STATE_PARAMETER,
    constants.ENV_MAX_GRACE_PERIOD_SECONDS,
    constants.ENV_ROTATION_INTERVAL_SECONDS,
    constants.ENV_QUIET_WINDOW_SECONDS,
    constants.ENV_IN_USE_POLICY,
    constants.ENV_SETTLE_DELAY_SECONDS,
    constants.ENV_USAGE_KINDS,
    constants.ENV_NOTIFY_DEDUP_SECONDS,
    constants.ENV_RUNBOOK_URL,
    constants.ENV_DASHBOARD_METRICS,
    constants.ENV_ANOMALY_METRICS,
    constants.ENV_MANAGED_SECRETS,
    constants.ENV_SHARED_ENVIRONMENTS,
    constants.ENV_KEY_SCOPES,
)
_BAD: Any = object()  # the model's "this variable is invalid"
_MANAGED_SECRETS_MAX_CHARS = 3000  # Lambda's whole environment is 4 KB


def _secret_arn(stack: str, name: str) -> str:
    return f"arn:aws:secretsmanager:{cs.REGION}:{cs.STACK_ACCOUNTS[stack]}:secret:keyrot/{stack}/{name}-AbCdEf"


def _function_environment(stack: str) -> dict[str, str]:
    """Both functions' variables as the program sets them for `stack`, its secrets declared (each reader ignores the
    other's variables)."""
    config = parse_config(cs.BASELINE[stack], stack=stack)
    account = cs.STACK_ACCOUNTS[stack]
    admin = config.existing_admin_key_secret_arn or _secret_arn(stack, "openai-admin-key")
    topic = f"arn:aws:sns:{cs.REGION}:{account}:keyrot-{stack}-oncall"
    secrets = {key.name: _secret_arn(stack, key.name) for key in config.keys}
    variables = {
        **rotation_environment(config, admin_secret_arn=admin, managed_secret_arns=secrets),
        **monitor_environment(config, admin_secret_arn=admin, topic_arn=topic, managed_secret_arns=secrets),
    }
    return {name: str(value) for name, value in variables.items()}


_ENV_BASELINE = {stack: _function_environment(stack) for stack in cs.STACK_ACCOUNTS}
# Valid but different: a reader that fell back to the process environment would return these instead of defaults.
_POISON = {
    constants.ENV_ENVIRONMENT: "poisoned",
    constants.ENV_ADMIN_SECRET_ARN: "arn:aws:secretsmanager:eu-west-1:999999999999:secret:poisoned",
    constants.ENV_OPENAI_BASE_URL: "https://poisoned.example.com/v1",
    constants.ENV_GRACE_PERIOD_SECONDS: "7",
    constants.ENV_KEY_EXPIRY_SECONDS: "77",
    constants.ENV_VALIDATION_ATTEMPTS: "7",
    constants.ENV_VALIDATION_DELAY_SECONDS: "7.5",
    constants.ENV_PROJECT_ID: "proj_poisoned",
    constants.ENV_TOPIC_ARN: "arn:aws:sns:eu-west-1:999999999999:poisoned",
    constants.ENV_STATE_PARAMETER: "/poisoned",
    constants.ENV_MAX_GRACE_PERIOD_SECONDS: "77",
    constants.ENV_ROTATION_INTERVAL_SECONDS: "77",
    constants.ENV_QUIET_WINDOW_SECONDS: "7",
    constants.ENV_IN_USE_POLICY: "revoke",
    constants.ENV_SETTLE_DELAY_SECONDS: "7",
    constants.ENV_USAGE_KINDS: "images",
    constants.ENV_NOTIFY_DEDUP_SECONDS: "7",
    constants.ENV_RUNBOOK_URL: "https://poisoned.example.com/runbook",
    constants.ENV_DASHBOARD_METRICS: "no",
    constants.ENV_ANOMALY_METRICS: "Requests",
    constants.ENV_MANAGED_SECRETS: json.dumps({"poisoned": "arn:aws:secretsmanager:eu-west-1:999999999999:secret:p"}),
    constants.ENV_SHARED_ENVIRONMENTS: "poisoned-peer",
    constants.ENV_KEY_SCOPES: json.dumps({"poisoned": ["api.model.read"]}),
}
_seconds = st.one_of(
    st.integers(-5, 100).map(str),
    st.integers(0, 40_000_000).map(str),
    st.sampled_from(["604800", "604801", "86400", "86401", "2592000", "2592001", "34560000", "34560001", "0", "-1"]),
    st.sampled_from(["86400000", "86400001", "259200", "259199"]),  # 1000 days (the interval's bound); 72 h
    st.sampled_from(["1.5", "1e3", "0x10", " 60 ", "+60", "-0", "\u0661\u0662", "\u00b2", "6_0", "60s", ""]),
)
_declared_names = st.one_of(
    st.sampled_from(["chat-backend", "batch-embeddings", "support-assistant", "Chat", "chat_backend", "", "a" * 65]),
    st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True),
    cs.planted_keys,
)
_declared_arns = st.one_of(
    st.builds(_secret_arn, st.sampled_from(sorted(cs.STACK_ACCOUNTS)), _declared_names),
    cs.secret_arns,
    st.sampled_from(["arn:aws:secretsmanager:us-east-1:111111111111:secret:", "not an arn", ""]),
    st.integers().map(str),
)
_managed_secrets = st.one_of(
    st.dictionaries(_declared_names, st.one_of(_declared_arns, json_values), max_size=4).map(json.dumps),
    st.lists(st.tuples(_declared_names, _declared_arns), max_size=3).map(  # one secret given to two keys
        lambda pairs: json.dumps({**dict(pairs), "twin": pairs[0][1]} if pairs else {})
    ),
    st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), _declared_arns, min_size=40, max_size=60).map(
        json.dumps  # longer than the variable may be
    ),
    st.sampled_from(["{}", "[]", "null", '"chat-backend"', "{", "[" * 100_000, "1" * 5000]),
)
_shared_environments = st.one_of(
    st.lists(cs.environment_names, max_size=4).map(",".join),
    st.lists(st.sampled_from(["prod", "dev", "staging", "Prod", " qa ", "", "a" * 33]), max_size=4).map(",".join),
    st.sampled_from(["", " ", ",", "prod,prod", "dev", "prod;staging"]),
)
_scope_names = st.one_of(st.sampled_from(sorted(DOCUMENTED_SCOPES)), st.sampled_from(["api.model", "", "model"]))
_key_scopes = st.one_of(
    st.dictionaries(
        _declared_names,
        st.one_of(st.lists(_scope_names, max_size=3), json_values, st.just(["api.model.read", "api.model.read"])),
        max_size=3,
    ).map(json.dumps),
    st.sampled_from(['{"chat-backend": ["api.model.read"]}', '{"chat-backend": []}', "[]", "{", "null"]),
)
_ENV_NEAR: dict[str, st.SearchStrategy[str]] = {
    constants.ENV_ENVIRONMENT: cs.environment_names,
    constants.ENV_ADMIN_SECRET_ARN: st.one_of(
        cs.secret_arns, st.sampled_from(["arn:", "arn:a:b:c:d", "arn:a:b:c:d:e", "ARN:x"])
    ),
    constants.ENV_OPENAI_BASE_URL: cs.urls,
    constants.ENV_GRACE_PERIOD_SECONDS: _seconds,
    constants.ENV_KEY_EXPIRY_SECONDS: _seconds,
    constants.ENV_VALIDATION_ATTEMPTS: st.one_of(st.integers(-2, 40).map(str), st.sampled_from(["6.0", " 6", "six"])),
    constants.ENV_VALIDATION_DELAY_SECONDS: st.one_of(
        cs.numbers, st.sampled_from(["60", "60.0001", "1e-9", "-0.0", "inf", "-inf", "1e309"])
    ),
    constants.ENV_PROJECT_ID: st.one_of(cs.project_ids, st.sampled_from(["", "  "])),
    constants.ENV_TOPIC_ARN: st.one_of(
        cs.topic_arns, st.sampled_from(["arn:", "arn:a:b:c:d:e", " keyrot-dev-oncall "])
    ),
    constants.ENV_STATE_PARAMETER: st.sampled_from(["/keyrot/dev/monitor-state", "keyrot/dev", "/", " /x ", "", "\\x"]),
    constants.ENV_MAX_GRACE_PERIOD_SECONDS: _seconds,
    constants.ENV_ROTATION_INTERVAL_SECONDS: _seconds,
    constants.ENV_QUIET_WINDOW_SECONDS: _seconds,
    constants.ENV_IN_USE_POLICY: cs.in_use_policies,
    constants.ENV_SETTLE_DELAY_SECONDS: _seconds,
    constants.ENV_USAGE_KINDS: st.one_of(
        st.lists(st.sampled_from([*DEFAULT_USAGE_KINDS, "videos", "", " images ", "Images"]), max_size=7).map(",".join),
        st.sampled_from([",,,", " , ", "completions;images", '["completions"]']),
    ),
    constants.ENV_NOTIFY_DEDUP_SECONDS: _seconds,
    constants.ENV_RUNBOOK_URL: cs.urls,
    constants.ENV_DASHBOARD_METRICS: st.sampled_from(
        ["true", "false", "TRUE", " no ", "1", "0", "", "maybe", "on", "2"]
    ),
    constants.ENV_ANOMALY_METRICS: st.lists(
        st.sampled_from(["Requests", "InputTokens", " Requests ", "requests", "OutputTokens", ""]), max_size=3
    ).map(",".join),
    constants.ENV_MANAGED_SECRETS: _managed_secrets,
    constants.ENV_SHARED_ENVIRONMENTS: _shared_environments,
    constants.ENV_KEY_SCOPES: _key_scopes,
}


@dataclasses.dataclass(frozen=True)
class EnvCase:
    stack: str
    env: dict[str, str]


@st.composite
def env_cases(draw: st.DrawFn) -> EnvCase:
    """A function environment the program would set, with variables dropped, garbled or given planted keys."""
    stack = draw(st.sampled_from(sorted(_ENV_BASELINE)))
    env = dict(_ENV_BASELINE[stack])
    for _ in range(draw(st.integers(0, 4))):
        variable = draw(st.sampled_from(_VARIABLES))
        operation = draw(st.sampled_from(["drop", "near", "near", "hostile", "secret"]))
        if operation == "drop":
            env.pop(variable, None)
        elif operation == "near":
            env[variable] = draw(_ENV_NEAR[variable])
        elif operation == "hostile":
            env[variable] = draw(cs.hostile)
        else:
            env[variable] = draw(cs.secret_bearing)
    if draw(st.booleans()):
        # Look-alikes the readers must ignore (Lambda environments are case-sensitive).
        look_alike = draw(st.sampled_from(["keyrot_environment", "KEYROT_ENVIRONMENTS", "KEYROT_", "PATH", MARKER]))
        env[look_alike] = draw(cs.hostile)
    return EnvCase(stack, env)


def _model_text(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()


def _model_int(env: Mapping[str, str], name: str, default: int, low: int, high: int | None = None) -> Any:
    text = _model_text(env, name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        return _BAD
    return value if low <= value and (high is None or value <= high) else _BAD


def _model_anomaly_metrics(env: Mapping[str, str]) -> Any:
    """Comma-separated metric names, blanks dropped; none at all: both signals; any other name: refused."""
    names = tuple(n.strip() for n in env.get(constants.ENV_ANOMALY_METRICS, "").split(",") if n.strip())
    if not names:
        return ("Requests", "InputTokens")
    return names if set(names) <= {"Requests", "InputTokens"} else _BAD


def _model_bool(env: Mapping[str, str], name: str) -> Any:
    """Unset or blank: true (an older deployment publishes everything); else one of the spellings settings accepts."""
    text = _model_text(env, name).lower()
    return {"": True, "true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(text, _BAD)


def _model_float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> Any:
    text = _model_text(env, name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        return _BAD
    return value if low <= value <= high else _BAD


def _model_arn(env: Mapping[str, str], name: str) -> Any:
    text = _model_text(env, name)
    return text if text.startswith("arn:") and text.count(":") >= 5 else _BAD


def _model_url(env: Mapping[str, str]) -> Any:
    text = _model_text(env, constants.ENV_OPENAI_BASE_URL) or constants.DEFAULT_OPENAI_BASE_URL
    try:
        parts = urlsplit(text)
        host = parts.hostname  # may refuse a bracketed host
    except ValueError:
        return _BAD
    del host
    return text.rstrip("/") if parts.scheme in ("http", "https") and parts.netloc else _BAD


def _model_environment(env: Mapping[str, str]) -> Any:
    text = _model_text(env, constants.ENV_ENVIRONMENT)
    return text if ENVIRONMENT_PATTERN.fullmatch(text) else _BAD


def _model_project(env: Mapping[str, str]) -> Any:
    """The declared OpenAI project: None when blank (an older deployment), else an OpenAI project id."""
    text = _model_text(env, constants.ENV_PROJECT_ID)
    if not text:
        return None
    return text if OPENAI_ID_PATTERN.fullmatch(text) else _BAD


def _model_secret_arn(value: Any) -> bool:
    r"""arn:<aws partition>:secretsmanager:<region>:<12-digit account>:secret:<name>. (The account's digits are any
    decimal digits, as the reader's `\d` takes them; AWS itself accepts only ASCII ones.)"""
    if not isinstance(value, str):
        return False
    fields = value.split(":", 6)
    if len(fields) != 7 or fields[0] != "arn" or fields[2] != "secretsmanager" or fields[5] != "secret":
        return False
    partition, region, account, name = fields[1], fields[3], fields[4], fields[6]
    return (
        re.fullmatch(r"aws[a-z-]*", partition) is not None
        and re.fullmatch(r"[a-z0-9-]+", region) is not None
        and len(account) == 12
        and account.isdecimal()
        and re.fullmatch(r"[A-Za-z0-9/_+=.@\-]{1,512}", name) is not None
    )


def _model_json_object(env: Mapping[str, str], name: str) -> Any:
    """A variable holding a JSON object: None when blank, _BAD when too long or not an object."""
    text = _model_text(env, name)
    if not text:
        return None
    if len(text) > _MANAGED_SECRETS_MAX_CHARS:
        return _BAD
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        return _BAD
    return payload if isinstance(payload, dict) else _BAD


def _model_managed_secrets(env: Mapping[str, str]) -> Any:
    """{key name: secret ARN}, every name a key name, every value a secret ARN, no secret given to two keys."""
    payload = _model_json_object(env, constants.ENV_MANAGED_SECRETS)
    if payload is None or payload is _BAD:
        return payload
    arns = list(payload.values())
    valid = all(KEY_NAME_PATTERN.fullmatch(n) and _model_secret_arn(a) for n, a in payload.items())
    return payload if valid and len(set(arns)) == len(arns) else _BAD


def _model_shared(env: Mapping[str, str], environment: Any) -> Any:
    """None when absent (not declared); else the other environments named, sorted, each once."""
    if constants.ENV_SHARED_ENVIRONMENTS not in env:
        return None
    names = {n.strip() for n in env[constants.ENV_SHARED_ENVIRONMENTS].split(",") if n.strip()}
    if not all(ENVIRONMENT_PATTERN.fullmatch(n) for n in names) or environment in names:
        return _BAD
    return tuple(sorted(names))


def _model_key_scopes(env: Mapping[str, str], managed: Any) -> Any:
    """{key name: scopes}: each a declared key (when the secrets are declared), each a non-empty list of documented
    scope names, none twice."""
    payload = _model_json_object(env, constants.ENV_KEY_SCOPES)
    if payload is None or payload is _BAD:
        return payload
    scopes = {}
    for name, value in payload.items():
        if not KEY_NAME_PATTERN.fullmatch(name) or (isinstance(managed, dict) and name not in managed):
            return _BAD
        if not isinstance(value, list) or not value or len(set(map(str, value))) != len(value):
            return _BAD
        if not all(isinstance(scope, str) and scope in DOCUMENTED_SCOPES for scope in value):
            return _BAD
        scopes[name] = tuple(value)
    return scopes


def _rotation_fields(env: Mapping[str, str]) -> dict[str, tuple[str, Any]]:
    """Every field RotationSettings.from_env reads, with the variable it comes from and the model's value."""
    environment = _model_environment(env)
    managed = _model_managed_secrets(env)
    return {
        "environment": (constants.ENV_ENVIRONMENT, environment),
        "admin_secret_arn": (constants.ENV_ADMIN_SECRET_ARN, _model_arn(env, constants.ENV_ADMIN_SECRET_ARN)),
        "openai_base_url": (constants.ENV_OPENAI_BASE_URL, _model_url(env)),
        "grace_period_seconds": (
            constants.ENV_GRACE_PERIOD_SECONDS,
            _model_int(env, constants.ENV_GRACE_PERIOD_SECONDS, 86400, 0),
        ),
        "key_expiry_seconds": (
            constants.ENV_KEY_EXPIRY_SECONDS,
            _model_int(env, constants.ENV_KEY_EXPIRY_SECONDS, 0, 0, 400 * 86400),
        ),
        "validation_attempts": (
            constants.ENV_VALIDATION_ATTEMPTS,
            _model_int(env, constants.ENV_VALIDATION_ATTEMPTS, 6, 1, 30),
        ),
        "validation_delay_seconds": (
            constants.ENV_VALIDATION_DELAY_SECONDS,
            _model_float(env, constants.ENV_VALIDATION_DELAY_SECONDS, 2.0, 0, 60),
        ),
        "max_grace_period_seconds": (
            constants.ENV_MAX_GRACE_PERIOD_SECONDS,
            _model_int(env, constants.ENV_MAX_GRACE_PERIOD_SECONDS, 72 * 3600, 0),
        ),
        "rotation_interval_seconds": (
            constants.ENV_ROTATION_INTERVAL_SECONDS,
            _model_int(env, constants.ENV_ROTATION_INTERVAL_SECONDS, 0, 0, 1000 * 86400),
        ),
        "project_id": (constants.ENV_PROJECT_ID, _model_project(env)),
        "managed_secrets": (constants.ENV_MANAGED_SECRETS, managed),
        "shared_environments": (constants.ENV_SHARED_ENVIRONMENTS, _model_shared(env, environment)),
        "key_scopes": (constants.ENV_KEY_SCOPES, _model_key_scopes(env, managed)),
    }


def _split(fields: dict[str, tuple[str, Any]]) -> tuple[dict[str, Any], set[str]]:
    return {k: v for k, (_, v) in fields.items()}, {name for name, v in fields.values() if v is _BAD}


def _rotation_model(env: Mapping[str, str]) -> tuple[dict[str, Any], set[str]]:
    """What `RotationSettings.from_env` must return for `env`, and the variables it may blame (none: valid)."""
    expected, blamed = _split(_rotation_fields(env))
    if blamed:
        return expected, blamed
    # Only a settings object whose every variable parsed is checked as a whole.
    if expected["max_grace_period_seconds"] < expected["grace_period_seconds"]:
        return expected, {constants.ENV_MAX_GRACE_PERIOD_SECONDS, constants.ENV_GRACE_PERIOD_SECONDS}
    return expected, set()


def _monitor_model(env: Mapping[str, str]) -> tuple[dict[str, Any], set[str]]:
    """What `MonitorSettings.from_env` must return for `env`, and the variables it may blame (none: valid)."""
    fields = _rotation_fields(env)
    for unread in ("key_expiry_seconds", "rotation_interval_seconds", "project_id", "key_scopes"):
        del fields[unread]  # the monitor does not read these (its project is required, below)
    project = _model_text(env, constants.ENV_PROJECT_ID)
    state = _model_text(env, constants.ENV_STATE_PARAMETER)
    kinds = (
        tuple(k.strip() for k in env.get(constants.ENV_USAGE_KINDS, "").split(",") if k.strip()) or DEFAULT_USAGE_KINDS
    )
    fields.update(
        {
            "project_id": (constants.ENV_PROJECT_ID, project if OPENAI_ID_PATTERN.fullmatch(project) else _BAD),
            "topic_arn": (constants.ENV_TOPIC_ARN, _model_arn(env, constants.ENV_TOPIC_ARN)),
            "state_parameter": (constants.ENV_STATE_PARAMETER, state if state.startswith("/") else _BAD),
            "quiet_window_seconds": (
                constants.ENV_QUIET_WINDOW_SECONDS,
                _model_int(env, constants.ENV_QUIET_WINDOW_SECONDS, 3600, 0, 604800),
            ),
            "in_use_policy": (constants.ENV_IN_USE_POLICY, _model_text(env, constants.ENV_IN_USE_POLICY) or "keep"),
            "settle_delay_seconds": (
                constants.ENV_SETTLE_DELAY_SECONDS,
                _model_int(env, constants.ENV_SETTLE_DELAY_SECONDS, 600, 0, 86400),
            ),
            "usage_kinds": (constants.ENV_USAGE_KINDS, kinds),
            "notify_dedup_seconds": (
                constants.ENV_NOTIFY_DEDUP_SECONDS,
                _model_int(env, constants.ENV_NOTIFY_DEDUP_SECONDS, 86400, 0, 30 * 86400),
            ),
            "runbook_url": (
                constants.ENV_RUNBOOK_URL,
                _model_text(env, constants.ENV_RUNBOOK_URL) or DEFAULT_RUNBOOK_URL,
            ),
            "dashboard_metrics": (constants.ENV_DASHBOARD_METRICS, _model_bool(env, constants.ENV_DASHBOARD_METRICS)),
            "anomaly_metrics": (constants.ENV_ANOMALY_METRICS, _model_anomaly_metrics(env)),
        }
    )
    expected, blamed = _split(fields)
    if blamed:
        return expected, blamed
    # Only a settings object whose every variable parsed is checked as a whole.
    if expected["max_grace_period_seconds"] < expected["grace_period_seconds"]:
        return expected, {constants.ENV_MAX_GRACE_PERIOD_SECONDS, constants.ENV_GRACE_PERIOD_SECONDS}
    if expected["in_use_policy"] not in IN_USE_POLICIES:
        return expected, {constants.ENV_IN_USE_POLICY}
    if not set(kinds) <= set(DEFAULT_USAGE_KINDS):
        return expected, {constants.ENV_USAGE_KINDS}
    return expected, set()


def _names_variable(message: str, variables: set[str]) -> bool:
    # Whole names only: KEYROT_GRACE_PERIOD_SECONDS must not be found inside KEYROT_MAX_GRACE_PERIOD_SECONDS.
    return any(re.search(rf"(?<![A-Z_]){re.escape(v)}(?![A-Z_])", message) for v in variables)


_READERS: tuple[tuple[str, Callable[[Mapping[str, str]], Any], Callable[..., Any]], ...] = (
    ("rotation", RotationSettings.from_env, _rotation_model),
    ("monitor", MonitorSettings.from_env, _monitor_model),
)


def _check_env_case(case: EnvCase) -> None:
    """The whole property for one environment, for both readers."""
    before = dict(case.env)
    for which, reader, model in _READERS:
        expected, blamed = model(case.env)
        error: ConfigurationError | None = None
        result: Any = None
        with mock.patch.dict(os.environ, _POISON), cs.watched() as output:
            environ = dict(os.environ)
            try:
                result = reader(MappingProxyType(case.env))
            except ConfigurationError as exc:
                error = exc
            assert dict(os.environ) == environ, f"{which} changed the process environment"
        assert case.env == before
        assert not "".join(output), f"{which} printed or logged: {''.join(output)[:200]!r}"
        if error is not None:
            cs.tally(f"{which}: refused")
            assert blamed, f"{which} refused a valid environment: {error}"
            assert _names_variable(str(error), blamed), f"{which}: {str(error)[:200]!r} names none of {blamed}"
            cs.assert_no_key_material(*cs.error_texts(error))
        else:
            cs.tally(f"{which}: accepted")
            assert not blamed, f"{which} accepted an environment with {sorted(blamed)} wrong"
            assert dataclasses.asdict(result) == expected


@settings(FUZZ, max_examples=300)
@given(case=env_cases())
def test_lambda_settings_are_read_exactly_or_refused_naming_a_variable(case: EnvCase) -> None:
    # GIVEN a function environment near the one the program sets, and a process environment holding different
    # valid values the readers must not fall back to
    # WHEN each function's settings reader reads it
    # THEN it changes nothing and prints nothing, and either refuses naming one of the variables that are wrong
    # (quoting no planted key) or returns exactly the values the environment holds, defaults for the rest
    _check_env_case(case)


@pytest.mark.parametrize("variable", _VARIABLES)
@settings(FUZZ, max_examples=25)
@given(data=st.data())
def test_each_variable_alone_is_read_exactly_or_refused_by_its_name(variable: str, data: st.DataObject) -> None:
    # GIVEN a function environment with only `variable` changed (or removed)
    stack = data.draw(st.sampled_from(sorted(_ENV_BASELINE)), label="stack")
    near = _ENV_NEAR[variable]
    value = data.draw(st.one_of(st.none(), near, near, near, cs.hostile, cs.secret_bearing), label="value")
    env = {k: v for k, v in _ENV_BASELINE[stack].items() if k != variable}
    if value is not None:
        env[variable] = value
    # WHEN both readers read it THEN the whole property holds
    _check_env_case(EnvCase(stack, env))


# --- what this fuzzing found: inputs that crashed a reader -------------------------------------------------------
# Found at 3738689 and fixed in d079481 (keyrot/settings.py); they now go through the whole property above.


@pytest.mark.parametrize("value", ["https://[::1", "https://api\uff03openai.com/v1"])
def test_base_urls_that_broke_the_settings_readers_are_now_refused_by_name(value: str) -> None:
    # GIVEN a function environment whose OPENAI_BASE_URL urlsplit refuses (both readers raised its ValueError)
    # WHEN it is read THEN both readers refuse it with ConfigurationError naming the variable
    _check_env_case(EnvCase("dev", {**_ENV_BASELINE["dev"], constants.ENV_OPENAI_BASE_URL: value}))
    for reader in (RotationSettings.from_env, MonitorSettings.from_env):
        with pytest.raises(ConfigurationError, match=constants.ENV_OPENAI_BASE_URL):
            reader({**_ENV_BASELINE["dev"], constants.ENV_OPENAI_BASE_URL: value})


def test_every_variable_the_program_sets_for_the_functions_is_fuzzed() -> None:
    # GIVEN the variables the program gives the rotation and monitor functions of each committed stack
    for stack, env in _ENV_BASELINE.items():
        # THEN each is fuzzed here (a new setting must be added to _VARIABLES, its near-misses and the model)
        assert set(env) <= set(_VARIABLES), f"{stack}: not fuzzed: {sorted(set(env) - set(_VARIABLES))}"
        # AND the committed stack's environment itself is read back exactly by both readers
        _check_env_case(EnvCase(stack, dict(env)))
    assert set(_ENV_NEAR) == set(_VARIABLES)
