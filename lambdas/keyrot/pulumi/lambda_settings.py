"""The Lambdas' environment variables, exactly as the functions' `Settings.from_env` read them (rotation, monitor,
guardrails, admin rotation).

Plain functions of the configuration (ARNs may be Outputs). Names come from keyrot.constants so they cannot drift.
Nothing secret goes here: the admin key is read from its secret at run time. POWERTOOLS_SERVICE_NAME is deliberately
absent: it would add a `service` dimension to every EMF metric and the alarms would no longer match.

What each function may act on comes from here, never from a writable tag: the environment's secrets
(`KEYROT_MANAGED_SECRETS`, {key name: secret ARN}), its OpenAI project and the environments declared to share it.
Lambda caps the variables at 4 KB in all; `environment_size_problems` checks that at preview, before AWS refuses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pulumi

from keyrot import metric_names as m
from keyrot.constants import (
    ENV_ADMIN_DELETE_BOOTSTRAP_KEY,
    ENV_ADMIN_ROTATION_INTERVAL_SECONDS,
    ENV_ADMIN_SECRET_ARN,
    ENV_ANOMALY_METRICS,
    ENV_DASHBOARD_METRICS,
    ENV_ENVIRONMENT,
    ENV_GRACE_PERIOD_SECONDS,
    ENV_GUARDRAILS_PARAMETER,
    ENV_GUARDRAILS_SHA256,
    ENV_GUARDRAILS_STATE_PARAMETER,
    ENV_IN_USE_POLICY,
    ENV_KEY_EXPIRY_SECONDS,
    ENV_KEY_SCOPES,
    ENV_MANAGED_SECRETS,
    ENV_MAX_GRACE_PERIOD_SECONDS,
    ENV_OPENAI_BASE_URL,
    ENV_PROJECT_ID,
    ENV_QUIET_WINDOW_SECONDS,
    ENV_ROTATION_INTERVAL_SECONDS,
    ENV_RUNBOOK_URL,
    ENV_SETTLE_DELAY_SECONDS,
    ENV_SHARED_ENVIRONMENTS,
    ENV_STATE_PARAMETER,
    ENV_TOPIC_ARN,
    ENV_USAGE_KINDS,
    admin_secret_name,
    guardrails_parameter_name,
    guardrails_state_parameter_name,
    managed_secret_name,
    state_parameter_name,
)
from keyrot.pulumi.config import LAMBDA_ENVIRONMENT_LIMIT_BYTES, NAMESPACE, KeyrotConfig

# How long KEYROT_MANAGED_SECRETS may be: the functions' own reader refuses anything longer.
from keyrot.settings import _MAX_MANAGED_SECRETS_CHARS as MANAGED_SECRETS_LIMIT_CHARS

HOUR = 3600
MINUTE = 60


def managed_secrets_json(secret_arns: Mapping[str, pulumi.Input[str]]) -> pulumi.Input[str]:
    """KEYROT_MANAGED_SECRETS: {key name: secret ARN} as compact JSON, keys sorted (a stable input)."""
    if not secret_arns:
        return "{}"
    if all(isinstance(arn, str) for arn in secret_arns.values()):
        return json.dumps(dict(sorted(secret_arns.items())), separators=(",", ":"))
    return pulumi.Output.all(**dict(secret_arns)).apply(
        lambda resolved: json.dumps(dict(sorted(resolved.items())), separators=(",", ":"))
    )


def key_scopes_json(config: KeyrotConfig) -> str | None:
    """KEYROT_KEY_SCOPES: {key name: [scope, ...]} for the keys that declare scopes, compact, keys sorted; None when
    no key does (the variable is then left out, so a stack without scopes deploys exactly as before)."""
    scoped = {key.name: list(key.scopes) for key in config.keys if key.scopes is not None}
    return json.dumps(dict(sorted(scoped.items())), separators=(",", ":")) if scoped else None


def _deployment_variables(
    config: KeyrotConfig, managed_secret_arns: Mapping[str, pulumi.Input[str]] | None
) -> dict[str, pulumi.Input[str]]:
    """What both functions are told about the deployment: the project, the other environments, the secrets."""
    variables: dict[str, pulumi.Input[str]] = {
        ENV_PROJECT_ID: config.openai_project_id,
        ENV_SHARED_ENVIRONMENTS: ",".join(config.shared_project_environments),
    }
    if managed_secret_arns is not None:
        variables[ENV_MANAGED_SECRETS] = managed_secrets_json(managed_secret_arns)
    return variables


def rotation_environment(
    config: KeyrotConfig,
    *,
    admin_secret_arn: pulumi.Input[str],
    managed_secret_arns: Mapping[str, pulumi.Input[str]] | None = None,
) -> dict[str, pulumi.Input[str]]:
    variables: dict[str, pulumi.Input[str]] = {
        ENV_ENVIRONMENT: config.environment,
        ENV_ADMIN_SECRET_ARN: admin_secret_arn,
        ENV_GRACE_PERIOD_SECONDS: str(config.grace_period_hours * HOUR),
        ENV_KEY_EXPIRY_SECONDS: str(config.key_expiry_hours * HOUR),
        ENV_MAX_GRACE_PERIOD_SECONDS: str(config.max_grace_period_hours * HOUR),
        # The longest gap between two scheduled rotations: a pending key whose OpenAI-side expiry leaves less than
        # this plus the maximum grace is re-minted, never promoted.
        ENV_ROTATION_INTERVAL_SECONDS: str(config.rotation_max_interval_hours * HOUR),
        **_deployment_variables(config, managed_secret_arns),
    }
    if config.openai_base_url:
        variables[ENV_OPENAI_BASE_URL] = config.openai_base_url
    scopes = key_scopes_json(config)
    if scopes is not None:
        variables[ENV_KEY_SCOPES] = scopes
    return variables


def monitor_environment(
    config: KeyrotConfig,
    *,
    admin_secret_arn: pulumi.Input[str],
    topic_arn: pulumi.Input[str],
    managed_secret_arns: Mapping[str, pulumi.Input[str]] | None = None,
) -> dict[str, pulumi.Input[str]]:
    variables: dict[str, pulumi.Input[str]] = {
        ENV_ENVIRONMENT: config.environment,
        ENV_ADMIN_SECRET_ARN: admin_secret_arn,
        ENV_TOPIC_ARN: topic_arn,
        ENV_STATE_PARAMETER: state_parameter_name(config.environment),
        ENV_GRACE_PERIOD_SECONDS: str(config.grace_period_hours * HOUR),
        ENV_MAX_GRACE_PERIOD_SECONDS: str(config.max_grace_period_hours * HOUR),
        ENV_QUIET_WINDOW_SECONDS: str(config.quiet_window_minutes * MINUTE),
        ENV_IN_USE_POLICY: config.in_use_policy,
        ENV_SETTLE_DELAY_SECONDS: str(config.settle_delay_minutes * MINUTE),
        ENV_USAGE_KINDS: ",".join(config.usage_kinds),
        ENV_RUNBOOK_URL: config.runbook_url,
        # The per-key metrics only a dashboard reads cost a custom metric each: published only with the dashboard.
        ENV_DASHBOARD_METRICS: "true" if config.dashboard else "false",
        ENV_ANOMALY_METRICS: ",".join(m.ANOMALY_SIGNALS[signal] for signal in config.anomaly_alarms),
        **_deployment_variables(config, managed_secret_arns),
    }
    if config.openai_base_url:
        variables[ENV_OPENAI_BASE_URL] = config.openai_base_url
    return variables


def admin_rotation_environment(
    config: KeyrotConfig, *, admin_secret_arn: pulumi.Input[str]
) -> dict[str, pulumi.Input[str]]:
    """What AdminRotationSettings.from_env reads: the admin-key secret it rotates, the project testSecret proves the
    new admin key on, the interval (the schedule's longest gap) and whether the bootstrap key goes too. Grace and
    expiry slack keep their defaults (keyrot.constants)."""
    rotation = config.admin_key_rotation
    assert rotation is not None
    variables: dict[str, pulumi.Input[str]] = {
        ENV_ENVIRONMENT: config.environment,
        ENV_ADMIN_SECRET_ARN: admin_secret_arn,
        ENV_PROJECT_ID: config.openai_project_id,
        ENV_ADMIN_ROTATION_INTERVAL_SECONDS: str(rotation.max_interval_hours * HOUR),
        ENV_ADMIN_DELETE_BOOTSTRAP_KEY: "true" if rotation.delete_bootstrap_key else "false",
    }
    if config.openai_base_url:
        variables[ENV_OPENAI_BASE_URL] = config.openai_base_url
    return variables


def guardrails_environment(
    config: KeyrotConfig,
    *,
    admin_secret_arn: pulumi.Input[str],
    document_sha256: str,
    topic_arn: pulumi.Input[str] | None = None,
) -> dict[str, pulumi.Input[str]]:
    """What GuardrailsSettings.from_env reads: the project and the admin key, where the declared document is and the
    digest it must have (the function trusts no other document); with `topic_arn`, the on-call topic its check
    notifies, where it remembers what it told, and the runbook its notifications link."""
    variables: dict[str, pulumi.Input[str]] = {
        ENV_ENVIRONMENT: config.environment,
        ENV_ADMIN_SECRET_ARN: admin_secret_arn,
        ENV_PROJECT_ID: config.openai_project_id,
        ENV_GUARDRAILS_PARAMETER: guardrails_parameter_name(config.environment),
        ENV_GUARDRAILS_SHA256: document_sha256,
    }
    if topic_arn is not None:
        variables[ENV_TOPIC_ARN] = topic_arn
        variables[ENV_GUARDRAILS_STATE_PARAMETER] = guardrails_state_parameter_name(config.environment)
        variables[ENV_RUNBOOK_URL] = config.runbook_url
    if config.openai_base_url:
        variables[ENV_OPENAI_BASE_URL] = config.openai_base_url
    return variables


def environment_size(variables: Mapping[str, str]) -> int:
    """Bytes Lambda counts against its 4 KB: every name and value, UTF-8."""
    return sum(len(name.encode()) + len(value.encode()) for name, value in variables.items())


def predicted_secret_arn(*, partition: str, region: str, account_id: str, name: str) -> str:
    """A secret's ARN before it exists, with a stand-in for the random suffix (exactly as long as the real one)."""
    return f"arn:{partition}:secretsmanager:{region}:{account_id}:secret:{name}-XXXXXX"


def environment_size_problems(
    config: KeyrotConfig,
    *,
    partition: str,
    region: str,
    account_id: str,
    topic_arn_length: int = 256,
) -> list[str]:
    """Problems (naming `keys`) when a function's variables would exceed Lambda's 4 KB, from predicted ARNs.

    Run at preview, when the secrets' ARNs are not known yet: their length is (the random suffix is always six
    characters), and the longest possible topic ARN is assumed for an existing topic.
    """
    secrets = {
        key: predicted_secret_arn(
            partition=partition, region=region, account_id=account_id, name=managed_secret_name(config.environment, key)
        )
        for key in config.key_names
    }
    admin = config.existing_admin_key_secret_arn or predicted_secret_arn(
        partition=partition, region=region, account_id=account_id, name=admin_secret_name(config.environment)
    )
    topic = "t" * topic_arn_length
    problems = []
    for purpose, variables in (
        ("rotation", rotation_environment(config, admin_secret_arn=admin, managed_secret_arns=secrets)),
        ("monitor", monitor_environment(config, admin_secret_arn=admin, topic_arn=topic, managed_secret_arns=secrets)),
    ):
        size = environment_size({k: str(v) for k, v in variables.items()})
        secrets_size = len(str(variables[ENV_MANAGED_SECRETS]))
        if secrets_size > MANAGED_SECRETS_LIMIT_CHARS:
            problems.append(
                f"{NAMESPACE}:keys: {ENV_MANAGED_SECRETS} (every key's secret ARN, {len(config.keys)} keys) would take "
                f"{secrets_size} characters, over the {MANAGED_SECRETS_LIMIT_CHARS} the {purpose} function reads. "
                "Use shorter key names or split the keys across environments"
            )
        elif size > LAMBDA_ENVIRONMENT_LIMIT_BYTES:
            scoped = f" and {ENV_KEY_SCOPES} their scopes" if ENV_KEY_SCOPES in variables else ""
            problems.append(
                f"{NAMESPACE}:keys: the {purpose} function's environment would take {size} bytes, over Lambda's "
                f"{LAMBDA_ENVIRONMENT_LIMIT_BYTES}-byte limit: {ENV_MANAGED_SECRETS} names every key's secret ARN"
                f"{scoped} ({len(config.keys)} keys). Use shorter key names, fewer scopes or split the keys across "
                "environments"
            )
    return problems
