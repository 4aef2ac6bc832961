"""One home for names (keyrot.names): every alarm, function and log group the program declares is named there, so
`keyrot status` and `keyrot rotate` find them by the same names, and no key's alarm can take another alarm's name."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from infra_harness import Deployment, keyrot_config

from keyrot import names
from keyrot.cli.alarms import load_alarms
from keyrot.secret_model import KEY_NAME_PATTERN

pytestmark = pytest.mark.timeout(120)

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


class _CloudWatch:
    """DescribeAlarms over the declared alarm names, the prefix filter applied as AWS applies it."""

    def __init__(self, alarm_names: list[str]) -> None:
        self.alarm_names = alarm_names

    def get_paginator(self, operation: str) -> _CloudWatch:
        assert operation == "describe_alarms"
        return self

    def paginate(self, AlarmNamePrefix: str, **_: Any) -> Any:
        chosen = [name for name in self.alarm_names if name.startswith(AlarmNamePrefix)]
        yield {"MetricAlarms": [{"AlarmName": name, "StateValue": "OK"} for name in chosen]}


def test_every_alarm_the_program_declares_is_named_by_keyrot_names(deployment: Deployment) -> None:
    # GIVEN every alarm a stack declares
    env = deployment.stack
    config = keyrot_config(deployment)
    produced = {names.environment_alarm_name(env, suffix) for suffix in names.ENVIRONMENT_ALARM_SUFFIXES} | {
        name for key in config.key_names for name in names.key_alarm_names(env, key)
    }
    declared = {a.inputs["name"] for a in deployment.of_type(ALARM)}
    # THEN each is a name keyrot.names produces (a new alarm's suffix is added there, where status reads it)
    assert declared - produced == set()


def test_status_files_each_declared_alarm_under_its_key_or_the_environment(deployment: Deployment) -> None:
    # GIVEN the alarms as CloudWatch would list them
    env = deployment.stack
    keys = keyrot_config(deployment).key_names
    declared = sorted(a.inputs["name"] for a in deployment.of_type(ALARM))
    # WHEN `keyrot status` splits them
    found = load_alarms(_CloudWatch(declared), env, keys)
    # THEN each key gets exactly its own three, and every other alarm is environment-wide
    for key in keys:
        assert {a.name for a in found.of_key(key)} == set(names.key_alarm_names(env, key))
    wide = {a.name for a in found.environment_wide}
    assert wide == set(declared) - {n for key in keys for n in names.key_alarm_names(env, key)}
    assert wide <= {names.environment_alarm_name(env, suffix) for suffix in names.ENVIRONMENT_ALARM_SUFFIXES}


# Key names an environment alarm's suffix starts with ("admin" of admin-key-too-old, "guardrails-apply", ...).
_TRICKY = sorted(
    {suffix.rsplit("-", n)[0] for suffix in names.ENVIRONMENT_ALARM_SUFFIXES for n in range(1, suffix.count("-") + 1)}
)


@given(
    key=st.one_of(st.sampled_from(_TRICKY), st.from_regex(KEY_NAME_PATTERN, fullmatch=True)),
    environment=st.sampled_from(["dev", "prod", "admin"]),
)
def test_no_key_name_makes_a_keys_alarm_take_an_environment_alarms_name(key: str, environment: str) -> None:
    # GIVEN any valid key name (a key called "admin" or "guardrail", say)
    environment_alarms = {names.environment_alarm_name(environment, s) for s in names.ENVIRONMENT_ALARM_SUFFIXES}
    # THEN none of its alarms is named like an environment alarm (PutMetricAlarm would overwrite one with the other)
    assert set(names.key_alarm_names(environment, key)).isdisjoint(environment_alarms)


def test_functions_and_log_groups_are_named_by_keyrot_names(deployment: Deployment) -> None:
    # GIVEN every function the stack declares
    env = deployment.stack
    for function in deployment.of_type("aws:lambda/function:Function"):
        purpose = function.inputs["name"].removeprefix(f"{names.RESOURCE_PREFIX}-{env}-")
        # THEN its name and log group are the ones the CLI looks for
        assert function.inputs["name"] == names.function_name(env, purpose)
        assert function.inputs["loggingConfig"]["logGroup"] == names.log_group_name(env, purpose)
    # AND the rotation-failure message points at the rotation log group `keyrot rotate` follows
    (target,) = deployment.of_type("aws:cloudwatch/eventTarget:EventTarget")
    message = json.loads(target.inputs["inputTransformer"]["inputTemplate"])
    assert f"Rotation Lambda logs: {names.rotation_log_group(env)}." in message


def test_managed_secrets_carry_the_tags_keyrot_names_defines(deployment: Deployment) -> None:
    config = keyrot_config(deployment)
    secrets = deployment.find(
        "aws:secretsmanager/secret:Secret", lambda r: "keyrot:key-name" in r.inputs.get("tags", {})
    )
    assert {s.inputs["tags"]["keyrot:key-name"] for s in secrets} == set(config.key_names)
    for secret in secrets:
        key = secret.inputs["tags"]["keyrot:key-name"]
        assert secret.inputs["tags"] == names.managed_secret_tags(deployment.stack, key, config.openai_project_id)


# AWS's limits on the names keyrot gives (IAM roles and Lambda functions: 64; EventBridge rules and schedules: 64).
NAME_LIMITS = {
    "aws:iam/role:Role": 64,
    "aws:iam/rolePolicy:RolePolicy": 128,
    "aws:iam/policy:Policy": 128,
    "aws:lambda/function:Function": 64,
    "aws:scheduler/schedule:Schedule": 64,
    "aws:cloudwatch/eventRule:EventRule": 64,
    "aws:cloudwatch/metricAlarm:MetricAlarm": 255,
    "aws:cloudwatch/logGroup:LogGroup": 512,
    "aws:sns/topic:Topic": 256,
    "aws:secretsmanager/secret:Secret": 512,
    "aws:ssm/parameter:Parameter": 1011,
}


def test_every_name_fits_aws_for_the_longest_environment_name() -> None:
    # GIVEN the longest environment name the configuration accepts, with every optional function deployed
    from infra_harness import run_program, stack_config

    environment = "e" + "x" * 31
    d = run_program("dev", stack_config("dev", {"keyrot:environment": environment}))
    assert d.find("aws:lambda/function:Function", lambda r: r.inputs["name"].endswith("-admin-rotation"))
    # THEN every name keyrot gives fits what AWS accepts (a name too long fails `pulumi up` half-way)
    too_long = [
        (r.type, r.inputs["name"])
        for r in d.resources
        if r.type in NAME_LIMITS and len(r.inputs["name"]) > NAME_LIMITS[r.type]
    ]
    assert too_long == []
