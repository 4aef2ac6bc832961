"""A secret anyone can create and tag for the environment must not stop the monitor: an unreadable or malformed
secret is a finding for that secret and the run goes on for the others. A read AWS failed is not a finding: the run
fails and reads again, rather than publishing a managed key's usage as an unmanaged key's."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from keyrot import inventory
from keyrot import metric_names as m
from keyrot.constants import TAG_ENVIRONMENT, TAG_KEY_NAME, TAG_PROJECT_ID
from keyrot.errors import AwsCallError
from keyrot.monitor.run import MonitorRun
from lab.monitor_scenario import MonitorWorld

from .conftest import current_key_id, rotated, usage

SETTLE = 600


def _decoy(world: MonitorWorld, key_name: str = "decoy") -> str:
    """A secret someone with CreateSecret made, tagged like a managed one, holding a keyrot-shaped value."""
    tags = [
        {"Key": TAG_ENVIRONMENT, "Value": world.settings.environment},
        {"Key": TAG_KEY_NAME, "Value": key_name},
        {"Key": TAG_PROJECT_ID, "Value": world.settings.project_id},
    ]
    value = json.dumps({"api_key": "not-a-key", "key_id": "key_decoy"})
    secrets = world.rotation.secrets
    return str(secrets.create_secret(Name=f"team-x/{key_name}", SecretString=value, Tags=tags)["ARN"])


class Refusals:
    """Secrets Manager answering chosen secrets' reads with an error code (IAM's AccessDenied, throttling; "" lets
    them through), and recording every read of them."""

    OPERATIONS = ("GetSecretValue", "DescribeSecret")

    def __init__(self, client: Any) -> None:
        self.client, self.code, self.secret_ids = client, "", set[str]()
        self.reads: list[str] = []
        for operation in self.OPERATIONS:
            client.meta.events.register(f"before-parameter-build.secrets-manager.{operation}", self)

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if params.get("SecretId") in self.secret_ids:
            self.reads.append(model.name)
            if self.code:
                raise ClientError({"Error": {"Code": self.code, "Message": "refused"}}, model.name)

    def remove(self) -> None:
        for operation in self.OPERATIONS:
            self.client.meta.events.unregister(f"before-parameter-build.secrets-manager.{operation}", self)


@pytest.fixture
def refuse(monitor: MonitorWorld) -> Iterator[Callable[..., Refusals]]:
    """refuse(code, *secret_ids): answer those secrets' reads with `code` for the rest of the test."""
    refusals = Refusals(monitor.rotation.secrets)

    def install(code: str, *secret_ids: str) -> Refusals:
        refusals.code, refusals.secret_ids = code, set(secret_ids)
        return refusals

    yield install
    refusals.remove()


def test_a_tagged_secret_the_monitor_may_not_read_is_a_finding_and_the_run_goes_on(
    monitor: MonitorWorld, refuse: Callable[..., Refusals]
) -> None:
    # GIVEN a managed secret, and a decoy tagged for the environment that the monitor's role may not read (IAM)
    rotated(monitor, "chat-backend")
    decoy = _decoy(monitor)
    refuse("AccessDeniedException", decoy)
    # WHEN the monitor runs
    report = monitor.run()
    # THEN the run completed, every part did its job, and on-call is told about that one secret
    assert report.heartbeat and not report.failed_parts
    assert monitor.maxima(m.KEY_AGE_HOURS, m.key_dimensions("dev", "chat-backend"))
    (note,) = monitor.notifications()
    assert note["subject"] == "[keyrot dev] Secret team-x/decoy is malformed"
    assert "may not read it (AccessDeniedException" in note["message"]


def test_a_readable_decoy_with_a_foreign_value_is_a_finding_and_the_run_goes_on(monitor: MonitorWorld) -> None:
    # GIVEN a managed secret, and a readable decoy whose value is not keyrot's
    rotated(monitor, "chat-backend")
    _decoy(monitor)
    # WHEN the monitor runs THEN it completes and reports the decoy, without quoting its value
    report = monitor.run()
    assert report.heartbeat and not report.failed_parts
    (note,) = monitor.notifications()
    assert "team-x/decoy" in note["subject"] and "not-a-key" not in note["message"]


def test_a_deployment_that_declares_its_secrets_never_reads_a_decoy(
    monitor: MonitorWorld, refuse: Callable[..., Refusals]
) -> None:
    # GIVEN a deployment declaring its one secret, and a decoy tagged for the environment under the same key name
    arn = rotated(monitor, "chat-backend")
    world = monitor.with_settings(managed_secrets={"chat-backend": arn})
    decoy = _decoy(world, key_name="chat-backend")
    reads = refuse("", decoy)
    # WHEN the monitor runs
    report = world.run()
    # THEN the decoy was never read, nobody was paged about it, and the declared key is measured
    assert reads.reads == [] and world.notifications() == []
    assert report.heartbeat and world.maxima(m.KEY_AGE_HOURS, m.key_dimensions("dev", "chat-backend"))


def test_a_throttled_secret_read_fails_the_run_instead_of_publishing_its_keys_usage_as_unmanaged(
    monitor: MonitorWorld, refuse: Callable[..., Refusals]
) -> None:
    # GIVEN a managed key used in minute 1, and Secrets Manager throttling the read of its secret this run
    arn = rotated(monitor, "chat-backend")
    monitor.run()
    usage(monitor, current_key_id(monitor, arn), 1, num_model_requests=3, input_tokens=1, output_tokens=1)
    monitor.clock.advance(3 * 60 + SETTLE)
    inventory.clear_cache()  # a fresh Lambda container reads every secret value
    refusal = refuse("ThrottlingException", arn)
    # WHEN the monitor runs THEN its secrets part fails with AWS's error, and the usage waits
    run = MonitorRun(monitor.dependencies())
    with pytest.raises(AwsCallError, match="ThrottlingException"):
        run.execute()
    assert list(run.report.failed_parts) == ["secrets"]
    t, env = monitor.start, m.environment_dimensions("dev")
    assert monitor.sums(m.UNMANAGED_KEY_REQUESTS, env, t - SETTLE, t + 3600) == {}
    assert monitor.notifications() == []
    # AND once AWS answers, the usage is published under its key name, once
    refusal.code = ""
    monitor.run()
    assert monitor.sums(m.REQUESTS, m.key_dimensions("dev", "chat-backend"), t - SETTLE, t + 3600) == {t + 60: 3}
    assert monitor.sums(m.UNMANAGED_KEY_REQUESTS, env, t - SETTLE, t + 3600) == {}
