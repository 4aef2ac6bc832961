"""Every failure maps to its documented exit code and a one-line, scrubbed message (no AWS or OpenAI needed)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError, ProfileNotFound

from keyrot.cli.errors import CliError, NotFoundError, classify
from keyrot.cli.exit_codes import ExitCode
from keyrot.errors import AdminKeyError, AwsCallError, SecretContractError
from keyrot.openai_admin import OpenAIConnectionError, RateLimitedError


def _client_error(code: str, operation: str = "GetSecretValue", message: str = "nope") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (NoCredentialsError(), ExitCode.NO_CREDENTIALS),
        (NoRegionError(), ExitCode.NO_CREDENTIALS),
        (ProfileNotFound(profile="oncall"), ExitCode.NO_CREDENTIALS),
        (_client_error("ExpiredTokenException"), ExitCode.NO_CREDENTIALS),
        (_client_error("UnrecognizedClientException"), ExitCode.NO_CREDENTIALS),
        (_client_error("AccessDeniedException"), ExitCode.ACCESS_DENIED),
        (_client_error("ResourceNotFoundException"), ExitCode.NOT_FOUND),
        (_client_error("ThrottlingException"), ExitCode.FAILURE),
        (NotFoundError("no such key"), ExitCode.NOT_FOUND),
        (AdminKeyError("the admin key was rejected"), ExitCode.OPENAI),
        (OpenAIConnectionError("connection failed"), ExitCode.OPENAI),
        (RateLimitedError("slow down"), ExitCode.OPENAI),
        (SecretContractError("secret value is not valid JSON"), ExitCode.FAILURE),
    ],
)
def test_classify_maps_each_failure_to_its_exit_code(error: BaseException, expected: ExitCode) -> None:
    found = classify(error)
    assert found is not None
    assert found[0] == expected


def test_classify_names_the_iam_action_of_a_denied_call() -> None:
    found = classify(_client_error("AccessDeniedException", "RotateSecret"))
    assert found == (
        ExitCode.ACCESS_DENIED,
        "access denied: this identity may not call secretsmanager:RotateSecret (nope)",
    )


def test_classify_follows_an_aws_call_error_to_its_client_error() -> None:
    try:
        try:
            raise _client_error("AccessDeniedException", "PutSecretValue")
        except ClientError as exc:
            raise AwsCallError("PutSecretValue", "AccessDeniedException", "nope") from exc
    except AwsCallError as wrapped:
        found = classify(wrapped)
    assert found is not None and found[0] == ExitCode.ACCESS_DENIED


def test_classify_scrubs_key_material_and_keeps_one_line() -> None:
    found = classify(CliError("bad key sk-proj-PLANTEDabcdefghijklmnopqrstuvwxyz0123456789\nsecond line"))
    assert found is not None
    assert "PLANTEDabcdefghijklmnop" not in found[1]
    assert "\n" not in found[1]


def test_classify_leaves_unknown_exceptions_to_the_caller() -> None:
    assert classify(ValueError("a bug")) is None
