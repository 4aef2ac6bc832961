"""Secrets of one environment are unreachable from another environment's roles, across and within an account.

The policy documents are the ones the Pulumi program declares (tests/infra/infra_harness.py) for `dev`
(account 111111111111) and `prod` (222222222222), plus a `staging` environment deployed from dev's configuration
into dev's own account with its own reader roles, so that separation is shown not to rest on the account boundary.
Decisions come from tests/support/iam_eval.py (unit-tested in tests/unit/test_iam_eval.py).

For every role an environment's stack creates or attaches a policy to (rotation, monitor, the schedulers, the
guardrails function where declared, each reader role) and every secret of every other environment (each key's secret
and the admin-key secret), reading and every action that changes a secret (all of them, from botocore's service
model: tests/support/secretsmanager_actions.py) are denied: the role's identity policy grants nothing there, and
where the secret has a resource policy, that policy's deny applies even to a principal whose IAM policy allows
`secretsmanager:*` (on an admin-key secret keyrot creates, putting a new admin key is left uncapped; see
test_the_admin_key_secret_caps_reading).

Not modelled: SCPs, permission boundaries and policies attached to the reader roles by someone else (keyrot only
controls what it attaches; a reader role with a broad policy of its own is capped by the secrets' resource policy,
except on an admin-key secret the platform team brings, where keyrot sets no policy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.prove.faultkit import FIGURES
from tests.support.aws_actions import harness, role_policy
from tests.support.iam_eval import Decision, Policy, Principal, Request, evaluate, identity_allows
from tests.support.secretsmanager_actions import request, write_actions

pytestmark = pytest.mark.timeout(120)

DEV_ACCOUNT = "111111111111"
GET = "secretsmanager:GetSecretValue"
PUT = "secretsmanager:PutSecretValue"
SECRET_ACTIONS = (GET, *write_actions())
# What the rotation function itself does to its secrets.
ROTATION_ACTIONS = (GET, PUT, "secretsmanager:UpdateSecretVersionStage")
BROAD = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "secretsmanager:*", "Resource": "*"}]}
STAGING_KEYS = [
    {"name": "chat-backend", "readerRoleArns": [f"arn:aws:iam::{DEV_ACCOUNT}:role/chat-backend-staging"]},
    {
        "name": "batch-embeddings",
        "readerRoleArns": [f"arn:aws:iam::{DEV_ACCOUNT}:role/service/batch-embeddings-staging"],
    },
]
PAIRS = [("dev", "prod"), ("prod", "dev"), ("dev", "staging"), ("staging", "dev")]
# The statement of a managed key's secret policy that denies each action to another environment's role.
CAPPED_BY = {
    GET: "OnlyReadersGetTheKey",
    PUT: "OnlyRotationWritesTheKey",
    "secretsmanager:UpdateSecretVersionStage": "OnlyKeyrotMovesLabels",
    "secretsmanager:TagResource": "OnlyDeployersAndRotationSetKeyrotTags",
    "secretsmanager:UntagResource": "OnlyDeployersRemoveKeyrotTags",
    **{
        action: "OnlyDeployersManageTheSecret"
        for action in write_actions()
        if action.split(":")[1] not in ("PutSecretValue", "UpdateSecretVersionStage", "TagResource", "UntagResource")
    },
}


@dataclass(frozen=True)
class Role:
    label: str
    principal: Principal
    policies: tuple[Policy, ...]
    keys: tuple[str, ...] = ()  # for reader roles: the keys whose reader policy is attached


@dataclass(frozen=True)
class Environment:
    name: str
    account: str
    region: str
    roles: tuple[Role, ...]
    secrets: dict[str, str]  # key name or "admin-key" -> ARN
    secret_policies: dict[str, Policy]  # secret ARN -> resource policy
    kms_key_arn: str
    key_policy: Policy

    @property
    def readers(self) -> tuple[Role, ...]:
        return tuple(role for role in self.roles if role.label.startswith("reader "))

    def role(self, label: str) -> Role:
        return next(role for role in self.roles if role.label == label)


def environment(d: Any) -> Environment:
    env = d.outputs["environment"]
    role_arns = {r.inputs["name"]: r.outputs["arn"] for r in d.of_type("aws:iam/role:Role")}
    # Every role keyrot creates: rotation, monitor, monitor-scheduler (and guardrails, guardrails-scheduler, ...).
    purposes = sorted(name.removeprefix(f"keyrot-{env}-") for name in role_arns if name.startswith(f"keyrot-{env}-"))
    assert {"rotation", "monitor", "monitor-scheduler"} <= set(purposes)
    roles = [
        Role(purpose, Principal(arn=role_arns[f"keyrot-{env}-{purpose}"]), (role_policy(d, f"keyrot-{env}-{purpose}"),))
        for purpose in purposes
    ]
    reader_docs = {r.outputs["arn"]: json.loads(r.inputs["policy"]) for r in d.of_type("aws:iam/policy:Policy")}
    attached: dict[str, list[str]] = {}
    for attachment in d.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment"):
        attached.setdefault(attachment.inputs["role"], []).append(attachment.inputs["policyArn"])
    readers: dict[str, list[str]] = {}
    for key in json.loads(d.config["keyrot:keys"]):
        for arn in key["readerRoleArns"]:
            readers.setdefault(arn, []).append(key["name"])
    for arn, keys in sorted(readers.items()):
        documents = tuple(reader_docs[p] for p in attached[arn.rsplit("/", 1)[-1]])
        assert len(documents) == len(keys), f"{arn}: one reader policy per key it reads"
        roles.append(Role(f"reader {arn.split(':role/')[1]}", Principal(arn=arn), documents, tuple(keys)))
    (key,) = d.of_type("aws:kms/key:Key")
    return Environment(
        name=env,
        account=d.account,
        region=d.region,
        roles=tuple(roles),
        secrets={**d.outputs["keySecretArns"], "admin-key": d.outputs["adminKeySecretArn"]},
        secret_policies={
            p.inputs["secretArn"]: json.loads(p.inputs["policy"])
            for p in d.of_type("aws:secretsmanager/secretPolicy:SecretPolicy")
        },
        kms_key_arn=d.outputs["kmsKeyArn"],
        key_policy=json.loads(key.inputs["policy"]),
    )


@pytest.fixture(scope="module")
def envs() -> dict[str, Environment]:
    module = harness()
    config = module.stack_config("dev", {"keyrot:environment": "staging", "keyrot:keys": STAGING_KEYS})
    staging = module.run_program("staging", config, account=DEV_ACCOUNT)
    return {
        "dev": environment(module.deployed("dev")),
        "prod": environment(module.deployed("prod")),
        "staging": environment(staging),
    }


def decide(role: Role, env: Environment, action: str, secret: str, identity: Any = None) -> Any:
    policies = role.policies if identity is None else identity
    return evaluate(role.principal, request(action, secret), list(policies), env.secret_policies.get(secret))


# --- the environments are what the test thinks they are ---------------------------------------------------------


def test_the_three_environments(envs: dict[str, Environment]) -> None:
    assert {name: (e.account, e.region) for name, e in envs.items()} == {
        "dev": (DEV_ACCOUNT, "us-east-1"),
        "prod": ("222222222222", "us-east-1"),
        "staging": (DEV_ACCOUNT, "us-east-1"),
    }
    for env in envs.values():
        keyrots = [r.label for r in env.roles if not r.label.startswith("reader ")]
        # dev (and staging, deployed from dev's configuration) declare guardrails and rotate their admin key
        guarded = ["guardrails", "guardrails-scheduler", "admin-rotation", "admin-scheduler"]
        guarded = guarded if env.name in ("dev", "staging") else []
        assert sorted(keyrots) == sorted(["rotation", "monitor", "monitor-scheduler", *guarded])
        assert len(env.roles) > len(keyrots), "reader roles"
        assert set(env.secrets) == {*json_keys(env), "admin-key"}
    # prod's admin key is the platform team's existing secret: no resource policy from keyrot
    assert envs["prod"].secrets["admin-key"].endswith(":secret:openai/prod/admin-key-Xy12Ab")
    assert envs["staging"].secrets["chat-backend"].split(":secret:")[1].startswith("keyrot/staging/")


def json_keys(env: Environment) -> set[str]:
    return {name for name in env.secrets if name != "admin-key"}


# --- positive controls: each environment's own roles work ---------------------------------------------------------


@pytest.mark.parametrize("name", ["dev", "prod", "staging"])
def test_each_environment_can_use_its_own_secrets(envs: dict[str, Environment], name: str) -> None:
    env = envs[name]
    rotation, monitor = env.role("rotation"), env.role("monitor")
    for key in json_keys(env):
        secret = env.secrets[key]
        for action in ROTATION_ACTIONS:
            assert decide(rotation, env, action, secret).allowed, (name, key, action)
        assert decide(monitor, env, "secretsmanager:GetSecretValue", secret).allowed
        assert decide(monitor, env, "secretsmanager:UpdateSecretVersionStage", secret).allowed
        assert not decide(monitor, env, "secretsmanager:PutSecretValue", secret).allowed
    for role in (rotation, monitor):
        assert decide(role, env, "secretsmanager:GetSecretValue", env.secrets["admin-key"]).allowed
    for reader in env.readers:
        for key in reader.keys:
            assert decide(reader, env, "secretsmanager:GetSecretValue", env.secrets[key]).allowed
            # a reader never writes, even with a broad IAM policy of its own
            put = decide(reader, env, "secretsmanager:PutSecretValue", env.secrets[key], identity=[BROAD])
            assert put.decision is Decision.EXPLICIT_DENY


# --- other environments' secrets -----------------------------------------------------------------------------------


def _cross_environment_findings(source: Environment, target: Environment) -> tuple[int, list[str]]:
    checked, findings = 0, []
    for role in source.roles:
        for name, secret in target.secrets.items():
            resource_policy = target.secret_policies.get(secret)
            for action in SECRET_ACTIONS:
                checked += 1
                where = f"{source.name} {role.label} -> {target.name} {name}: {action}"
                if decide(role, target, action, secret).allowed:
                    findings.append(f"{where} is ALLOWED")
                asked = request(action, secret)
                if identity_allows(role.policies, asked, role.principal).decision is not Decision.IMPLICIT_DENY:
                    findings.append(f"{where}: the role's own policy grants it")
                if resource_policy is not None and (name != "admin-key" or action != PUT):
                    capped = decide(role, target, action, secret, identity=[BROAD])
                    if capped.decision is not Decision.EXPLICIT_DENY:
                        findings.append(f"{where}: the secret's policy does not deny a broad IAM grant")
    return checked, findings


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{s}-roles-on-{t}-secrets" for s, t in PAIRS])
def test_no_role_of_one_environment_reaches_another_environments_secrets(
    envs: dict[str, Environment], source: str, target: str
) -> None:
    checked, findings = _cross_environment_findings(envs[source], envs[target])
    assert checked == len(envs[source].roles) * len(envs[target].secrets) * len(SECRET_ACTIONS)
    assert findings == []


def test_within_one_account_the_secrets_policy_alone_keeps_environments_apart(envs: dict[str, Environment]) -> None:
    # GIVEN dev's rotation role with a policy allowing every Secrets Manager action on everything (a mistake)
    dev, staging = envs["dev"], envs["staging"]
    rotation = dev.role("rotation")
    assert rotation.principal.account == staging.account  # same account: no cross-account rule helps
    for key in json_keys(staging):
        secret = staging.secrets[key]
        for action in SECRET_ACTIONS:
            result = decide(rotation, staging, action, secret, identity=[BROAD])
            # THEN staging's secret policy still denies it, by name of the statement that caps it
            assert result.decision is Decision.EXPLICIT_DENY, (key, action)
            assert result.because == (f"resource/{CAPPED_BY[action]}",), action


def test_the_admin_key_secret_caps_reading(envs: dict[str, Environment]) -> None:
    # GIVEN staging's admin-key secret, which keyrot created, and dev's rotation role in the same account
    dev, staging, prod = envs["dev"], envs["staging"], envs["prod"]
    admin = staging.secrets["admin-key"]
    rotation = dev.role("rotation")
    assert admin in staging.secret_policies
    # WHEN the role's own policy grants nothing there THEN it cannot read; and WHEN a mistake grants it
    # `secretsmanager:*` THEN the secret's policy still denies the read, by name
    assert not decide(rotation, staging, "secretsmanager:GetSecretValue", admin).allowed
    capped = decide(rotation, staging, "secretsmanager:GetSecretValue", admin, identity=[BROAD])
    assert capped.decision is Decision.EXPLICIT_DENY and capped.because == ("resource/OnlyKeyrotReadsTheAdminKey",)
    # Putting a new admin key is not capped (whoever the platform team's IAM allows runs `keyrot admin-key set`):
    # a broad grant reaches it, which docs/security.md lists.
    assert decide(rotation, staging, "secretsmanager:PutSecretValue", admin, identity=[BROAD]).allowed
    # Staging's own functions still read it.
    assert decide(staging.role("rotation"), staging, "secretsmanager:GetSecretValue", admin).allowed
    # prod brings its own admin-key secret: keyrot sets no policy on a secret it does not own.
    assert prod.secrets["admin-key"] not in prod.secret_policies


# --- readers of one key, and the KMS keys ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dev", "prod", "staging"])
def test_a_reader_cannot_read_another_keys_secret(envs: dict[str, Environment], name: str) -> None:
    env = envs[name]
    checked = 0
    for reader in env.readers:
        for key in json_keys(env) - set(reader.keys):
            secret = env.secrets[key]
            checked += 1
            assert decide(reader, env, "secretsmanager:GetSecretValue", secret).decision is Decision.EXPLICIT_DENY
            assert identity_allows(reader.policies, Request("secretsmanager:GetSecretValue", secret)).decision is (
                Decision.IMPLICIT_DENY
            )
            assert not decide(reader, env, "secretsmanager:GetSecretValue", env.secrets["admin-key"]).allowed
        if env.secrets["admin-key"] in env.secret_policies:
            # even a reader role that someone gave `secretsmanager:*` cannot read the admin key keyrot created
            broad = decide(reader, env, "secretsmanager:GetSecretValue", env.secrets["admin-key"], identity=[BROAD])
            assert broad.decision is Decision.EXPLICIT_DENY
    assert checked >= 2


def _kms(role: Role, env: Environment, via_secrets_manager: bool) -> Any:
    context = {"kms:ViaService": f"secretsmanager.{env.region}.amazonaws.com"} if via_secrets_manager else {}
    request = Request("kms:Decrypt", env.kms_key_arn, context)
    return evaluate(role.principal, request, list(role.policies), env.key_policy, key_policy=True)


@pytest.mark.parametrize(("source", "target"), [("dev", "prod"), ("prod", "dev")])
def test_a_rotation_role_cannot_use_the_other_accounts_kms_key(
    envs: dict[str, Environment], source: str, target: str
) -> None:
    rotation = envs[source].role("rotation")
    assert _kms(rotation, envs[source], via_secrets_manager=True).allowed  # its own key, through Secrets Manager
    assert not _kms(rotation, envs[source], via_secrets_manager=False).allowed  # never directly
    for role in envs[source].roles:
        for via in (True, False):
            assert not _kms(role, envs[target], via_secrets_manager=via).allowed, (role.label, via)


def test_within_one_account_the_kms_key_is_not_a_boundary(envs: dict[str, Environment]) -> None:
    # The key policy lets any principal of the account decrypt through Secrets Manager (as the AWS-managed
    # aws/secretsmanager key does): in one account, the secrets' policies and IAM keep environments apart, not KMS.
    dev_rotation, staging = envs["dev"].role("rotation"), envs["staging"]
    assert _kms(dev_rotation, staging, via_secrets_manager=True).allowed
    assert not _kms(dev_rotation, staging, via_secrets_manager=False).allowed


def test_isolation_summary(envs: dict[str, Environment]) -> None:
    total = 0
    for source, target in PAIRS:
        checked, findings = _cross_environment_findings(envs[source], envs[target])
        assert findings == []
        total += checked
    line = (
        f"environment isolation: {total} requests by one environment's roles to another's secrets "
        "(dev/prod across accounts, dev/staging in one account), 0 allowed"
    )
    print(f"\n{line}")
    if line not in FIGURES:
        FIGURES.append(line)


def test_tamper_summary(envs: dict[str, Environment]) -> None:
    # GIVEN every role of every environment, each with `secretsmanager:*` in its IAM policy (the in-account attacker)
    roles = [(env.name, role) for env in envs.values() for role in env.roles]
    actions = write_actions()
    denied = 0
    for env in envs.values():
        for key in json_keys(env):
            secret = env.secrets[key]
            for owner, role in roles:
                entitled = owner == env.name and role.label in ("rotation", "monitor")
                for action in actions:
                    if entitled:
                        continue  # its own functions: tests/infra/test_secret_policies.py says which may do what
                    result = decide(role, env, action, secret, identity=[BROAD])
                    # THEN no write action on a managed key's secret is allowed to any of them
                    assert result.decision is Decision.EXPLICIT_DENY, (owner, role.label, env.name, key, action)
                    denied += 1
    principals = len(roles)
    line = f"tamper: {len(actions)} write actions x {principals} principals, 0 allowed ({denied} requests)"
    print(f"\n{line}")
    if line not in FIGURES:
        FIGURES.append(line)
