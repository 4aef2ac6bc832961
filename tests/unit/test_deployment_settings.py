"""What the deployment declares (managed secrets, project, sharing environments) and the rotation function's
timing settings: read exactly, or refused naming the variable, never echoing a key pasted into them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyrot.constants import (
    ENV_ADMIN_SECRET_ARN,
    ENV_ENVIRONMENT,
    ENV_GRACE_PERIOD_SECONDS,
    ENV_MANAGED_SECRETS,
    ENV_MAX_GRACE_PERIOD_SECONDS,
    ENV_PROJECT_ID,
    ENV_ROTATION_INTERVAL_SECONDS,
    ENV_SHARED_ENVIRONMENTS,
    ENV_STATE_PARAMETER,
    ENV_TOPIC_ARN,
)
from keyrot.errors import ConfigurationError
from keyrot.settings import MonitorSettings, RotationSettings

CHAT_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrot/dev/chat-AbCdEf"
BATCH_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrot/dev/batch-GhIjKl"
BASE = {ENV_ENVIRONMENT: "dev", ENV_ADMIN_SECRET_ARN: "arn:aws:secretsmanager:us-east-1:1:secret:admin"}
MONITOR = {**BASE, ENV_PROJECT_ID: "proj_1", ENV_TOPIC_ARN: "arn:aws:sns:us-east-1:1:t", ENV_STATE_PARAMETER: "/k"}
PLANTED = "sk-proj-" + "Q" * 40  # a key-shaped value pasted into the wrong variable


def test_the_declared_deployment_is_read_by_both_functions() -> None:
    # GIVEN the variables the infrastructure sets
    env = {
        **MONITOR,
        ENV_MANAGED_SECRETS: json.dumps({"chat": CHAT_ARN, "batch": BATCH_ARN}),
        ENV_SHARED_ENVIRONMENTS: "prod, staging",
    }
    # WHEN both functions read them THEN each holds the same declaration
    for reader in (RotationSettings.from_env, MonitorSettings.from_env):
        deployment = reader(env).deployment
        assert dict(deployment.managed_secrets or {}) == {"chat": CHAT_ARN, "batch": BATCH_ARN}
        assert (deployment.project_id, deployment.shared_environments) == ("proj_1", ("prod", "staging"))
        assert deployment.key_name_of(BATCH_ARN) == "batch" and deployment.key_name_of(CHAT_ARN + "x") is None


def test_an_older_deployment_without_the_variables_declares_nothing() -> None:
    deployment = RotationSettings.from_env(BASE).deployment
    assert (deployment.managed_secrets, deployment.project_id, deployment.shared_environments) == (None, None, None)


def test_an_empty_sharing_list_declares_that_no_other_environment_shares_the_project() -> None:
    assert RotationSettings.from_env({**BASE, ENV_SHARED_ENVIRONMENTS: ""}).shared_environments == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{not json", "must be a JSON object"),
        ('["chat"]', "must be a JSON object"),
        ('{"Chat!": "x"}', "invalid key name"),
        (json.dumps({"chat": "arn:aws:s3:::bucket"}), "is not a Secrets Manager secret ARN"),
        (json.dumps({"chat": PLANTED}), "is not a Secrets Manager secret ARN"),
        (json.dumps({"chat": CHAT_ARN, "batch": CHAT_ARN}), "to another key as well"),
        ("[" * 100_000, "longer than"),
    ],
)
def test_a_malformed_managed_secrets_map_is_refused_by_name(value: str, message: str) -> None:
    # GIVEN a malformed KEYROT_MANAGED_SECRETS WHEN read THEN refused naming the variable and the problem
    with pytest.raises(ConfigurationError, match=ENV_MANAGED_SECRETS) as caught:
        RotationSettings.from_env({**BASE, ENV_MANAGED_SECRETS: value})
    assert message in str(caught.value) and PLANTED not in str(caught.value)


@pytest.mark.parametrize(("value", "message"), [("prod,Prod!", "invalid environment"), ("prod,dev", "own environment")])
def test_a_malformed_sharing_list_is_refused_by_name(value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=ENV_SHARED_ENVIRONMENTS) as caught:
        MonitorSettings.from_env({**MONITOR, ENV_SHARED_ENVIRONMENTS: value})
    assert message in str(caught.value)


def test_a_project_id_that_is_a_pasted_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigurationError, match=ENV_PROJECT_ID) as caught:
        RotationSettings.from_env({**BASE, ENV_PROJECT_ID: PLANTED})
    assert PLANTED not in str(caught.value)


def test_the_rotation_function_reads_the_interval_and_maximum_grace_that_bound_a_promotion() -> None:
    # GIVEN a weekly schedule and a 3-day maximum grace
    env = {**BASE, ENV_ROTATION_INTERVAL_SECONDS: str(7 * 86400), ENV_MAX_GRACE_PERIOD_SECONDS: str(3 * 86400)}
    # WHEN read THEN a pending key must have 10 days of OpenAI-side life left to be promoted
    assert RotationSettings.from_env(env).promotion_floor_seconds == 10 * 86400


def test_a_maximum_grace_shorter_than_the_grace_period_is_refused_naming_both() -> None:
    env = {**BASE, ENV_GRACE_PERIOD_SECONDS: "7200", ENV_MAX_GRACE_PERIOD_SECONDS: "3600"}
    with pytest.raises(ConfigurationError, match=f"{ENV_MAX_GRACE_PERIOD_SECONDS}.*{ENV_GRACE_PERIOD_SECONDS}"):
        RotationSettings.from_env(env)


@settings(max_examples=150, deadline=None)
@given(
    value=st.one_of(
        st.text(max_size=60),
        st.dictionaries(
            st.sampled_from(["chat", "batch", "Chat", "", "a" * 70]),
            st.one_of(st.sampled_from([CHAT_ARN, BATCH_ARN, PLANTED, "arn:", ""]), st.integers(), st.none()),
        ).map(json.dumps),
    )
)
def test_any_managed_secrets_value_is_read_exactly_or_refused_by_name(value: str) -> None:
    # GIVEN any value of KEYROT_MANAGED_SECRETS WHEN read THEN the same map, or a ConfigurationError naming it
    try:
        read = RotationSettings.from_env({**BASE, ENV_MANAGED_SECRETS: value}).managed_secrets
    except ConfigurationError as exc:
        assert ENV_MANAGED_SECRETS in str(exc) and PLANTED not in str(exc)
        return
    assert read is None if not value.strip() else read == json.loads(value)
