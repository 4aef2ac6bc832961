"""Fuzz the configuration readers: the Pulumi stack configuration (infra/config.py) and the Lambda settings.

Examples are near-misses of the real stack files and function environments: a setting dropped, retyped, swapped
for a huge, unicode or key-shaped value, an unknown setting added, a key entry garbled. Every example ends in a
valid configuration that keeps the reader's promises, or in the reader's own typed error whose every line names the
setting or variable at fault; nothing else escapes, and no message carries the key-shaped value planted in it.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.config import SETTING_KEYS, ConfigError, KeyrotConfig, parse_config
from keyrot import constants
from keyrot.errors import ConfigurationError
from keyrot.settings import MonitorSettings, RotationSettings
from keyrot.testing.pulumi_program import stack_config
from tests.prove.strategies import MARKER

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_STACKS = {stack: {k.split(":", 1)[1]: v for k, v in stack_config(stack).items()} for stack in ("dev", "prod")}
_KEYROT = {stack: {k: v for k, v in values.items() if k in SETTING_KEYS} for stack, values in _STACKS.items()}

# A value as `pulumi config` hands it over: always a string (lists and objects as JSON), or absent.
_odd_values = st.one_of(
    st.just(""),
    st.just(MARKER),
    st.just(f"https://{MARKER}.example.com/v1"),
    st.just(f"arn:aws:iam::111111111111:role/{MARKER}"),
    st.text(st.characters(codec="utf-8"), max_size=30),
    st.builds(lambda c, n: c * n, st.sampled_from(["9", "é", "😀", "a"]), st.integers(200, 20_000)),
    st.integers().map(str),
    st.sampled_from(["-1", "0", "1e309", "inf", "nan", "true", "null", "[]", "{}", "rate(0 days)"]),
    st.just("cron(* * * * ? *)"),
    # the shapes that once crashed a reader: deep nesting, huge integers, Unicode digits, URLs urlsplit refuses
    st.sampled_from(["[" * 5000, "1" * 5000, "rate(\u0667 days)", "cron(0 \u00b2 * * ? *)", "\u0664h", "   "]),
    st.sampled_from(["https://[::1", '["https://["]', "https://wiki\uff03example.com/runbook"]),
    st.lists(st.one_of(st.integers(), st.text(max_size=10), st.just(MARKER)), max_size=3).map(json.dumps),
)


@st.composite
def stack_configurations(draw: st.DrawFn) -> tuple[str, dict[str, str | None]]:
    stack = draw(st.sampled_from(sorted(_STACKS)))
    values: dict[str, str | None] = dict(_KEYROT[stack])
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(["drop", "replace", "replace", "unknown", "garble-key"]))
        setting = draw(st.sampled_from(SETTING_KEYS))
        if what == "drop":
            values.pop(setting, None)
        elif what == "replace":
            values[setting] = draw(_odd_values)
        elif what == "unknown":
            values[draw(st.sampled_from(["rotationschedule", "keys2", "rotation_schedule", "Dashboard"]))] = "1"
        else:
            keys = json.loads(_KEYROT[stack]["keys"])
            entry = keys[draw(st.integers(0, len(keys) - 1))]
            field = draw(st.sampled_from(["name", "readerRoleArns", "extra"]))
            entry[field] = draw(st.one_of(st.none(), st.integers(), st.just(MARKER), st.lists(st.just(MARKER))))
            if draw(st.booleans()):
                keys.append(dict(keys[0]))  # a duplicate name
            values["keys"] = json.dumps(keys)
    return stack, values


@FUZZ
@given(case=stack_configurations())
def test_a_stack_configuration_is_valid_or_every_problem_names_its_setting(
    case: tuple[str, dict[str, str | None]],
) -> None:
    stack, values = case
    try:
        config = parse_config(values, stack=stack)
    except ConfigError as exc:
        # THEN every problem names a setting (or an unknown key the stack set) and no key-shaped value is echoed
        assert exc.problems
        for problem in exc.problems:
            match = re.match(r"keyrot:([^:\s\[]+)(?:\[\d+\][.\w]*)*:", problem)
            assert match, problem[:200]
            assert match.group(1) in SETTING_KEYS or match.group(1) in values, problem[:200]
            assert MARKER not in problem and MARKER[:24] not in problem, "a key-shaped value was echoed"
        return
    # THEN a configuration the reader accepts keeps its promises
    _check_promises(config)


def _check_promises(config: KeyrotConfig) -> None:
    names = [key.name for key in config.keys]
    assert names and len(names) == len(set(names))
    assert config.grace_period_hours < config.rotation_min_interval_hours
    assert config.max_grace_period_hours < config.rotation_min_interval_hours
    assert all(role.arn.startswith("arn:aws:iam::") for key in config.keys for role in key.reader_roles)
    assert config.runbook_url.startswith("https://") and "#" not in config.runbook_url


# --- the Lambda settings ------------------------------------------------------------------------------------------

_ADMIN_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrot/dev/openai-admin-key-AbCdEf"
_ROTATION_ENV = {constants.ENV_ENVIRONMENT: "dev", constants.ENV_ADMIN_SECRET_ARN: _ADMIN_ARN}
_MONITOR_ENV = {
    **_ROTATION_ENV,
    constants.ENV_PROJECT_ID: "proj_abc",
    constants.ENV_TOPIC_ARN: "arn:aws:sns:us-east-1:123456789012:keyrot-dev-oncall",
    constants.ENV_STATE_PARAMETER: "/keyrot/dev/monitor-state",
}
# Every variable a function reads, so a new one is fuzzed without touching this file.
_VARIABLES = tuple(value for name, value in vars(constants).items() if name.startswith("ENV_"))


@st.composite
def environments(draw: st.DrawFn) -> tuple[dict[str, str], set[str]]:
    env = dict(_MONITOR_ENV)
    touched: set[str] = set()
    for _ in range(draw(st.integers(1, 3))):
        variable = draw(st.sampled_from(_VARIABLES))
        touched.add(variable)
        if draw(st.integers(0, 4)) == 0:
            env.pop(variable, None)
        else:
            env[variable] = draw(_odd_values)
    return env, touched


@FUZZ
@given(case=environments())
def test_lambda_settings_are_valid_or_name_the_variable(case: tuple[dict[str, str], set[str]]) -> None:
    env, touched = case
    for reader in (RotationSettings.from_env, MonitorSettings.from_env):
        try:
            reader(env)
        except ConfigurationError as exc:
            # THEN the message names one of the variables that were changed, and echoes no key-shaped value
            message = str(exc)
            assert any(variable in message for variable in touched), message[:200]
            assert MARKER not in message and MARKER[:24] not in message, "a key-shaped value was echoed"


def test_the_unchanged_inputs_are_valid() -> None:
    # The fuzzing starts from inputs that pass: otherwise every example would fail for the same reason
    for stack in _STACKS:
        _check_promises(parse_config(dict(_KEYROT[stack]), stack=stack))
    RotationSettings.from_env(_ROTATION_ENV)
    MonitorSettings.from_env(_MONITOR_ENV)


# --- what fuzzing found: each of these crashed a reader or passed values AWS refuses -----------------------------


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("keys", "[" * 100_000),  # JSON nested deeper than the decoder goes: RecursionError
        ("oncallEmails", "[" * 100_000),
        ("keys", "1" * 5000),  # a JSON integer past Python's digit limit: ValueError
        ("administratorArns", "9" * 5000),
        ("rotationSchedule", "rate(" + "9" * 5000 + " days)"),
        ("rotationSchedule", "cron(0 \u00b2 * * ? *)"),  # '²' passes str.isdigit(), not int()
        ("rotationSchedule", "cron(0 0/\u00b2 * * ? *)"),
        ("rotationSchedule", "rate(\u0667 days)"),  # Unicode digits: Python reads them, AWS refuses them
        ("rotationSchedule", "cron(0 \u0662 * * ? *)"),
        ("rotationWindow", "\u0664h"),
        ("dailySpendLimitUsd", "inf"),  # no alarm threshold can hold an infinity
        ("dailySpendLimitUsd", "1e309"),
        ("openaiBaseUrl", "https://[::1"),  # urlsplit refuses an unclosed IPv6 bracket: ValueError
        ("oncallHttpsEndpoints", '["https://["]'),
        ("runbookUrl", "https://wiki\uff03example.com/runbook"),  # a host that NFKC-normalises to '#'
    ],
)
def test_found_by_fuzzing_config_values_are_refused_by_name(setting: str, value: str) -> None:
    values = {**_KEYROT["dev"], setting: value}
    with pytest.raises(ConfigError) as caught:
        parse_config(values, stack="dev")
    assert any(problem.startswith(f"keyrot:{setting}") for problem in caught.value.problems), caught.value.problems


def test_a_blank_key_expiry_means_the_default() -> None:
    # "   " used to crash the reader (AssertionError); blank is unset, as for every other setting
    assert parse_config({**_KEYROT["dev"], "keyExpiryHours": "   "}, stack="dev").key_expiry_hours > 0


@pytest.mark.parametrize("value", ["https://[::1", "https://api\uff03openai.com/v1"])
def test_found_by_fuzzing_a_malformed_base_url_is_a_configuration_error(value: str) -> None:
    for reader in (RotationSettings.from_env, MonitorSettings.from_env):
        with pytest.raises(ConfigurationError, match=constants.ENV_OPENAI_BASE_URL):
            reader({**_MONITOR_ENV, constants.ENV_OPENAI_BASE_URL: value})
