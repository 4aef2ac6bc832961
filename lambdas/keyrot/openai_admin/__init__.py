"""OpenAI admin client: service accounts, project keys, usage and costs, and key probing."""

from keyrot.openai_admin.client import USAGE_KINDS, OpenAIAdminClient
from keyrot.openai_admin.errors import (
    BadRequestError,
    BillingLimitError,
    InvalidKeyError,
    MalformedResponseError,
    NotFoundError,
    OpenAIConnectionError,
    OpenAIError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
)
from keyrot.openai_admin.models import (
    KeyCheck,
    KeyStatus,
    MintedServiceAccount,
    ProjectApiKey,
    RateLimitHeadroom,
    ServiceAccount,
)
from keyrot.openai_admin.probe import OpenAIKeyProbe
from keyrot.openai_admin.session import admin_errors, load_admin_client
from keyrot.openai_admin.transport import NO_RETRY, ApiResponse, OpenAITransport, RetryPolicy, Timeouts

__all__ = [
    "NO_RETRY",
    "USAGE_KINDS",
    "ApiResponse",
    "BadRequestError",
    "BillingLimitError",
    "InvalidKeyError",
    "KeyCheck",
    "KeyStatus",
    "MalformedResponseError",
    "MintedServiceAccount",
    "NotFoundError",
    "OpenAIAdminClient",
    "OpenAIConnectionError",
    "OpenAIError",
    "OpenAIKeyProbe",
    "OpenAITransport",
    "PermissionDeniedError",
    "ProjectApiKey",
    "RateLimitHeadroom",
    "RateLimitedError",
    "RetryPolicy",
    "ServerError",
    "ServiceAccount",
    "Timeouts",
    "admin_errors",
    "load_admin_client",
]
