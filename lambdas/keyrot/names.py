"""How keyrot spells what it names in AWS and in its logs: one definition for the runtime, the CLI and the infra.

Functions, their log groups, alarms and the rotation function's step log lines are named here and only here: the
infrastructure creates them under these names and the CLI finds them by the same names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from keyrot.constants import TAG_ENVIRONMENT, TAG_KEY_NAME, TAG_PROJECT_ID

# Every AWS resource keyrot creates is named "keyrot-<environment>-…".
RESOURCE_PREFIX = "keyrot"
ROTATION_PURPOSE = "rotation"
MONITOR_PURPOSE = "monitor"

# The rotation function's per-step log lines (their `message` field); `keyrot rotate` follows them.
STEP_STARTED = "rotation step started"
STEP_SUCCEEDED = "rotation step succeeded"
STEP_FAILED = "rotation step failed"
# CloudWatch Logs filter pattern matching the step lines above (an exact phrase in the JSON line's text).
STEP_LOG_FILTER = '"rotation step"'

# Alarms of one key are "keyrot-<environment>-<key name>-<suffix>"; every other "keyrot-<environment>-…" alarm is
# environment-wide. Key names may themselves look like alarm suffixes ("monitor", "daily"), so per-key alarms are
# recognised by their exact names, never by prefix.
REQUESTS_ANOMALY_ALARM = "requests-anomaly"
INPUT_TOKENS_ANOMALY_ALARM = "input-tokens-anomaly"
KEY_ALARM_SUFFIXES: tuple[str, ...] = (REQUESTS_ANOMALY_ALARM, INPUT_TOKENS_ANOMALY_ALARM)
# Any managed key older than its schedule allows: one alarm on the oldest key's age (OldestKeyAgeHours).
KEYS_TOO_OLD_ALARM = "key-too-old"
# Environment-wide alarms, "keyrot-<environment>-<suffix>" (status files any other keyrot alarm here too). None ends
# in "-<a per-key suffix>": then no key's alarm can take an environment alarm's name, whatever the key is called.
ENVIRONMENT_ALARM_SUFFIXES: tuple[str, ...] = (
    "rotation-lambda-errors",
    "rotation-failed",
    "monitor-lambda-errors",
    "monitor-not-running",
    "daily-spend",
    "unmanaged-key-requests",
    "retired-key-requests",
    "revocation-failed",
    "costs-read-failed",
    KEYS_TOO_OLD_ALARM,
    # OpenAI guardrails (only when the stack declares `guardrails`).
    "guardrail-drift",
    "guardrails-apply-failed",
    # The admin key's own rotation (only when keyrot creates the admin-key secret and rotates it).
    "admin-rotation-failed",
    "admin-rotation-lambda-errors",
    "admin-key-too-old",
    "admin-key-cleanup-failed",
    "admin-keys-live",
)


def utc_now() -> datetime:
    """keyrot's clock: an aware datetime in UTC."""
    return datetime.now(UTC)


def function_name(environment: str, purpose: str) -> str:
    """`keyrot-<environment>-<purpose>`, the Lambda function of `purpose` (rotation, monitor)."""
    return f"{RESOURCE_PREFIX}-{environment}-{purpose}"


def log_group_name(environment: str, purpose: str) -> str:
    """Lambda's default log group of the function (the infrastructure creates it under this name)."""
    return f"/aws/lambda/{function_name(environment, purpose)}"


def rotation_log_group(environment: str) -> str:
    """The rotation function's log group, where its step lines land."""
    return log_group_name(environment, ROTATION_PURPOSE)


def alarm_prefix(environment: str) -> str:
    """`keyrot-<environment>-`: the start of every alarm name of the environment."""
    return f"{RESOURCE_PREFIX}-{environment}-"


def environment_alarm_name(environment: str, suffix: str) -> str:
    """An environment-wide alarm, e.g. `keyrot-prod-rotation-failed`."""
    return f"{alarm_prefix(environment)}{suffix}"


def key_alarm_name(environment: str, key_name: str, suffix: str) -> str:
    """A per-key alarm, e.g. `keyrot-prod-chat-backend-requests-anomaly`; `suffix` is one of KEY_ALARM_SUFFIXES."""
    if suffix not in KEY_ALARM_SUFFIXES:
        raise ValueError(f"unknown per-key alarm {suffix!r}; expected one of {', '.join(KEY_ALARM_SUFFIXES)}")
    return f"{alarm_prefix(environment)}{key_name}-{suffix}"


def key_alarm_names(environment: str, key_name: str) -> tuple[str, ...]:
    """Every per-key alarm name of `key_name` in `environment`."""
    return tuple(key_alarm_name(environment, key_name, suffix) for suffix in KEY_ALARM_SUFFIXES)


def managed_secret_tags(environment: str, key_name: str, project_id: str) -> dict[str, str]:
    """The tags that say what a managed secret is for (the infrastructure puts them on before any value)."""
    return {TAG_ENVIRONMENT: environment, TAG_KEY_NAME: key_name, TAG_PROJECT_ID: project_id}


def tag_map(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    """AWS's `[{"Key": k, "Value": v}, ...]` as `{k: v}` (a missing value is empty)."""
    return {tag["Key"]: tag.get("Value", "") for tag in tags or ()}
