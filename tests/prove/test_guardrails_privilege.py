"""Least privilege for the guardrails function, proven: the AWS calls keyrot.handlers.guardrails makes, against the
policies the Pulumi program declares for the dev stack.

The real handler runs in moto with the OpenAI stand-in, configured with the variables the program gives the deployed
function (the admin-key secret, project and endpoint pointed at this lab), with the declared document written where
the program writes it, and the on-call topic (created in moto under the dev topic's name): the deploy-time apply, a
check, a console change and the month's spend past the hard limit, a check with `enforce: restore` (which notifies
on-call of both and remembers it), and `pulumi destroy`'s delete. Every call it makes through its AWS clients is
recorded with its resource, then:

- each is allowed by the guardrails role's declared policy, and a read of the admin key by the admin-key secret's
  declared resource policy too, evaluated together for that role (tests/support/iam_eval.py);
- each grant of the role is used by some call (KMS and logs are used on the function's behalf).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from keyrot import constants as c
from keyrot.aws.clients import aws_client
from keyrot.guardrails import document_digest, document_json, parse_guardrails, to_document
from keyrot.handlers import guardrails as guardrails_handler
from lab.scenario import RotationWorld
from tests.support.aws_actions import harness, iam_prefix, resources_of
from tests.support.iam_eval import Principal, Request, evaluate

pytestmark = pytest.mark.timeout(300)

REGION = "us-east-1"
USED_FOR_IT = {
    "UseSecretsKey": "Secrets Manager calls KMS for the function",
    "PublishToEncryptedTopic": "SNS calls KMS for the function (the topic is encrypted with the environment key)",
    "WriteOwnLogs": "the Lambda runtime",
}


@dataclass(frozen=True)
class Observed:
    action: str
    resource: str


@dataclass(frozen=True)
class DevPolicies:
    role: Principal
    identity: dict[str, Any]
    admin_secret_policy: dict[str, Any]
    admin_secret_arn: str
    parameter_arn: str
    state_parameter_arn: str
    topic_arn: str
    variables: dict[str, str]
    block: dict[str, Any]


@pytest.fixture(scope="module")
def dev() -> DevPolicies:
    d = harness().deployed("dev")
    admin = d.outputs["adminKeySecretArn"]
    (role_policy,) = d.find("aws:iam/rolePolicy:RolePolicy", lambda r: r.inputs["name"] == "keyrot-dev-guardrails")
    (secret_policy,) = d.find("aws:secretsmanager/secretPolicy:SecretPolicy", lambda r: r.inputs["secretArn"] == admin)
    (function,) = d.find("aws:lambda/function:Function", lambda r: r.inputs["name"] == "keyrot-dev-guardrails")
    return DevPolicies(
        Principal(arn=function.inputs["role"]),
        json.loads(role_policy.inputs["policy"]),
        json.loads(secret_policy.inputs["policy"]),
        admin,
        f"arn:aws:ssm:{d.region}:{d.account}:parameter{c.guardrails_parameter_name('dev')}",
        f"arn:aws:ssm:{d.region}:{d.account}:parameter{c.guardrails_state_parameter_name('dev')}",
        d.outputs["oncallTopicArn"],
        dict(function.inputs["environment"]["variables"]),
        json.loads(d.config["keyrot:guardrails"]),
    )


def _record(client: Any, calls: list[Observed], monkeypatch: pytest.MonkeyPatch) -> None:
    original = client._make_api_call
    prefix = iam_prefix(client)

    def record(operation: str, params: dict[str, Any]) -> Any:
        response = original(operation, params)
        for resource in resources_of(prefix, operation, params, response, REGION):
            calls.append(Observed(f"{prefix}:{operation}", resource))
        return response

    monkeypatch.setattr(client, "_make_api_call", record)


@pytest.fixture
def observed(
    world: RotationWorld, dev: DevPolicies, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RotationWorld, list[Observed], dict[str, Any]]]:
    # GIVEN the deployment's declared document (with enforce: restore, to run the restoring calls too)
    declared = parse_guardrails({**dev.block, "enforce": "restore"})
    text = document_json(declared)
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=c.guardrails_parameter_name("dev"), Value=text, Type="String"
    )
    # AND the on-call topic, named as the dev stack names it
    topic = boto3.client("sns", region_name=REGION).create_topic(Name=dev.topic_arn.rsplit(":", 1)[1])["TopicArn"]
    lab = {
        c.ENV_TOPIC_ARN: topic,
        c.ENV_ADMIN_SECRET_ARN: world.admin_secret_arn,
        c.ENV_PROJECT_ID: world.project_id,
        c.ENV_OPENAI_BASE_URL: world.openai.base_url,
        c.ENV_GUARDRAILS_SHA256: document_digest(text),
    }
    for name, value in {**dev.variables, **lab}.items():
        monkeypatch.setenv(name, value)
    aws_client.cache_clear()
    calls: list[Observed] = []
    for service in ("secretsmanager", "ssm", "sns"):
        _record(aws_client(service), calls, monkeypatch)
    yield world, calls, to_document(declared)
    aws_client.cache_clear()


def _run_every_path(world: RotationWorld, document: dict[str, Any]) -> None:
    assert guardrails_handler.handler({"action": "apply", "guardrails": document}, None)["changes"]
    assert guardrails_handler.handler({"action": "check"}, None)["action"] == "check"
    world.openai.state.guardrails_for(world.project_id).spend_limit_cents = None  # someone removes it in the console
    world.openai.state.record_cost(None, 1_000_000.0, project_id=world.project_id)  # and the spend passes any limit
    restored = guardrails_handler.handler({"action": "check"}, None)
    assert restored["changes"] and len(restored["oncall"]["sent"]) == 2, restored
    guardrails_handler.handler({"action": "apply", "tf": {"action": "delete", "prev_input": {}}}, None)


def _as_dev(call: Observed, dev: DevPolicies, world: RotationWorld) -> Request:
    if call.resource == world.admin_secret_arn:
        return Request(call.action, dev.admin_secret_arn)
    return Request(call.action, call.resource.replace(":123456789012:", ":111111111111:"))


def test_every_call_of_the_guardrails_function_is_allowed_by_its_role_and_the_admin_key_secrets_policy(
    observed: tuple[RotationWorld, list[Observed], dict[str, Any]], dev: DevPolicies
) -> None:
    world, calls, document = observed
    _run_every_path(world, document)
    assert calls, "the function made no AWS call"
    refused = sorted(
        {
            call.action
            for call in calls
            for request in [_as_dev(call, dev, world)]
            if not evaluate(
                dev.role,
                request,
                [dev.identity],
                dev.admin_secret_policy if request.resource == dev.admin_secret_arn else None,
            ).allowed
        }
    )
    assert refused == []
    # AND it touched the admin-key secret, the declared parameter, its own state and the on-call topic only
    assert {_as_dev(call, dev, world).resource for call in calls} == {
        dev.admin_secret_arn,
        dev.parameter_arn,
        dev.state_parameter_arn,
        dev.topic_arn,
    }


def test_every_grant_of_the_guardrails_role_is_used(
    observed: tuple[RotationWorld, list[Observed], dict[str, Any]], dev: DevPolicies
) -> None:
    world, calls, document = observed
    _run_every_path(world, document)
    used = {call.action for call in calls}
    for statement in dev.identity["Statement"]:
        if statement["Sid"] in USED_FOR_IT:
            continue
        assert set(statement["Action"]) <= used, (statement["Sid"], set(statement["Action"]) - used)


def test_the_check_refuses_what_the_policies_do_not_grant(dev: DevPolicies) -> None:
    state = dev.parameter_arn.replace("/guardrails", "/monitor-state")
    assert not evaluate(dev.role, Request("ssm:GetParameter", state), [dev.identity]).allowed
    assert not evaluate(dev.role, Request("ssm:PutParameter", dev.parameter_arn), [dev.identity]).allowed
    other_topic = dev.topic_arn.rsplit(":", 1)[0] + ":someone-elses-topic"
    assert not evaluate(dev.role, Request("sns:Publish", other_topic), [dev.identity]).allowed
    write = Request("secretsmanager:PutSecretValue", dev.admin_secret_arn)
    assert not evaluate(dev.role, write, [dev.identity], dev.admin_secret_policy).allowed
