"""Fixtures of the admin rotation tests: an admin-key secret holding the bootstrap key, rotation enabled."""

from __future__ import annotations

from typing import Any

import pytest

from lab.openai_standin import OpenAIStandIn

from .world import AdminWorld


@pytest.fixture
def admin_world(openai_standin: OpenAIStandIn, secrets_client: Any) -> AdminWorld:
    return AdminWorld.create(openai_standin, secrets_client)
