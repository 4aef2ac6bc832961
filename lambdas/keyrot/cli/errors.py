"""CLI errors and the one place that turns any failure into an exit code and a one-line, scrubbed message."""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    TokenRetrievalError,
)

from keyrot.cli.exit_codes import ExitCode
from keyrot.errors import AdminKeyError, AwsCallError, KeyrotError
from keyrot.openai_admin import OpenAIConnectionError, OpenAIError
from keyrot.redaction import scrub

# AWS error codes, by what the operator has to do about them.
_ACCESS_DENIED = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "AuthFailure"}
)
_BAD_CREDENTIALS = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "RequestExpired",
    }
)
_NOT_FOUND = frozenset({"ResourceNotFoundException"})

# The API prefix of every operation the CLI calls, so "access denied" names the IAM action to grant.
_SERVICE_OF_OPERATION = {
    **dict.fromkeys(
        (
            "DescribeSecret",
            "GetSecretValue",
            "ListSecrets",
            "ListSecretVersionIds",
            "PutSecretValue",
            "RotateSecret",
            "UpdateSecretVersionStage",
        ),
        "secretsmanager",
    ),
    "DescribeAlarms": "cloudwatch",
    "DescribeLogGroups": "logs",
    "FilterLogEvents": "logs",
    "GetCallerIdentity": "sts",
}


class CliError(KeyrotError):
    """A failure the CLI reports as one line on stderr with a specific exit code."""

    exit_code: int = ExitCode.FAILURE

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class NotFoundError(CliError):
    """An environment, key or admin-key secret that does not exist in this account and region."""

    exit_code = ExitCode.NOT_FOUND


class UsageError(CliError):
    exit_code = ExitCode.USAGE


class RotationFailedError(CliError):
    exit_code = ExitCode.ROTATION_FAILED


def iam_action(operation: str) -> str:
    """`secretsmanager:GetSecretValue` for `GetSecretValue` (the bare operation when the service is unknown)."""
    service = _SERVICE_OF_OPERATION.get(operation)
    return f"{service}:{operation}" if service else operation


def classify(exc: BaseException) -> tuple[int, str] | None:
    """The exit code and message for `exc`, or None when it is not a failure the CLI knows how to explain."""
    found = _classify(exc)
    if found is None:
        return None
    code, message = found
    return code, one_line(scrub(message))


def one_line(text: str) -> str:
    return " ".join(text.split())


def _classify(exc: BaseException) -> tuple[int, str] | None:
    if isinstance(exc, CliError):
        return exc.exit_code, str(exc)
    if isinstance(exc, AwsCallError):
        cause = exc.__cause__
        if isinstance(cause, ClientError | BotoCoreError):
            return _classify(cause)
        return _client_error(exc.operation, exc.code, str(exc))
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return _client_error(exc.operation_name, str(error.get("Code", "Unknown")), str(error.get("Message", "")))
    if isinstance(exc, BotoCoreError):
        return _botocore(exc)
    if isinstance(exc, AdminKeyError):
        return ExitCode.OPENAI, str(exc)
    if isinstance(exc, OpenAIConnectionError):
        return ExitCode.OPENAI, f"OpenAI is unreachable: {exc}"
    if isinstance(exc, OpenAIError):
        return ExitCode.OPENAI, str(exc)
    if isinstance(exc, KeyrotError):
        # Wrapped AWS failures (KeyUnavailableError from KeyProvider...) keep the code of their cause.
        cause = exc.__cause__
        if cause is not None and (found := _classify(cause)) is not None and found[0] != ExitCode.FAILURE:
            return found
        return ExitCode.FAILURE, str(exc)
    return None


def _client_error(operation: str, code: str, message: str) -> tuple[ExitCode, str]:
    action = iam_action(operation)
    if code in _ACCESS_DENIED:
        return ExitCode.ACCESS_DENIED, f"access denied: this identity may not call {action} ({message})"
    if code in _BAD_CREDENTIALS:
        return ExitCode.NO_CREDENTIALS, (
            f"AWS rejected the credentials ({code}) on {action}: refresh them (aws sso login, new session token) "
            "or pick another --profile"
        )
    if code in _NOT_FOUND:
        return ExitCode.NOT_FOUND, f"{action}: {message or code}"
    return ExitCode.FAILURE, f"AWS {action} failed: {code}: {message}"


def _botocore(exc: BotoCoreError) -> tuple[ExitCode, str]:
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        return ExitCode.NO_CREDENTIALS, (
            f"no usable AWS credentials ({type(exc).__name__}): configure the AWS credential chain "
            "(environment, aws configure, aws sso login) or pass --profile"
        )
    if isinstance(exc, TokenRetrievalError):
        return ExitCode.NO_CREDENTIALS, f"AWS SSO session expired or missing: run aws sso login ({exc})"
    if isinstance(exc, ProfileNotFound):
        return ExitCode.NO_CREDENTIALS, f"{exc}: check --profile and ~/.aws/config"
    if isinstance(exc, NoRegionError):
        return ExitCode.NO_CREDENTIALS, "no AWS region: pass --region or set AWS_REGION"
    if isinstance(exc, EndpointConnectionError):
        return ExitCode.FAILURE, f"cannot reach AWS: {exc}"
    return ExitCode.FAILURE, f"AWS request failed: {type(exc).__name__}: {exc}"
