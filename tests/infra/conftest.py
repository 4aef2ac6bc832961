"""Fixtures for the infra tests: the Pulumi program deployed (under mocks) from each stack file."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from infra_harness import STACKS, Deployment, close_harness_event_loop, deployed


@pytest.fixture(scope="session", autouse=True)
def _harness_event_loop() -> Iterator[None]:
    yield
    close_harness_event_loop()


@pytest.fixture(params=STACKS)
def deployment(request: pytest.FixtureRequest) -> Deployment:
    """The program as deployed from each stack file (run once per stack per session)."""
    return deployed(request.param)


@pytest.fixture
def dev() -> Deployment:
    return deployed("dev")


@pytest.fixture
def prod() -> Deployment:
    return deployed("prod")
