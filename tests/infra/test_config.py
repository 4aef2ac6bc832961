"""keyrot/pulumi/config.py: every configuration problem is reported, named by key, all at once."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from infra_harness import REPO_ROOT, stack_config

from keyrot.pulumi.config import DEFAULTS, SETTINGS, ConfigError, KeyrotConfig, check_account, parse_config

pytestmark = pytest.mark.timeout(60)


def raw(stack: str = "dev", **overrides: Any) -> dict[str, str | None]:
    """The keyrot:* values the CLI would hand the program for `stack`, with some replaced (None removes a key)."""
    merged = {k.split(":", 1)[1]: v for k, v in stack_config(stack).items() if k.startswith("keyrot:")}
    for key, value in overrides.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, (list, dict)):
            merged[key] = json.dumps(value)
        else:
            merged[key] = str(value)
    return merged


def problems(stack: str = "dev", **overrides: Any) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw(stack, **overrides), stack=stack)
    return caught.value.problems


def only_problem(stack: str = "dev", **overrides: Any) -> str:
    found = problems(stack, **overrides)
    assert len(found) == 1, found
    return found[0]


# --- the committed stacks ----------------------------------------------------------------------------------------


def test_dev_stack_parses_to_expected_values() -> None:
    config = parse_config(raw("dev"), stack="dev")
    assert config.environment == "dev"
    assert config.openai_project_id == "proj_dev7Qm2xKp4LrT9aZ"
    assert config.key_names == ("chat-backend", "batch-embeddings")
    assert config.keys[1].reader_role_arns == (
        "arn:aws:iam::111111111111:role/service/batch-embeddings-dev",
        "arn:aws:iam::111111111111:role/data-notebooks-dev",
    )
    # Role names drop the IAM path: AttachRolePolicy takes the bare name.
    assert [r.name for r in config.keys[1].reader_roles] == ["batch-embeddings-dev", "data-notebooks-dev"]
    assert (config.rotation_min_interval_hours, config.rotation_max_interval_hours) == (168, 168)
    assert config.grace_period_hours == 6 and config.max_grace_period_hours == 24
    # Default expiry: interval + max grace + 24 h.
    assert config.key_expiry_hours == 168 + 24 + 24
    assert config.existing_admin_key_secret_arn is None
    assert config.oncall_topic_arn is None
    assert config.openai_base_url is None
    assert config.dashboard is True
    assert config.usage_kinds == DEFAULTS["usageKinds"]


def test_prod_stack_is_stricter_and_uses_existing_admin_secret() -> None:
    dev = parse_config(raw("dev"), stack="dev")
    prod = parse_config(raw("prod"), stack="prod")
    assert prod.environment == "prod"
    assert prod.key_names == ("chat-backend", "support-assistant", "batch-embeddings")
    assert prod.existing_admin_key_secret_arn is not None
    assert prod.oncall_emails == ("platform-oncall@example.com",)
    assert prod.key_expiry_hours == 816
    assert prod.monitor_interval_minutes < dev.monitor_interval_minutes
    assert prod.anomaly_band_width < dev.anomaly_band_width
    assert prod.log_retention_days > dev.log_retention_days
    assert prod.openai_project_id != dev.openai_project_id


def test_config_is_frozen() -> None:
    config = parse_config(raw("dev"), stack="dev")
    assert isinstance(config, KeyrotConfig)
    with pytest.raises(AttributeError):
        config.environment = "prod"  # type: ignore[misc]


def test_invalid_stack_name_is_reported_as_the_environment_default() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw("dev", environment=None), stack="Dev_Stack")
    assert caught.value.problems == (
        "keyrot:environment: must match ^[a-z][a-z0-9-]{0,31}$: a lower-case letter, then up to 31 lower-case "
        "letters, digits or '-' (defaults to the stack name 'Dev_Stack'), got 'Dev_Stack'",
    )


def test_environment_defaults_to_stack_name() -> None:
    assert parse_config(raw("dev", environment=None), stack="staging").environment == "staging"
    assert parse_config(raw("dev", environment="qa-2"), stack="dev").environment == "qa-2"


def test_pulumi_yaml_declares_the_same_defaults_as_config_py() -> None:
    # GIVEN the project file's config declarations
    declared = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())["config"]
    settings = {s.key: s for s in SETTINGS}
    # THEN every declared key is a setting, and its default means the same thing in both places
    for key, declaration in declared.items():
        assert key in settings, key
        assert declaration["description"], key
        setting = settings[key]
        if setting.default is None:
            assert declaration.get("default", "") == "", key  # "" = unset / computed
        elif setting.kind == "list":
            assert tuple(declaration["default"]) == tuple(setting.default), key
        elif setting.kind == "number":
            assert float(declaration["default"]) == setting.default, key
        else:
            assert declaration["default"] == setting.default, key
    # AND the only undeclared settings are the ones Pulumi's schema cannot express (objects, computed integers)
    assert set(settings) - set(declared) == {"keys", "keyExpiryHours", "guardrails", "adminKeyRotation"}
    assert "default" not in declared["openaiProjectId"]  # required: the CLI refuses a stack without it


# --- every problem, by key ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"environment": "Prod"}, "keyrot:environment: must match ^[a-z][a-z0-9-]{0,31}$"),
        ({"environment": "a" * 33}, "keyrot:environment: must match"),
        ({"openaiProjectId": None}, "keyrot:openaiProjectId: is required"),
        ({"openaiProjectId": "proj abc"}, "keyrot:openaiProjectId: must be an OpenAI project id"),
        ({"keys": None}, "keyrot:keys: is required"),
        ({"keys": "chat"}, "keyrot:keys: must be a list of {name, readerRoleArns} objects"),
        ({"keys": []}, "keyrot:keys: must list at least one key"),
        ({"keys": ["chat"]}, "keyrot:keys[0]: must be an object {name, readerRoleArns}"),
        ({"keys": [{"name": "Chat"}]}, "keyrot:keys[0].name: must match ^[a-z][a-z0-9-]{0,63}$"),
        ({"keys": [{}]}, "keyrot:keys[0].name: must match"),
        ({"keys": [{"name": "openai-admin-key"}]}, "keyrot:keys[0].name: 'openai-admin-key' is reserved"),
        ({"keys": [{"name": "a"}, {"name": "a"}]}, "keyrot:keys[1].name: duplicate key name 'a'"),
        ({"keys": [{"name": "a", "readers": []}]}, "keyrot:keys[0]: unknown field(s) readers"),
        ({"keys": [{"name": "a", "readerRoleArns": "x"}]}, "keyrot:keys[0].readerRoleArns: must be a list"),
        (
            {"keys": [{"name": "a", "readerRoleArns": ["arn:aws:iam::111111111111:user/bob"]}]},
            "keyrot:keys[0].readerRoleArns[0]: must be an IAM role ARN",
        ),
        (
            {"keys": [{"name": "a", "readerRoleArns": ["arn:aws:iam::111111111111:role/r"] * 2}]},
            "keyrot:keys[0].readerRoleArns[1]: arn:aws:iam::111111111111:role/r is listed twice",
        ),
        ({"rotationSchedule": "cron(5 0 * * ? *)"}, "keyrot:rotationSchedule: cron minutes must be 0, got '5'"),
        ({"rotationSchedule": "cron(0 0 * * ? 2030)"}, "keyrot:rotationSchedule: cron year must be '*', got '2030'"),
        (
            {"rotationSchedule": "rate(2 hours)"},
            "keyrot:rotationSchedule: Secrets Manager rotates at most every 4 hours",
        ),
        (
            {"rotationSchedule": "cron(0 */2 * * ? *)"},
            "keyrot:rotationSchedule: Secrets Manager rotates at most every 4",
        ),
        ({"rotationSchedule": "rate(1000 days)"}, "keyrot:rotationSchedule: the longest rotation period is 999 days"),
        ({"rotationSchedule": "every week"}, "keyrot:rotationSchedule: must be rate(N hours|days) or cron("),
        ({"rotationSchedule": "cron(0 0 * * *)"}, "keyrot:rotationSchedule: cron needs 6 fields"),
        ({"rotationSchedule": "cron(0 0 * * MON *)"}, "keyrot:rotationSchedule: cron needs '?' in exactly one"),
        ({"rotationSchedule": "cron(0 25 * * ? *)"}, "keyrot:rotationSchedule: cron hours: '25' is outside 0-23"),
        ({"rotationWindow": "3 hours"}, "keyrot:rotationWindow: must be a whole number of hours such as '3h'"),
        ({"rotationWindow": "25h"}, "keyrot:rotationWindow: must be between 1h and 24h, got 25h"),
        (
            {
                "rotationSchedule": "rate(6 hours)",
                "rotationWindow": "8h",
                "gracePeriodHours": 1,
                "maxGracePeriodHours": 2,
            },
            "keyrot:rotationWindow: the 8h window would run into the next rotation window (6 h apart)",
        ),
        (
            {
                "rotationSchedule": "cron(0 22 * * ? *)",
                "rotationWindow": "3h",
                "gracePeriodHours": 1,
                "maxGracePeriodHours": 2,
            },
            "keyrot:rotationWindow: the 3h window opening at 22:00 UTC would run into the next UTC day",
        ),
        ({"gracePeriodHours": -1}, "keyrot:gracePeriodHours: must be >= 0, got -1"),
        ({"gracePeriodHours": "six"}, "keyrot:gracePeriodHours: must be a whole number, got 'six'"),
        ({"maxGracePeriodHours": 3}, "keyrot:maxGracePeriodHours: must be >= gracePeriodHours (6), got 3"),
        ({"maxGracePeriodHours": 168}, "keyrot:maxGracePeriodHours: must be shorter than the rotation interval (168 h"),
        ({"quietWindowMinutes": 20000}, "keyrot:quietWindowMinutes: must be between 0 and 10080, got 20000"),
        ({"inUsePolicy": "delete"}, "keyrot:inUsePolicy: must be one of keep, revoke, got 'delete'"),
        (
            {"keyExpiryHours": 100},
            "keyrot:keyExpiryHours: must be 0 (no expiry) or at least the rotation interval plus",
        ),
        ({"keyExpiryHours": 9000}, "keyrot:keyExpiryHours: must be between 0 and 8760, got 9000"),
        ({"oncallEmails": ["not-an-address"]}, "keyrot:oncallEmails: 'not-an-address' is not an email address"),
        ({"oncallEmails": "ops@example.com"}, "keyrot:oncallEmails: must be a list of strings"),
        (
            {"oncallHttpsEndpoints": ["http://hooks.example.com/x"]},
            "keyrot:oncallHttpsEndpoints: must be https:// URLs, got 'http://hooks.example.com/x'",
        ),
        (
            {"oncallTopicArn": "arn:aws:sqs:us-east-1:111111111111:q", "oncallEmails": []},
            "keyrot:oncallTopicArn: must be an SNS topic ARN",
        ),
        ({"oncallEmails": [], "oncallHttpsEndpoints": []}, "keyrot:oncallEmails: nobody would be notified"),
        ({"dailySpendLimitUsd": 0}, "keyrot:dailySpendLimitUsd: must be greater than 0, got '0'"),
        ({"dailySpendLimitUsd": "lots"}, "keyrot:dailySpendLimitUsd: must be a number, got 'lots'"),
        ({"monitorIntervalMinutes": 0}, "keyrot:monitorIntervalMinutes: must be between 1 and 480, got 0"),
        ({"settleDelayMinutes": -5}, "keyrot:settleDelayMinutes: must be between 0 and 1440, got -5"),
        ({"usageKinds": ["completions", "videos"]}, "keyrot:usageKinds: unknown usage kind(s) 'videos'"),
        ({"usageKinds": []}, "keyrot:usageKinds: must list at least one of"),
        ({"usageKinds": ["images", "images"]}, "keyrot:usageKinds: lists a usage kind more than once"),
        ({"anomalyAlarms": ["requests", "outputTokens"]}, "keyrot:anomalyAlarms: unknown signal(s) 'outputTokens'"),
        ({"anomalyAlarms": []}, "keyrot:anomalyAlarms: must list at least one of requests, inputTokens"),
        ({"anomalyAlarms": ["requests", "requests"]}, "keyrot:anomalyAlarms: lists a signal more than once"),
        ({"anomalyAlarms": "requests"}, "keyrot:anomalyAlarms: must be a list of strings"),
        ({"logRetentionDays": 10}, "keyrot:logRetentionDays: must be one of CloudWatch Logs' values"),
        ({"logRetentionDays": 0}, "keyrot:logRetentionDays: must be >= 1, got 0"),
        ({"monitorIntervalMinutes": "5m"}, "keyrot:monitorIntervalMinutes: must be a whole number, got '5m'"),
        (
            # (dev rotates the admin-key secret keyrot creates: an existing secret goes without adminKeyRotation)
            {"existingAdminKeySecretArn": "keyrot/dev/openai-admin-key", "adminKeyRotation": None},
            "keyrot:existingAdminKeySecretArn: must be a Secrets Manager secret ARN",
        ),
        ({"administratorArns": ["admin"]}, "keyrot:administratorArns: must be IAM role or user ARNs, got 'admin'"),
        # A wildcard exempts whatever it matches from both caps: only a named prefix may end in '*'.
        (
            {"administratorArns": ["arn:aws:iam::111111111111:role/*"]},
            "keyrot:administratorArns: arn:aws:iam::111111111111:role/* matches every role in the account: it would "
            "exempt all of them from both caps",
        ),
        (
            {"administratorArns": ["arn:aws:iam::111111111111:user/*"]},
            "keyrot:administratorArns: arn:aws:iam::111111111111:user/* matches every user in the account",
        ),
        (
            {"administratorArns": ["arn:aws:iam::111111111111:role/*Admin"]},
            "keyrot:administratorArns: arn:aws:iam::111111111111:role/*Admin uses a wildcard other than one trailing",
        ),
        (
            {"administratorArns": ["arn:aws:iam::111111111111:role/ops/*/admin*"]},
            "keyrot:administratorArns: arn:aws:iam::111111111111:role/ops/*/admin* uses a wildcard other than one",
        ),
        (
            {"deployerArns": ["arn:aws:iam::111111111111:role//*"]},
            "keyrot:deployerArns: arn:aws:iam::111111111111:role//*",
        ),
        ({"sharedProjectEnvironments": ["dev"]}, "keyrot:sharedProjectEnvironments: lists this environment itself"),
        ({"sharedProjectEnvironments": ["Prod"]}, "keyrot:sharedProjectEnvironments: must be environment names"),
        ({"production": "maybe"}, "keyrot:production: must be true or false, got 'maybe'"),
        (
            {"existingKmsKeyArn": "arn:aws:kms:us-east-1:111111111111:alias/keyrot"},
            "keyrot:existingKmsKeyArn: must be a KMS key ARN",
        ),
        ({"vpcSubnetIds": ["subnet-0123456789abcdef0"]}, "keyrot:vpcSubnetIds: needs vpcSecurityGroupIds too"),
        ({"vpcSecurityGroupIds": ["sg-0123456789abcdef0"]}, "keyrot:vpcSecurityGroupIds: needs vpcSubnetIds too"),
        ({"openaiBaseUrl": "http://api.openai.com/v1"}, "keyrot:openaiBaseUrl: must be an https:// URL"),
        ({"openaiBaseUrl": "http://10.0.0.5:8080/v1"}, "keyrot:openaiBaseUrl: must be an https:// URL (http only on"),
        ({"anomalyBandWidth": 0}, "keyrot:anomalyBandWidth: must be greater than 0 and at most 10, got '0'"),
        ({"anomalyBandWidth": 11}, "keyrot:anomalyBandWidth: must be greater than 0 and at most 10, got '11'"),
        ({"dashboard": "sometimes"}, "keyrot:dashboard: must be true or false, got 'sometimes'"),
        ({"rotationSchedul": "rate(7 days)"}, "keyrot:rotationSchedul: is not a keyrot setting; known settings:"),
        (
            {"GracePeriodHours": "6"},
            "keyrot:GracePeriodHours: is not a keyrot setting; did you mean keyrot:gracePeriodHours?",
        ),
    ],
)
def test_invalid_setting_is_reported_by_key(overrides: dict[str, Any], expected: str) -> None:
    message = only_problem("dev", **overrides)
    assert message.startswith(expected), message


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_PlatformAdmin_*",
        "arn:aws:iam::111111111111:role/breakglass/*",
        "arn:aws:iam::111111111111:role/breakglass-admin",
        "arn:aws:iam::111111111111:user/ops-oncall",
    ],
)
def test_a_wildcard_completing_a_named_prefix_is_accepted(arn: str) -> None:
    config = parse_config(raw("dev", administratorArns=[arn], deployerArns=[arn]), stack="dev")
    assert config.administrator_arns == config.deployer_arns == (arn,)


def test_grace_period_must_be_shorter_than_interval() -> None:
    found = problems("dev", gracePeriodHours=168, maxGracePeriodHours=200)
    assert found[0] == (
        "keyrot:gracePeriodHours: must be shorter than the rotation interval (168 h for rate(7 days)), "
        "or a previous key would outlive the next rotation, got 168"
    )
    # The max grace, too long as well, is reported alongside.
    assert found[1].startswith("keyrot:maxGracePeriodHours: must be shorter than the rotation interval (168 h")


def test_oncall_topic_cannot_be_combined_with_subscriptions() -> None:
    message = only_problem("dev", oncallTopicArn="arn:aws:sns:us-east-1:111111111111:ops")
    assert message.startswith("keyrot:oncallTopicArn: cannot be combined with oncallEmails/oncallHttpsEndpoints")


def test_default_key_expiry_too_long_for_a_slow_schedule() -> None:
    message = only_problem("dev", rotationSchedule="rate(365 days)")
    assert message.startswith("keyrot:keyExpiryHours: the default (interval 8760 h + max grace 24 h + 24 h = 8808 h)")
    # An explicit 0 (no expiry) is the way out.
    assert (
        parse_config(raw("dev", rotationSchedule="rate(365 days)", keyExpiryHours=0), stack="dev").key_expiry_hours == 0
    )


def test_every_problem_is_reported_together() -> None:
    # GIVEN several independent mistakes
    found = problems(
        "dev",
        environment="Dev",
        rotationSchedule="cron(5 0 * * ? *)",
        inUsePolicy="delete",
        dailySpendLimitUsd=-1,
        logRetentionDays=10,
    )
    # THEN one ConfigError lists each of them, named by key
    keys = [p.split(":", 2)[1] for p in found]
    assert keys == ["environment", "rotationSchedule", "inUsePolicy", "dailySpendLimitUsd", "logRetentionDays"]
    # AND the exception text (what `pulumi preview` prints) contains every line
    with pytest.raises(ConfigError) as caught:
        parse_config(raw("dev", environment="Dev", inUsePolicy="delete"), stack="dev")
    assert "keyrot:environment:" in str(caught.value) and "keyrot:inUsePolicy:" in str(caught.value)


def test_emergency_mode_grace_zero_is_valid() -> None:
    config = parse_config(raw("dev", gracePeriodHours=0, maxGracePeriodHours=0), stack="dev")
    assert config.grace_period_hours == 0


def test_cron_schedule_uses_longest_gap_for_expiry() -> None:
    # Weekdays at 02:00: gaps of 24 h and, over the weekend, 72 h.
    config = parse_config(
        raw("dev", rotationSchedule="cron(0 2 ? * MON-FRI *)", gracePeriodHours=6, maxGracePeriodHours=12), stack="dev"
    )
    assert (config.rotation_min_interval_hours, config.rotation_max_interval_hours) == (24, 72)
    assert config.key_expiry_hours == 72 + 12 + 24


def test_openai_base_url_is_normalised() -> None:
    config = parse_config(raw("dev", openaiBaseUrl="https://proxy.example.com/v1/"), stack="dev")
    assert config.openai_base_url == "https://proxy.example.com/v1"


# --- the deploying account ---------------------------------------------------------------------------------------


def test_reader_roles_must_be_in_the_deploying_account() -> None:
    config = parse_config(raw("dev"), stack="dev")
    check_account(config, "111111111111")
    with pytest.raises(ConfigError) as caught:
        check_account(config, "222222222222")
    assert caught.value.problems[0] == (
        "keyrot:keys: chat-backend: reader role arn:aws:iam::111111111111:role/chat-backend-dev is in account "
        "111111111111, but this stack deploys to account 222222222222"
    )
    # Every role and the administrator are reported.
    assert len(caught.value.problems) == 4
    assert caught.value.problems[-1].startswith("keyrot:administratorArns: arn:aws:iam::111111111111:role/")


def test_plain_http_is_accepted_for_a_loopback_stand_in_only() -> None:
    config = parse_config(raw("dev", openaiBaseUrl="http://127.0.0.1:8080/v1"), stack="dev")
    assert config.openai_base_url == "http://127.0.0.1:8080/v1"


@pytest.mark.parametrize(
    ("setting", "arn"),
    [
        ("existingAdminKeySecretArn", "arn:aws:secretsmanager:{region}:{account}:secret:openai/admin-key-Xy12Ab"),
        ("oncallTopicArn", "arn:aws:sns:{region}:{account}:platform-oncall"),
    ],
)
def test_an_existing_secret_or_topic_must_be_in_the_deploying_account_and_region(setting: str, arn: str) -> None:
    values = raw("dev")
    values[setting] = arn.format(region="us-east-1", account="111111111111")
    if setting == "oncallTopicArn":  # the topic replaces keyrot's own subscriptions
        values.pop("oncallEmails", None)
        values.pop("oncallHttpsEndpoints", None)
    else:  # keyrot rotates only an admin-key secret of its own
        values.pop("adminKeyRotation", None)
    config = parse_config(values, stack="dev")
    check_account(config, "111111111111", "us-east-1")  # same account and region: fine
    with pytest.raises(ConfigError) as caught:
        check_account(config, "222222222222", "eu-west-1")
    problems = [p for p in caught.value.problems if p.startswith(f"keyrot:{setting}:")]
    assert problems == [
        f"keyrot:{setting}: {arn.format(region='us-east-1', account='111111111111')} is in account 111111111111, "
        "but this stack deploys to 222222222222",
        f"keyrot:{setting}: {arn.format(region='us-east-1', account='111111111111')} is in region us-east-1, "
        "but this stack deploys to eu-west-1",
    ]


def test_runbook_url_reaches_alarms_rotation_messages_and_the_monitor() -> None:
    # GIVEN a stack that points on-call at its own copy of the runbook
    from keyrot.pulumi.components.alarms import alarm_specs
    from keyrot.pulumi.components.notifications import rotation_event_input_transformer
    from keyrot.pulumi.lambda_settings import monitor_environment

    values = raw("dev")
    values["runbookUrl"] = "https://wiki.example.com/platform/keyrot-runbook"
    config = parse_config(values, stack="dev")
    # THEN every alarm description, the rotation-failure message and the monitor's notifications link there
    specs = alarm_specs(config, rotation_function_name="r", monitor_function_name="m")
    assert specs and all("https://wiki.example.com/platform/keyrot-runbook#" in s.description for s in specs)
    template = rotation_event_input_transformer("dev", config.runbook_url)["input_template"]
    assert "https://wiki.example.com/platform/keyrot-runbook#rotation-failed" in template
    variables = monitor_environment(config, admin_secret_arn="arn", topic_arn="arn")
    assert variables["KEYROT_RUNBOOK_URL"] == "https://wiki.example.com/platform/keyrot-runbook"


@pytest.mark.parametrize(("setting", "dashboard", "published"), [(None, False, "false"), ("true", True, "true")])
def test_the_dashboard_is_off_by_default_and_brings_its_own_metrics(
    setting: str | None, dashboard: bool, published: str
) -> None:
    # GIVEN a stack that does not mention the dashboard, or turns it on
    from keyrot.pulumi.lambda_settings import monitor_environment

    values = raw("dev")
    values.pop("dashboard", None)
    if setting is not None:
        values["dashboard"] = setting
    config = parse_config(values, stack="dev")
    # THEN the dashboard (and the per-key metrics only it shows) is there only when asked for
    assert config.dashboard is dashboard
    assert monitor_environment(config, admin_secret_arn="arn", topic_arn="arn")["KEYROT_DASHBOARD_METRICS"] == published


@pytest.mark.parametrize(
    "url", ["http://wiki.example.com/runbook", "https://wiki.example.com/runbook#top", "wiki.example.com/runbook"]
)
def test_runbook_url_must_be_https_without_fragment(url: str) -> None:
    values = raw("dev")
    values["runbookUrl"] = url
    with pytest.raises(ConfigError) as caught:
        parse_config(values, stack="dev")
    assert list(caught.value.problems) == [
        f"keyrot:runbookUrl: must be an https:// URL without a #fragment, got {url!r}"
    ]
