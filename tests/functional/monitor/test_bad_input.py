"""Bad input to the monitor is reported clearly; nothing is published twice and the watermark stays put."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from keyrot import metric_names as m
from keyrot.errors import AdminKeyError
from keyrot.monitor.state import MonitorStateError
from keyrot.monitor.usage import MalformedUsageError
from keyrot.openai_admin import MalformedResponseError, OpenAIAdminClient
from lab.monitor_scenario import MonitorWorld
from lab.openai_standin import Fault

from .conftest import current_key_id, rotated, usage

SETTLE = 600


class TamperedUsage(OpenAIAdminClient):
    """The real admin client against the stand-in, with each usage result passed through `tamper` first."""

    def __init__(self, inner: OpenAIAdminClient, tamper: Callable[[dict[str, Any]], None]) -> None:
        self.__dict__.update(inner.__dict__)
        self._tamper = tamper

    def iter_usage_pages(self, kind: str, params: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        for page in super().iter_usage_pages(kind, params):
            for bucket in page["data"]:
                for result in bucket["results"]:
                    self._tamper(result)
            yield page


def _world_with_usage(monitor: MonitorWorld) -> MonitorWorld:
    arn = rotated(monitor, "chat-backend")
    monitor.run()
    usage(monitor, current_key_id(monitor, arn), 1, num_model_requests=2, input_tokens=3, output_tokens=4)
    monitor.clock.advance(3 * 60 + SETTLE)
    return monitor


def _published_requests(world: MonitorWorld) -> dict[int, float]:
    t = world.start
    return world.sums(m.REQUESTS, m.key_dimensions("dev", "chat-backend"), t - 3600, t + 3600)


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda r: r.pop("num_model_requests"), "completions result field num_model_requests is missing"),
        (lambda r: r.update(input_tokens="3"), "field input_tokens is missing or not a non-negative integer"),
        (lambda r: r.update(output_tokens=-1), "field output_tokens is missing or not a non-negative integer"),
        (lambda r: r.update(api_key_id=12), "api_key_id must be a string or null"),
    ],
)
def test_malformed_usage_results_publish_nothing_and_keep_the_watermark(
    monitor: MonitorWorld, tamper: Callable[[dict[str, Any]], None], message: str
) -> None:
    world = _world_with_usage(monitor)
    before = world.state()
    deps = world.dependencies()
    deps.admin = TamperedUsage(deps.admin, tamper)
    from keyrot.monitor.run import run_monitor

    with pytest.raises(MalformedUsageError) as caught:
        run_monitor(deps)
    assert message in str(caught.value)
    # the state only counts a first strike against the bucket (three in a row set it aside: test_poison_bucket.py)
    after = world.state() or {}
    assert after["suspect"] == ["completions", world.start + 60, 1]
    assert {**after, "suspect": None} == before
    assert _published_requests(world) == {}
    world.run()  # once OpenAI answers properly, the same buckets are published exactly once
    assert _published_requests(world) == {world.start + 60: 2}


def test_unexpected_extra_fields_are_ignored(monitor: MonitorWorld) -> None:
    world = _world_with_usage(monitor)
    deps = world.dependencies()
    deps.admin = TamperedUsage(deps.admin, lambda r: r.update(brand_new_metric=5, service_tier="flex"))
    from keyrot.monitor.run import run_monitor

    run_monitor(deps)
    assert _published_requests(world) == {world.start + 60: 2}


def test_non_json_usage_response_is_reported_and_retried_later(monitor: MonitorWorld) -> None:
    world = _world_with_usage(monitor)
    before = world.state()
    world.rotation.openai.faults.add(Fault(endpoint="usage", status=200, non_json=True))
    with pytest.raises(MalformedResponseError, match="not JSON"):
        world.run()
    assert world.state() == before and _published_requests(world) == {}
    world.rotation.openai.faults.clear()
    world.run()
    assert _published_requests(world) == {world.start + 60: 2}


def test_admin_key_without_usage_scope_is_explained(monitor: MonitorWorld) -> None:
    world = _world_with_usage(monitor)
    before = world.state()
    limited = world.rotation.openai.state.add_admin_key(scopes={"api.management.read", "api.management.write"})
    deps = world.dependencies()
    deps.admin = OpenAIAdminClient(limited, deps.admin._transport)
    from keyrot.monitor.run import run_monitor

    with pytest.raises(AdminKeyError, match="lacks permission"):
        run_monitor(deps)
    assert world.state() == before and _published_requests(world) == {}


def test_an_empty_project_still_sends_a_heartbeat(monitor: MonitorWorld) -> None:
    report = monitor.run()
    monitor.clock.advance(15 * 60)
    report = monitor.run()
    assert report.unmanaged_keys == [] and report.revoked == []
    beats = monitor.cloudwatch.get_metric_statistics(
        Namespace=m.NAMESPACE,
        MetricName=m.MONITOR_HEARTBEAT,
        Dimensions=[{"Name": "Environment", "Value": "dev"}],
        StartTime=monitor.now().replace(year=2000),
        EndTime=monitor.now().replace(year=2100),
        Period=60,
        Statistics=["SampleCount"],
    )["Datapoints"]
    assert sum(point["SampleCount"] for point in beats) == 2


@pytest.mark.parametrize(
    ("garbage", "message"),
    [
        ("not json", "is not JSON"),
        ('{"version": 7, "watermark": 0}', "is not keyrot monitor state version 1"),
        ('{"version": 1, "watermark": "yesterday"}', "has a malformed field"),
        ('{"version": 1, "watermark": 61}', "watermark 61 is not minute-aligned"),
        ('{"version": 1, "watermark": 60, "intent": {"start": 0}}', "has a malformed field"),
    ],
)
def test_garbage_state_parameter_is_reported_and_left_untouched(
    monitor: MonitorWorld, garbage: str, message: str
) -> None:
    world = _world_with_usage(monitor)
    world.ssm.put_parameter(Name=world.settings.state_parameter, Value=garbage, Type="String", Overwrite=True)
    with pytest.raises(MonitorStateError, match=message):
        world.run()
    assert world.ssm.get_parameter(Name=world.settings.state_parameter)["Parameter"]["Value"] == garbage
    assert _published_requests(world) == {}


def test_malformed_managed_secret_is_reported_not_fatal(monitor: MonitorWorld) -> None:
    arn = rotated(monitor, "chat-backend")
    rotated(monitor, "search")
    monitor.rotation.secrets.put_secret_value(SecretId=arn, SecretString=json.dumps({"api_key": "sk-oops"}))
    monitor.run()
    (note,) = monitor.notifications()
    assert note["subject"] == "[keyrot dev] Secret keyrot/dev/chat-backend is malformed"
    assert "missing field(s): key_id" in note["message"] and "sk-oops" not in note["message"]
    # the healthy secret is still measured
    assert len(monitor.maxima(m.KEY_AGE_HOURS, m.key_dimensions("dev", "search"))) == 1


def test_the_infrastructure_placeholder_means_first_run(monitor: MonitorWorld) -> None:
    from keyrot.constants import STATE_PARAMETER_PLACEHOLDER

    # GIVEN the state parameter as `pulumi up` declares it, before the monitor ever ran
    monitor.ssm.put_parameter(
        Name=monitor.settings.state_parameter, Value=STATE_PARAMETER_PLACEHOLDER, Type="String", Overwrite=True
    )
    # WHEN the monitor runs THEN it starts fresh and writes its own state over the placeholder
    report = monitor.run()
    assert report.skipped is None
    state = monitor.state()
    assert state is not None and state["version"] == 1 and state["watermark"] % 60 == 0
