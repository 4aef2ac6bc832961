"""KeyrotEnvironment used from a program of one's own: its arguments, options and outputs, under the mocks.

Shaped like a platform team adding keyrot to an existing program: roles and keys it already creates passed as
Outputs, its own KMS key and on-call topic, a VPC, a production stack someone might `pulumi destroy` by mistake.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from infra_harness import STACK_ACCOUNTS, Deployment, Recorded, deployed, run_component, stack_config

from keyrot import constants as c
from keyrot.pulumi.config import ConfigError, parse_config
from keyrot.pulumi.environment import args_from_config, settings_from_args, validate_args
from lab.pulumi_program import DEPLOYER_ROLE

pytestmark = [
    pytest.mark.timeout(180),
    # pulumi_aws.ec2 warns on import about a resource type keyrot does not use.
    pytest.mark.filterwarnings("ignore:aws.ec2/encryptioncontrol:DeprecationWarning"),
]

DEV = STACK_ACCOUNTS["dev"]
FUNCTION = "aws:lambda/function:Function"
SECRET = "aws:secretsmanager/secret:Secret"


def stack_args(stack: str = "dev", **changes: Any) -> dict[str, Any]:
    """The arguments the reference program builds from a committed stack file, with some changed."""
    raw = {k.split(":", 1)[1]: v for k, v in stack_config(stack).items() if k.startswith("keyrot:")}
    args: dict[str, Any] = dict(args_from_config(parse_config(raw, stack=stack)))
    args.update(changes)
    return args


def function(d: Deployment, purpose: str) -> Recorded:
    (found,) = d.find(FUNCTION, lambda r: r.inputs["name"] == f"keyrot-dev-{purpose}")
    return found


def role_policy(d: Deployment, purpose: str) -> dict[str, Any]:
    (found,) = d.find("aws:iam/rolePolicy:RolePolicy", lambda r: r.inputs["name"] == f"keyrot-dev-{purpose}")
    return json.loads(found.inputs["policy"])


# --- one validator, one set of messages --------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_args_the_stack_program_builds_give_its_configuration_back(stack: str) -> None:
    # GIVEN a committed stack's configuration, read and turned into KeyrotEnvironmentArgs
    raw = {k.split(":", 1)[1]: v for k, v in stack_config(stack).items() if k.startswith("keyrot:")}
    config = parse_config(raw, stack=stack)
    # THEN validating the args gives exactly that configuration (the component sees what the stack says)
    assert validate_args(args_from_config(config)) == config


SETTING_VALUES = {
    "grace_period_hours": st.one_of(st.integers(-3, 200), st.sampled_from([6.5, True, "six"])),
    "monitor_interval_minutes": st.one_of(st.integers(-1, 500), st.just(15.0)),
    "daily_spend_limit_usd": st.one_of(st.floats(allow_nan=True), st.integers(-5, 5), st.just("lots")),
    "dashboard": st.one_of(st.booleans(), st.sampled_from(["sometimes", 1, 0])),
    "usage_kinds": st.lists(st.sampled_from(["completions", "images", "videos"]), max_size=3),
    "administrator_arns": st.lists(
        st.sampled_from(
            [
                f"arn:aws:iam::{DEV}:role/*",
                f"arn:aws:iam::{DEV}:role/breakglass/*",
                f"arn:aws:iam::{DEV}:role/a*b",
                f"arn:aws:iam::{DEV}:user/ops",
                "admin",
            ]
        ),
        max_size=2,
    ),
    "shared_project_environments": st.lists(st.sampled_from(["prod", "dev", "Prod", "staging"]), max_size=3),
    "vpc_subnet_ids": st.lists(st.sampled_from(["subnet-0123456789abcdef0", "subnet-x"]), max_size=2),
}


def _as_stack_text(value: Any) -> str:
    """A native value as `pulumi config` hands it to a program."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_args_and_stack_configuration_are_judged_by_the_same_rules_and_words(data: st.DataObject) -> None:
    # GIVEN a setting changed to a native value in the args, and to its text in the stack configuration
    name = data.draw(st.sampled_from(sorted(SETTING_VALUES)), label="setting")
    value = data.draw(SETTING_VALUES[name], label="value")
    args = stack_args(**{name: value})
    raw = {key: _as_stack_text(v) for key, v in settings_from_args(args).items()}
    # WHEN both are validated
    outcomes = []
    for validate in (lambda: validate_args(args), lambda: parse_config(raw, stack="dev")):
        try:
            outcomes.append(validate())
        except ConfigError as exc:
            outcomes.append(exc.problems)
    # THEN both accept it as the same configuration, or both refuse it with the same problems, word for word
    assert outcomes[0] == outcomes[1]


def test_a_misspelt_argument_is_named_like_a_misspelt_setting() -> None:
    # GIVEN a Python program that misspells an argument (a TypedDict is a dict at run time)
    with pytest.raises(ConfigError) as caught:
        validate_args(stack_args(grace_period_hour=6))
    # THEN it is refused, named as the stack configuration names the same typo
    with pytest.raises(ConfigError) as in_stack:
        raw = {k.split(":", 1)[1]: v for k, v in stack_config("dev").items() if k.startswith("keyrot:")}
        parse_config({**raw, "gracePeriodHour": "6"}, stack="dev")
    assert caught.value.problems == in_stack.value.problems
    assert caught.value.problems[0].startswith("keyrot:gracePeriodHour: is not a keyrot setting")


def test_invalid_args_declare_nothing() -> None:
    # GIVEN args with a schedule AWS refuses
    with pytest.raises(ConfigError, match="keyrot:rotationSchedule: cron minutes must be 0"):
        run_component(stack_args(rotation_schedule="cron(5 0 * * ? *)"))


# --- outputs -----------------------------------------------------------------------------------------------------


def test_outputs_are_typed_attributes_with_names_and_arns_only() -> None:
    # GIVEN the environment declared from dev's configuration
    d = run_component(stack_args())
    (environment,) = d.of_type("keyrot:index:KeyrotEnvironment")
    registered = d.component_outputs[environment.urn]
    # THEN it registers every output the reference program exports, with the same values (but for the ids the mocks
    # derive from logical names, which the reference program's aliases keep at their 0.1 names, and the archive's
    # digest, which follows the code of the moment)
    exported = deployed("dev").outputs
    assert set(registered) == set(exported)
    varying = {"kmsKeyArn", "lambdaCodeSha256"}
    assert {k: v for k, v in registered.items() if k not in varying} == {
        k: v for k, v in exported.items() if k not in varying
    }
    assert re.fullmatch(r"[0-9a-f]{64}", registered["lambdaCodeSha256"])
    assert set(registered["keySecretArns"]) == {"chat-backend", "batch-embeddings"}
    assert not [v for v in json.dumps(registered).split('"') if v.startswith("sk-")]


# --- reader roles and other resources of the program ---------------------------------------------------------------


def _program_with_roles() -> dict[str, Any]:
    app = aws.iam.Role("app-role", name="chat-backend-dev", assume_role_policy="{}")
    ops = aws.iam.Role("ops-role", name="ops-tools", path="/service/", assume_role_policy="{}")
    return stack_args(
        keys=[
            {"name": "chat-backend", "reader_role_arns": [app.arn]},
            {"name": "ops-tools", "reader_role_arns": [f"arn:aws:iam::{DEV}:role/legacy-ops", ops.arn]},
        ]
    )


def test_reader_roles_may_be_outputs_of_the_program() -> None:
    # GIVEN reader roles the program itself creates, passed as Outputs next to a plain ARN
    d = run_component(_program_with_roles)
    attachments = {a.name: a for a in d.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")}
    # THEN each gets the key's reader policy, by role name (path dropped), named by position (an Output has no name
    # yet) or by role for a plain ARN
    assert {name: a.inputs["role"] for name, a in attachments.items()} == {
        "keyrot-secrets-chat-backend-reader-#0": "chat-backend-dev",
        "keyrot-secrets-ops-tools-reader-legacy-ops": "legacy-ops",
        "keyrot-secrets-ops-tools-reader-#1": "ops-tools",
    }
    # AND the secret's resource policy lets exactly those roles read
    arn = d.outputs["keySecretArns"]["ops-tools"]
    (policy,) = d.find("aws:secretsmanager/secretPolicy:SecretPolicy", lambda r: r.inputs["secretArn"] == arn)
    readers = json.loads(policy.inputs["policy"])["Statement"][0]["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    assert f"arn:aws:iam::{DEV}:role/service/ops-tools" in readers
    assert f"arn:aws:iam::{DEV}:role/legacy-ops" in readers


def test_a_reader_output_from_another_account_is_refused_when_it_resolves() -> None:
    # GIVEN a reader role ARN that only resolves during the deployment, and lives in another account
    def args() -> dict[str, Any]:
        foreign = pulumi.Output.from_input("arn:aws:iam::999999999999:role/chat")
        return stack_args(keys=[{"name": "chat", "reader_role_arns": [foreign]}])

    # THEN the deployment fails, naming it, as a plain ARN from another account would at preview
    with pytest.raises(ConfigError, match="reader role arn:aws:iam::999999999999:role/chat is in account 999999999999"):
        run_component(args)


def test_an_existing_kms_key_of_the_program_replaces_keyrots_own() -> None:
    # GIVEN the platform team's KMS key, created by the same program
    def args() -> dict[str, Any]:
        key = aws.kms.Key("platform-key", description="platform")
        return stack_args(existing_kms_key_arn=key.arn)

    d = run_component(args)
    (key,) = d.of_type("aws:kms/key:Key")
    # THEN keyrot creates no key or alias of its own, and everything it encrypts uses that key
    assert key.name == "platform-key" and not d.of_type("aws:kms/alias:Alias")
    assert not d.of_type("keyrot:index:Encryption")
    for resource in (
        *d.of_type(SECRET),
        *d.of_type("aws:cloudwatch/logGroup:LogGroup"),
        *d.of_type("aws:sns/topic:Topic"),
    ):
        assert key.outputs["arn"] in (resource.inputs.get("kmsKeyId"), resource.inputs.get("kmsMasterKeyId"))
    assert d.outputs["kmsKeyArn"] == key.outputs["arn"]


def test_an_existing_topic_output_is_notified_and_not_managed() -> None:
    # GIVEN the on-call topic the program already has
    def args() -> dict[str, Any]:
        topic = aws.sns.Topic("oncall", name="platform-oncall")
        return stack_args(oncall_topic_arn=topic.arn, oncall_emails=[])

    d = run_component(args)
    (topic,) = d.of_type("aws:sns/topic:Topic")
    # THEN keyrot creates no topic, policy or subscription, and its alarms notify that one
    assert topic.name == "oncall" and not d.of_type("aws:sns/topicPolicy:TopicPolicy")
    assert all(
        a.inputs["alarmActions"] == [topic.outputs["arn"]] for a in d.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    )


# --- protection of what cannot be recreated ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "protected"),
    [
        ({}, False),
        ({"production": True}, True),
        ({"production": True, "protect": False}, False),
        ({"protect": True}, True),
    ],
)
def test_the_key_and_the_secrets_are_protected_in_production(changes: dict[str, Any], protected: bool) -> None:
    # GIVEN a stack marked production (or protect set explicitly)
    d = run_component(stack_args(**changes))
    # THEN the KMS key and every secret refuse deletion and stay in AWS if dropped from the program
    for resource in (*d.of_type("aws:kms/key:Key"), *d.of_type(SECRET)):
        assert (resource.protect, resource.retain_on_delete) == (protected, protected), resource.name
    # AND nothing else is protected (a function or an alarm may be replaced freely)
    others = [r for r in d.resources if r.custom and r.type not in ("aws:kms/key:Key", SECRET)]
    assert not [r.name for r in others if r.protect or r.retain_on_delete]


def test_the_committed_prod_stack_is_protected() -> None:
    prod = deployed("prod")
    assert all(r.protect and r.retain_on_delete for r in (*prod.of_type("aws:kms/key:Key"), *prod.of_type(SECRET)))


# --- VPC -------------------------------------------------------------------------------------------------------------


def test_functions_in_a_vpc_get_their_subnets_groups_and_interface_permissions() -> None:
    # GIVEN subnets and a security group the program creates
    def args() -> dict[str, Any]:
        subnet = aws.ec2.Subnet("private-a", vpc_id="vpc-0123456789abcdef0", cidr_block="10.0.1.0/24")
        group = aws.ec2.SecurityGroup("keyrot-egress", vpc_id="vpc-0123456789abcdef0")
        return stack_args(vpc_subnet_ids=[subnet.id], vpc_security_group_ids=[group.id])

    d = run_component(args)
    for purpose in ("rotation", "monitor"):
        # THEN both functions run in them
        assert function(d, purpose).inputs["vpcConfig"] == {
            "subnetIds": ["private-a_id"],
            "securityGroupIds": ["keyrot-egress_id"],
        }
        # AND their roles may manage their network interfaces there, and describe (no resource-level permissions)
        statements = {s["Sid"]: s for s in role_policy(d, purpose)["Statement"]}
        assert statements["FindVpcNetworkInterfaces"]["Resource"] == "*"
        assert statements["ManageVpcNetworkInterfaces"]["Resource"] == sorted(
            [
                f"arn:aws:ec2:us-east-1:{DEV}:network-interface/*",
                f"arn:aws:ec2:us-east-1:{DEV}:security-group/keyrot-egress_id",
                f"arn:aws:ec2:us-east-1:{DEV}:subnet/private-a_id",
            ]
        )


def test_functions_outside_a_vpc_get_no_network_permissions() -> None:
    for purpose in ("rotation", "monitor"):
        assert "vpcConfig" not in function(deployed("dev"), purpose).inputs
        assert not any("Vpc" in s["Sid"] for s in role_policy(deployed("dev"), purpose)["Statement"])


# --- the monitor runs alone, the environment fits Lambda --------------------------------------------------------------


def test_the_monitor_never_runs_twice_at_once() -> None:
    # GIVEN the deployed monitor THEN its reserved concurrency is 1 (a schedule retry cannot overlap a run)
    assert function(deployed("dev"), "monitor").inputs["reservedConcurrentExecutions"] == 1
    assert "reservedConcurrentExecutions" not in function(deployed("dev"), "rotation").inputs


def test_too_many_keys_for_lambdas_environment_are_refused_at_preview() -> None:
    # GIVEN more keys than KEYROT_MANAGED_SECRETS can name within Lambda's 4 KB of variables
    keys = [{"name": f"application-key-number-{i:02d}"} for i in range(40)]
    # THEN the component refuses before declaring anything, naming `keys` and the limit
    with pytest.raises(ConfigError, match=r"keyrot:keys: KEYROT_MANAGED_SECRETS .* would take \d+ characters"):
        run_component(stack_args(keys=keys))


def test_the_largest_environment_that_fits_is_accepted() -> None:
    # GIVEN as many keys as fit (names of the longest allowed length would fit fewer)
    d = run_component(stack_args(keys=[{"name": f"k{i:02d}"} for i in range(20)]))
    variables = function(d, "monitor").inputs["environment"]["variables"]
    assert sum(len(k) + len(v) for k, v in variables.items()) <= 4096
    assert len(json.loads(variables[c.ENV_MANAGED_SECRETS])) == 20


# --- who deploys ----------------------------------------------------------------------------------------------------


def _management_principals(d: Deployment) -> list[str]:
    arn = d.outputs["keySecretArns"]["chat-backend"]
    (policy,) = d.find("aws:secretsmanager/secretPolicy:SecretPolicy", lambda r: r.inputs["secretArn"] == arn)
    statements = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    return statements["OnlyDeployersManageTheSecret"]["Condition"]["ArnNotLike"]["aws:PrincipalArn"]


def test_without_deployer_arns_the_identity_running_the_update_is_the_deployer() -> None:
    # GIVEN dev, which names no deployers THEN the role behind the deploying session may manage the secrets
    assert f"arn:aws:iam::{DEV}:role/{DEPLOYER_ROLE}" in _management_principals(deployed("dev"))


def test_a_deployer_outside_the_listed_ones_is_refused_before_it_locks_itself_out() -> None:
    # GIVEN deployerArns naming a CI role, and someone else running `pulumi up`
    ci = f"arn:aws:iam::{DEV}:role/ci-deployer"
    # THEN the update is refused, saying who runs it and why
    with pytest.raises(ConfigError, match=rf"keyrot:deployerArns: the identity running this update .*{DEPLOYER_ROLE}"):
        run_component(stack_args(deployer_arns=[ci]))
    # AND with that identity listed, the listed deployers (not the session) manage the secrets
    d = run_component(stack_args(deployer_arns=[ci, f"arn:aws:iam::{DEV}:role/{DEPLOYER_ROLE}"]))
    assert ci in _management_principals(d)


def test_without_the_pulumi_extra_the_component_says_which_extra_to_install() -> None:
    # GIVEN an install of keyrot without the Pulumi SDK (an application reading its key: `pip install keyrot`)
    import subprocess
    import sys

    probe = (
        "import sys; sys.modules['pulumi'] = None; sys.modules['pulumi_aws'] = None\n"
        "import keyrot.pulumi, keyrot.pulumi.archive\n"  # the package and its stdlib-only helpers still import
        "try:\n    from keyrot.pulumi import KeyrotEnvironment\n"
        "except ModuleNotFoundError as exc:\n    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)  # noqa: S603
    # THEN asking for the component names the extra to install
    assert "pip install 'keyrot[pulumi]'" in done.stdout
