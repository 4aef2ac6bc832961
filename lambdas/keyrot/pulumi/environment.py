"""KeyrotEnvironment: one keyrot environment (secrets, rotation and monitor functions, alarms) as one component.

Add it to any Pulumi program; in another language through the plugin (PulumiPlugin.yaml, `pulumi package add`).
The arguments are validated by the same rules and messages as a stack's `keyrot:*` configuration
(keyrot.pulumi.config), before anything is declared. Outputs are names and ARNs only: no key value ever passes
through Pulumi.

This module is read by Pulumi's component analyzer to infer the plugin's schema: annotations are evaluated types
(no `from __future__ import annotations`), and the docstring under each field is its description.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NotRequired, Optional, TypedDict

import pulumi
import pulumi_aws as aws

from keyrot.pulumi.archive import build_lambda_archive
from keyrot.pulumi.components.admin_rotation import PURPOSE as ADMIN_ROTATION_PURPOSE
from keyrot.pulumi.components.admin_rotation import AdminRotation, AdminRotationArgs
from keyrot.pulumi.components.alarms import Alarms, AlarmsArgs, admin_key_age_threshold_hours, key_age_threshold_hours
from keyrot.pulumi.components.dashboard import Dashboard, DashboardArgs
from keyrot.pulumi.components.encryption import Encryption, EncryptionArgs
from keyrot.pulumi.components.function import function_name, log_group_arn
from keyrot.pulumi.components.guardrails import PURPOSE as GUARDRAILS_PURPOSE
from keyrot.pulumi.components.guardrails import Guardrails, GuardrailsArgs
from keyrot.pulumi.components.key_rotation import KeyRotation, KeyRotationArgs
from keyrot.pulumi.components.key_secrets import KeySecrets, KeySecretsArgs
from keyrot.pulumi.components.lambda_role import LambdaRole, LambdaRoleArgs
from keyrot.pulumi.components.notifications import Notifications, NotificationsArgs
from keyrot.pulumi.components.usage_monitor import UsageMonitor, UsageMonitorArgs
from keyrot.pulumi.config import (
    PENDING,
    ConfigError,
    KeyConfig,
    KeyrotConfig,
    check_account,
    check_deployer,
    check_resolved_arn,
    validate,
)
from keyrot.pulumi.lambda_settings import (
    admin_rotation_environment,
    environment_size_problems,
    guardrails_environment,
    monitor_environment,
    rotation_environment,
)
from keyrot.pulumi.upgrade import standalone_program_aliases

TYPE = "keyrot:index:KeyrotEnvironment"


class KeyArgs(TypedDict):
    """One managed OpenAI API key: the secret `keyrot/<environment>/<name>` and the roles that may read it."""

    name: str
    """Key name (`^[a-z][a-z0-9-]{0,63}$`): part of the secret's name, its alarms and the dashboard."""
    reader_role_arns: NotRequired[Sequence[pulumi.Input[str]]]
    """IAM roles (ARNs, in the deploying account) that may read the key: its reader policy is attached to each, and
    the secret's resource policy denies everyone else. Outputs of roles your program creates are fine."""
    scopes: NotRequired[Sequence[str]]
    """The scopes each of the key's rotations mints it with, from the names OpenAI documents (listed, with their
    sources, in keyrot/scopes.py; e.g. `model.request`, `api.model.read`). Default: an unrestricted key."""


class AdminKeyRotationArgs(TypedDict):
    """The admin key's own rotation: a function of its own rotates the admin-key secret keyrot creates, mints each new
    admin key with an expiry backstop, validates it, promotes it, and deletes the previous one after its grace."""

    schedule: NotRequired[str]
    """Secrets Manager rotation schedule of the admin key, `rate(N hours|days)` or `cron(0 H D M W *)` (at most every
    4 hours, at least every 351 days). Default `rate(30 days)`."""
    delete_bootstrap_key: NotRequired[bool]
    """Also delete the admin key an organization owner made in the console, once the first rotation replaced it (only
    if it serves no other environment). Default false."""


class KeyrotEnvironmentArgs(TypedDict):
    """Settings of one keyrot environment; the same settings, defaults and rules as a stack's `keyrot:*` config."""

    environment: str
    """Environment name (`^[a-z][a-z0-9-]{0,31}$`), in every resource name (`keyrot/<env>/...`, `keyrot-<env>-...`)."""
    openai_project_id: str
    """The OpenAI project (`proj_...`) whose keys keyrot mints, rotates and monitors."""
    keys: Sequence[KeyArgs]
    """The managed keys (at least one)."""
    rotation_schedule: NotRequired[str]
    """Secrets Manager rotation schedule, `rate(N hours|days)` or `cron(0 H D M W *)`, at most every 4 hours.
    Default `rate(30 days)`."""
    rotation_window: NotRequired[str]
    """How long a scheduled rotation may run, `1h`-`24h`. Default `3h`."""
    grace_period_hours: NotRequired[int]
    """Hours the previous key stays valid after a rotation; 0 is emergency mode. Default 24."""
    max_grace_period_hours: NotRequired[int]
    """Hours after which a previous key still in use is handled by `in_use_policy`. Default 72."""
    quiet_window_minutes: NotRequired[int]
    """A previous key past its grace must be unused this long before it is revoked. Default 60."""
    in_use_policy: NotRequired[str]
    """`keep` (and notify) or `revoke` a previous key still in use at the maximum grace. Default `keep`."""
    key_expiry_hours: NotRequired[int]
    """OpenAI-side expiry of each minted key (0: none). Default: longest rotation interval + maximum grace + 24."""
    oncall_emails: NotRequired[Sequence[str]]
    """Email addresses subscribed to the on-call topic keyrot creates."""
    oncall_https_endpoints: NotRequired[Sequence[str]]
    """HTTPS endpoints subscribed to the on-call topic keyrot creates."""
    oncall_topic_arn: NotRequired[pulumi.Input[str]]
    """An existing SNS topic to notify instead of creating one (its policy must let CloudWatch and EventBridge
    publish; see docs/deploy.md). Not with `oncall_emails`/`oncall_https_endpoints`."""
    daily_spend_limit_usd: NotRequired[float]
    """Alarm when the project's spend today exceeds this many USD. Default 100."""
    monitor_interval_minutes: NotRequired[int]
    """Minutes between monitor runs (1-480). Default 15."""
    settle_delay_minutes: NotRequired[int]
    """Usage buckets younger than this are read again on a later run (0-1440). Default 10."""
    usage_kinds: NotRequired[Sequence[str]]
    """OpenAI usage endpoints the monitor reads. Default: all six."""
    log_retention_days: NotRequired[int]
    """CloudWatch Logs retention of both functions (a value CloudWatch accepts). Default 90."""
    existing_admin_key_secret_arn: NotRequired[str]
    """Use this populated admin-key secret instead of creating `keyrot/<env>/openai-admin-key`."""
    administrator_arns: NotRequired[Sequence[str]]
    """IAM roles or users with break-glass access to the key secrets; a `*` may only end a named prefix."""
    openai_base_url: NotRequired[str]
    """Override of the OpenAI API base URL (https). Default `https://api.openai.com/v1`."""
    anomaly_band_width: NotRequired[float]
    """Width of the usage anomaly-detection band in standard deviations (0-10]. Default 2."""
    anomaly_alarms: NotRequired[Sequence[str]]
    """The usage signals each key's anomaly alarms watch: `requests`, `inputTokens` (default both; each 0.60 USD a
    month per key, the metric it reads and its band)."""
    dashboard: NotRequired[bool]
    """Create the `keyrot-<env>` CloudWatch dashboard, and publish the per-key metrics only it shows (3 USD a month
    plus about 0.90 per key; alarms do not need it). Default false."""
    runbook_url: NotRequired[str]
    """Where alarms and notifications link for what to do (your copy of docs/runbook.md, https)."""
    shared_project_environments: NotRequired[Sequence[str]]
    """Other keyrot environments that use the same OpenAI project: their keys are not reported as unmanaged."""
    production: NotRequired[bool]
    """A production environment: the KMS key and the secrets are protected and kept on delete (see `protect`)."""
    protect: NotRequired[bool]
    """Protect the KMS key and the secrets (`pulumi destroy` refuses) and keep them in AWS if they are ever removed
    from the program. Default: `production`."""
    existing_kms_key_arn: NotRequired[pulumi.Input[str]]
    """Encrypt the secrets, topic and logs with this KMS key instead of creating one (its policy must allow keyrot's
    use of it; see docs/deploy.md)."""
    vpc_subnet_ids: NotRequired[Sequence[pulumi.Input[str]]]
    """Run both functions in these subnets (with `vpc_security_group_ids`). They need egress to OpenAI over HTTPS and
    to the Secrets Manager, SSM, CloudWatch and SNS endpoints (NAT or VPC endpoints)."""
    vpc_security_group_ids: NotRequired[Sequence[pulumi.Input[str]]]
    """Security groups of the functions' network interfaces (outbound HTTPS)."""
    deployer_arns: NotRequired[Sequence[str]]
    """IAM roles or users that run `pulumi up`/`destroy` for this environment: with the administrators, the only
    principals the secrets' policies let manage them. Default: the identity running the deployment."""
    guardrails: NotRequired[Mapping[str, Any]]
    """OpenAI guardrails of the project, as the stack's `keyrot:guardrails` block (field names as written there:
    `rateLimits` per model with OpenAI's limit names, `spendLimitUsd`, `spendAlerts`, `models`, `enforce`). Applied
    at deploy by the guardrails function and checked for drift on a schedule; see docs/guardrails.md. Default:
    none (keyrot leaves the project's guardrails alone)."""
    admin_key_rotation: NotRequired[AdminKeyRotationArgs]
    """Rotate the admin key too (only the admin-key secret keyrot creates, not `existing_admin_key_secret_arn`).
    Default: not rotated by keyrot."""
    build_dir: NotRequired[str]
    """Directory for the Lambda archive and the wheel cache. Default `~/.cache/keyrot`."""
    adopt_standalone_stack: NotRequired[bool]
    """Set when upgrading a stack that keyrot 0.1's own program (infra/__main__.py) deployed: aliases keep every
    resource's identity, so the update replaces nothing. At most one environment per stack."""


# Arguments that shape how the component is built rather than the environment's settings.
COMPONENT_ONLY = ("protect", "build_dir", "adopt_standalone_stack")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _plain(value: Any) -> Any:
    """A value as the validator reads it: an Output (or anything awaitable) is PENDING, containers element-wise."""
    if isinstance(value, pulumi.Output) or hasattr(value, "__await__"):
        return PENDING
    if isinstance(value, Mapping):
        return {_camel(str(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _plain_block(value: Any) -> Any:
    """A block whose field names are already the stack config's (guardrails): Outputs PENDING, names kept."""
    if isinstance(value, pulumi.Output) or hasattr(value, "__await__"):
        return PENDING
    if isinstance(value, Mapping):
        return {str(k): _plain_block(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_block(v) for v in value]
    return value


# Arguments that take a block written with the stack config's own field names (OpenAI's limit names have '_').
VERBATIM_BLOCKS = ("guardrails",)


def settings_from_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """The validator's view of the arguments: setting names (camelCase, as in the stack config), Outputs PENDING."""
    return {
        _camel(key): _plain_block(value) if key in VERBATIM_BLOCKS else _plain(value)
        for key, value in args.items()
        if key not in COMPONENT_ONLY
    }


def guardrails_block(declared: Any) -> dict[str, Any]:
    """The `guardrails` block that gives `declared` back (its document without the version)."""
    from keyrot.guardrails import to_document

    return {key: value for key, value in to_document(declared).items() if key != "version"}


def validate_args(args: Mapping[str, Any]) -> KeyrotConfig:
    """Validate `KeyrotEnvironmentArgs` with the stack configuration's rules and messages."""
    return validate(settings_from_args(args))


def _key_args(key: KeyConfig) -> KeyArgs:
    """The KeyArgs that give a validated key back; `scopes` only when it declares some."""
    args = KeyArgs(name=key.name, reader_role_arns=list(key.reader_role_arns))
    if key.scopes is not None:
        args["scopes"] = list(key.scopes)
    return args


def args_from_config(config: KeyrotConfig) -> KeyrotEnvironmentArgs:
    """The arguments that give `config` back (the stack program reads its configuration into these)."""
    args = KeyrotEnvironmentArgs(
        environment=config.environment,
        openai_project_id=config.openai_project_id,
        keys=[_key_args(key) for key in config.keys],
        rotation_schedule=config.rotation_schedule,
        rotation_window=config.rotation_window,
        grace_period_hours=config.grace_period_hours,
        max_grace_period_hours=config.max_grace_period_hours,
        quiet_window_minutes=config.quiet_window_minutes,
        in_use_policy=config.in_use_policy,
        key_expiry_hours=config.key_expiry_hours,
        oncall_emails=list(config.oncall_emails),
        oncall_https_endpoints=list(config.oncall_https_endpoints),
        daily_spend_limit_usd=config.daily_spend_limit_usd,
        monitor_interval_minutes=config.monitor_interval_minutes,
        settle_delay_minutes=config.settle_delay_minutes,
        usage_kinds=list(config.usage_kinds),
        log_retention_days=config.log_retention_days,
        administrator_arns=list(config.administrator_arns),
        anomaly_band_width=config.anomaly_band_width,
        anomaly_alarms=list(config.anomaly_alarms),
        dashboard=config.dashboard,
        runbook_url=config.runbook_url,
        shared_project_environments=list(config.shared_project_environments),
        production=config.production,
        vpc_subnet_ids=list(config.vpc_subnet_ids),
        vpc_security_group_ids=list(config.vpc_security_group_ids),
        deployer_arns=list(config.deployer_arns),
    )
    if config.guardrails is not None:
        args["guardrails"] = guardrails_block(config.guardrails)
    if config.admin_key_rotation is not None:
        args["admin_key_rotation"] = AdminKeyRotationArgs(
            schedule=config.admin_key_rotation.schedule,
            delete_bootstrap_key=config.admin_key_rotation.delete_bootstrap_key,
        )
    for key, value in (
        ("oncall_topic_arn", config.oncall_topic_arn),
        ("existing_admin_key_secret_arn", config.existing_admin_key_secret_arn),
        ("openai_base_url", config.openai_base_url),
        ("existing_kms_key_arn", config.existing_kms_key_arn),
    ):
        if value is not None:
            args[key] = value  # type: ignore[literal-required]
    return args


class KeyrotEnvironment(pulumi.ComponentResource):
    """One keyrot environment: a secret per OpenAI key (rotated by Secrets Manager through keyrot's rotation
    function), the monitor that publishes usage and retires previous keys, the on-call topic, alarms, a dashboard
    and the KMS key that encrypts them. Outputs are names and ARNs only."""

    environment: pulumi.Output[str]
    """The environment name."""
    key_secret_arns: pulumi.Output[dict[str, str]]
    """Per key name, the ARN of the secret applications read."""
    key_secret_names: pulumi.Output[dict[str, str]]
    """Per key name, the secret's name (`keyrot/<env>/<key>`)."""
    reader_policy_arns: pulumi.Output[dict[str, str]]
    """Per key name, the IAM policy that grants reading it (attached to its reader roles)."""
    admin_key_secret_arn: pulumi.Output[str]
    """The admin-key secret (created, or the existing one)."""
    oncall_topic_arn: pulumi.Output[str]
    """Where alarms, rotation failures and the monitor's notifications go."""
    rotation_function_name: pulumi.Output[str]
    """The rotation function."""
    monitor_function_name: pulumi.Output[str]
    """The monitor function."""
    kms_key_arn: pulumi.Output[str]
    """The KMS key encrypting the secrets, the topic and the logs."""
    dashboard_url: pulumi.Output[Optional[str]]  # noqa: UP045 - the schema analyzer reads this annotation
    """The CloudWatch dashboard's URL (none when `dashboard` is false)."""
    lambda_code_sha256: pulumi.Output[str]
    """sha256 of the deployed Lambda archive."""
    guardrails_function_name: pulumi.Output[Optional[str]]  # noqa: UP045 - the schema analyzer reads this annotation
    """The guardrails function (none when no `guardrails` are declared)."""

    def __init__(
        self,
        name: str,
        args: KeyrotEnvironmentArgs,
        opts: Optional[pulumi.ResourceOptions] = None,  # noqa: UP045 - the schema analyzer reads this annotation
    ) -> None:
        config = validate_args(args)
        if args.get("adopt_standalone_stack"):
            opts = pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(transformations=[standalone_program_aliases(name, TYPE)])
            )
        super().__init__(TYPE, name, None, opts)
        invoke = pulumi.InvokeOptions(parent=self)
        caller = aws.get_caller_identity(opts=invoke)
        account_id = caller.account_id
        region = aws.get_region(opts=invoke).region
        partition = aws.get_partition(opts=invoke).partition
        # The role behind the session (with its path), as the secrets' policies see it in aws:PrincipalArn.
        deployer = aws.iam.get_session_context(arn=caller.arn, opts=invoke).issuer_arn
        check_account(config, account_id, region)
        check_deployer(config, deployer)
        size_problems = environment_size_problems(config, partition=partition, region=region, account_id=account_id)
        if size_problems:
            raise ConfigError(size_problems)
        protect = bool(args.get("protect", config.production))
        build_dir = args.get("build_dir")
        archive = build_lambda_archive(build_dir=Path(build_dir) if build_dir else None)
        env = config.environment
        # The functions this environment runs (their log groups are encrypted with the environment's key).
        purposes = ["rotation", "monitor"]
        if config.guardrails is not None:
            purposes.append(GUARDRAILS_PURPOSE)
        if config.admin_key_rotation is not None:
            purposes.append(ADMIN_ROTATION_PURPOSE)

        def existing(setting: str, key: str) -> Optional[pulumi.Input[str]]:  # noqa: UP045
            value = args.get(key)
            if value is None or isinstance(value, str):
                return value
            return pulumi.Output.from_input(value).apply(
                lambda arn: check_resolved_arn(setting, arn, account_id, region)
            )

        kms_key_arn: pulumi.Input[str]
        if config.uses_existing_kms_key:
            kms_key_arn = existing("existingKmsKeyArn", "existing_kms_key_arn")  # type: ignore[assignment]
        else:
            encryption = Encryption(
                f"{name}-encryption",
                EncryptionArgs(
                    environment=env,
                    account_id=account_id,
                    partition=partition,
                    region=region,
                    log_group_arns=[
                        log_group_arn(
                            partition=partition, region=region, account_id=account_id, environment=env, purpose=p
                        )
                        for p in purposes
                    ],
                    protect=protect,
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            kms_key_arn = encryption.key_arn
        rotation_role = LambdaRole(
            f"{name}-rotation-identity",
            LambdaRoleArgs(environment=env, purpose="rotation"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        monitor_role = LambdaRole(
            f"{name}-monitor-identity",
            LambdaRoleArgs(environment=env, purpose="monitor"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        guardrails_role = None
        if config.guardrails is not None:
            guardrails_role = LambdaRole(
                f"{name}-guardrails-identity",
                LambdaRoleArgs(environment=env, purpose=GUARDRAILS_PURPOSE),
                opts=pulumi.ResourceOptions(parent=self),
            )
        admin_rotation_role = None
        if config.admin_key_rotation is not None:
            admin_rotation_role = LambdaRole(
                f"{name}-admin-rotation-identity",
                LambdaRoleArgs(environment=env, purpose=ADMIN_ROTATION_PURPOSE),
                opts=pulumi.ResourceOptions(parent=self),
            )
        secrets = KeySecrets(
            f"{name}-secrets",
            KeySecretsArgs(
                environment=env,
                openai_project_id=config.openai_project_id,
                region=region,
                keys=config.keys,
                kms_key_arn=kms_key_arn,
                rotation_role_arn=rotation_role.arn,
                monitor_role_arn=monitor_role.arn,
                administrator_arns=config.administrator_arns,
                existing_admin_secret_arn=config.existing_admin_key_secret_arn,
                deployer_arns=config.deployer_arns or (deployer,),
                reader_inputs={key["name"]: list(key.get("reader_role_arns", ())) for key in args["keys"]},
                account_id=account_id,
                protect=protect,
                guardrails_role_arn=guardrails_role.arn if guardrails_role is not None else None,
                admin_rotation_role_arn=admin_rotation_role.arn if admin_rotation_role is not None else None,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        notifications = Notifications(
            f"{name}-notifications",
            NotificationsArgs(
                environment=env,
                account_id=account_id,
                kms_key_arn=kms_key_arn,
                secret_arns=secrets.secret_arns,
                emails=config.oncall_emails,
                https_endpoints=config.oncall_https_endpoints,
                existing_topic_arn=existing("oncallTopicArn", "oncall_topic_arn"),
                runbook_url=config.runbook_url,
                admin_secret_arn=secrets.admin_secret_arn if config.admin_key_rotation is not None else None,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        vpc: dict[str, Any] = {
            "subnet_ids": list(args.get("vpc_subnet_ids", ())),
            "security_group_ids": list(args.get("vpc_security_group_ids", ())),
            "partition": partition,
        }
        rotation = KeyRotation(
            f"{name}-rotation",
            KeyRotationArgs(
                environment=env,
                account_id=account_id,
                region=region,
                role_arn=rotation_role.arn,
                role_name=rotation_role.role_name,
                secret_arns=secrets.secret_arns,
                admin_secret_arn=secrets.admin_secret_arn,
                kms_key_arn=kms_key_arn,
                archive_path=str(archive.path),
                source_code_hash=archive.source_code_hash,
                environment_variables=rotation_environment(
                    config, admin_secret_arn=secrets.admin_secret_arn, managed_secret_arns=secrets.secret_arns
                ),
                schedule_expression=config.rotation_schedule,
                window=config.rotation_window,
                rotate_immediately=config.existing_admin_key_secret_arn is not None,
                log_retention_days=config.log_retention_days,
                **vpc,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        monitor = UsageMonitor(
            f"{name}-monitor",
            UsageMonitorArgs(
                environment=env,
                account_id=account_id,
                partition=partition,
                region=region,
                role_arn=monitor_role.arn,
                role_name=monitor_role.role_name,
                secret_arns=secrets.secret_arns,
                admin_secret_arn=secrets.admin_secret_arn,
                kms_key_arn=kms_key_arn,
                topic_arn=notifications.topic_arn,
                topic_encrypted_with_key=not config.uses_existing_topic,
                archive_path=str(archive.path),
                source_code_hash=archive.source_code_hash,
                environment_variables=monitor_environment(
                    config,
                    admin_secret_arn=secrets.admin_secret_arn,
                    topic_arn=notifications.topic_arn,
                    managed_secret_arns=secrets.secret_arns,
                ),
                interval_minutes=config.monitor_interval_minutes,
                log_retention_days=config.log_retention_days,
                subnet_ids=vpc["subnet_ids"],
                security_group_ids=vpc["security_group_ids"],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        guardrails_function_name: pulumi.Output[Optional[str]] = pulumi.Output.from_input(None)  # noqa: UP045
        guardrails = None
        if config.guardrails is not None and guardrails_role is not None:
            guardrails = self._guardrails(
                name,
                config,
                role=guardrails_role,
                secrets=secrets,
                kms_key_arn=kms_key_arn,
                topic_arn=notifications.topic_arn,
                archive=archive,
                where={"account_id": account_id, "partition": partition, "region": region},
                vpc=vpc,
            )
            guardrails_function_name = guardrails.function_name
        admin_rotation = None
        if config.admin_key_rotation is not None and admin_rotation_role is not None:
            admin_rotation = AdminRotation(
                f"{name}-admin-rotation",
                AdminRotationArgs(
                    environment=env,
                    account_id=account_id,
                    partition=partition,
                    region=region,
                    role_arn=admin_rotation_role.arn,
                    role_name=admin_rotation_role.role_name,
                    admin_secret_arn=secrets.admin_secret_arn,
                    kms_key_arn=kms_key_arn,
                    archive_path=str(archive.path),
                    source_code_hash=archive.source_code_hash,
                    environment_variables=admin_rotation_environment(config, admin_secret_arn=secrets.admin_secret_arn),
                    schedule_expression=config.admin_key_rotation.schedule,
                    window=config.rotation_window,
                    log_retention_days=config.log_retention_days,
                    subnet_ids=vpc["subnet_ids"],
                    security_group_ids=vpc["security_group_ids"],
                    rotate_after=[secrets.admin_secret_policy] if secrets.admin_secret_policy is not None else [],
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
        alarms = Alarms(
            f"{name}-alarms",
            AlarmsArgs(
                config=config,
                topic_arn=notifications.topic_arn,
                rotation_function_name=function_name(env, "rotation"),
                monitor_function_name=function_name(env, "monitor"),
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[rotation, monitor, *(c for c in (guardrails, admin_rotation) if c is not None)],
            ),
        )
        dashboard_url: pulumi.Output[Optional[str]] = pulumi.Output.from_input(None)  # noqa: UP045
        if config.dashboard:
            dashboard = Dashboard(
                f"{name}-dashboard",
                DashboardArgs(
                    environment=env,
                    region=region,
                    key_names=config.key_names,
                    key_age_threshold_hours=key_age_threshold_hours(config),
                    daily_spend_limit_usd=config.daily_spend_limit_usd,
                    alarm_arns=alarms.alarm_arns,
                    guardrails=config.guardrails,
                    runbook_url=config.runbook_url,
                    admin_key_age_threshold_hours=(
                        admin_key_age_threshold_hours(config) if config.admin_key_rotation is not None else None
                    ),
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            dashboard_url = dashboard.url

        # Names and ARNs only: never a key value.
        self.environment = pulumi.Output.from_input(env)
        # from_input resolves the Outputs inside a dict; its annotation (Input[T] -> Output[T]) cannot say so.
        self.key_secret_arns = pulumi.Output.from_input(secrets.secret_arns)  # type: ignore[arg-type]
        self.key_secret_names = pulumi.Output.from_input(secrets.secret_names)  # type: ignore[arg-type]
        self.reader_policy_arns = pulumi.Output.from_input(secrets.reader_policy_arns)  # type: ignore[arg-type]
        self.admin_key_secret_arn = pulumi.Output.from_input(secrets.admin_secret_arn)
        self.oncall_topic_arn = pulumi.Output.from_input(notifications.topic_arn)
        self.rotation_function_name = rotation.function_name
        self.monitor_function_name = monitor.function_name
        self.kms_key_arn = pulumi.Output.from_input(kms_key_arn)
        self.dashboard_url = dashboard_url
        self.lambda_code_sha256 = pulumi.Output.from_input(archive.sha256_hex)
        self.guardrails_function_name = guardrails_function_name
        self.register_outputs(self.outputs())

    def _guardrails(
        self,
        name: str,
        config: KeyrotConfig,
        *,
        role: LambdaRole,
        secrets: KeySecrets,
        kms_key_arn: pulumi.Input[str],
        topic_arn: pulumi.Input[str],
        archive: Any,
        where: dict[str, str],
        vpc: dict[str, Any],
    ) -> Guardrails:
        """The declared document, the guardrails function, its deploy-time apply and its scheduled check."""
        from keyrot.guardrails import document_digest, document_json, to_document

        text = document_json(config.guardrails)
        return Guardrails(
            f"{name}-guardrails",
            GuardrailsArgs(
                environment=config.environment,
                role_arn=role.arn,
                role_name=role.role_name,
                admin_secret_arn=secrets.admin_secret_arn,
                kms_key_arn=kms_key_arn,
                topic_arn=topic_arn,
                topic_encrypted_with_key=not config.uses_existing_topic,
                document=to_document(config.guardrails),
                document_text=text,
                archive_path=str(archive.path),
                source_code_hash=archive.source_code_hash,
                environment_variables=guardrails_environment(
                    config,
                    admin_secret_arn=secrets.admin_secret_arn,
                    document_sha256=document_digest(text),
                    topic_arn=topic_arn,
                ),
                check_interval_minutes=config.monitor_interval_minutes,
                log_retention_days=config.log_retention_days,
                subnet_ids=vpc["subnet_ids"],
                security_group_ids=vpc["security_group_ids"],
                apply_after=[secrets.admin_secret_policy] if secrets.admin_secret_policy is not None else [],
                **where,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def outputs(self) -> dict[str, pulumi.Output[Any]]:
        """Every output by its schema name (camelCase), as the stack program exports them."""
        return {
            "environment": self.environment,
            "keySecretArns": self.key_secret_arns,
            "keySecretNames": self.key_secret_names,
            "readerPolicyArns": self.reader_policy_arns,
            "adminKeySecretArn": self.admin_key_secret_arn,
            "oncallTopicArn": self.oncall_topic_arn,
            "rotationFunctionName": self.rotation_function_name,
            "monitorFunctionName": self.monitor_function_name,
            "kmsKeyArn": self.kms_key_arn,
            "dashboardUrl": self.dashboard_url,
            "lambdaCodeSha256": self.lambda_code_sha256,
            "guardrailsFunctionName": self.guardrails_function_name,
        }
