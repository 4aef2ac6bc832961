"""Harness: run the real Pulumi program (infra/__main__.py) against Pulumi's mocks, once per stack file.

No Pulumi CLI, no AWS: `RecordingMocks` answers every resource registration with synthesised ids and ARNs (per
stack account and region), and data-source calls (caller identity, region, partition) with the stack's values.
The program runner itself is shared with the local rehearsal (keyrot.testing.pulumi_program).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks

from keyrot.testing.pulumi_program import (
    MAIN,
    PROJECT,
    REPO_ROOT,
    Deployment,
    Recorded,
    close_harness_event_loop,
    stack_config,
)
from keyrot.testing.pulumi_program import run_program as run_with_mocks

__all__ = [
    "MAIN",
    "PROJECT",
    "REPO_ROOT",
    "STACKS",
    "Deployment",
    "Recorded",
    "close_harness_event_loop",
    "deployed",
    "keyrot_config",
    "run_program",
    "stack_config",
]

STACK_ACCOUNTS = {"dev": "111111111111", "prod": "222222222222"}
STACKS = tuple(STACK_ACCOUNTS)


def keyrot_config(d: Deployment) -> Any:
    """The validated configuration the program ran with (the tests' expectations derive from it)."""
    from infra.config import parse_config

    raw = {k.split(":", 1)[1]: v for k, v in d.config.items() if k.startswith("keyrot:")}
    return parse_config(raw, stack=d.stack)


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:7]


class RecordingMocks(pulumi.runtime.Mocks):
    """Ids are `<name>_id`; ARNs are synthesised per type in the stack's account and region."""

    def __init__(self, account: str, region: str) -> None:
        self.account = account
        self.region = region

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account,
                "arn": f"arn:aws:sts::{self.account}:assumed-role/deployer/session",
                "userId": "AROAEXAMPLE:session",
                "id": self.account,
            }, []
        if args.token == "aws:index/getRegion:getRegion":
            return {
                "region": self.region,
                "name": self.region,
                "id": self.region,
                "endpoint": "",
                "description": "",
            }, []
        if args.token == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "id": "aws",
                "reverseDnsPrefix": "com.amazonaws",
            }, []
        raise NotImplementedError(f"unmocked call {args.token}")

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        name = inputs.get("name") or f"{args.name}-{_short_hash(args.name)}"
        acct, region = self.account, self.region
        suffix = _short_hash(name)[:6]  # Secrets Manager appends 6 random characters to a secret's ARN
        arn_by_type = {
            "aws:kms/key:Key": f"arn:aws:kms:{region}:{acct}:key/{_short_hash(args.name)}-key",
            "aws:kms/alias:Alias": f"arn:aws:kms:{region}:{acct}:{name}",
            "aws:secretsmanager/secret:Secret": f"arn:aws:secretsmanager:{region}:{acct}:secret:{name}-{suffix}",
            "aws:iam/role:Role": f"arn:aws:iam::{acct}:role/{name}",
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
            outputs["keyId"] = f"{_short_hash(args.name)}-key"
        if args.typ == "aws:lambda/function:Function":
            outputs["invokeArn"] = f"arn:aws:apigateway:{region}:lambda:path/functions/{outputs['arn']}/invocations"
        return f"{args.name}_id", outputs


def run_program(stack: str, config: dict[str, str], *, account: str | None = None, program: Path = MAIN) -> Deployment:
    """Run infra/__main__.py under synthesising mocks for `stack` with `config`; return everything it registered."""
    account = account or STACK_ACCOUNTS.get(stack, "333333333333")
    mocks = RecordingMocks(account, config.get("aws:region", "us-east-1"))
    return run_with_mocks(stack, config, mocks, account=account, program=program)


_CACHE: dict[str, Deployment] = {}


def deployed(stack: str) -> Deployment:
    """The program as deployed from Pulumi.<stack>.yaml, run once per session and cached."""
    if stack not in _CACHE:
        _CACHE[stack] = run_program(stack, stack_config(stack))
    return _CACHE[stack]
