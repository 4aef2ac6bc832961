"""Run the real Pulumi program (infra/__main__.py, or any program) in-process under Pulumi's mocks, no Pulumi CLI.

Shared by the infra tests (synthesised ids and ARNs) and the local rehearsal (which creates every declared resource
in the AWS emulator and answers with the emulator's real ids). Stack configuration comes from Pulumi.<stack>.yaml
merged with Pulumi.yaml's declared defaults, the way the CLI merges them. Every registered resource is recorded
(type, name, parent, inputs, outputs, dependencies, aliases, protect and retain-on-delete) with the stack outputs.

Like the engine, the synthesising mocks keep an aliased resource's identity: ids and ARNs derive from the name the
resource had under its (first) alias, as a real update would keep the state an alias points at.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import runpy
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
MAIN = REPO_ROOT / "infra" / "__main__.py"
PROJECT = "keyrot"
ROOT_STACK_TYPE = "pulumi:pulumi:Stack"
# The role the synthesising mocks run `pulumi up` as (Pulumi.prod.yaml lists it in keyrot:deployerArns).
DEPLOYER_ROLE = "platform-deployer"


@dataclass
class Recorded:
    type: str
    name: str
    urn: str
    parent: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    dependencies: tuple[str, ...]
    custom: bool
    # The URNs this resource was known by before (its aliases), and its protect / retain-on-delete options.
    aliases: tuple[str, ...] = ()
    protect: bool = False
    retain_on_delete: bool = False


@dataclass
class Deployment:
    stack: str
    account: str
    region: str
    config: dict[str, str]
    resources: list[Recorded] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    # URN -> what each component passed to register_outputs.
    component_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # sys.path while the program was declaring resources (runpy restores it afterwards).
    sys_path_during_run: list[str] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == type_]

    def named(self, name: str) -> Recorded:
        matches = [r for r in self.resources if r.name == name]
        assert len(matches) == 1, f"expected one resource named {name!r}, found {len(matches)}"
        return matches[0]

    def by_urn(self, urn: str) -> Recorded:
        return next(r for r in self.resources if r.urn == urn)

    def find(self, type_: str, predicate: Callable[[Recorded], bool]) -> list[Recorded]:
        return [r for r in self.of_type(type_) if predicate(r)]


def unsecret(value: Any) -> Any:
    """The plain value of an input the provider marks secret (the mocks see it wrapped in Pulumi's secret envelope).

    Such values are encrypted in a real stack's state; keyrot declares only non-sensitive ones (the monitor state
    parameter's placeholder is one, because SSM parameter values are secret in the provider's schema).
    """
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return value["value"]
    return value


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:7]


def issuer_arn(caller_arn: str) -> str:
    """What iam.getSessionContext answers for a caller: an assumed role's role ARN (the mocks' roles have no path),
    any other principal's own ARN."""
    match = re.match(r"^arn:(?P<partition>[^:]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/", caller_arn)
    if not match:
        return caller_arn
    return f"arn:{match['partition']}:iam::{match['account']}:role/{match['role']}"


def data_sources(account: str, region: str, caller_arn: str, user_id: str) -> dict[str, dict[str, Any]]:
    """What the program's data sources (caller identity, session context, region, partition) answer for `account`
    in `region`."""
    issuer = issuer_arn(caller_arn)
    return {
        "aws:iam/getSessionContext:getSessionContext": {
            "arn": caller_arn,
            "issuerArn": issuer,
            "issuerId": user_id.split(":", 1)[0],
            "issuerName": issuer.rsplit("/", 1)[1],
            "sessionName": caller_arn.rsplit("/", 1)[1] if issuer != caller_arn else "",
            "id": caller_arn,
        },
        "aws:index/getCallerIdentity:getCallerIdentity": {
            "accountId": account,
            "arn": caller_arn,
            "userId": user_id,
            "id": account,
        },
        "aws:index/getRegion:getRegion": {
            "region": region,
            "name": region,
            "id": region,
            "endpoint": "",
            "description": "",
        },
        "aws:index/getPartition:getPartition": {
            "partition": "aws",
            "dnsSuffix": "amazonaws.com",
            "id": "aws",
            "reverseDnsPrefix": "com.amazonaws",
        },
    }


def answer_data_source(
    args: pulumi_mocks.MockCallArgs, answers: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    if args.token not in answers:
        raise NotImplementedError(f"unmocked data source {args.token}")
    return answers[args.token], []


class RecordingMocks(pulumi.runtime.Mocks):
    """Ids are `<name>_id`; ARNs are synthesised per type in the stack's account and region."""

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region
        # (type, name) -> the name the resource had under its alias (set by RecordingMonitor before registration).
        self.identities: dict[tuple[str, str], str] = {}

    def identity(self, args: pulumi_mocks.MockResourceArgs) -> str:
        return self.identities.get((args.typ, args.name), args.name)

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        caller = f"arn:aws:sts::{self.account}:assumed-role/{DEPLOYER_ROLE}/session"
        return answer_data_source(args, data_sources(self.account, self.region, caller, "AROAEXAMPLE:session"))

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        logical = self.identity(args)
        name = inputs.get("name") or f"{logical}-{_short_hash(logical)}"
        acct, region = self.account, self.region
        suffix = _short_hash(name)[:6]  # Secrets Manager appends 6 random characters to a secret's ARN
        arn_by_type = {
            "aws:kms/key:Key": f"arn:aws:kms:{region}:{acct}:key/{_short_hash(logical)}-key",
            "aws:kms/alias:Alias": f"arn:aws:kms:{region}:{acct}:{name}",
            "aws:secretsmanager/secret:Secret": f"arn:aws:secretsmanager:{region}:{acct}:secret:{name}-{suffix}",
            "aws:iam/role:Role": f"arn:aws:iam::{acct}:role{inputs.get('path') or '/'}{name}",
            "aws:iam/policy:Policy": f"arn:aws:iam::{acct}:policy/{name}",
            "aws:lambda/function:Function": f"arn:aws:lambda:{region}:{acct}:function:{name}",
            "aws:cloudwatch/logGroup:LogGroup": f"arn:aws:logs:{region}:{acct}:log-group:{name}",
            "aws:sns/topic:Topic": f"arn:aws:sns:{region}:{acct}:{name}",
            "aws:cloudwatch/eventRule:EventRule": f"arn:aws:events:{region}:{acct}:rule/{name}",
            "aws:scheduler/schedule:Schedule": f"arn:aws:scheduler:{region}:{acct}:schedule/default/{name}",
            "aws:cloudwatch/metricAlarm:MetricAlarm": f"arn:aws:cloudwatch:{region}:{acct}:alarm:{name}",
            "aws:cloudwatch/dashboard:Dashboard": f"arn:aws:cloudwatch::{acct}:dashboard/{inputs.get('dashboardName')}",
            "aws:sns/topicSubscription:TopicSubscription": f"arn:aws:sns:{region}:{acct}:{name}",
        }
        outputs = {**inputs, "name": name, "arn": arn_by_type.get(args.typ, f"arn:aws:mock:{region}:{acct}:{name}")}
        if args.typ == "aws:kms/key:Key":
            outputs["keyId"] = f"{_short_hash(logical)}-key"
        if args.typ == "aws:lambda/function:Function":
            outputs["invokeArn"] = f"arn:aws:apigateway:{region}:lambda:path/functions/{outputs['arn']}/invocations"
        return f"{logical}_id", outputs


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """MockMonitor that also records each registration's parent, inputs and dependencies."""

    def __init__(self, mocks: pulumi.runtime.Mocks, deployment: Deployment) -> None:
        super().__init__(mocks)
        self.deployment = deployment

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """URNs as the engine makes them (Pulumi's MockMonitor does not): a resource's type is prefixed with its
        parent's whole type chain, except under the root stack, whose children are top-level."""
        if parent:
            qualified = parent.split("::")[2]
            if qualified != ROOT_STACK_TYPE:
                type_ = f"{qualified}${type_}"
        return f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::{type_}::{name}"

    def RegisterResource(self, request: Any) -> Any:
        if not self.deployment.sys_path_during_run:
            self.deployment.sys_path_during_run = list(sys.path)
        aliases = tuple(alias.urn for alias in request.aliases if alias.urn) + tuple(request.aliasURNs)
        identities = getattr(self.mocks, "identities", None)
        if aliases and identities is not None:
            identities[(request.type, request.name)] = aliases[0].rsplit("::", 1)[1]
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            registration = self.resources[response.urn]
            inputs = rpc.deserialize_properties(request.object)
            self.deployment.resources.append(
                Recorded(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    inputs=dict(inputs),
                    outputs=dict(registration.state),
                    dependencies=tuple(request.dependencies),
                    custom=bool(request.custom),
                    aliases=aliases,
                    protect=bool(request.protect),
                    retain_on_delete=bool(request.retainOnDelete),
                )
            )
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        self.deployment.component_outputs[request.urn] = dict(rpc.deserialize_properties(request.outputs))
        return super().RegisterResourceOutputs(request)


def _encode(value: Any) -> str:
    """A config value as the CLI hands it to the program: scalars as text, objects and lists as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def stack_config(stack: str, overrides: dict[str, Any] | None = None, *, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """Pulumi.<stack>.yaml merged with Pulumi.yaml's defaults, namespaced, values encoded like the CLI does."""
    project = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())
    stack_values = dict(yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text())["config"])
    for key, value in (overrides or {}).items():
        stack_values[key] = value
    for key in drop:
        stack_values.pop(key, None)
    merged: dict[str, Any] = {}
    for key, declaration in (project.get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if "default" in declaration:
            merged[full] = declaration["default"]
        elif full not in stack_values:
            raise AssertionError(f"Stack '{stack}' is missing configuration value '{key}' (the CLI would refuse)")
    merged.update({k: v for k, v in stack_values.items() if v is not None})
    return {key: _encode(value) for key, value in merged.items()}


_LOOP: asyncio.AbstractEventLoop | None = None


def _use_harness_event_loop() -> None:
    """Pulumi's runtime needs a current event loop; other suites (asyncio.run) may have left none."""
    global _LOOP
    if _LOOP is None or _LOOP.is_closed():
        _LOOP = asyncio.new_event_loop()
    asyncio.set_event_loop(_LOOP)


def close_harness_event_loop() -> None:
    global _LOOP
    if _LOOP is not None and not _LOOP.is_closed():
        _LOOP.close()
    _LOOP = None


def run_program(
    stack: str,
    config: dict[str, str],
    mocks: pulumi.runtime.Mocks,
    *,
    account: str,
    program: Path | Callable[[], None] = MAIN,
    project: str = PROJECT,
) -> Deployment:
    """Run the program for `stack` with `config` against `mocks`; return everything it registered.

    `account` is the AWS account the (mocked) credentials belong to. `program` is what runpy runs: `__main__.py`,
    or the `infra/` directory as the Pulumi language host passes it; or a function that declares resources itself
    (a component under test). `project` is the Pulumi project's name (another program's Pulumi.yaml).
    """
    region = config.get("aws:region", "us-east-1")
    deployment = Deployment(stack=stack, account=account, region=region, config=config)
    _use_harness_event_loop()
    pulumi_settings.ROOT.set(None)  # a fresh root Stack for every run
    pulumi.runtime.set_mocks(
        mocks, project=project, stack=stack, preview=False, monitor=RecordingMonitor(mocks, deployment)
    )
    pulumi.runtime.set_all_config(config)

    @pulumi.runtime.test
    def execute() -> pulumi.Output[Any]:
        if callable(program):
            program()
        else:
            runpy.run_path(str(program), run_name="__main__")
        root = pulumi.runtime.get_root_resource()
        return pulumi.Output.from_input(dict(root.outputs)).apply(deployment.outputs.update)

    execute()
    return deployment
