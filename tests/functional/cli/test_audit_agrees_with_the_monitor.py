"""One answer to "what is this key": `keyrot audit` and a monitor run, fed the same state, report the same keys.

Issue 17: the monitor called a keyrot account "in progress" while younger than an hour, `audit` while its token was
AWSPENDING, so the two disagreed about the same account. Both now ask keyrot.inventory. The state here is what both
can see of an environment whose functions declare nothing (the CLI finds secrets by tag, see docs/cli.md).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from keyrot.cli import context as cli_context
from keyrot.constants import state_parameter_name
from keyrot.monitor.run import MonitorDependencies, MonitorReport, run_monitor
from keyrot.openai_admin import OpenAIAdminClient, OpenAITransport
from keyrot.settings import MonitorSettings
from lab.scenario import RotationWorld

from .conftest import REGION, Cli, rotated


def _state(world: RotationWorld) -> dict[str, str]:
    """A rotated key with a rotation pending (its account minted), an account named for a token no label holds, a
    hand-made key and another environment's key, all in one project. Returns what each is, by key id."""
    arn = rotated(world, "chat-backend")
    pending = world.driver().start(arn)
    state, project = world.openai.state, world.project_id
    kinds = {}
    for kind, name in (
        ("pending token", f"keyrot:dev:chat-backend:{pending}"),
        ("no label's token", f"keyrot:dev:chat-backend:{uuid.uuid4()}"),
        ("another environment", f"keyrot:staging:chat-backend:{uuid.uuid4()}"),
    ):
        _, key = state.create_service_account(project, name, with_key=True, expires_in=None)
        assert key is not None
        kinds[key.id] = kind
    user_key, _ = state.add_user_key(project)
    kinds[user_key] = "hand-made"
    return kinds


def _monitor_run(world: RotationWorld, at: datetime) -> MonitorReport:
    """A whole monitor run of the same environment at the moment `at`."""
    topic = boto3.client("sns", region_name=REGION).create_topic(Name="keyrot-dev-oncall")["TopicArn"]
    settings = MonitorSettings(
        environment="dev",
        admin_secret_arn=world.admin_secret_arn,
        project_id=world.project_id,
        topic_arn=topic,
        state_parameter=state_parameter_name("dev"),
        openai_base_url=world.openai.base_url,
        validation_attempts=2,
        validation_delay_seconds=0.01,
    )
    admin = OpenAIAdminClient(world.admin_key, OpenAITransport(world.openai.base_url))
    rotation = world.context()
    rotation.admin_factory = lambda: admin
    clients: dict[str, Any] = {name: boto3.client(name, region_name=REGION) for name in ("cloudwatch", "ssm", "sns")}
    return run_monitor(MonitorDependencies(settings, admin, rotation, now=lambda: at, **clients))


@pytest.mark.parametrize("later", [timedelta(seconds=20), timedelta(minutes=30), timedelta(hours=2)])
def test_audit_and_a_monitor_run_report_the_same_keys_of_the_same_state(
    world: RotationWorld, cli: Cli, monkeypatch: pytest.MonkeyPatch, later: timedelta
) -> None:
    # GIVEN accounts the two old rules disagreed on, looked at `later` after they were minted
    kinds = _state(world)
    at = datetime.now(UTC) + later
    monkeypatch.setattr(cli_context, "utc_now", lambda: at)
    # WHEN `keyrot audit` and then a monitor run look at it
    audit = json.loads(cli("audit", "--env", "dev", "--json").stdout)
    report = _monitor_run(world, at)
    # THEN they report the same keys: the hand-made key always, the account of no label's token once no rotation can
    # still store it; never the pending token's account nor another environment's
    by_audit = {key for orphan in audit["orphans"] for key in orphan["key_ids"]}
    by_audit |= {key["key_id"] for key in audit["unmanaged_keys"]}
    assert set(report.unmanaged_keys) == by_audit
    expected = {"hand-made"} | ({"no label's token"} if later > timedelta(minutes=3) else set())
    assert {kinds[key] for key in by_audit} == expected
