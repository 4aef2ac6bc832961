"""What the deployer may do: generated from the resource types the program declares, and kept in docs/deploy.md.

Shaped like the platform team writing the CI role's policy from the docs: it must cover every resource any stack
declares (every variant), reach only this environment's names, and the docs must show exactly what is generated.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from infra_harness import REPO_ROOT, Deployment, deployed, run_component, stack_config

from keyrot.pulumi.config import parse_config
from keyrot.pulumi.deployer import RESOURCE_ACTIONS, WILDCARD_SCOPES, deployer_policy, render_markdown
from keyrot.pulumi.environment import args_from_config
from tests.support.iam_eval import Principal, Request, evaluate

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.filterwarnings("ignore:aws.ec2/encryptioncontrol:DeprecationWarning"),
]

DEPLOY_DOC = REPO_ROOT / "docs" / "deploy.md"
BEGIN, END = "<!-- deployer-policy:begin -->", "<!-- deployer-policy:end -->"
DEPLOYER = Principal(arn="arn:aws:iam::111111111111:role/platform-deployer")


@pytest.fixture(scope="module")
def variants() -> list[Deployment]:
    """Every shape of stack: the committed ones, and a component with a VPC, an existing topic and no dashboard."""
    raw = {k.split(":", 1)[1]: v for k, v in stack_config("dev").items() if k.startswith("keyrot:")}
    args: dict[str, Any] = dict(args_from_config(parse_config(raw, stack="dev")))
    args.update(
        vpc_subnet_ids=["subnet-0123456789abcdef0"],
        vpc_security_group_ids=["sg-0123456789abcdef0"],
        oncall_topic_arn="arn:aws:sns:us-east-1:111111111111:platform-oncall",
        oncall_emails=[],
        dashboard=False,
    )
    return [deployed("dev"), deployed("prod"), run_component(args)]


def declared_types(deployments: list[Deployment]) -> set[str]:
    return {r.type for d in deployments for r in d.resources if r.custom}


def test_every_resource_type_any_stack_declares_has_its_permissions(variants: list[Deployment]) -> None:
    # GIVEN the resource types of every variant THEN each has the provider's calls listed, and nothing stale is
    types = declared_types(variants)
    assert types == set(RESOURCE_ACTIONS), types ^ set(RESOURCE_ACTIONS)


def test_docs_show_exactly_the_generated_policy() -> None:
    text = DEPLOY_DOC.read_text()
    assert BEGIN in text and END in text, "docs/deploy.md lost its generated deployer policy"
    shown = text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"
    assert shown == render_markdown(RESOURCE_ACTIONS), "regenerate: python -m keyrot.pulumi.deployer"


def test_only_the_justified_statements_reach_every_resource() -> None:
    policy = deployer_policy(
        RESOURCE_ACTIONS, environment="dev", account_id="111111111111", region="us-east-1", in_vpc=True
    )
    wildcards = {s["Sid"] for s in policy["Statement"] if "*" in s["Resource"]}
    assert wildcards == set(WILDCARD_SCOPES)


def _create_requests(d: Deployment) -> list[tuple[str, Request]]:
    """For each resource the stack declares, the call that creates it, on its real ARN (with its tags)."""
    env = d.stack
    tags = {"aws:ResourceTag/keyrot:environment": env, "aws:RequestTag/keyrot:environment": env}
    by_type = {
        "aws:secretsmanager/secret:Secret": "secretsmanager:CreateSecret",
        "aws:lambda/function:Function": "lambda:CreateFunction",
        "aws:iam/role:Role": "iam:CreateRole",
        "aws:iam/policy:Policy": "iam:CreatePolicy",
        "aws:cloudwatch/logGroup:LogGroup": "logs:CreateLogGroup",
        "aws:sns/topic:Topic": "sns:CreateTopic",
        "aws:cloudwatch/eventRule:EventRule": "events:PutRule",
        "aws:scheduler/schedule:Schedule": "scheduler:CreateSchedule",
        "aws:cloudwatch/metricAlarm:MetricAlarm": "cloudwatch:PutMetricAlarm",
        "aws:kms/alias:Alias": "kms:CreateAlias",
        "aws:kms/key:Key": "kms:PutKeyPolicy",
    }
    requests = []
    for resource in d.resources:
        action = by_type.get(resource.type)
        if action:
            requests.append((resource.name, Request(action, resource.outputs["arn"], tags)))
    for parameter in d.of_type("aws:ssm/parameter:Parameter"):  # the monitor's state, the declared guardrails
        arn = f"arn:aws:ssm:{d.region}:{d.account}:parameter{parameter.inputs['name']}"
        requests.append((parameter.name, Request("ssm:PutParameter", arn)))
    for invocation in d.of_type("aws:lambda/invocation:Invocation"):  # the deploy-time apply of the guardrails
        arn = f"arn:aws:lambda:{d.region}:{d.account}:function:{invocation.inputs['functionName']}"
        requests.append((invocation.name, Request("lambda:InvokeFunction", arn)))
    (dashboard,) = d.of_type("aws:cloudwatch/dashboard:Dashboard")
    requests.append((dashboard.name, Request("cloudwatch:PutDashboard", dashboard.outputs["arn"])))
    for attachment in d.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        role_arn = f"arn:aws:iam::{d.account}:role/{attachment.inputs['role']}"
        requests.append(
            (
                attachment.name,
                Request("iam:AttachRolePolicy", role_arn, {"iam:PolicyARN": attachment.inputs["policyArn"]}),
            )
        )
    return requests


def test_the_policy_lets_the_deployer_create_everything_the_stack_declares() -> None:
    # GIVEN the dev stack and the policy generated for it
    d = deployed("dev")
    policy = deployer_policy(declared_types([d]), environment="dev", account_id=d.account, region=d.region)
    # THEN every resource's creating call, on its real name, is allowed
    for name, request in _create_requests(d):
        assert evaluate(DEPLOYER, request, [policy]).allowed, (name, request.action, request.resource)


def test_the_policy_reaches_no_other_environment_and_no_foreign_policy() -> None:
    # GIVEN the policy for dev, and prod's resources in the same account and region (a shared account)
    d = deployed("dev")
    policy = deployer_policy(declared_types([d]), environment="dev", account_id=d.account, region=d.region)
    for name, request in _create_requests(d):
        foreign = Request(
            request.action,
            request.resource.replace("keyrot-dev", "keyrot-prod").replace("keyrot/dev/", "keyrot/prod/"),
            {
                k: "prod" if k.startswith("aws:") else v.replace("keyrot-dev", "keyrot-prod")
                for k, v in request.context.items()
            },
        )
        # THEN none of them may be created or changed with it
        assert not evaluate(DEPLOYER, foreign, [policy]).allowed, (name, foreign.action, foreign.resource)
    # AND it may not attach an administrator policy to an application's role
    admin = Request(
        "iam:AttachRolePolicy",
        f"arn:aws:iam::{d.account}:role/chat-backend-dev",
        {"iam:PolicyARN": "arn:aws:iam::aws:policy/AdministratorAccess"},
    )
    assert not evaluate(DEPLOYER, admin, [policy]).allowed


# parliament's findings on the deployer policy that are inherent to deploying keyrot, with the reason.
ACCEPTED = {
    "PERMISSIONS_MANAGEMENT_ACTIONS": "the deployer creates keyrot's roles and policies (only keyrot-<env>-* names)",
    "PRIVILEGE_ESCALATION": "the deployer passes and writes keyrot's roles (only keyrot-<env>-* names) and attaches "
    "only keyrot's reader policies",
}
# Alias calls need a grant on the alias and one on the key; they are two statements because the key's is conditioned
# on its environment tag, which an alias does not carry. parliament wants both formats in each statement.
ALIAS_ACTIONS = {"kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"}


def test_parliament_finds_nothing_serious_in_the_deployer_policy() -> None:
    from test_iam import ALWAYS_SERIOUS, lint

    policy = deployer_policy(RESOURCE_ACTIONS, environment="dev", account_id="111111111111", region="us-east-1")
    serious = []
    for finding in lint(policy):
        if finding.severity not in ("CRITICAL", "HIGH", "MEDIUM") and finding.issue not in ALWAYS_SERIOUS:
            continue
        if finding.issue in ACCEPTED:
            continue
        if finding.issue == "RESOURCE_MISMATCH" and {d["action"] for d in finding.detail} <= ALIAS_ACTIONS:
            continue
        serious.append((finding.issue, finding.detail))
    assert serious == [], json.dumps([str(s) for s in serious])
