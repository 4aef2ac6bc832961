"""A usage bucket that keeps failing its checks is set aside after three runs (on-call told once, without key
material) and everything else is published; it is replayed exactly once, or dropped, when an operator asks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import boto3
import pytest

from keyrot import metric_names as m
from keyrot.monitor.run import MonitorInputError, MonitorRun
from keyrot.monitor.state import POISON_STRIKES
from keyrot.monitor.usage import MalformedUsageError
from keyrot.openai_admin import OpenAIAdminClient
from lab.monitor_scenario import MonitorWorld
from lab.remote_calls import SimulatedCrash

from .conftest import current_key_id, rotated, usage

SETTLE = 600
USAGE = {1: 3, 2: 4, 3: 5}  # minute -> requests by the managed key


class PoisonedUsage(OpenAIAdminClient):
    """The real admin client against the stand-in; the completions results of one minute carry `value` as their
    request count while `poisoned` is true."""

    def __init__(self, inner: OpenAIAdminClient, bucket: int, value: Any) -> None:
        self.__dict__.update(inner.__dict__)
        self.bucket, self.value, self.poisoned = bucket, value, True

    def iter_usage_pages(self, kind: str, params: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
        for page in super().iter_usage_pages(kind, params):
            for bucket in page["data"]:
                if self.poisoned and kind == "completions" and bucket["start_time"] == self.bucket:
                    for result in bucket["results"]:
                        result["num_model_requests"] = self.value
            yield page


class Poisoned:
    """A monitor world whose Usage API answers minute 2 with a poisoned count."""

    def __init__(self, world: MonitorWorld, value: Any = None) -> None:
        self.world = world
        self.admin = PoisonedUsage(world.dependencies().admin, world.start + 120, value)

    def run(self, action: str | None = None, **overrides: Any) -> Any:
        deps = self.world.dependencies(**overrides)
        deps.admin = self.admin
        return MonitorRun(deps, set_aside_action=action).execute()

    def failing_runs(self, count: int) -> None:
        for _ in range(count):
            with pytest.raises(MalformedUsageError, match="num_model_requests"):
                self.run()
            self.world.clock.advance(300)

    def set_aside(self) -> None:
        """The runs that fail on minute 2, then the one that sets it aside."""
        self.failing_runs(POISON_STRIKES - 1)
        assert self.run().set_aside
        self.world.clock.advance(300)


@pytest.fixture
def poisoned(monitor: MonitorWorld) -> Poisoned:
    """A managed key used in minutes 1-3, read once the minutes settled; minute 2's answer is poisoned."""
    arn = rotated(monitor, "chat-backend")
    monitor.run()
    monitor.notifications()
    for minute, requests in USAGE.items():
        usage(monitor, current_key_id(monitor, arn), minute, num_model_requests=requests, input_tokens=1)
    monitor.clock.advance(4 * 60 + SETTLE)
    return Poisoned(monitor)


def _requests(world: MonitorWorld) -> dict[int, float]:
    t = world.start
    return world.sums(m.REQUESTS, m.key_dimensions("dev", "chat-backend"), t - SETTLE, t + 3 * 3600)


def _minutes(world: MonitorWorld, *minutes: int) -> dict[int, float]:
    return {world.start + minute * 60: float(USAGE[minute]) for minute in minutes}


def test_a_poison_bucket_holds_the_window_until_its_third_failing_run(poisoned: Poisoned) -> None:
    # GIVEN minute 2's completions with a null request count, WHEN two runs read it
    world = poisoned.world
    watermark = (world.state() or {})["watermark"]
    poisoned.failing_runs(POISON_STRIKES - 1)
    # THEN both failed, nothing was published and the watermark held (it may still be a passing glitch)
    assert _requests(world) == {} and (world.state() or {})["watermark"] == watermark
    assert world.notifications() == []


def test_a_poison_bucket_is_set_aside_on_its_third_failing_run_and_the_rest_is_published(poisoned: Poisoned) -> None:
    world = poisoned.world
    poisoned.failing_runs(POISON_STRIKES - 1)
    # WHEN the third run reads it
    report = poisoned.run()
    # THEN minute 2's completions are set aside, every other minute is published once, the run succeeds
    assert report.set_aside == [f"completions {_iso(world.start + 120)}"] and report.heartbeat
    assert _requests(world) == _minutes(world, 1, 3)
    (entry,) = (world.state() or {})["set_aside"]
    assert (entry["kind"], entry["bucket"]) == ("completions", world.start + 120)
    assert "num_model_requests is missing or not a non-negative integer" in entry["problem"]


def test_on_call_is_told_once_what_was_set_aside_and_why_without_key_material(poisoned: Poisoned) -> None:
    world = poisoned.world
    poisoned.set_aside()
    # WHEN later runs go by
    for _ in range(2):
        world.clock.advance(300)
        poisoned.run()
    # THEN exactly one notification: what was set aside, what was wrong, how to replay it
    (note,) = world.notifications()
    assert note["subject"] == f"[keyrot dev] Usage of {_iso(world.start + 120)} set aside"
    assert "num_model_requests" in note["message"] and '{"setAside": "replay"}' in note["message"]
    assert "#usage-bucket-set-aside" in note["message"]
    for value in world.rotation.openai.state.minted_values:
        assert value not in note["message"]


def test_a_bucket_that_recovers_before_its_third_run_is_published_normally(poisoned: Poisoned) -> None:
    world = poisoned.world
    poisoned.failing_runs(POISON_STRIKES - 1)
    # WHEN OpenAI answers properly on the next run
    poisoned.admin.poisoned = False
    report = poisoned.run()
    # THEN every minute is published once and nothing is set aside
    assert report.set_aside == [] and _requests(world) == _minutes(world, 1, 2, 3)
    assert (world.state() or {}).get("suspect") is None


def test_a_set_aside_bucket_is_replayed_exactly_once_when_an_operator_asks(poisoned: Poisoned) -> None:
    world = poisoned.world
    poisoned.set_aside()
    # WHEN OpenAI answers properly again and the operator asks for a replay, twice
    poisoned.admin.poisoned = False
    first = poisoned.run("replay")
    world.clock.advance(300)
    second = poisoned.run("replay")
    # THEN the minute is published once, and nothing is left set aside
    assert first.replayed == [f"completions {_iso(world.start + 120)}"] and second.replayed == []
    assert _requests(world) == _minutes(world, 1, 2, 3)
    assert (world.state() or {})["set_aside"] == [] and first.still_set_aside == 0


def test_a_replay_of_a_bucket_still_failing_keeps_it_set_aside(poisoned: Poisoned) -> None:
    world = poisoned.world
    poisoned.set_aside()
    # WHEN the operator asks for a replay while OpenAI still answers with the poisoned count
    report = poisoned.run("replay")
    # THEN nothing more is published and the bucket stays set aside for a later replay
    assert report.replayed == [] and report.still_set_aside == 1
    assert _requests(world) == _minutes(world, 1, 3)


def test_a_replay_interrupted_after_its_publish_is_committed_not_repeated(poisoned: Poisoned) -> None:
    world = poisoned.world
    poisoned.set_aside()
    poisoned.admin.poisoned = False
    # GIVEN a replay that dies right after its PutMetricData landed
    crashing = boto3.client("cloudwatch", region_name=world.cloudwatch.meta.region_name)
    crashes = [SimulatedCrash("the function died")]

    def crash_once(**_: Any) -> None:
        if crashes:
            raise crashes.pop()

    crashing.meta.events.register("after-call.cloudwatch.PutMetricData", crash_once)
    with pytest.raises(SimulatedCrash):
        poisoned.run("replay", cloudwatch=crashing)
    # WHEN the next scheduled runs come (the dead run's lease lapses)
    for _ in range(3):
        world.clock.advance(300)
        poisoned.run()
    # THEN the minute was counted once and left the set-aside list
    assert _requests(world) == _minutes(world, 1, 2, 3)
    assert (world.state() or {})["set_aside"] == []


def test_dropping_set_aside_buckets_forgets_them_and_publishes_nothing(poisoned: Poisoned) -> None:
    world = poisoned.world
    poisoned.set_aside()
    # WHEN the operator drops them
    report = poisoned.run("drop")
    # THEN they are gone, and the minute stays unpublished
    assert report.dropped == [f"completions {_iso(world.start + 120)}"]
    assert (world.state() or {})["set_aside"] == [] and _requests(world) == _minutes(world, 1, 3)


def test_an_unknown_set_aside_input_is_refused_and_changes_nothing(poisoned: Poisoned) -> None:
    world = poisoned.world
    before = world.state()
    with pytest.raises(MonitorInputError, match="setAside must be one of replay, drop, got 'replay-all'"):
        poisoned.run("replay-all")
    assert world.state() == before and _requests(world) == {}


@pytest.mark.parametrize("value", [None, "4", 4.5, -1, True, {"n": 4}, 2**60], ids=repr)
def test_any_malformed_count_is_set_aside_after_three_runs(poisoned: Poisoned, value: Any) -> None:
    world = poisoned.world
    poisoned.admin.value = value
    poisoned.failing_runs(POISON_STRIKES - 1)
    assert poisoned.run().set_aside and _requests(world) == _minutes(world, 1, 3)


def _iso(moment: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")
