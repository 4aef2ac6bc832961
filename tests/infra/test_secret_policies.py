"""Tampering inside the account: every Secrets Manager action that changes a secret is capped by its resource policy.

Shaped like the attacker with ordinary permissions in the account: a developer or a reader role whose IAM policy
says `secretsmanager:*`. The write actions come from botocore's service model (tests/support/secretsmanager_actions),
so an action AWS adds fails here until the policies cap it. Each is evaluated for every kind of principal (with the
broad IAM policy, so only the secret's own policy stands in the way) against the dev stack's declared policies.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from infra_harness import Deployment

from keyrot import constants as c
from keyrot.pulumi import policies
from lab.pulumi_program import DEPLOYER_ROLE
from tests.support.iam_eval import Decision, Principal, evaluate, identity_allows
from tests.support.secretsmanager_actions import TAG_ACTIONS, operations, request, write_actions

pytestmark = pytest.mark.timeout(120)

ACCOUNT = "111111111111"
BROAD = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]}
GET = "secretsmanager:GetSecretValue"
PUT = "secretsmanager:PutSecretValue"
LABEL = "secretsmanager:UpdateSecretVersionStage"


def role(name: str) -> Principal:
    return Principal(arn=f"arn:aws:iam::{ACCOUNT}:role/{name}")


PRINCIPALS = {
    "reader": role("chat-backend-dev"),
    "other key's reader": role("data-notebooks-dev"),
    "rotation": role("keyrot-dev-rotation"),
    "monitor": role("keyrot-dev-monitor"),
    "scheduler": role("keyrot-dev-monitor-scheduler"),
    "administrator": role("aws-reserved/sso.amazonaws.com/AWSReservedSSO_PlatformAdmin_4f2a"),
    "deployer": role(DEPLOYER_ROLE),
    "developer": role("developer"),
}
# Who may do what to a managed key's secret, written out here (not read from the policy module).
MAY_READ = {"reader", "rotation", "monitor", "administrator"}
MAY_WRITE_VALUE = {"rotation", "administrator"}
MAY_MOVE_LABELS = {"rotation", "monitor", "administrator"}
MAY_MANAGE = {"deployer", "administrator"}


def allowed_to(action: str) -> set[str]:
    if action == GET:
        return MAY_READ
    if action == PUT:
        return MAY_WRITE_VALUE
    if action == LABEL:
        return MAY_MOVE_LABELS
    return MAY_MANAGE  # management, and setting or removing a keyrot:* tag


def secret_policy(d: Deployment, key: str) -> tuple[str, dict[str, Any]]:
    arn = d.outputs["keySecretArns"][key]
    (found,) = d.find("aws:secretsmanager/secretPolicy:SecretPolicy", lambda r: r.inputs["secretArn"] == arn)
    return arn, json.loads(found.inputs["policy"])


def admin_secret_policy(d: Deployment) -> tuple[str, dict[str, Any]]:
    arn = d.outputs["adminKeySecretArn"]
    (found,) = d.find("aws:secretsmanager/secretPolicy:SecretPolicy", lambda r: r.inputs["secretArn"] == arn)
    return arn, json.loads(found.inputs["policy"])


def test_every_write_action_botocore_knows_is_in_a_capped_group() -> None:
    # GIVEN every operation of Secrets Manager's service model that changes an existing secret
    capped = {*policies.VALUE_WRITES, *policies.LABEL_WRITES, *policies.MANAGEMENT_WRITES, *policies.TAG_WRITES}
    # THEN each is capped by one of the policies' groups (a new AWS action fails here until placed)
    assert set(write_actions()) <= capped, sorted(set(write_actions()) - capped)
    # AND each group names real actions (a typo would cap nothing)
    assert {a.split(":", 1)[1] for a in capped} <= set(operations())


@pytest.mark.parametrize("action", [GET, *write_actions()])
def test_only_the_principals_that_need_it_may_change_a_keys_secret(dev: Deployment, action: str) -> None:
    # GIVEN chat-backend's secret and every kind of principal, each with `secretsmanager:*` in its IAM policy
    secret, policy = secret_policy(dev, "chat-backend")
    for label, principal in PRINCIPALS.items():
        result = evaluate(principal, request(action, secret), [BROAD], policy)
        # THEN only those that need the action may do it; the secret's policy denies everyone else by name
        if label in allowed_to(action):
            assert result.allowed, (label, action)
        else:
            assert result.decision is Decision.EXPLICIT_DENY, (label, action, result)


@pytest.mark.parametrize("action", [GET, *write_actions()])
def test_aws_services_acting_themselves_are_not_capped(dev: Deployment, action: str) -> None:
    # GIVEN Secrets Manager itself (a scheduled rotation, replication) THEN the deny statements leave it alone
    secret, policy = secret_policy(dev, "chat-backend")
    service = Principal(service="secretsmanager.amazonaws.com")
    assert evaluate(service, request(action, secret), [], policy).decision is not Decision.EXPLICIT_DENY


@pytest.mark.parametrize(
    ("tag_keys", "allowed"),
    [
        ((c.TAG_PROMOTED,), True),
        ((c.TAG_PROMOTED, "team"), False),
        ((c.TAG_ENVIRONMENT,), False),
        (("team",), False),
    ],
)
def test_the_rotation_function_may_set_the_promotion_tag_and_nothing_else(
    dev: Deployment, tag_keys: tuple[str, ...], allowed: bool
) -> None:
    # GIVEN the rotation role with its own declared policy, tagging one of its secrets
    secret, policy = secret_policy(dev, "chat-backend")
    (role_policy,) = dev.find("aws:iam/rolePolicy:RolePolicy", lambda r: r.inputs["name"] == "keyrot-dev-rotation")
    identity = [json.loads(role_policy.inputs["policy"])]
    tagging = request("secretsmanager:TagResource", secret, tag_keys=tag_keys)
    rotation = PRINCIPALS["rotation"]
    # THEN exactly keyrot:promoted alone is allowed, by its IAM policy and by the secret's policy
    assert identity_allows(identity, tagging, rotation).allowed is allowed
    assert evaluate(rotation, tagging, [BROAD], policy).allowed is allowed
    # AND it may never remove a tag (its policy grants none), nor a keyrot:* tag even with a broad IAM grant
    untagging = request("secretsmanager:UntagResource", secret, tag_keys=tag_keys)
    assert not evaluate(rotation, untagging, identity, policy).allowed
    if any(key.startswith("keyrot:") for key in tag_keys):
        assert evaluate(rotation, untagging, [BROAD], policy).decision is Decision.EXPLICIT_DENY


def test_tags_of_the_platform_team_are_left_to_its_iam(dev: Deployment) -> None:
    # GIVEN a developer tagging a secret with the team's own (non-keyrot) cost tag
    secret, policy = secret_policy(dev, "chat-backend")
    for action in sorted(TAG_ACTIONS):
        # THEN keyrot's policy does not stand in the way: only keyrot:* tags say what a secret is for
        assert evaluate(PRINCIPALS["developer"], request(action, secret, tag_keys=("cost-center",)), [BROAD], policy)


def test_the_admin_key_secret_caps_reading_and_managing_but_not_putting_a_new_key(dev: Deployment) -> None:
    # GIVEN the admin-key secret keyrot created, and principals with `secretsmanager:*`
    secret, policy = admin_secret_policy(dev)
    readers = {"rotation", "monitor", "administrator"}
    for label, principal in PRINCIPALS.items():
        for action in (GET, *write_actions()):
            result = evaluate(principal, request(action, secret), [BROAD], policy)
            if action == PUT:
                # Putting a new admin key is left to the platform team's IAM (`keyrot admin-key set`).
                assert result.allowed, label
            elif action == GET:
                assert result.allowed is (label in readers), (label, action)
            else:
                assert result.allowed is (label in MAY_MANAGE), (label, action)
