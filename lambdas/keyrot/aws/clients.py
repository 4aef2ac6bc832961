"""Lazily created, cached boto3 clients: one per service and region per process (a Lambda container)."""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

# Bounded, adaptive retries for every AWS call keyrot makes. Rotation steps are idempotent, so a retried call is safe.
_AWS_CONFIG = Config(retries={"max_attempts": 5, "mode": "adaptive"}, connect_timeout=5, read_timeout=20)
# One attempt, for calls that are not idempotent: a PutMetricData that landed but whose answer was lost would count
# its datapoints twice if botocore sent it again. The monitor's publish intent and markers recover such a call on the
# next run instead, knowing whether it landed.
_SINGLE_ATTEMPT_CONFIG = Config(
    retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=20
)

# The services the monitor uses, with the configuration each one needs.
MONITOR_SERVICES = ("secretsmanager", "cloudwatch", "ssm", "sns")


@functools.cache
def aws_client(service: str, region: str | None = None, *, retries: bool = True) -> Any:
    """The process-wide client for `service`. Tests clear the cache with aws_client.cache_clear()."""
    config = _AWS_CONFIG if retries else _SINGLE_ATTEMPT_CONFIG
    # boto3-stubs types client() per literal service name only; `service` is any name.
    return boto3.session.Session().client(service, region_name=region, config=config)  # type: ignore[call-overload]


def monitor_clients(region: str | None = None) -> dict[str, Any]:
    """The monitor's AWS clients by service. CloudWatch gets one attempt per call: PutMetricData is not idempotent."""
    return {service: aws_client(service, region, retries=service != "cloudwatch") for service in MONITOR_SERVICES}
