"""No admin key in Pulumi state, ever (issue 15): the program never calls OpenAI, and what `pulumi up` keeps of the
guardrails apply (the invocation's input and result) holds no key.

Shaped like someone who can read the stack's state (a CI log, a state bucket, `pulumi stack export`). The program runs
under mocks that do what the AWS provider does with the guardrails: write the declared parameter to moto, and invoke
the real guardrails function (keyrot.handlers.guardrails) with the invocation's input, against the OpenAI stand-in,
the admin key in its secret. Everything recorded, inputs and outputs of every resource and the stack outputs, then
goes through the suite's hygiene checker (tests/support/hygiene.py), which knows every key the stand-in issued.
"""

from __future__ import annotations

import json
import os
from typing import Any

import boto3
import pytest
from infra_harness import Deployment, run_program, stack_config
from pulumi.runtime import mocks as pulumi_mocks

from keyrot import constants as c
from keyrot.aws.clients import aws_client
from keyrot.handlers import guardrails as guardrails_handler
from lab.pulumi_program import RecordingMocks, unsecret
from lab.pulumi_program import run_program as run_with_mocks
from lab.scenario import RotationWorld
from tests.support.hygiene import find_leaks

pytestmark = pytest.mark.timeout(180)

REGION = "us-east-1"
ACCOUNT = "111111111111"


class InvokingMocks(RecordingMocks):
    """RecordingMocks that also write the declared guardrails to moto and invoke the guardrails function as the AWS
    provider does (RequestResponse, the input as the event), keeping its result as the invocation's `result`."""

    def __init__(self, world: RotationWorld) -> None:
        super().__init__(ACCOUNT, REGION)
        self.world = world
        self.variables: dict[str, str] = {}
        self.results: list[dict[str, Any]] = []

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        resource_id, outputs = super().new_resource(args)
        inputs = args.inputs
        if args.typ == "aws:secretsmanager/secret:Secret" and inputs["name"] == c.admin_secret_name("dev"):
            outputs["arn"] = self.world.admin_secret_arn  # the one holding the world's admin key
        if args.typ == "aws:ssm/parameter:Parameter" and inputs["name"] == c.guardrails_parameter_name("dev"):
            ssm = boto3.client("ssm", region_name=REGION)
            ssm.put_parameter(Name=inputs["name"], Value=unsecret(inputs["value"]), Type="String", Overwrite=True)
        if args.typ == "aws:lambda/function:Function" and inputs["name"] == "keyrot-dev-guardrails":
            self.variables = dict(inputs["environment"]["variables"])
        if args.typ == "aws:lambda/invocation:Invocation":
            outputs["result"] = json.dumps(self._invoke(json.loads(inputs["input"])))
        return resource_id, outputs

    def _invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        saved = dict(os.environ)
        os.environ.update(self.variables)
        aws_client.cache_clear()
        try:
            result = guardrails_handler.handler(event, None)
        finally:
            os.environ.clear()
            os.environ.update(saved)
            aws_client.cache_clear()
        self.results.append(result)
        return result


def deploy(world: RotationWorld, mocks: RecordingMocks) -> Deployment:
    """The dev stack against the world's project and OpenAI endpoint (the stand-in)."""
    config = stack_config(
        "dev", {"keyrot:openaiProjectId": world.project_id, "keyrot:openaiBaseUrl": world.openai.base_url}
    )
    return run_with_mocks("dev", config, mocks, account=ACCOUNT)


def everything_recorded(d: Deployment) -> str:
    return json.dumps(
        {
            "resources": [
                {"type": r.type, "name": r.name, "inputs": r.inputs, "outputs": r.outputs} for r in d.resources
            ],
            "component_outputs": d.component_outputs,
            "outputs": d.outputs,
        },
        default=str,
    )


def test_the_program_never_calls_openai(world: RotationWorld) -> None:
    # GIVEN the dev stack pointed at the stand-in, deployed by the plain recording mocks (the provider's work undone)
    d = deploy(world, RecordingMocks(ACCOUNT, REGION))
    # THEN declaring guardrails made no OpenAI call at all: only the function, at apply time, may
    assert d.of_type("aws:lambda/invocation:Invocation")
    assert world.openai.calls == []


def test_what_pulumi_up_keeps_of_the_apply_holds_no_admin_key(world: RotationWorld) -> None:
    # GIVEN a `pulumi up` whose deploy-time invocation really runs the guardrails function against OpenAI
    mocks = InvokingMocks(world)
    d = deploy(world, mocks)
    # THEN the function applied the declared guardrails (the project has the hard limit now)
    (result,) = mocks.results
    assert result["action"] == "apply" and result["declared"] is True and result["changes"]
    assert world.openai.state.guardrails_for(world.project_id).spend_limit_cents == 10_000
    # AND nothing recorded (every input and output, the invocation's stored result included) holds a key
    text = everything_recorded(d)
    (invocation,) = d.of_type("aws:lambda/invocation:Invocation")
    assert json.loads(invocation.outputs["result"]) == result
    assert [leak.describe() for leak in find_leaks("the Pulumi state", text)] == []
    assert world.admin_key not in text


def test_the_hygiene_check_would_see_an_admin_key_in_the_state(world: RotationWorld) -> None:
    # The check above is not vacuous: the same recording with the admin key in a result is caught.
    d = run_program("dev", stack_config("dev"))
    (invocation,) = d.of_type("aws:lambda/invocation:Invocation")
    invocation.outputs["result"] = json.dumps({"admin_key": world.admin_key})
    assert find_leaks("the Pulumi state", everything_recorded(d))
