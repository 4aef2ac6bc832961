"""OpenAI admin client: admin keys, service accounts and scoped keys, project keys, usage and costs, the audit log,
project guardrails, and key probing."""

from keyrot.openai_admin.audit_log import (
    AuditActor,
    AuditBatch,
    AuditCursor,
    AuditEvent,
    MalformedAuditEvent,
    UnknownAuditEvent,
)
from keyrot.openai_admin.client import USAGE_KINDS, OpenAIAdminClient
from keyrot.openai_admin.errors import (
    AuditLogUnavailableError,
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
from keyrot.openai_admin.guardrails import ModelPermissions, RateLimit, SpendAlert, SpendLimit
from keyrot.openai_admin.models import (
    AdminApiKey,
    KeyCheck,
    KeyStatus,
    MintedAdminApiKey,
    MintedServiceAccount,
    MintedServiceAccountKey,
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
    "AdminApiKey",
    "ApiResponse",
    "AuditActor",
    "AuditBatch",
    "AuditCursor",
    "AuditEvent",
    "AuditLogUnavailableError",
    "BadRequestError",
    "BillingLimitError",
    "InvalidKeyError",
    "KeyCheck",
    "KeyStatus",
    "MalformedAuditEvent",
    "MalformedResponseError",
    "MintedAdminApiKey",
    "MintedServiceAccount",
    "MintedServiceAccountKey",
    "ModelPermissions",
    "NotFoundError",
    "OpenAIAdminClient",
    "OpenAIConnectionError",
    "OpenAIError",
    "OpenAIKeyProbe",
    "OpenAITransport",
    "PermissionDeniedError",
    "ProjectApiKey",
    "RateLimit",
    "RateLimitHeadroom",
    "RateLimitedError",
    "RetryPolicy",
    "ServerError",
    "ServiceAccount",
    "SpendAlert",
    "SpendLimit",
    "Timeouts",
    "UnknownAuditEvent",
    "admin_errors",
    "load_admin_client",
]
