"""A monitor run that dies after any remote call is safe to repeat: no bucket counted twice, none skipped."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from keyrot import metric_names as m
from keyrot.monitor import publisher
from keyrot.monitor.run import run_monitor
from keyrot.openai_admin import BadRequestError
from lab.monitor_scenario import MonitorWorld
from lab.openai_standin import Fault
from lab.remote_calls import RemoteCallLog, SimulatedCrash

from .conftest import current_key_id, rotated, usage

SETTLE = 600
EXPECTED = {1: 3, 2: 4, 3: 5}  # minute -> requests, for each of two keys


def _prepared(world: MonitorWorld) -> MonitorWorld:
    chat, search = rotated(world, "chat-backend"), rotated(world, "search")
    world.run()
    for minute, requests in EXPECTED.items():
        for arn in (chat, search):
            usage(
                world, current_key_id(world, arn), minute, num_model_requests=requests, input_tokens=1, output_tokens=1
            )
    world.clock.advance(5 * 60 + SETTLE)
    return world


def _assert_exact(world: MonitorWorld) -> None:
    t = world.start
    expected = {t + minute * 60: float(requests) for minute, requests in EXPECTED.items()}
    for key_name in ("chat-backend", "search"):
        dims = m.key_dimensions(world.settings.environment, key_name)
        assert world.sums(m.REQUESTS, dims, t - 3600, t + 7200) == expected, key_name


def _crash_after(world: MonitorWorld, call_number: int) -> RemoteCallLog:
    log = RemoteCallLog()
    log.crash_after = call_number
    with pytest.raises(SimulatedCrash):
        run_monitor(world.recorded_dependencies(log))
    return log


@pytest.mark.parametrize("per_call", [999, 6], ids=["one-usage-batch", "three-usage-batches"])
def test_crash_after_each_call_then_rerun_counts_every_bucket_once(
    new_monitor: Callable[[], MonitorWorld], monkeypatch: pytest.MonkeyPatch, per_call: int
) -> None:
    monkeypatch.setattr(publisher, "USAGE_DATUMS_PER_CALL", per_call)
    log = RemoteCallLog()
    run_monitor(_prepared(new_monitor()).recorded_dependencies(log))
    sequence = list(log.calls)
    assert sequence.count("aws:PutMetricData") == (2 if per_call == 999 else 4)
    for index, call in enumerate(sequence, start=1):
        world = _prepared(new_monitor())
        crashed = _crash_after(world, index)
        assert crashed.calls[-1] == call
        # the next scheduled runs, once the dead run's lease has lapsed
        world.clock.advance(360)
        world.run()
        world.clock.advance(300)
        world.run()
        _assert_exact(world)
        state = world.state()
        assert state is not None and state["intent"] is None, call


def test_a_too_recent_interrupted_publish_is_deferred_not_guessed(
    new_monitor: Callable[[], MonitorWorld], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publisher, "USAGE_DATUMS_PER_CALL", 6)
    log = RemoteCallLog()
    run_monitor(_prepared(new_monitor()).recorded_dependencies(log))
    first_usage_put = log.calls.index("aws:PutMetricData") + 1
    world = _prepared(new_monitor())
    log = RemoteCallLog()
    log.crash_after = first_usage_put
    with pytest.raises(SimulatedCrash):
        run_monitor(dataclasses.replace(world.recorded_dependencies(log), lease_seconds=30))  # a short function
    # WHEN the Lambda is retried a minute later, one of three batches is visible: too early to decide
    world.clock.advance(60)
    assert world.run().resumed_intent == "deferred"
    # THEN the next scheduled run republishes exactly what did not land
    world.clock.advance(300)
    assert world.run().resumed_intent == "republished"
    _assert_exact(world)


def test_openai_calls_per_run_do_not_depend_on_the_number_of_keys(new_monitor: Callable[[], MonitorWorld]) -> None:
    counts = []
    for keys in (1, 6):
        world = new_monitor()
        arns = [rotated(world, f"app-{i}") for i in range(keys)]
        world.run()
        for arn in arns:
            usage(world, current_key_id(world, arn), 1, num_model_requests=1, input_tokens=1, output_tokens=1)
        world.clock.advance(5 * 60 + SETTLE)
        log = RemoteCallLog()
        run_monitor(world.recorded_dependencies(log))
        counts.append(log.count("openai:"))
    assert counts[0] == counts[1]


def test_an_overlapping_run_is_skipped_and_a_dead_runs_lease_lapses(new_monitor: Callable[[], MonitorWorld]) -> None:
    world = _prepared(new_monitor())
    # GIVEN a run that died after taking the lease (its first state write)
    _crash_after(world, 2)
    # WHEN another run starts while the lease holds, it does nothing
    world.clock.advance(60)
    skipped = world.run()
    assert skipped.skipped is not None and "another monitor run holds the state" in skipped.skipped
    t = world.start
    assert (
        world.sums(m.REQUESTS, m.key_dimensions(world.settings.environment, "chat-backend"), t - 3600, t + 7200) == {}
    )
    # THEN once the lease lapses (the dead run's timeout), runs resume and count everything once
    world.clock.advance(300)
    assert world.run().skipped is None
    _assert_exact(world)


def test_a_failed_run_releases_its_lease(new_monitor: Callable[[], MonitorWorld]) -> None:
    world = _prepared(new_monitor())
    world.rotation.openai.faults.add(Fault(endpoint="usage", status=400, message="bad request"))
    with pytest.raises(BadRequestError):
        world.run()
    world.rotation.openai.faults.clear()
    assert world.run().skipped is None
    _assert_exact(world)
