"""Typed OpenAI errors. Messages are scrubbed: they never carry a key, even OpenAI's own masked echo of one."""

from __future__ import annotations

from typing import Any

from keyrot.errors import KeyrotError

# 429 codes that mean "pay or raise a limit", not "slow down": never retried.
BILLING_ERROR_CODES = frozenset(
    {
        "insufficient_quota",
        "credit_balance_exhausted",
        "organization_spend_limit_exceeded",
        "project_spend_limit_exceeded",
        "organization_usage_limit_exceeded",
        "billing_hard_limit_reached",
    }
)


class OpenAIError(KeyrotError):
    """An OpenAI API call failed. `retryable` says whether trying again later can help."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.error_type = error_type
        self.request_id = request_id
        self.retry_after = retry_after
        self.param = param  # the request field OpenAI's error names (e.g. max_requests_per_1_minute), if any


class InvalidKeyError(OpenAIError):
    """401 invalid_api_key: the key is unknown, revoked, expired or deleted. The key is dead."""


class PermissionDeniedError(OpenAIError):
    """The key authenticates but may not do this: missing scope, IP allow-list, region, org membership (401/403)."""


class AuditLogUnavailableError(PermissionDeniedError):
    """The audit log refused to be read (HTTP 403): audit logging is off for the organization (an owner turns it on
    in the organization's Data controls settings), or the admin key may not read it. OpenAI documents neither answer;
    the stand-in answers 403 when logging is off."""


class NotFoundError(OpenAIError):
    """404: the project, service account or key does not exist."""


class BadRequestError(OpenAIError):
    """400/409/422: OpenAI rejected the request itself (archived project, bad parameter)."""


class RateLimitedError(OpenAIError):
    """429 rate_limit_exceeded: slow down and retry (after Retry-After when given)."""

    retryable = True


class BillingLimitError(OpenAIError):
    """429 quota or spend limit: retrying cannot help; a human must act."""


class ServerError(OpenAIError):
    """5xx from OpenAI (or a proxy in front of it)."""

    retryable = True


class OpenAIConnectionError(OpenAIError):
    """The request did not complete: connection refused or dropped, DNS, TLS or timeout.

    `sent` is False only when the request provably never reached OpenAI (no connection was made), so it cannot have
    taken effect; a dropped connection or a read timeout may follow a request that OpenAI carried out.
    """

    retryable = True

    def __init__(self, message: str, *, sent: bool = True, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.sent = sent


class MalformedResponseError(OpenAIError):
    """A success status with a body that is not the JSON OpenAI documents (truncated, HTML, missing fields)."""

    retryable = True
