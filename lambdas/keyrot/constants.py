"""Names shared by the runtime, the infrastructure and the tests: tags, stages and environment variables."""

from __future__ import annotations

# Tags the infrastructure puts on every managed secret before it holds a value. They say what the secret is for.
TAG_ENVIRONMENT = "keyrot:environment"
TAG_KEY_NAME = "keyrot:key-name"
TAG_PROJECT_ID = "keyrot:openai-project-id"
REQUIRED_TAGS: tuple[str, ...] = (TAG_ENVIRONMENT, TAG_KEY_NAME, TAG_PROJECT_ID)
# Tag on the admin-key secret, so operators and the CLI can find it per environment.
TAG_ADMIN_SECRET = "keyrot:admin-key"  # noqa: S105 - a tag name, not a secret

# Secrets Manager staging labels. KEYROT_REVOKED marks the version whose OpenAI key keyrot has revoked.
STAGE_CURRENT = "AWSCURRENT"
STAGE_PENDING = "AWSPENDING"
STAGE_PREVIOUS = "AWSPREVIOUS"
STAGE_REVOKED = "KEYROT_REVOKED"

# Environment variables read by Settings.from_env() (and only there).
ENV_ENVIRONMENT = "KEYROT_ENVIRONMENT"
ENV_ADMIN_SECRET_ARN = "KEYROT_ADMIN_SECRET_ARN"  # noqa: S105 - a variable name
ENV_OPENAI_BASE_URL = "OPENAI_BASE_URL"
ENV_GRACE_PERIOD_SECONDS = "KEYROT_GRACE_PERIOD_SECONDS"
ENV_KEY_EXPIRY_SECONDS = "KEYROT_KEY_EXPIRY_SECONDS"
ENV_VALIDATION_ATTEMPTS = "KEYROT_VALIDATION_ATTEMPTS"
ENV_VALIDATION_DELAY_SECONDS = "KEYROT_VALIDATION_DELAY_SECONDS"

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"

# Service accounts minted by keyrot are named "keyrot:<environment>:<key name>:<rotation token>".
SERVICE_ACCOUNT_NAME_PREFIX = "keyrot"
