"""Guardrails against the OpenAI stand-in (real HTTP on 127.0.0.1, spec-validated answers) with keyrot's real admin
client; the function and the CLI also get moto (the admin-key secret, the declared parameter)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from keyrot.constants import (
    ENV_ADMIN_SECRET_ARN,
    ENV_ENVIRONMENT,
    ENV_GUARDRAILS_PARAMETER,
    ENV_GUARDRAILS_SHA256,
    ENV_OPENAI_BASE_URL,
    ENV_PROJECT_ID,
    guardrails_parameter_name,
)
from keyrot.guardrails import DeclaredGuardrails, document_digest, document_json, parse_guardrails
from keyrot.openai_admin import OpenAIAdminClient, OpenAITransport, RetryPolicy
from lab.openai_standin import OpenAIStandIn
from lab.scenario import RotationWorld
from tests.support.openapi import assert_calls_conform

RETRY = RetryPolicy(max_attempts=3)
WRITE_ENDPOINTS = frozenset(
    {
        "update_rate_limit",
        "set_spend_limit",
        "delete_spend_limit",
        "create_spend_alert",
        "update_spend_alert",
        "delete_spend_alert",
        "set_model_permissions",
        "delete_model_permissions",
    }
)
BLOCK: dict[str, Any] = {
    "rateLimits": {
        "gpt-4o-mini": {"max_requests_per_1_minute": 500, "max_tokens_per_1_minute": 200_000},
        "gpt-4.1": {"batch_1_day_max_input_tokens": 1_000_000},
    },
    "spendLimitUsd": 100,
    "spendAlerts": [
        {"thresholdUsd": 50, "recipients": ["finance@example.com"]},
        {"thresholdUsd": 80, "recipients": ["oncall@example.com", "finance@example.com"]},
    ],
    "models": {"allow": ["gpt-4o-mini", "gpt-4.1"]},
}


@dataclass
class Project:
    """One stand-in project and an admin client for it (sleeps recorded, not slept)."""

    standin: OpenAIStandIn
    project_id: str
    admin_key: str = field(repr=False)
    sleeps: list[float] = field(default_factory=list)

    def admin(self, retry: RetryPolicy = RETRY) -> OpenAIAdminClient:
        transport = OpenAITransport(self.standin.base_url, retry=retry, sleep=self.sleeps.append)
        return OpenAIAdminClient(self.admin_key, transport)

    def writes(self) -> list[str]:
        """The changing calls the stand-in received since the last reset (endpoint names)."""
        return [call.endpoint for call in self.standin.calls if call.endpoint in WRITE_ENDPOINTS]

    @property
    def rails(self) -> Any:
        return self.standin.state.guardrails_for(self.project_id)


@pytest.fixture
def project(openai_standin: OpenAIStandIn) -> Iterator[Project]:
    state = openai_standin.state
    yield Project(openai_standin, state.add_project(), state.add_admin_key())
    assert_calls_conform(openai_standin.calls)


def declare(world: RotationWorld, ssm: Any, monkeypatch: pytest.MonkeyPatch, block: Any) -> DeclaredGuardrails:
    """Deploy `block` as the infrastructure does: the parameter's document and the function's configuration."""
    declared = parse_guardrails(block)
    text = document_json(declared)
    name = guardrails_parameter_name(world.environment)
    ssm.put_parameter(Name=name, Type="String", Value=text, Overwrite=True)
    for variable, value in {
        ENV_ENVIRONMENT: world.environment,
        ENV_ADMIN_SECRET_ARN: world.admin_secret_arn,
        ENV_PROJECT_ID: world.project_id,
        ENV_OPENAI_BASE_URL: world.openai.base_url,
        ENV_GUARDRAILS_PARAMETER: name,
        ENV_GUARDRAILS_SHA256: document_digest(text),
    }.items():
        monkeypatch.setenv(variable, value)
    return declared


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]
