"""The suite-wide AWS action recorder (tests/support/aws_actions.py) knows the guardrails and admin-rotation
functions as actors of their own, and holds their calls to their own roles' policies in the dev stack: a call either
function's role does not grant fails the session, as it does for the rotation and monitor functions."""

from __future__ import annotations

import boto3
import pytest

from keyrot.guardrails.settings import GuardrailsSettings
from keyrot.guardrails.source import read_parameter
from tests.support.aws_actions import (
    EMULATOR_ACCOUNT,
    Call,
    Recording,
    _category,
    dev_policies_by_type,
    recording,
    session_violations,
)

pytestmark = pytest.mark.timeout(300)

ADMIN_SECRET = f"arn:aws:secretsmanager:us-east-1:{EMULATOR_ACCOUNT}:secret:keyrot/x/openai-admin-key-AbCdEf"
TOPIC = f"arn:aws:sns:us-east-1:{EMULATOR_ACCOUNT}:keyrot-x-oncall"
STATE = "arn:aws:ssm:us-east-1:1:parameter/keyrot/x/guardrails-state"


@pytest.mark.parametrize(
    ("module", "actor"),
    [
        ("keyrot.guardrails.oncall", "guardrails"),
        ("keyrot.handlers.guardrails", "guardrails"),
        ("keyrot.admin_rotation.steps", "admin-rotation"),
        ("keyrot.handlers.rotate_admin", "admin-rotation"),
        ("keyrot.handlers.rotate", "rotation"),
        ("keyrot.guardrailsx", None),
    ],
)
def test_each_function_is_an_actor_of_its_own(module: str, actor: str | None) -> None:
    assert _category(module) == actor


def test_a_call_made_by_the_guardrails_code_is_recorded_as_the_guardrails_functions(aws: None) -> None:
    # GIVEN the declared parameter in moto
    ssm = boto3.client("ssm", region_name="us-east-1")
    ssm.put_parameter(Name="/keyrot/x/guardrails", Value="{}", Type="String")
    settings = GuardrailsSettings("x", ADMIN_SECRET, "proj_x", "https://api.openai.com/v1", "/keyrot/x/guardrails")
    # WHEN the guardrails code reads it
    with recording() as recorded:
        read_parameter(settings, ssm)
    # THEN the call is the guardrails function's
    assert [(call.actor, call.action) for call in recorded.calls] == [("guardrails", "ssm:GetParameter")]


def test_the_session_check_holds_guardrails_and_admin_rotation_calls_to_their_own_roles() -> None:
    # GIVEN calls each role grants
    recorded = Recording()
    recorded.add(Call("guardrails", "sns:Publish", (TOPIC,)))
    recorded.add(Call("guardrails", "ssm:PutParameter", (STATE,)))
    recorded.add(Call("admin-rotation", "secretsmanager:PutSecretValue", (ADMIN_SECRET,)))
    assert session_violations(recorded, dev_policies_by_type()) == []
    # WHEN each makes a call only another function's role grants
    recorded.add(Call("guardrails", "secretsmanager:PutSecretValue", (ADMIN_SECRET,)))
    recorded.add(Call("admin-rotation", "sns:Publish", (TOPIC,)))
    # THEN both are reported
    assert sorted(v.describe() for v in session_violations(recorded, dev_policies_by_type())) == [
        f"admin-rotation: sns:Publish on {TOPIC}",
        f"guardrails: secretsmanager:PutSecretValue on {ADMIN_SECRET}",
    ]
