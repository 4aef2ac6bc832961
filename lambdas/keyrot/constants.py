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

# Written by finishSecret just before it moves AWSCURRENT: "<version id>@<unix seconds>", the moment that version
# became current. Retirement of the previous key (grace, quiet window, maximum grace) counts from it, not from the
# minting of the new key, so a rotation that stalled in AWSPENDING does not make the old key look long retired.
TAG_PROMOTED = "keyrot:promoted"

# Environment variables read by Settings.from_env() (and only there).
ENV_ENVIRONMENT = "KEYROT_ENVIRONMENT"
ENV_ADMIN_SECRET_ARN = "KEYROT_ADMIN_SECRET_ARN"  # noqa: S105 - a variable name
ENV_OPENAI_BASE_URL = "OPENAI_BASE_URL"
ENV_GRACE_PERIOD_SECONDS = "KEYROT_GRACE_PERIOD_SECONDS"
ENV_KEY_EXPIRY_SECONDS = "KEYROT_KEY_EXPIRY_SECONDS"
ENV_VALIDATION_ATTEMPTS = "KEYROT_VALIDATION_ATTEMPTS"
ENV_VALIDATION_DELAY_SECONDS = "KEYROT_VALIDATION_DELAY_SECONDS"
# Monitor-only settings.
ENV_PROJECT_ID = "KEYROT_OPENAI_PROJECT_ID"
ENV_TOPIC_ARN = "KEYROT_TOPIC_ARN"
ENV_STATE_PARAMETER = "KEYROT_STATE_PARAMETER"
ENV_MAX_GRACE_PERIOD_SECONDS = "KEYROT_MAX_GRACE_PERIOD_SECONDS"
ENV_QUIET_WINDOW_SECONDS = "KEYROT_QUIET_WINDOW_SECONDS"
ENV_IN_USE_POLICY = "KEYROT_IN_USE_POLICY"
ENV_SETTLE_DELAY_SECONDS = "KEYROT_SETTLE_DELAY_SECONDS"
ENV_USAGE_KINDS = "KEYROT_USAGE_KINDS"
ENV_NOTIFY_DEDUP_SECONDS = "KEYROT_NOTIFY_DEDUP_SECONDS"
ENV_RUNBOOK_URL = "KEYROT_RUNBOOK_URL"
# Whether the monitor publishes the per-key metrics only the dashboard reads (keyrot.metric_names.DASHBOARD_ONLY).
ENV_DASHBOARD_METRICS = "KEYROT_DASHBOARD_METRICS"
# The per-key usage metrics the anomaly alarms read (comma-separated metric names), published with or without it.
ENV_ANOMALY_METRICS = "KEYROT_ANOMALY_METRICS"
# What the deployment says each function manages (never read from a writable tag): the environment's secrets as a
# JSON object {key name: secret ARN}, and the other environments declared to share the OpenAI project
# (comma-separated; their keyrot accounts are not reported as unmanaged). Both functions get both.
ENV_MANAGED_SECRETS = "KEYROT_MANAGED_SECRETS"
ENV_SHARED_ENVIRONMENTS = "KEYROT_SHARED_ENVIRONMENTS"
# The longest time between two scheduled rotations (from the schedule), for the rotation function: a pending key
# whose OpenAI-side expiry leaves less than this plus the maximum grace is never promoted.
ENV_ROTATION_INTERVAL_SECONDS = "KEYROT_ROTATION_INTERVAL_SECONDS"
# The scopes each key is minted with, for the rotation function: a JSON object {key name: [scope, ...]} (keyrot.scopes
# lists the names). A key it does not name, or a deployment without it, mints unrestricted keys.
ENV_KEY_SCOPES = "KEYROT_KEY_SCOPES"

# Lambda entry points (module path inside the archive, as the tests import them).
ROTATION_HANDLER = "keyrot.handlers.rotate.handler"
# The rotation function's timeout (the infra sets it). No invocation outlives it, so an account minted for a rotation
# longer ago than this (plus clock skew between OpenAI and AWS) belongs to no invocation still running.
ROTATION_TIMEOUT_SECONDS = 120
CLOCK_SKEW_SECONDS = 60
MONITOR_HANDLER = "keyrot.handlers.monitor.handler"

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
# The operator CLI's OpenAI endpoint (it carries the organization admin key). Never OPENAI_BASE_URL, which
# applications point at gateways and proxies; read by keyrot.cli only, not by Settings.from_env().
ENV_OPENAI_ADMIN_BASE_URL = "KEYROT_OPENAI_ADMIN_BASE_URL"

# Service accounts minted by keyrot are named "keyrot:<environment>:<key name>:<rotation token>".
SERVICE_ACCOUNT_NAME_PREFIX = "keyrot"


def managed_secret_name(environment: str, key_name: str) -> str:
    """Secrets Manager name of the secret holding `key_name`'s OpenAI key in `environment`."""
    return f"keyrot/{environment}/{key_name}"


def admin_secret_name(environment: str) -> str:
    """Secrets Manager name of the admin-key secret keyrot creates for `environment`."""
    return f"keyrot/{environment}/openai-admin-key"


# What the infrastructure puts in the monitor's state parameter when it declares it: "no state yet, first run".
STATE_PARAMETER_PLACEHOLDER = "unset: the keyrot monitor writes its state here on its first run"


def state_parameter_name(environment: str) -> str:
    """SSM parameter holding the monitor's watermark and notification state for `environment`."""
    return f"/keyrot/{environment}/monitor-state"


# --- Admin-key rotation (keyrot.admin_rotation): the admin-key secret's own rotation function ---------------------
ADMIN_ROTATION_HANDLER = "keyrot.handlers.rotate_admin.handler"
ADMIN_ROTATION_PURPOSE = "admin-rotation"  # the function is keyrot-<env>-admin-rotation (keyrot.names.function_name)
# Its timeout (the infra sets it): as for ROTATION_TIMEOUT_SECONDS, an admin key minted for a rotation longer ago than
# this plus CLOCK_SKEW_SECONDS belongs to no invocation still running.
ADMIN_ROTATION_TIMEOUT_SECONDS = 120
# Admin keys keyrot mints are named "keyrot-admin:<environment>:<rotation token>"; the keyless service account
# testSecret creates (and deletes) to prove the new admin key may write is "keyrot-admin-probe:<environment>:<token>".
ADMIN_KEY_NAME_PREFIX = "keyrot-admin"
ADMIN_PROBE_ACCOUNT_PREFIX = "keyrot-admin-probe"
# Settings of the admin rotation function (AdminRotationSettings.from_env reads them).
ENV_ADMIN_ROTATION_INTERVAL_SECONDS = "KEYROT_ADMIN_ROTATION_INTERVAL_SECONDS"
ENV_ADMIN_KEY_EXPIRY_SLACK_SECONDS = "KEYROT_ADMIN_KEY_EXPIRY_SLACK_SECONDS"
ENV_ADMIN_KEY_GRACE_SECONDS = "KEYROT_ADMIN_KEY_GRACE_SECONDS"
ENV_ADMIN_DELETE_BOOTSTRAP_KEY = "KEYROT_ADMIN_DELETE_BOOTSTRAP_KEY"
DEFAULT_ADMIN_ROTATION_INTERVAL_SECONDS = 30 * 86400  # adminKeyRotation.schedule: 30 days
# OpenAI-side expiry of a minted admin key: the interval plus this. Two weeks for a human to fix a failing rotation
# after the age alarm fires (interval plus ADMIN_KEY_AGE_ALARM_SLACK_SECONDS) before keyrot loses its admin key.
DEFAULT_ADMIN_KEY_EXPIRY_SLACK_SECONDS = 14 * 86400
ADMIN_KEY_AGE_ALARM_SLACK_SECONDS = 86400
# The old admin key is deleted once no function can still hold it. Every keyrot function reads the admin key afresh
# in each invocation and no Lambda invocation lives longer than 900 s (Lambda's maximum timeout, whatever timeout a
# function is given; today 120 s and 300 s), so after 900 s plus the clock skew allowance nobody holds it.
LAMBDA_MAX_TIMEOUT_SECONDS = 900
DEFAULT_ADMIN_KEY_GRACE_SECONDS = LAMBDA_MAX_TIMEOUT_SECONDS + CLOCK_SKEW_SECONDS
# The event a schedule sends the admin rotation function to delete what is due (the previous admin key after its
# grace, abandoned attempts' keys and probe accounts): {ADMIN_CLEANUP_EVENT_FIELD: ADMIN_CLEANUP_EVENT_VALUE}.
ADMIN_CLEANUP_EVENT_FIELD = "keyrot"
ADMIN_CLEANUP_EVENT_VALUE = "admin-key-cleanup"
ADMIN_CLEANUP_SCHEDULE = "rate(5 minutes)"


# --- OpenAI guardrails as code (keyrot.guardrails; docs/guardrails.md) ------------------------------------------
# The function applying and checking the declared guardrails reads them from this SSM parameter, and trusts them only
# if their SHA-256 is the one its configuration carries (so writing the parameter alone changes nothing).
ENV_GUARDRAILS_PARAMETER = "KEYROT_GUARDRAILS_PARAMETER"
ENV_GUARDRAILS_SHA256 = "KEYROT_GUARDRAILS_SHA256"
GUARDRAILS_HANDLER = "keyrot.handlers.guardrails.handler"


def guardrails_parameter_name(environment: str) -> str:
    """SSM parameter holding the declared guardrails document of `environment` (written by the deployment)."""
    return f"/keyrot/{environment}/guardrails"


# What the guardrails function remembers between checks (keyrot.guardrails.oncall): digests of the drift on-call was
# told about, and the month the hard spend limit was reported reached. The deployment declares it with this value.
ENV_GUARDRAILS_STATE_PARAMETER = "KEYROT_GUARDRAILS_STATE_PARAMETER"
GUARDRAILS_STATE_PLACEHOLDER = "unset: the keyrot guardrails check writes what it told on-call here"


def guardrails_state_parameter_name(environment: str) -> str:
    """SSM parameter where the guardrails check of `environment` remembers what it told on-call."""
    return f"/keyrot/{environment}/guardrails-state"
