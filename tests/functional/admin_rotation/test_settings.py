"""AdminRotationSettings: the admin rotation function's environment, read once, refused clearly when wrong."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyrot.errors import ConfigurationError
from keyrot.settings import ADMIN_KEY_MAX_LIFETIME_SECONDS, AdminRotationSettings

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyrot/dev/openai-admin-key-AbCdEf"
BASE = {
    "KEYROT_ENVIRONMENT": "dev",
    "KEYROT_ADMIN_SECRET_ARN": ARN,
    "KEYROT_OPENAI_PROJECT_ID": "proj_abc123",
}


def test_defaults_rotate_every_30_days_with_a_44_day_backstop_and_a_16_minute_grace() -> None:
    # WHEN only the required variables are set
    settings = AdminRotationSettings.from_env(BASE)
    # THEN the schedule, backstop and grace are the documented defaults, and the bootstrap key is kept
    assert settings.rotation_interval_seconds == 30 * 86400
    assert settings.expiry_seconds == 44 * 86400
    assert settings.grace_period_seconds == 900 + 60
    assert settings.age_alarm_seconds == 31 * 86400
    assert settings.delete_bootstrap_key is False


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("KEYROT_OPENAI_PROJECT_ID", "", "KEYROT_OPENAI_PROJECT_ID"),
        ("KEYROT_ADMIN_SECRET_ARN", "keyrot/dev/openai-admin-key", "not an ARN"),
        ("KEYROT_ADMIN_ROTATION_INTERVAL_SECONDS", "3600", "KEYROT_ADMIN_ROTATION_INTERVAL_SECONDS"),
        ("KEYROT_ADMIN_KEY_EXPIRY_SLACK_SECONDS", "60", "KEYROT_ADMIN_KEY_EXPIRY_SLACK_SECONDS"),
        ("KEYROT_ADMIN_KEY_GRACE_SECONDS", "-1", "KEYROT_ADMIN_KEY_GRACE_SECONDS"),
        ("KEYROT_ADMIN_KEY_EXPIRY_SLACK_SECONDS", str(2 * 86400), "plus a day to promote a new key"),
        ("KEYROT_ADMIN_DELETE_BOOTSTRAP_KEY", "maybe", "true or false"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        AdminRotationSettings.from_env({**BASE, name: value})


def test_a_schedule_whose_backstop_exceeds_what_openai_accepts_is_refused() -> None:
    # GIVEN 360 days between rotations and 14 days of slack: 374 days, past OpenAI's 365-day limit
    environ = {**BASE, "KEYROT_ADMIN_ROTATION_INTERVAL_SECONDS": str(360 * 86400)}
    # THEN the deployment is refused before any key is minted
    with pytest.raises(ConfigurationError, match="longer than the 31536000 s"):
        AdminRotationSettings.from_env(environ)


@given(
    interval=st.integers(min_value=4 * 3600, max_value=ADMIN_KEY_MAX_LIFETIME_SECONDS),
    slack=st.integers(min_value=86400, max_value=ADMIN_KEY_MAX_LIFETIME_SECONDS),
    grace=st.integers(min_value=0, max_value=86400),
)
def test_accepted_settings_mint_keys_openai_accepts_that_outlive_their_successor(
    interval: int, slack: int, grace: int
) -> None:
    # GIVEN any combination of the three durations
    environ = {
        **BASE,
        "KEYROT_ADMIN_ROTATION_INTERVAL_SECONDS": str(interval),
        "KEYROT_ADMIN_KEY_EXPIRY_SLACK_SECONDS": str(slack),
        "KEYROT_ADMIN_KEY_GRACE_SECONDS": str(grace),
    }
    try:
        settings = AdminRotationSettings.from_env(environ)
    except ConfigurationError:
        return
    # THEN whatever is accepted mints keys OpenAI accepts, that stay promotable for a day of retries
    assert 1 <= settings.expiry_seconds <= ADMIN_KEY_MAX_LIFETIME_SECONDS
    assert settings.expiry_seconds - settings.promotion_floor_seconds >= 86400
