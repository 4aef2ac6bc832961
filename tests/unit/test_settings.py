"""Settings come from the environment only through Settings.from_env, with errors that name the variable."""

from __future__ import annotations

import pytest

from keyrot.errors import ConfigurationError
from keyrot.settings import MonitorSettings, RotationSettings

ADMIN_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrot/dev/openai-admin-key-AbCdEf"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:keyrot-dev-oncall"


def test_rotation_settings_defaults() -> None:
    settings = RotationSettings.from_env({"KEYROT_ENVIRONMENT": "dev", "KEYROT_ADMIN_SECRET_ARN": ADMIN_ARN})
    assert settings.openai_base_url == "https://api.openai.com/v1"
    assert settings.grace_period_seconds == 86400
    assert settings.key_expiry_seconds == 0
    assert not settings.emergency


def test_rotation_settings_read_every_variable() -> None:
    settings = RotationSettings.from_env(
        {
            "KEYROT_ENVIRONMENT": "prod",
            "KEYROT_ADMIN_SECRET_ARN": ADMIN_ARN,
            "OPENAI_BASE_URL": "http://127.0.0.1:9999/v1/",
            "KEYROT_GRACE_PERIOD_SECONDS": "0",
            "KEYROT_KEY_EXPIRY_SECONDS": "3600",
            "KEYROT_VALIDATION_ATTEMPTS": "2",
            "KEYROT_VALIDATION_DELAY_SECONDS": "0.5",
        }
    )
    assert settings.openai_base_url == "http://127.0.0.1:9999/v1"
    assert settings.emergency
    assert (settings.key_expiry_seconds, settings.validation_attempts, settings.validation_delay_seconds) == (
        3600,
        2,
        0.5,
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"KEYROT_ENVIRONMENT": ""}, "KEYROT_ENVIRONMENT is not set"),
        ({"KEYROT_ENVIRONMENT": "Prod"}, "KEYROT_ENVIRONMENT='Prod' is not a valid environment name"),
        ({"KEYROT_ADMIN_SECRET_ARN": "keyrot/dev/admin"}, "KEYROT_ADMIN_SECRET_ARN is not an ARN"),
        ({"OPENAI_BASE_URL": "ftp://x"}, "OPENAI_BASE_URL must be an http(s) URL"),
        ({"KEYROT_GRACE_PERIOD_SECONDS": "a day"}, "KEYROT_GRACE_PERIOD_SECONDS must be an integer"),
        ({"KEYROT_GRACE_PERIOD_SECONDS": "-1"}, "KEYROT_GRACE_PERIOD_SECONDS must be >= 0"),
        ({"KEYROT_VALIDATION_ATTEMPTS": "0"}, "KEYROT_VALIDATION_ATTEMPTS must be between 1 and 30"),
        ({"KEYROT_VALIDATION_DELAY_SECONDS": "x"}, "KEYROT_VALIDATION_DELAY_SECONDS must be a number"),
    ],
)
def test_rotation_settings_errors_name_the_variable(changes: dict[str, str], message: str) -> None:
    env = {"KEYROT_ENVIRONMENT": "dev", "KEYROT_ADMIN_SECRET_ARN": ADMIN_ARN, **changes}
    with pytest.raises(ConfigurationError) as caught:
        RotationSettings.from_env(env)
    assert message in str(caught.value)


def _monitor_env(**changes: str) -> dict[str, str]:
    env = {
        "KEYROT_ENVIRONMENT": "dev",
        "KEYROT_ADMIN_SECRET_ARN": ADMIN_ARN,
        "KEYROT_OPENAI_PROJECT_ID": "proj_abc",
        "KEYROT_TOPIC_ARN": TOPIC_ARN,
        "KEYROT_STATE_PARAMETER": "/keyrot/dev/monitor-state",
    }
    env.update(changes)
    return env


def test_monitor_settings_defaults_and_revocation_subset() -> None:
    settings = MonitorSettings.from_env(_monitor_env(KEYROT_USAGE_KINDS="completions, embeddings"))
    assert settings.usage_kinds == ("completions", "embeddings")
    assert settings.in_use_policy == "keep"
    rotation = settings.rotation_settings()
    assert (rotation.environment, rotation.admin_secret_arn) == ("dev", ADMIN_ARN)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"KEYROT_OPENAI_PROJECT_ID": ""}, "KEYROT_OPENAI_PROJECT_ID must be an OpenAI project id"),
        ({"KEYROT_STATE_PARAMETER": "monitor-state"}, "KEYROT_STATE_PARAMETER must be an SSM parameter name"),
        ({"KEYROT_TOPIC_ARN": "oncall"}, "KEYROT_TOPIC_ARN is not an ARN"),
        ({"KEYROT_IN_USE_POLICY": "panic"}, "KEYROT_IN_USE_POLICY must be one of keep, revoke"),
        ({"KEYROT_USAGE_KINDS": "completions,tarot"}, "unknown: tarot"),
        (
            {"KEYROT_GRACE_PERIOD_SECONDS": "7200", "KEYROT_MAX_GRACE_PERIOD_SECONDS": "3600"},
            "KEYROT_MAX_GRACE_PERIOD_SECONDS (3600) must not be shorter than KEYROT_GRACE_PERIOD_SECONDS (7200)",
        ),
    ],
)
def test_monitor_settings_errors_name_the_variable(changes: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        MonitorSettings.from_env(_monitor_env(**changes))
    assert message in str(caught.value)
