"""A monitor world on one manual clock, starting on a minute boundary."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from keyrot import inventory
from lab.monitor_scenario import MonitorWorld
from lab.openai_standin import ManualClock, OpenAIStandIn


@pytest.fixture
def clock() -> ManualClock:
    now = int(time.time())
    return ManualClock(now - now % 60 - 3600)


@pytest.fixture
def monitor_standin(clock: ManualClock) -> Iterator[OpenAIStandIn]:
    with OpenAIStandIn(clock=clock) as standin:
        yield standin


@pytest.fixture
def monitor(aws: None, monitor_standin: OpenAIStandIn, clock: ManualClock) -> Iterator[MonitorWorld]:
    inventory.clear_cache()
    yield MonitorWorld.create(monitor_standin, clock)
    inventory.clear_cache()


@pytest.fixture
def new_monitor(aws: None, monitor_standin: OpenAIStandIn, clock: ManualClock) -> Iterator[Callable[[], MonitorWorld]]:
    """Makes isolated monitor worlds (one environment each) sharing moto, the stand-in and the clock."""
    count = itertools.count(1)
    inventory.clear_cache()
    yield lambda: MonitorWorld.create(monitor_standin, clock, environment=f"env{next(count)}")
    inventory.clear_cache()


def rotated(world: MonitorWorld, key_name: str, times: int = 1) -> str:
    """A managed secret rotated `times` times; returns its ARN."""
    arn = world.rotation.create_managed_secret(key_name)
    for _ in range(times):
        assert world.rotation.driver().rotate(arn).succeeded
    return arn


def current_key_id(world: MonitorWorld, arn: str) -> str:
    return world.rotation.current(arn).key_id


def previous_key_id(world: MonitorWorld, arn: str) -> str:
    previous = world.rotation.previous(arn)
    assert previous is not None
    return previous.key_id


def usage(world: MonitorWorld, key_id: str | None, minute: int, kind: str = "completions", **metrics: Any) -> None:
    """Record usage at `minute` minutes after the world's start time."""
    world.rotation.openai.state.record_usage(key_id, kind, at=world.start + minute * 60 + 5, **metrics)
