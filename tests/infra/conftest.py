"""Fixtures for the infra tests: the Pulumi program deployed (under mocks) from each stack file."""

from __future__ import annotations

import pytest
from infra_harness import STACKS, Deployment, deployed


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
