"""Least privilege for the admin key's own rotation, proven: the AWS calls keyrot.handlers.rotate_admin makes, against
the policies the Pulumi program declares for the dev stack.

The real handler runs in moto with the OpenAI stand-in, configured with the variables the program gives the deployed
function (the admin-key secret, project and endpoint pointed at this lab, the grace at 0 and the bootstrap key's
deletion on, so every path runs): two rotations through Secrets Manager's four steps, the scheduled cleanup (which
deletes the previous admin key and labels its version KEYROT_REVOKED), and a replay of a finished step. Every call it
makes through its Secrets Manager client is recorded with its resource and condition keys, then:

- each is allowed by the admin rotation role's declared policy AND the admin-key secret's declared resource policy,
  evaluated together for that role (tests/support/iam_eval.py);
- each Secrets Manager grant of the role is used by some call (KMS and logs are used on the function's behalf).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from keyrot import constants as c
from keyrot.aws.clients import aws_client
from keyrot.handlers import rotate_admin
from keyrot.secret_model import AdminCredentials
from lab.rotation_driver import RotationDriver
from tests.functional.admin_rotation.world import AdminWorld
from tests.support.aws_actions import harness, resources_of
from tests.support.iam_eval import Principal, Request, evaluate

pytestmark = pytest.mark.timeout(300)

REGION = "us-east-1"
CLEANUP_EVENT = {c.ADMIN_CLEANUP_EVENT_FIELD: c.ADMIN_CLEANUP_EVENT_VALUE}
# Granted, and used on the function's behalf rather than by its code.
USED_FOR_IT = {"UseSecretsKey": "Secrets Manager calls KMS for the function", "WriteOwnLogs": "the Lambda runtime"}


@dataclass(frozen=True)
class Observed:
    action: str
    resource: str
    context: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class DevPolicies:
    role: Principal
    identity: dict[str, Any]
    secret_policy: dict[str, Any]
    secret_arn: str


@pytest.fixture(scope="module")
def dev() -> DevPolicies:
    d = harness().deployed("dev")
    arn = d.outputs["adminKeySecretArn"]
    (role_policy,) = d.find("aws:iam/rolePolicy:RolePolicy", lambda r: r.inputs["name"] == "keyrot-dev-admin-rotation")
    (secret_policy,) = d.find("aws:secretsmanager/secretPolicy:SecretPolicy", lambda r: r.inputs["secretArn"] == arn)
    (function,) = d.find("aws:lambda/function:Function", lambda r: r.inputs["name"] == "keyrot-dev-admin-rotation")
    assert function.inputs["role"].endswith(":role/keyrot-dev-admin-rotation")
    return DevPolicies(
        Principal(arn=function.inputs["role"]),
        json.loads(role_policy.inputs["policy"]),
        json.loads(secret_policy.inputs["policy"]),
        arn,
    )


@pytest.fixture
def deployed_variables() -> dict[str, str]:
    (function,) = (
        harness()
        .deployed("dev")
        .find("aws:lambda/function:Function", lambda r: r.inputs["name"] == "keyrot-dev-admin-rotation")
    )
    return dict(function.inputs["environment"]["variables"])


@pytest.fixture
def observed(
    openai_standin: Any, secrets_client: Any, deployed_variables: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[AdminWorld, list[Observed]]]:
    world = AdminWorld.create(openai_standin, secrets_client)
    lab = {
        c.ENV_ADMIN_SECRET_ARN: world.arn,
        c.ENV_PROJECT_ID: world.project_id,
        c.ENV_OPENAI_BASE_URL: world.openai.base_url,
        c.ENV_ADMIN_KEY_GRACE_SECONDS: "0",
        c.ENV_ADMIN_DELETE_BOOTSTRAP_KEY: "true",
        c.ENV_VALIDATION_ATTEMPTS: "3",
        c.ENV_VALIDATION_DELAY_SECONDS: "0.01",
    }
    for name, value in {**deployed_variables, **lab}.items():
        monkeypatch.setenv(name, value)
    aws_client.cache_clear()
    client = aws_client("secretsmanager")  # the one the handler builds its context with
    calls: list[Observed] = []
    original = client._make_api_call

    def record(operation: str, params: dict[str, Any]) -> Any:
        response = original(operation, params)
        context: tuple[tuple[str, Any], ...] = ()
        if operation in ("TagResource", "UntagResource"):
            keys = [tag["Key"] for tag in params.get("Tags", [])] or list(params.get("TagKeys", []))
            context = (("aws:TagKeys", tuple(keys)),)
        for resource in resources_of("secretsmanager", operation, params, response, REGION):
            calls.append(Observed(f"secretsmanager:{operation}", resource, context))
        return response

    monkeypatch.setattr(client, "_make_api_call", record)
    yield world, calls
    aws_client.cache_clear()


def _run_every_path(world: AdminWorld) -> None:
    driver = RotationDriver(world.secrets, lambda event: rotate_admin.handler(event, None))
    first = driver.rotate(world.arn)  # with grace 0, finishSecret's own cleanup deletes the bootstrap key
    assert first.succeeded, first.failures
    rotate_admin.handler(dict(CLEANUP_EVENT), None)
    second = driver.rotate(world.arn)  # ... and then the first minted key
    assert second.succeeded, second.failures
    rotate_admin.handler(dict(CLEANUP_EVENT), None)
    driver.step(world.arn, second.token, "finishSecret")  # Secrets Manager replaying a finished step
    # an operator puts an admin key by hand (`keyrot admin-key set`): no promotion record, the cleanup dates it
    by_hand = world.openai.state.add_admin_key(name="put by hand")
    value = AdminCredentials(by_hand, world.openai.state.admin_keys[by_hand].id).to_json()
    world.secrets.put_secret_value(SecretId=world.arn, SecretString=value)
    rotate_admin.handler(dict(CLEANUP_EVENT), None)
    assert not world.authenticates(world.bootstrap_key)
    revoked = world.secrets.list_secret_version_ids(SecretId=world.arn)["Versions"]
    assert any(c.STAGE_REVOKED in version.get("VersionStages", []) for version in revoked)


def _as_dev(call: Observed, dev: DevPolicies, world: AdminWorld) -> Request:
    resource = dev.secret_arn if call.resource == world.arn else call.resource
    context = {key: list(value) if isinstance(value, tuple) else value for key, value in call.context}
    return Request(call.action, resource, context)


def test_every_call_of_the_admin_rotation_is_allowed_by_its_role_and_the_secrets_policy(
    observed: tuple[AdminWorld, list[Observed]], dev: DevPolicies
) -> None:
    # GIVEN every path of the function, run for real
    world, calls = observed
    _run_every_path(world)
    assert calls, "the function made no Secrets Manager call"
    # THEN each call, on the dev stack's admin-key secret, passes the role's policy and the secret's own policy
    refused = sorted(
        {
            (call.action, call.context)
            for call in calls
            if not evaluate(dev.role, _as_dev(call, dev, world), [dev.identity], dev.secret_policy).allowed
        }
    )
    assert refused == []
    # AND it touched the admin-key secret only
    assert {call.resource for call in calls} == {world.arn}
    # AND the one tag it set is the promotion record
    tagged = {key for call in calls if call.action.endswith("TagResource") for key in dict(call.context)["aws:TagKeys"]}
    assert tagged == {c.TAG_PROMOTED}


def test_every_grant_of_the_admin_rotation_role_is_used(
    observed: tuple[AdminWorld, list[Observed]], dev: DevPolicies
) -> None:
    world, calls = observed
    _run_every_path(world)
    used = {call.action for call in calls}
    for statement in dev.identity["Statement"]:
        if statement["Sid"] in USED_FOR_IT:
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert set(actions) <= used, (statement["Sid"], set(actions) - used)


def test_the_check_refuses_what_the_policies_do_not_grant(dev: DevPolicies) -> None:
    # The evaluation above can fail: a call on another secret, a label moved by another role, a keyrot tag.
    other = dev.secret_arn.replace("openai-admin-key", "chat-backend")
    assert not evaluate(
        dev.role, Request("secretsmanager:PutSecretValue", other), [dev.identity], dev.secret_policy
    ).allowed
    monitor = Principal(arn=dev.role.arn.replace("admin-rotation", "monitor"))
    label = Request("secretsmanager:UpdateSecretVersionStage", dev.secret_arn)
    assert not evaluate(monitor, label, [dev.identity], dev.secret_policy).allowed
    tag = Request("secretsmanager:TagResource", dev.secret_arn, {"aws:TagKeys": [c.TAG_ENVIRONMENT]})
    assert not evaluate(dev.role, tag, [dev.identity], dev.secret_policy).allowed
    assert os.environ.get(c.ENV_ADMIN_SECRET_ARN) is None  # nothing leaked from the lab's configuration
