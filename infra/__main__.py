"""keyrot's Pulumi program: wiring only. One stack is one environment; stacks share nothing but this code."""

import sys
from pathlib import Path

# Pulumi runs this directory with runpy, which puts infra/ (and the working directory, also infra/) first on
# sys.path. infra/packaging.py would then shadow the `packaging` library that pulumi_aws imports, so import the
# program as the `infra` package from the repository root instead.
_INFRA_DIR = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _INFRA_DIR]
if str(_INFRA_DIR.parent) not in sys.path:
    sys.path.insert(0, str(_INFRA_DIR.parent))

from infra import paths  # noqa: E402

# keyrot's own modules (constants, metric names, settings) are the single source of names: make them importable.
if str(paths.LAMBDAS_DIR) not in sys.path:
    sys.path.insert(0, str(paths.LAMBDAS_DIR))

import pulumi  # noqa: E402
import pulumi_aws as aws  # noqa: E402

from infra.components.alarms import Alarms, AlarmsArgs, key_age_threshold_hours  # noqa: E402
from infra.components.dashboard import Dashboard, DashboardArgs  # noqa: E402
from infra.components.encryption import Encryption, EncryptionArgs  # noqa: E402
from infra.components.function import function_name, log_group_arn  # noqa: E402
from infra.components.key_rotation import KeyRotation, KeyRotationArgs  # noqa: E402
from infra.components.key_secrets import KeySecrets, KeySecretsArgs  # noqa: E402
from infra.components.lambda_role import LambdaRole, LambdaRoleArgs  # noqa: E402
from infra.components.notifications import Notifications, NotificationsArgs  # noqa: E402
from infra.components.usage_monitor import UsageMonitor, UsageMonitorArgs  # noqa: E402
from infra.config import check_account, load_config  # noqa: E402
from infra.lambda_settings import monitor_environment, rotation_environment  # noqa: E402
from infra.packaging import build_lambda_archive  # noqa: E402

config = load_config()
env = config.environment
account_id = aws.get_caller_identity().account_id
region = aws.get_region().region
partition = aws.get_partition().partition
check_account(config, account_id, region)

archive = build_lambda_archive()

encryption = Encryption(
    "encryption",
    EncryptionArgs(
        environment=env,
        account_id=account_id,
        partition=partition,
        region=region,
        log_group_arns=[
            log_group_arn(partition=partition, region=region, account_id=account_id, environment=env, purpose=purpose)
            for purpose in ("rotation", "monitor")
        ],
    ),
)
rotation_role = LambdaRole("rotation-identity", LambdaRoleArgs(environment=env, purpose="rotation"))
monitor_role = LambdaRole("monitor-identity", LambdaRoleArgs(environment=env, purpose="monitor"))

secrets = KeySecrets(
    "secrets",
    KeySecretsArgs(
        environment=env,
        openai_project_id=config.openai_project_id,
        region=region,
        keys=config.keys,
        kms_key_arn=encryption.key_arn,
        rotation_role_arn=rotation_role.arn,
        monitor_role_arn=monitor_role.arn,
        administrator_arns=config.administrator_arns,
        existing_admin_secret_arn=config.existing_admin_key_secret_arn,
    ),
)

notifications = Notifications(
    "notifications",
    NotificationsArgs(
        environment=env,
        account_id=account_id,
        kms_key_arn=encryption.key_arn,
        secret_arns=secrets.secret_arns,
        emails=config.oncall_emails,
        https_endpoints=config.oncall_https_endpoints,
        existing_topic_arn=config.oncall_topic_arn,
        runbook_url=config.runbook_url,
    ),
)

rotation = KeyRotation(
    "rotation",
    KeyRotationArgs(
        environment=env,
        account_id=account_id,
        region=region,
        role_arn=rotation_role.arn,
        role_name=rotation_role.role_name,
        secret_arns=secrets.secret_arns,
        admin_secret_arn=secrets.admin_secret_arn,
        kms_key_arn=encryption.key_arn,
        archive_path=str(archive.path),
        source_code_hash=archive.source_code_hash,
        environment_variables=rotation_environment(config, admin_secret_arn=secrets.admin_secret_arn),
        schedule_expression=config.rotation_schedule,
        window=config.rotation_window,
        rotate_immediately=config.existing_admin_key_secret_arn is not None,
        log_retention_days=config.log_retention_days,
    ),
)

monitor = UsageMonitor(
    "monitor",
    UsageMonitorArgs(
        environment=env,
        account_id=account_id,
        partition=partition,
        region=region,
        role_arn=monitor_role.arn,
        role_name=monitor_role.role_name,
        secret_arns=secrets.secret_arns,
        admin_secret_arn=secrets.admin_secret_arn,
        kms_key_arn=encryption.key_arn,
        topic_arn=notifications.topic_arn,
        topic_encrypted_with_key=config.oncall_topic_arn is None,
        archive_path=str(archive.path),
        source_code_hash=archive.source_code_hash,
        environment_variables=monitor_environment(
            config, admin_secret_arn=secrets.admin_secret_arn, topic_arn=notifications.topic_arn
        ),
        interval_minutes=config.monitor_interval_minutes,
        log_retention_days=config.log_retention_days,
    ),
)

alarms = Alarms(
    "alarms",
    AlarmsArgs(
        config=config,
        topic_arn=notifications.topic_arn,
        rotation_function_name=function_name(env, "rotation"),
        monitor_function_name=function_name(env, "monitor"),
    ),
    opts=pulumi.ResourceOptions(depends_on=[rotation, monitor]),
)

if config.dashboard:
    dashboard = Dashboard(
        "dashboard",
        DashboardArgs(
            environment=env,
            region=region,
            key_names=config.key_names,
            key_age_threshold_hours=key_age_threshold_hours(config),
            daily_spend_limit_usd=config.daily_spend_limit_usd,
            alarm_arns=alarms.alarm_arns,
        ),
    )
    pulumi.export("dashboardUrl", dashboard.url)

# Names and ARNs only: never a key value.
pulumi.export("environment", env)
pulumi.export("keySecretArns", secrets.secret_arns)
pulumi.export("keySecretNames", secrets.secret_names)
pulumi.export("readerPolicyArns", secrets.reader_policy_arns)
pulumi.export("adminKeySecretArn", secrets.admin_secret_arn)
pulumi.export("oncallTopicArn", notifications.topic_arn)
pulumi.export("rotationFunctionName", rotation.function_name)
pulumi.export("monitorFunctionName", monitor.function_name)
pulumi.export("kmsKeyArn", encryption.key_arn)
pulumi.export("lambdaCodeSha256", archive.sha256_hex)
