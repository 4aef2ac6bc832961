"""Lazily created, cached boto3 clients: one per service and region per process (a Lambda container)."""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

# Bounded, adaptive retries for every AWS call keyrot makes. Rotation steps are idempotent, so a retried call is safe.
_AWS_CONFIG = Config(retries={"max_attempts": 5, "mode": "adaptive"}, connect_timeout=5, read_timeout=20)


@functools.cache
def aws_client(service: str, region: str | None = None) -> Any:
    """The process-wide client for `service`. Tests clear the cache with aws_client.cache_clear()."""
    return boto3.session.Session().client(service, region_name=region, config=_AWS_CONFIG)
