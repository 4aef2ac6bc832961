"""The Lambdas' environment variables, exactly as `RotationSettings.from_env` / `MonitorSettings.from_env` read them.

Plain functions of the configuration (ARNs may be Outputs). Names come from keyrot.constants so they cannot drift.
Nothing secret goes here: the admin key is read from its secret at run time. POWERTOOLS_SERVICE_NAME is deliberately
absent: it would add a `service` dimension to every EMF metric and the alarms would no longer match.
"""

from __future__ import annotations

import pulumi

from infra.config import KeyrotConfig
from keyrot.constants import (
    ENV_ADMIN_SECRET_ARN,
    ENV_ENVIRONMENT,
    ENV_GRACE_PERIOD_SECONDS,
    ENV_IN_USE_POLICY,
    ENV_KEY_EXPIRY_SECONDS,
    ENV_MAX_GRACE_PERIOD_SECONDS,
    ENV_OPENAI_BASE_URL,
    ENV_PROJECT_ID,
    ENV_QUIET_WINDOW_SECONDS,
    ENV_RUNBOOK_URL,
    ENV_SETTLE_DELAY_SECONDS,
    ENV_STATE_PARAMETER,
    ENV_TOPIC_ARN,
    ENV_USAGE_KINDS,
    state_parameter_name,
)

HOUR = 3600
MINUTE = 60


def rotation_environment(config: KeyrotConfig, *, admin_secret_arn: pulumi.Input[str]) -> dict[str, pulumi.Input[str]]:
    variables: dict[str, pulumi.Input[str]] = {
        ENV_ENVIRONMENT: config.environment,
        ENV_ADMIN_SECRET_ARN: admin_secret_arn,
        ENV_GRACE_PERIOD_SECONDS: str(config.grace_period_hours * HOUR),
        ENV_KEY_EXPIRY_SECONDS: str(config.key_expiry_hours * HOUR),
    }
    if config.openai_base_url:
        variables[ENV_OPENAI_BASE_URL] = config.openai_base_url
    return variables


def monitor_environment(
    config: KeyrotConfig, *, admin_secret_arn: pulumi.Input[str], topic_arn: pulumi.Input[str]
) -> dict[str, pulumi.Input[str]]:
    variables: dict[str, pulumi.Input[str]] = {
        ENV_ENVIRONMENT: config.environment,
        ENV_ADMIN_SECRET_ARN: admin_secret_arn,
        ENV_PROJECT_ID: config.openai_project_id,
        ENV_TOPIC_ARN: topic_arn,
        ENV_STATE_PARAMETER: state_parameter_name(config.environment),
        ENV_GRACE_PERIOD_SECONDS: str(config.grace_period_hours * HOUR),
        ENV_MAX_GRACE_PERIOD_SECONDS: str(config.max_grace_period_hours * HOUR),
        ENV_QUIET_WINDOW_SECONDS: str(config.quiet_window_minutes * MINUTE),
        ENV_IN_USE_POLICY: config.in_use_policy,
        ENV_SETTLE_DELAY_SECONDS: str(config.settle_delay_minutes * MINUTE),
        ENV_USAGE_KINDS: ",".join(config.usage_kinds),
        ENV_RUNBOOK_URL: config.runbook_url,
    }
    if config.openai_base_url:
        variables[ENV_OPENAI_BASE_URL] = config.openai_base_url
    return variables
