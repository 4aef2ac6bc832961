"""Turn botocore failures into AwsCallError naming the operation and the AWS error code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from keyrot.errors import AwsCallError


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def as_call_error(operation: str, exc: ClientError) -> AwsCallError:
    message = str(exc.response.get("Error", {}).get("Message", ""))[:300]
    return AwsCallError(operation, error_code(exc), message)


@contextmanager
def aws_errors(operation: str) -> Iterator[None]:
    """Re-raise ClientError and BotoCoreError raised inside the block as AwsCallError for `operation`."""
    try:
        yield
    except ClientError as exc:
        raise as_call_error(operation, exc) from exc
    except BotoCoreError as exc:
        raise AwsCallError(operation, type(exc).__name__, "request did not complete") from exc
