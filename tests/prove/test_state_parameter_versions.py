"""The monitor's compare-and-swap lease reads earlier versions of its state as `<name>:<version>`: the dev stack's
monitor policy must grant those reads too, and grant them on that one parameter only.

IAM authorizes an SSM read with a version or label selector on the parameter's own ARN (names cannot hold ':'), so
`ssm:GetParameter` on `parameter/keyrot/<env>/monitor-state` covers `monitor-state:3`. This drives the real
`StateStore.read` past a losing claim in moto, with the suite's recorder on, and checks every call it made against
the dev stack's monitor policy as the Pulumi program declares it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from keyrot.constants import state_parameter_name
from keyrot.monitor.state import Lease, MonitorState, StateStore
from tests.support.aws_actions import actor_policies, harness, recording, ungranted
from tests.support.iam_eval import Request, arn_matches, iam_resource, identity_allows

pytestmark = pytest.mark.timeout(120)

PARAMETER = state_parameter_name("dev")


@pytest.fixture
def ssm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.client("ssm", region_name="us-east-1")


@pytest.fixture(scope="module")
def monitor_policy() -> dict[str, Any]:
    (policy,) = actor_policies(harness().deployed("dev"))["monitor"]
    return dict(policy)


def _dev(resource: str) -> str:
    """moto's account and a resource as the dev stack (account 111111111111) names it."""
    return resource.replace(":123456789012:", ":111111111111:")


def test_reading_past_a_losing_claim_is_granted_by_the_monitor_policy(ssm: Any, monitor_policy: Any) -> None:
    # GIVEN the state (version 1), then a claim that lost: it claims version 0, so it is not version 0 + 1
    store = StateStore(ssm, PARAMETER)
    store.save(MonitorState(watermark=600))
    loser = MonitorState(watermark=600, lease=Lease("another-run", 10**10))
    loser.claim = 0
    store.save(loser)
    # WHEN a run reads the state (the recorder attributes the calls to the monitor: keyrot.monitor.state)
    with recording() as recorded:
        snapshot = StateStore(ssm, PARAMETER).read()
    # THEN it skipped the losing claim by reading version 1 by its selector
    assert snapshot.state is not None and snapshot.state.lease is None and snapshot.latest == 2
    calls = recorded.by_actor("monitor")
    resources = {resource for call in calls for resource in call.resources}
    assert any(resource.endswith(f"parameter{PARAMETER}:1") for resource in resources), resources
    # AND every call, selector and all, is granted by the dev stack's monitor policy
    assert [u.describe() for u in ungranted(calls, [monitor_policy], _dev)] == []


def test_a_selector_does_not_widen_the_grant_to_another_parameter(monitor_policy: Any) -> None:
    # GIVEN version reads of the state parameter and of other parameters
    arn = "arn:aws:ssm:us-east-1:111111111111:parameter"
    granted = Request("ssm:GetParameter", f"{arn}{PARAMETER}:7")
    others = [
        Request("ssm:GetParameter", f"{arn}/keyrot/prod/monitor-state:7"),
        Request("ssm:GetParameter", f"{arn}/keyrot/dev/monitor-state-copy:7"),
        Request("ssm:GetParameter", f"{arn}/keyrot/dev/guardrails:1"),
    ]
    # THEN only the state parameter's own versions are readable
    assert identity_allows([monitor_policy], granted).allowed
    assert [r.resource for r in others if identity_allows([monitor_policy], r).allowed] == []


def test_the_selector_is_read_past_by_iam_not_by_a_wildcard_in_the_policy(monitor_policy: Any) -> None:
    # GIVEN the monitor's grant on its state, exactly as declared (no wildcard after the name)
    (statement,) = [s for s in monitor_policy["Statement"] if s["Sid"] == "MonitorState"]
    (declared,) = statement["Resource"]
    version = f"{declared}:3"
    # THEN the ARN as recorded does not match it character for character; IAM's reading of the selector does
    assert not declared.endswith("*") and not arn_matches(declared, version)
    assert iam_resource(version) == declared
