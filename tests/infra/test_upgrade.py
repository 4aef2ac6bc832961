"""Upgrading a stack keyrot 0.1's own program deployed: `pulumi up` with KeyrotEnvironment replaces nothing.

The baseline (fixtures/stack-resources-0.1.json) is every resource the 0.1 program declared for dev and prod, with
its URN and inputs, recorded from the 0.1 sources under the same mocks (fixtures/record_stack_resources.py). The
engine keeps a resource when its URN, or one of its aliases, is the URN in the state; it replaces it when its type
changes or a replace-only input changes. So every 0.1 URN must be claimed by exactly one new resource of the same
type, no new resource may appear besides the environment component, and inputs may differ only where this release
changes them on purpose, each an in-place update of the AWS resource.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from infra_harness import Deployment, Recorded, deployed, run_component, stack_config

from keyrot.pulumi.environment import args_from_config

pytestmark = pytest.mark.timeout(180)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BASELINE = json.loads((FIXTURES / "stack-resources-0.1.json").read_text())
ENVIRONMENT_TYPE = "keyrot:index:KeyrotEnvironment"

# Inputs this release changes on purpose (issues 12 and 18), by resource type. Each is updated in place by the AWS
# provider, never a replacement: a function's configuration (UpdateFunctionConfiguration; reserved concurrency by
# PutFunctionConcurrency), a policy document (PutKeyPolicy, PutRolePolicy, PutResourcePolicy), an alarm
# (PutMetricAlarm overwrites the alarm of that name) and the dashboard's body (PutDashboard; it lists the new alarm).
CHANGED_ON_PURPOSE: dict[str, set[str]] = {
    "aws:lambda/function:Function": {"environment", "reservedConcurrentExecutions"},
    "aws:kms/key:Key": {"policy"},
    "aws:iam/rolePolicy:RolePolicy": {"policy"},
    "aws:secretsmanager/secretPolicy:SecretPolicy": {"policy"},
    # The daily-spend alarm's description now points at the monitor's spend log line (issue 16: per-key spend
    # metrics come only with the dashboard); PutMetricAlarm rewrites it in place.
    "aws:cloudwatch/metricAlarm:MetricAlarm": {"treatMissingData", "alarmDescription"},
    "aws:cloudwatch/dashboard:Dashboard": {"dashboardBody"},
    # With adminKeyRotation (dev), the rotation-failure rule also matches the admin-key secret (PutRule) and its
    # message names the admin rotation's log group (PutTargets).
    "aws:cloudwatch/eventRule:EventRule": {"eventPattern"},
    "aws:cloudwatch/eventTarget:EventTarget": {"inputTransformer"},
}
# Resources this release adds on purpose (created, nothing replaced): the Costs API failure alarm (issue 18), and
# one key-age alarm for the environment (issue 16: the oldest key's age) where 0.1 had one per key.
ADDED_ON_PURPOSE = {
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "keyrot-alarms-costs-read-failed"),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "keyrot-alarms-key-too-old"),
}


def deleted_on_purpose(row: dict[str, Any]) -> bool:
    """0.1 resources this release deletes on purpose: the per-key key-age alarms (issue 16), whose situations the
    environment's key-too-old alarm covers. Deleting an alarm touches no key, secret or function."""
    return row["type"] == "aws:cloudwatch/metricAlarm:MetricAlarm" and row["urn"].endswith("-key-age")


# What declaring `guardrails` adds (dev declares them; issue 15): new resources only, beside the 0.1 ones.
GUARDRAILS_ADDED = {
    ("keyrot:index:LambdaRole", "keyrot-guardrails-identity"),
    ("aws:iam/role:Role", "keyrot-guardrails-identity-role"),
    ("keyrot:index:Guardrails", "keyrot-guardrails"),
    ("aws:ssm/parameter:Parameter", "keyrot-guardrails-declared"),
    ("aws:ssm/parameter:Parameter", "keyrot-guardrails-state"),
    ("keyrot:index:Function", "keyrot-guardrails-lambda"),
    ("aws:cloudwatch/logGroup:LogGroup", "keyrot-guardrails-lambda-logs"),
    ("aws:iam/rolePolicy:RolePolicy", "keyrot-guardrails-lambda-permissions"),
    ("aws:lambda/function:Function", "keyrot-guardrails-lambda-function"),
    ("aws:lambda/invocation:Invocation", "keyrot-guardrails-apply"),
    ("aws:iam/role:Role", "keyrot-guardrails-check-scheduler-role"),
    ("aws:iam/rolePolicy:RolePolicy", "keyrot-guardrails-check-scheduler-permissions"),
    ("aws:scheduler/schedule:Schedule", "keyrot-guardrails-check-schedule"),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "keyrot-alarms-guardrail-drift"),
    ("aws:cloudwatch/metricAlarm:MetricAlarm", "keyrot-alarms-guardrails-apply-failed"),
}
# What `adminKeyRotation` adds (dev rotates its admin key; issue 14.1): new resources only, the admin-key secret and
# its policy kept (the policy changes in place to admit the admin rotation role).
ADMIN_ROTATION_ADDED = {
    ("keyrot:index:LambdaRole", "keyrot-admin-rotation-identity"),
    ("aws:iam/role:Role", "keyrot-admin-rotation-identity-role"),
    ("keyrot:index:AdminRotation", "keyrot-admin-rotation"),
    ("keyrot:index:Function", "keyrot-admin-rotation-lambda"),
    ("aws:cloudwatch/logGroup:LogGroup", "keyrot-admin-rotation-lambda-logs"),
    ("aws:iam/rolePolicy:RolePolicy", "keyrot-admin-rotation-lambda-permissions"),
    ("aws:lambda/function:Function", "keyrot-admin-rotation-lambda-function"),
    ("aws:lambda/permission:Permission", "keyrot-admin-rotation-invoke"),
    ("aws:secretsmanager/secretRotation:SecretRotation", "keyrot-admin-rotation-schedule"),
    ("aws:iam/role:Role", "keyrot-admin-rotation-cleanup-scheduler-role"),
    ("aws:iam/rolePolicy:RolePolicy", "keyrot-admin-rotation-cleanup-scheduler-permissions"),
    ("aws:scheduler/schedule:Schedule", "keyrot-admin-rotation-cleanup-schedule"),
    *(
        ("aws:cloudwatch/metricAlarm:MetricAlarm", f"keyrot-alarms-{suffix}")
        for suffix in (
            "admin-rotation-failed",
            "admin-rotation-lambda-errors",
            "admin-key-too-old",
            "admin-key-cleanup-failed",
            "admin-keys-live",
        )
    ),
}


def comparable(resource: Recorded) -> dict[str, Any]:
    from record_stack_resources import comparable_inputs  # type: ignore[import-not-found]

    return comparable_inputs(resource.type, resource.inputs)


def claims(deployment: Deployment) -> dict[str, list[Recorded]]:
    """Each URN the state may hold -> the new resources that would take it (by URN or by alias)."""
    found: dict[str, list[Recorded]] = {}
    for resource in deployment.resources:
        for urn in {resource.urn, *resource.aliases}:
            found.setdefault(urn, []).append(resource)
    return found


@pytest.fixture(autouse=True)
def _fixtures_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FIXTURES))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_0_1_resource_is_the_same_resource_after_the_upgrade(stack: str) -> None:
    # GIVEN every resource a 0.1 stack holds, and the reference program as it is now
    old = BASELINE[stack]
    new = deployed(stack)
    claimed = claims(new)
    # THEN each old URN is taken by exactly one new resource, of the same type (a type change would replace it)
    matched: set[str] = set()
    for row in old:
        if deleted_on_purpose(row):
            assert row["urn"] not in claimed, row["urn"]
            continue
        takers = claimed.get(row["urn"], [])
        assert len(takers) == 1, (row["urn"], [t.urn for t in takers])
        assert takers[0].type == row["type"], row["urn"]
        matched.add(takers[0].urn)
    # AND nothing is created but the environment component itself (which holds no cloud resource) and what this
    # release adds on purpose (and what the stack's guardrails and admin key rotation add, when it declares them)
    created = {(r.type, r.name) for r in new.resources if r.urn not in matched}
    optional = {
        *(GUARDRAILS_ADDED if "keyrot:guardrails" in new.config else ()),
        *(ADMIN_ROTATION_ADDED if "keyrot:adminKeyRotation" in new.config else ()),
    }
    assert created == {(ENVIRONMENT_TYPE, "keyrot"), *ADDED_ON_PURPOSE, *optional}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_an_upgrade_changes_only_the_inputs_this_release_changes_in_place(stack: str) -> None:
    # GIVEN each 0.1 resource and the new resource that takes its URN
    new = claims(deployed(stack))
    for row in BASELINE[stack]:
        if deleted_on_purpose(row):
            continue
        (resource,) = new[row["urn"]]
        inputs = comparable(resource)
        # THEN its inputs are the same, but for those this release changes on purpose (in-place updates)
        changed = {k for k in set(inputs) | set(row["inputs"]) if inputs.get(k) != row["inputs"].get(k)}
        assert changed <= CHANGED_ON_PURPOSE.get(row["type"], set()), (resource.name, sorted(changed))
        # AND what names it in AWS is untouched (a new name is a new resource)
        for key in ("name", "dashboardName", "secretArn", "secretId", "role", "arn"):
            assert inputs.get(key) == row["inputs"].get(key), (resource.name, key)


def test_a_new_program_gets_no_aliases_to_a_stack_it_never_had() -> None:
    # GIVEN a program that adds KeyrotEnvironment without the upgrade flag (a new user, or a second environment)
    from keyrot.pulumi.config import parse_config

    raw = {k.split(":", 1)[1]: v for k, v in stack_config("dev").items() if k.startswith("keyrot:")}
    d = run_component(args_from_config(parse_config(raw, stack="dev")))
    # THEN no resource claims a 0.1 URN: two such environments in one stack could never collide over one
    assert all(not r.aliases for r in d.resources)
    assert {r.urn for r in d.resources}.isdisjoint({row["urn"] for row in BASELINE["dev"]})


def test_a_secret_written_by_a_later_keyrot_is_still_read() -> None:
    # GIVEN a managed secret's value as a later keyrot of the same major version might write it: one more field
    from keyrot.secret_model import ManagedKey

    value = {
        "api_key": "sk-svcacct-" + "x" * 40,
        "key_id": "key_abc123",
        "service_account_id": "svc_acct_abc123",
        "project_id": "proj_abc123",
        "environment": "prod",
        "key_name": "chat-backend",
        "created_at": "2026-11-26T10:00:00Z",
        "expires_at": None,
        "minted_by": "keyrot 0.3",
    }
    # THEN this version reads it, the key unchanged (the contract only grows: docs/deploy.md, Upgrading)
    key = ManagedKey.from_json(json.dumps(value))
    assert key.api_key == value["api_key"] and key.key_name == "chat-backend"
