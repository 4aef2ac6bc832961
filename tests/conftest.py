"""Suite-wide fixtures: an AWS sandbox (fake credentials, moto), the OpenAI stand-in and a rotation world."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from keyrot.aws.clients import aws_client
from keyrot.observability import build_metrics
from lab.moto_gaps import patched_moto
from lab.openai_standin import OpenAIStandIn
from lab.scenario import RotationWorld

REGION = "us-east-1"

pytest_plugins = ["tests.support.hygiene", "tests.support.aws_actions"]


@pytest.fixture(autouse=True)
def aws_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test can reach real AWS: fake credentials, moto's default account, a fixed region, no endpoint overrides,
    fresh clients, and no EMF metrics left over from an earlier test (Powertools shares them per namespace)."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "KEYROT_", "MOTO_")) or name == "OPENAI_BASE_URL":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    aws_client.cache_clear()
    build_metrics().clear_metrics()
    yield
    aws_client.cache_clear()


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws(), patched_moto():
        yield


@pytest.fixture
def secrets_client(aws: None) -> Any:
    return boto3.client("secretsmanager", region_name=REGION)


@pytest.fixture
def openai_standin() -> Iterator[OpenAIStandIn]:
    with OpenAIStandIn() as standin:
        yield standin


@pytest.fixture
def world(openai_standin: OpenAIStandIn, secrets_client: Any) -> RotationWorld:
    return RotationWorld.create(openai_standin, secrets_client)
