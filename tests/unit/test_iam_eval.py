"""The IAM evaluator behind the isolation and least-privilege proofs: every construct, and cases that must be denied."""

from __future__ import annotations

from typing import Any

import pytest

from keyrot.pulumi import policies
from tests.support.iam_eval import (
    Decision,
    Principal,
    Request,
    UnsupportedPolicyError,
    action_matches,
    arn_matches,
    condition_holds,
    evaluate,
    identity_allows,
)

DEV = "111111111111"
PROD = "222222222222"
ROLE = Principal(arn=f"arn:aws:iam::{DEV}:role/app")
OTHER_ROLE = Principal(arn=f"arn:aws:iam::{DEV}:role/other")
PROD_ROLE = Principal(arn=f"arn:aws:iam::{PROD}:role/app")
SECRET = f"arn:aws:secretsmanager:us-east-1:{DEV}:secret:keyrot/dev/chat-AbCdEf"
PROD_SECRET = f"arn:aws:secretsmanager:us-east-1:{PROD}:secret:keyrot/prod/chat-XyZ123"
GET = "secretsmanager:GetSecretValue"


def allow(actions: Any, resources: Any = "*", **extra: Any) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resources, **extra}],
    }


def deny(actions: Any, resources: Any = "*", **extra: Any) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": actions, "Resource": resources, **extra}],
    }


def decide(policy: dict[str, Any], action: str = GET, resource: str = SECRET, **context: Any) -> Decision:
    return evaluate(ROLE, Request(action, resource, context), [policy]).decision


# --- actions and resources ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("secretsmanager:GetSecretValue", GET, True),
        ("secretsmanager:getsecretvalue", GET, True),  # action names are case-insensitive
        ("secretsmanager:Get*", GET, True),
        ("secretsmanager:*", GET, True),
        ("*", GET, True),
        ("secretsmanager:Get?ecretValue", GET, True),
        ("secretsmanager:Describe*", GET, False),
        ("secretsmanager:GetSecretValues", GET, False),
        ("kms:GenerateDataKey*", "kms:GenerateDataKeyWithoutPlaintext", True),
        ("kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", False),
        ("ssm:GetParameter", "ssm:GetParameters", False),
    ],
)
def test_action_wildcards(pattern: str, action: str, expected: bool) -> None:
    assert action_matches(pattern, action) is expected


@pytest.mark.parametrize(
    ("pattern", "arn", "expected"),
    [
        ("*", SECRET, True),
        (SECRET, SECRET, True),
        (f"arn:aws:secretsmanager:us-east-1:{DEV}:secret:keyrot/dev/*", SECRET, True),
        (f"arn:aws:secretsmanager:us-east-1:{DEV}:secret:keyrot/dev/chat-??????", SECRET, True),
        (f"arn:aws:secretsmanager:us-east-1:{DEV}:secret:keyrot/dev/chat-?????", SECRET, False),
        (f"arn:aws:secretsmanager:us-east-1:{DEV}:secret:keyrot/prod/*", SECRET, False),
        (f"arn:aws:secretsmanager:us-east-1:{PROD}:secret:keyrot/dev/*", SECRET, False),  # another account
        (f"arn:aws:secretsmanager:*:{DEV}:secret:*", SECRET, True),
        (f"arn:aws:secretsmanager:us-east-1:{DEV}:secret:keyrot/dev/chat", SECRET, False),  # the suffix matters
        ("arn:aws:secretsmanager:*", SECRET, False),  # a wildcard does not swallow the other components
        (f"arn:aws:secretsmanager:us-east-1:{DEV}:secret:KEYROT/dev/*", SECRET, False),  # ARNs are case-sensitive
        (
            "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/x:*",
            "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/x:*",
            True,
        ),
        (
            "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/x:*",
            "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/x:log-stream:abc",
            True,
        ),
        (
            "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/x:*",
            "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/xy",
            False,
        ),
        (SECRET, "not-an-arn", False),
    ],
)
def test_resource_wildcards(pattern: str, arn: str, expected: bool) -> None:
    assert arn_matches(pattern, arn) is expected


def test_allow_needs_the_action_and_the_resource() -> None:
    policy = allow([GET], [SECRET])
    assert decide(policy) is Decision.ALLOW
    assert decide(policy, action="secretsmanager:PutSecretValue") is Decision.IMPLICIT_DENY
    assert decide(policy, resource=SECRET.replace("chat", "search")) is Decision.IMPLICIT_DENY


def test_no_policy_is_an_implicit_deny() -> None:
    assert evaluate(ROLE, Request(GET, SECRET), []).decision is Decision.IMPLICIT_DENY


def test_not_action_allows_everything_else() -> None:
    policy = {"Statement": [{"Effect": "Allow", "NotAction": ["secretsmanager:Put*", "iam:*"], "Resource": "*"}]}
    assert decide(policy) is Decision.ALLOW
    assert decide(policy, action="secretsmanager:PutSecretValue") is Decision.IMPLICIT_DENY
    assert decide(policy, action="iam:CreateUser", resource="*") is Decision.IMPLICIT_DENY


def test_not_resource_allows_everything_else() -> None:
    policy = {"Statement": [{"Effect": "Allow", "Action": GET, "NotResource": "arn:aws:secretsmanager:*:*:secret:*"}]}
    assert decide(policy) is Decision.IMPLICIT_DENY
    assert decide(policy, resource=f"arn:aws:ssm:us-east-1:{DEV}:parameter/x") is Decision.ALLOW


def test_explicit_deny_wins_over_any_allow() -> None:
    policies_ = [allow("*"), deny("secretsmanager:Get*", [SECRET])]
    result = evaluate(ROLE, Request(GET, SECRET), policies_)
    assert result.decision is Decision.EXPLICIT_DENY
    assert result.because == ("identity[1]/0",)
    assert evaluate(ROLE, Request("secretsmanager:DescribeSecret", SECRET), policies_).allowed


# --- conditions --------------------------------------------------------------------------------------------------

VIA_SM = {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}
KEY = f"arn:aws:kms:us-east-1:{DEV}:key/k1"


def test_string_equals() -> None:
    policy = allow("kms:Decrypt", KEY, Condition=VIA_SM)
    assert decide(policy, "kms:Decrypt", KEY, **{"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}) is (
        Decision.ALLOW
    )
    assert decide(policy, "kms:Decrypt", KEY, **{"kms:ViaService": "sns.us-east-1.amazonaws.com"}) is (
        Decision.IMPLICIT_DENY
    )
    # a direct call carries no kms:ViaService at all: the condition fails
    assert decide(policy, "kms:Decrypt", KEY) is Decision.IMPLICIT_DENY
    # StringEquals is case-sensitive in the value, not in the key name
    assert decide(policy, "kms:Decrypt", KEY, **{"KMS:VIASERVICE": "secretsmanager.us-east-1.amazonaws.com"}) is (
        Decision.ALLOW
    )
    assert decide(policy, "kms:Decrypt", KEY, **{"kms:ViaService": "SecretsManager.us-east-1.amazonaws.com"}) is (
        Decision.IMPLICIT_DENY
    )


def test_string_equals_if_exists_holds_when_the_key_is_absent() -> None:
    condition = {"StringEqualsIfExists": {"cloudwatch:namespace": "keyrot"}}
    assert condition_holds(condition, {})
    assert condition_holds(condition, {"cloudwatch:namespace": "keyrot"})
    assert not condition_holds(condition, {"cloudwatch:namespace": "AWS/Lambda"})


def test_string_like_and_several_values_any_of() -> None:
    condition = {"StringLike": {"aws:userid": ["AROA*:alice", "AROA*:bob"]}}
    assert condition_holds(condition, {"aws:userid": "AROAEXAMPLE:bob"})
    assert not condition_holds(condition, {"aws:userid": "AROAEXAMPLE:carol"})
    assert not condition_holds(condition, {})


def test_several_keys_and_operators_must_all_hold() -> None:
    condition = {
        "StringEquals": {"kms:CallerAccount": DEV, "kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"},
        "Bool": {"aws:SecureTransport": "true"},
    }
    context = {"kms:CallerAccount": DEV, "kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
    assert condition_holds(condition, {**context, "aws:SecureTransport": True})
    assert not condition_holds(condition, {**context, "aws:SecureTransport": False})
    assert not condition_holds(condition, {**context, "kms:CallerAccount": PROD, "aws:SecureTransport": True})


def test_arn_like_arn_equals_and_arn_not_like() -> None:
    admins = f"arn:aws:iam::{DEV}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_PlatformAdmin_*"
    admin = f"arn:aws:iam::{DEV}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_PlatformAdmin_0123abcd"
    assert condition_holds({"ArnLike": {"aws:PrincipalArn": admins}}, {"aws:PrincipalArn": admin})
    assert not condition_holds({"ArnLike": {"aws:PrincipalArn": admins}}, {"aws:PrincipalArn": ROLE.arn})
    assert condition_holds({"ArnEquals": {"aws:SourceArn": ROLE.arn}}, {"aws:SourceArn": ROLE.arn})
    assert not condition_holds({"ArnEquals": {"aws:SourceArn": ROLE.arn}}, {"aws:SourceArn": OTHER_ROLE.arn})
    not_like = {"ArnNotLike": {"aws:PrincipalArn": [admins, ROLE.arn]}}
    assert not condition_holds(not_like, {"aws:PrincipalArn": ROLE.arn})
    assert not condition_holds(not_like, {"aws:PrincipalArn": admin})
    assert condition_holds(not_like, {"aws:PrincipalArn": OTHER_ROLE.arn})
    # a negated operator holds when the key is absent
    assert condition_holds(not_like, {})


def test_bool_and_bool_if_exists() -> None:
    assert condition_holds({"Bool": {"aws:PrincipalIsAWSService": "false"}}, {"aws:PrincipalIsAWSService": False})
    assert not condition_holds({"Bool": {"aws:PrincipalIsAWSService": "false"}}, {"aws:PrincipalIsAWSService": True})
    assert not condition_holds({"Bool": {"aws:PrincipalIsAWSService": "false"}}, {})
    assert condition_holds({"BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}, {})
    assert not condition_holds(
        {"BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}, {"aws:PrincipalIsAWSService": True}
    )


@pytest.mark.parametrize(
    "policy",
    [
        allow(GET, Condition={"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}),
        allow(GET, Condition={"ForAnyValue:NumericLessThan": {"aws:TagKeys": "3"}}),
        {"Statement": [{"Effect": "Allow", "Action": GET, "Resource": "*", "Principle": "*"}]},
        {"Statement": [{"Effect": "Permit", "Action": GET, "Resource": "*"}]},
        {"Statement": [{"Effect": "Allow", "Action": GET}]},
    ],
    ids=["unknown-operator", "set-operator", "misspelt-element", "bad-effect", "no-resource"],
)
def test_unsupported_constructs_fail_loudly(policy: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedPolicyError):
        decide(policy)


def test_not_principal_is_refused() -> None:
    policy = {"Statement": [{"Effect": "Deny", "NotPrincipal": {"AWS": ROLE.arn}, "Action": "*", "Resource": "*"}]}
    with pytest.raises(UnsupportedPolicyError):
        evaluate(ROLE, Request(GET, SECRET), [], policy)


# --- identity and resource policies together ---------------------------------------------------------------------


def grant_to(principal: Any, actions: Any = GET) -> dict[str, Any]:
    return {"Statement": [{"Effect": "Allow", "Principal": principal, "Action": actions, "Resource": "*"}]}


def test_same_account_either_side_suffices() -> None:
    request = Request(GET, SECRET)
    assert evaluate(ROLE, request, [allow(GET, SECRET)]).allowed
    assert evaluate(ROLE, request, [], grant_to({"AWS": ROLE.arn})).allowed
    assert not evaluate(OTHER_ROLE, request, [], grant_to({"AWS": ROLE.arn})).allowed


def test_a_grant_to_the_account_only_delegates_to_identity_policies() -> None:
    request = Request(GET, SECRET)
    for account in (DEV, f"arn:aws:iam::{DEV}:root"):
        assert evaluate(ROLE, request, [], grant_to({"AWS": account})).decision is Decision.IMPLICIT_DENY
        assert evaluate(ROLE, request, [allow(GET)], grant_to({"AWS": account})).allowed


def test_across_accounts_both_sides_must_grant() -> None:
    request = Request(GET, PROD_SECRET)
    # GIVEN a dev role whose own policy allows everything
    broad = [allow("*")]
    # THEN without the prod resource's consent it gets nothing
    assert evaluate(ROLE, request, broad).decision is Decision.IMPLICIT_DENY
    assert evaluate(ROLE, request, broad, grant_to({"AWS": PROD})).decision is Decision.IMPLICIT_DENY
    # AND a resource grant alone is not enough either
    assert evaluate(ROLE, request, [], grant_to({"AWS": ROLE.arn})).decision is Decision.IMPLICIT_DENY
    assert evaluate(ROLE, request, [], grant_to("*")).decision is Decision.IMPLICIT_DENY
    # WHEN both grant, it is allowed
    assert evaluate(ROLE, request, broad, grant_to({"AWS": ROLE.arn})).allowed
    assert evaluate(ROLE, request, broad, grant_to({"AWS": DEV})).allowed


def test_an_explicit_deny_in_the_resource_policy_blocks_an_identity_allow() -> None:
    policy = {"Statement": [{"Effect": "Deny", "Principal": "*", "Action": GET, "Resource": "*"}]}
    result = evaluate(ROLE, Request(GET, SECRET), [allow("*")], policy)
    assert result.decision is Decision.EXPLICIT_DENY and result.because == ("resource/0",)


def test_a_kms_key_policy_must_allow_even_in_the_same_account() -> None:
    request = Request("kms:Decrypt", KEY)
    nothing = {
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": OTHER_ROLE.arn}, "Action": "kms:*", "Resource": "*"}]
    }
    assert evaluate(ROLE, request, [allow("kms:Decrypt", KEY)], nothing, key_policy=True).decision is (
        Decision.IMPLICIT_DENY
    )
    root = grant_to({"AWS": f"arn:aws:iam::{DEV}:root"}, "kms:*")
    assert evaluate(ROLE, request, [allow("kms:Decrypt", KEY)], root, key_policy=True).allowed
    assert not evaluate(ROLE, request, [], root, key_policy=True).allowed
    assert evaluate(ROLE, request, [], grant_to({"AWS": ROLE.arn}, "kms:Decrypt"), key_policy=True).allowed


def test_service_principals_are_granted_by_resource_policies_only() -> None:
    events = Principal(service="events.amazonaws.com")
    topic = f"arn:aws:sns:us-east-1:{DEV}:keyrot-dev-oncall"
    policy = grant_to({"Service": "events.amazonaws.com"}, "sns:Publish")
    assert evaluate(events, Request("sns:Publish", topic), [], policy).allowed
    assert not evaluate(
        Principal(service="cloudwatch.amazonaws.com"), Request("sns:Publish", topic), [], policy
    ).allowed
    assert not evaluate(ROLE, Request("sns:Publish", topic), [], policy).allowed


def test_identity_allows_looks_at_identity_policies_only() -> None:
    assert identity_allows([allow(GET, SECRET)], Request(GET, SECRET)).allowed
    assert identity_allows([allow(GET, SECRET)], Request(GET, PROD_SECRET)).decision is Decision.IMPLICIT_DENY
    assert identity_allows([allow(GET), deny(GET)], Request(GET, SECRET)).decision is Decision.EXPLICIT_DENY


# --- keyrot's own deny-only secret policy ------------------------------------------------------------------------


def _secret_policy() -> dict[str, Any]:
    return policies.secret_resource_policy(
        reader_role_arns=[ROLE.arn],
        rotation_role_arn=f"arn:aws:iam::{DEV}:role/keyrot-dev-rotation",
        monitor_role_arn=f"arn:aws:iam::{DEV}:role/keyrot-dev-monitor",
        administrator_arns=[f"arn:aws:iam::{DEV}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_*"],
    )


def test_the_secret_policy_caps_even_a_broad_identity_policy() -> None:
    broad = [allow("secretsmanager:*")]
    secret_policy = _secret_policy()
    # a listed reader reads, but may not change versions
    assert evaluate(ROLE, Request(GET, SECRET), broad, secret_policy).allowed
    put = evaluate(ROLE, Request("secretsmanager:PutSecretValue", SECRET), broad, secret_policy)
    assert put.decision is Decision.EXPLICIT_DENY and put.because == ("resource/OnlyRotationWritesTheKey",)
    # anyone else is denied reading, whatever their IAM policy says
    other = evaluate(OTHER_ROLE, Request(GET, SECRET), broad, secret_policy)
    assert other.decision is Decision.EXPLICIT_DENY and other.because == ("resource/OnlyReadersGetTheKey",)
    # management actions are not capped (the deployer needs them)
    assert evaluate(OTHER_ROLE, Request("secretsmanager:DescribeSecret", SECRET), broad, secret_policy).allowed
    # the rotation role may write, an SSO admin session matches the wildcard
    rotation = Principal(arn=f"arn:aws:iam::{DEV}:role/keyrot-dev-rotation")
    admin = Principal(arn=f"arn:aws:iam::{DEV}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_42")
    assert evaluate(rotation, Request("secretsmanager:PutSecretValue", SECRET), broad, secret_policy).allowed
    assert evaluate(admin, Request("secretsmanager:UpdateSecretVersionStage", SECRET), broad, secret_policy).allowed
    # a role of another account is denied by the policy too (and would need a grant besides)
    assert evaluate(PROD_ROLE, Request(GET, SECRET), broad, secret_policy).decision is Decision.EXPLICIT_DENY


def test_the_secret_policy_leaves_aws_services_alone() -> None:
    service = Principal(service="secretsmanager.amazonaws.com")
    result = evaluate(service, Request(GET, SECRET), [], _secret_policy())
    assert result.decision is Decision.IMPLICIT_DENY  # not denied explicitly, and granted nothing either
