"""Each part of a monitor run does its job whatever the others did; a failed part is named, withholds the heartbeat
and fails the run once every part has had its turn. Costs are best-effort."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from botocore.exceptions import ClientError

from keyrot import metric_names as m
from keyrot.errors import AwsCallError
from keyrot.monitor.run import MonitorRun
from keyrot.openai_admin import OpenAIAdminClient, ServerError
from lab.monitor_scenario import MonitorWorld
from lab.openai_standin import server_error

from .conftest import current_key_id, previous_key_id, rotated, usage

SETTLE = 600
GRACE = 300


class ForeignCurrencyCosts(OpenAIAdminClient):
    """The real admin client against the stand-in, with one cost line in euros added to today's bucket."""

    def __init__(self, inner: OpenAIAdminClient) -> None:
        self.__dict__.update(inner.__dict__)

    def iter_cost_pages(self, params: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        for page in super().iter_cost_pages(params):
            for bucket in page["data"]:
                bucket["results"].append({"amount": {"value": 3.5, "currency": "eur"}, "api_key_id": None})
            yield page


def _world_with_an_idle_previous_key(monitor: MonitorWorld) -> tuple[MonitorWorld, str]:
    """A secret rotated twice, its previous key idle past the grace period and quiet window; usage by the current
    key in minute 1; the watermark at the start."""
    world = monitor.with_settings(grace_period_seconds=GRACE, quiet_window_seconds=GRACE)
    arn = rotated(world, "chat-backend", times=2)
    world.run()
    world.notifications()
    usage(world, current_key_id(world, arn), 1, num_model_requests=2, input_tokens=1, output_tokens=1)
    world.clock.advance(3 * 60 + SETTLE)
    world.rotation.openai.state.record_cost(current_key_id(world, arn), 1.25)  # today, whatever the time of day
    return world, arn


def _heartbeats(world: MonitorWorld) -> int:
    points = world.cloudwatch.get_metric_statistics(
        Namespace=m.NAMESPACE,
        MetricName=m.MONITOR_HEARTBEAT,
        Dimensions=[{"Name": m.DIM_ENVIRONMENT, "Value": world.settings.environment}],
        StartTime=world.now().replace(year=2000),
        EndTime=world.now().replace(year=2100),
        Period=60,
        Statistics=["SampleCount"],
    )["Datapoints"]
    return int(sum(point["SampleCount"] for point in points))


def test_a_costs_outage_does_not_stop_the_janitor_or_the_key_age_gauge(monitor: MonitorWorld) -> None:
    # GIVEN an idle previous key due for revocation, and a Costs API that answers every call with a 500
    world, arn = _world_with_an_idle_previous_key(monitor)
    old = previous_key_id(world, arn)
    ages_before = len(world.maxima(m.KEY_AGE_HOURS, m.key_dimensions("dev", "chat-backend")))
    world.rotation.openai.faults.add(server_error("costs"))
    # WHEN the monitor runs
    report = world.run()
    # THEN the janitor revoked the key, the key age was published, and the costs failure is reported, not raised
    assert report.revoked == [old]
    assert len(world.maxima(m.KEY_AGE_HOURS, m.key_dimensions("dev", "chat-backend"))) == ages_before + 1
    assert list(report.failed_parts) == ["costs"] and report.failed_parts["costs"].startswith("ServerError")


def test_a_cost_line_in_another_currency_does_not_stop_the_janitor_or_the_key_age_gauge(
    monitor: MonitorWorld,
) -> None:
    # GIVEN an idle previous key due for revocation, and a Costs answer with one line in euros
    world, arn = _world_with_an_idle_previous_key(monitor)
    old = previous_key_id(world, arn)
    deps = world.dependencies()
    deps.admin = ForeignCurrencyCosts(deps.admin)
    # WHEN the monitor runs
    report = MonitorRun(deps).execute()
    # THEN the janitor and the gauges did their job; the costs failure names the currency
    assert report.revoked == [old]
    assert world.maxima(m.KEY_AGE_HOURS, m.key_dimensions("dev", "chat-backend"))
    assert "'eur'" in report.failed_parts["costs"]


def test_unreadable_costs_publish_no_spend_rather_than_a_made_up_zero(monitor: MonitorWorld) -> None:
    # GIVEN spend today, and a Costs API that fails
    world, _ = _world_with_an_idle_previous_key(monitor)
    spent_before = world.maxima(m.SPEND_TODAY_USD, m.environment_dimensions("dev"))
    world.rotation.openai.faults.add(server_error("costs"))
    # WHEN the monitor runs
    world.run()
    # THEN no SpendTodayUSD datapoint was added (a 0 would turn the spend alarm OK while spend is over the limit)
    assert world.maxima(m.SPEND_TODAY_USD, m.environment_dimensions("dev")) == spent_before


def test_a_costs_outage_alone_keeps_the_heartbeat(monitor: MonitorWorld) -> None:
    # GIVEN a Costs API that fails (best-effort: it has its own failure metric and alarm)
    world, _ = _world_with_an_idle_previous_key(monitor)
    beats = _heartbeats(world)
    world.rotation.openai.faults.add(server_error("costs"))
    # WHEN the monitor runs THEN every other part did its job, and the heartbeat says so
    assert world.run().heartbeat
    assert _heartbeats(world) == beats + 1


def test_a_failed_usage_read_still_runs_the_janitor_and_the_gauges_then_fails_the_run(monitor: MonitorWorld) -> None:
    # GIVEN an idle previous key due for revocation (no quiet window to re-read), and a Usage API that fails
    world, arn = _world_with_an_idle_previous_key(monitor)
    world = world.with_settings(quiet_window_seconds=0)
    old = previous_key_id(world, arn)
    world.rotation.openai.faults.add(server_error("usage"))
    run = MonitorRun(world.dependencies())
    # WHEN the monitor runs THEN it fails with the usage part's error, after the other parts did their job
    with pytest.raises(ServerError):
        run.execute()
    assert list(run.report.failed_parts) == ["usage"]
    assert run.report.revoked == [old]
    assert world.maxima(m.SPEND_TODAY_USD, m.environment_dimensions("dev"))[-1] == 1.25
    assert world.maxima(m.KEY_AGE_HOURS, m.key_dimensions("dev", "chat-backend"))
    # AND the usage stays unpublished (the watermark did not move), for the next run to publish once
    t = world.start
    assert world.sums(m.REQUESTS, m.key_dimensions("dev", "chat-backend"), t - SETTLE, t + 3600) == {}
    world.rotation.openai.faults.clear()
    world.run()
    assert world.sums(m.REQUESTS, m.key_dimensions("dev", "chat-backend"), t - SETTLE, t + 3600) == {t + 60: 2}


def test_a_run_with_a_failed_part_sends_no_heartbeat(monitor: MonitorWorld) -> None:
    # GIVEN a Usage API that fails
    world, _ = _world_with_an_idle_previous_key(monitor)
    beats = _heartbeats(world)
    world.rotation.openai.faults.add(server_error("usage"))
    # WHEN the monitor runs THEN no heartbeat goes out (it means "the monitor did its whole job")
    run = MonitorRun(world.dependencies())
    with pytest.raises(ServerError):
        run.execute()
    assert not run.report.heartbeat and _heartbeats(world) == beats
    # AND the next complete run sends one
    world.rotation.openai.faults.clear()
    assert world.run().heartbeat and _heartbeats(world) == beats + 1


def test_usage_batches_carry_publish_markers_not_heartbeats(monitor: MonitorWorld) -> None:
    # GIVEN usage to publish
    world, _ = _world_with_an_idle_previous_key(monitor)
    beats = _heartbeats(world)
    # WHEN a run publishes it
    report = world.run()
    # THEN exactly one heartbeat went out for the run, however many usage batches it published
    assert report.usage_datums and _heartbeats(world) == beats + 1


def test_unreadable_secrets_still_publish_the_spend_and_name_the_parts_that_could_not_run(
    monitor: MonitorWorld,
) -> None:
    # GIVEN Secrets Manager refusing to list secrets
    world, _ = _world_with_an_idle_previous_key(monitor)

    def refuse(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "ListSecrets")

    secrets = world.rotation.secrets
    secrets.meta.events.register("before-call.secrets-manager.ListSecrets", refuse)
    run = MonitorRun(world.dependencies())
    # WHEN the monitor runs
    try:
        with pytest.raises(AwsCallError):
            run.execute()
    finally:
        secrets.meta.events.unregister("before-call.secrets-manager.ListSecrets", refuse)
    # THEN the parts that need the managed secrets did not run, the spend was published all the same
    assert list(run.report.failed_parts) == ["secrets"]
    assert run.report.parts_not_run == ["inventory", "usage", "findings", "janitor"]
    assert world.maxima(m.SPEND_TODAY_USD, m.environment_dimensions("dev"))[-1] == 1.25
