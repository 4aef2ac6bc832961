"""The rehearsal's provisioning does what `pulumi up` does with a deploy-time invocation (the guardrails apply).

The dev stack creates its admin-key secret empty, so the first update's guardrails apply cannot read an admin key: it
is kept pending, as `pulumi up` would stop there, and nothing is claimed applied. Once the operator has put the admin
key, the next update (`Provisioned.apply_pending`) applies the declared guardrails to the OpenAI project.
"""

from __future__ import annotations

import json

import pytest

from keyrot.constants import guardrails_parameter_name
from lab.demo.world import STACK, emulated_world, provision_stack

pytestmark = pytest.mark.timeout(300)


def test_the_guardrails_apply_waits_for_the_admin_key_then_applies_the_declared_document() -> None:
    with emulated_world() as world:
        # GIVEN the dev stack provisioned before any admin key was put
        provisioned = provision_stack(world)
        # THEN the apply is pending with the function's own error, and the project's guardrails are untouched
        (pending,) = provisioned.pending
        assert pending.function_name == f"keyrot-{STACK}-guardrails" and pending.event["action"] == "apply"
        assert "holds no value" in pending.error
        assert world.openai_api.state.guardrails_for(world.project_id).spend_limit_cents is None
        assert not provisioned.unsupported
        # WHEN the operator puts the admin key and the stack is updated again
        stored = world.cli("admin-key", "set", "--env", STACK, stdin=world.admin_key + "\n")
        assert stored.returncode == 0, stored.stderr
        (result,) = provisioned.apply_pending().values()
        # THEN the declared document is applied, and nothing is pending
        assert result["action"] == "apply" and result["changes"]
        assert not provisioned.pending
        parameter = world.aws.client("ssm").get_parameter(Name=guardrails_parameter_name(STACK))["Parameter"]
        declared = json.loads(parameter["Value"])
        assert world.openai_api.state.guardrails_for(world.project_id).spend_limit_cents == round(
            declared["spendLimitUsd"] * 100
        )
