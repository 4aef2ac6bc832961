"""The guardrails function's configuration and events: what it trusts (the deployment's digest and project, never the
invocation's input alone) and the events it takes, refusing anything else with a clear error."""

from __future__ import annotations

import pytest

from keyrot.constants import (
    ENV_ADMIN_SECRET_ARN,
    ENV_ENVIRONMENT,
    ENV_GUARDRAILS_PARAMETER,
    ENV_GUARDRAILS_SHA256,
    ENV_GUARDRAILS_STATE_PARAMETER,
    ENV_PROJECT_ID,
    ENV_TOPIC_ARN,
    guardrails_parameter_name,
    guardrails_state_parameter_name,
)
from keyrot.errors import ConfigurationError
from keyrot.guardrails import GuardrailsEventError, GuardrailsRequest, GuardrailsSettings

DIGEST = "ab" * 32
TOPIC = "arn:aws:sns:us-east-1:111111111111:keyrot-dev-oncall"
STATE = {ENV_GUARDRAILS_STATE_PARAMETER: "/keyrot/dev/guardrails-state"}
BASE = {
    ENV_ENVIRONMENT: "dev",
    ENV_ADMIN_SECRET_ARN: "arn:aws:secretsmanager:us-east-1:111111111111:secret:keyrot/dev/openai-admin-key-AbCdEf",
    ENV_PROJECT_ID: "proj_abc",
}


def test_the_settings_name_the_project_parameter_and_digest_from_the_functions_configuration() -> None:
    settings = GuardrailsSettings.from_env(
        BASE | {ENV_GUARDRAILS_PARAMETER: guardrails_parameter_name("dev"), ENV_GUARDRAILS_SHA256: DIGEST}
    )
    assert (settings.project_id, settings.parameter_name, settings.declared_digest) == (
        "proj_abc",
        "/keyrot/dev/guardrails",
        DIGEST,
    )
    assert settings.declared


def test_the_settings_name_the_on_call_topic_and_where_the_check_remembers_what_it_told() -> None:
    settings = GuardrailsSettings.from_env(
        BASE | {ENV_TOPIC_ARN: TOPIC, ENV_GUARDRAILS_STATE_PARAMETER: guardrails_state_parameter_name("dev")}
    )
    assert (settings.topic_arn, settings.state_parameter) == (TOPIC, "/keyrot/dev/guardrails-state")


def test_without_a_topic_the_check_tells_no_one_but_the_metric() -> None:
    settings = GuardrailsSettings.from_env(BASE)
    assert settings.topic_arn is None and settings.state_parameter is None


def test_without_a_digest_the_deployment_declares_no_guardrails() -> None:
    assert not GuardrailsSettings.from_env(BASE).declared


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({ENV_GUARDRAILS_PARAMETER: "/keyrot/dev/guardrails"}, ENV_GUARDRAILS_SHA256),
        ({ENV_GUARDRAILS_SHA256: "ABC"}, ENV_GUARDRAILS_SHA256),
        ({ENV_GUARDRAILS_PARAMETER: "keyrot/dev/guardrails", ENV_GUARDRAILS_SHA256: DIGEST}, ENV_GUARDRAILS_PARAMETER),
        ({ENV_PROJECT_ID: ""}, ENV_PROJECT_ID),
        ({ENV_TOPIC_ARN: TOPIC}, ENV_GUARDRAILS_STATE_PARAMETER),
        ({ENV_TOPIC_ARN: "arn:aws:sqs:us-east-1:111111111111:q", **STATE}, ENV_TOPIC_ARN),
        ({ENV_TOPIC_ARN: TOPIC, ENV_GUARDRAILS_STATE_PARAMETER: "guardrails-state"}, ENV_GUARDRAILS_STATE_PARAMETER),
    ],
)
def test_a_bad_configuration_is_refused_naming_the_variable(changes: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        GuardrailsSettings.from_env(BASE | changes)


def test_apply_takes_the_declared_document_from_the_deploy_time_invocation() -> None:
    request = GuardrailsRequest.from_event({"action": "apply", "guardrails": {"version": 1}})
    assert (request.action, request.document) == ("apply", {"version": 1})


def test_check_reads_the_parameter_and_takes_no_document() -> None:
    assert GuardrailsRequest.from_event({"action": "check"}) == GuardrailsRequest("check")
    with pytest.raises(GuardrailsEventError, match="only apply takes a document"):
        GuardrailsRequest.from_event({"action": "check", "guardrails": {"version": 1}})


def test_pulumis_destroy_invocation_leaves_the_guardrails_as_they_are() -> None:
    event = {"action": "apply", "guardrails": {}, "tf": {"action": "delete", "prev_input": {}}}
    assert GuardrailsRequest.from_event(event).action == "none"


@pytest.mark.parametrize("event", [{}, {"action": "delete"}, {"action": "apply", "guardrails": "text"}, [], "apply"])
def test_any_other_event_is_refused(event: object) -> None:
    with pytest.raises(GuardrailsEventError):
        GuardrailsRequest.from_event(event)


def test_a_key_in_the_event_is_not_echoed() -> None:
    pasted = "sk-admin-" + "Z9y8X7w6" * 6
    with pytest.raises(GuardrailsEventError) as caught:
        GuardrailsRequest.from_event({"action": pasted})
    assert pasted[:12] not in str(caught.value)
