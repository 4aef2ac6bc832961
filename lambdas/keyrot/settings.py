"""Runtime settings. The only module that reads environment variables.

Resolution order: explicit argument (the dataclass constructor), then environment variable, then default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from keyrot.constants import (
    DEFAULT_OPENAI_BASE_URL,
    ENV_ADMIN_SECRET_ARN,
    ENV_ENVIRONMENT,
    ENV_GRACE_PERIOD_SECONDS,
    ENV_KEY_EXPIRY_SECONDS,
    ENV_OPENAI_BASE_URL,
    ENV_VALIDATION_ATTEMPTS,
    ENV_VALIDATION_DELAY_SECONDS,
)
from keyrot.errors import ConfigurationError
from keyrot.secret_model import ENVIRONMENT_PATTERN

_ARN_PREFIX = "arn:"


@dataclass(frozen=True)
class RotationSettings:
    """What the rotation Lambda (and the CLI's revoke) needs to know about its environment."""

    environment: str
    admin_secret_arn: str
    openai_base_url: str = DEFAULT_OPENAI_BASE_URL
    # How long the previous key stays valid after a rotation. 0 means emergency mode: revoke at once.
    grace_period_seconds: int = 24 * 3600
    # OpenAI-side expiry of each minted key (a backstop if revocation never happens). 0 means no expiry.
    key_expiry_seconds: int = 0
    # testSecret/revoke: how many times to probe a key, and the pause between probes (propagation delay).
    validation_attempts: int = 6
    validation_delay_seconds: float = 2.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RotationSettings:
        env = os.environ if environ is None else environ
        return cls(
            environment=_environment(env),
            admin_secret_arn=_required_arn(env, ENV_ADMIN_SECRET_ARN),
            openai_base_url=_base_url(env),
            grace_period_seconds=_int(env, ENV_GRACE_PERIOD_SECONDS, default=24 * 3600, minimum=0),
            key_expiry_seconds=_int(env, ENV_KEY_EXPIRY_SECONDS, default=0, minimum=0, maximum=400 * 86400),
            validation_attempts=_int(env, ENV_VALIDATION_ATTEMPTS, default=6, minimum=1, maximum=30),
            validation_delay_seconds=_float(env, ENV_VALIDATION_DELAY_SECONDS, default=2.0, minimum=0, maximum=60),
        )

    @property
    def emergency(self) -> bool:
        """True when the previous key must be revoked as soon as the new one is live."""
        return self.grace_period_seconds == 0


def _environment(env: Mapping[str, str]) -> str:
    value = env.get(ENV_ENVIRONMENT, "").strip()
    if not value:
        raise ConfigurationError(f"{ENV_ENVIRONMENT} is not set")
    if not ENVIRONMENT_PATTERN.fullmatch(value):
        raise ConfigurationError(f"{ENV_ENVIRONMENT}={value[:40]!r} is not a valid environment name")
    return value


def _required_arn(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{name} is not set")
    if not value.startswith(_ARN_PREFIX) or value.count(":") < 5:
        raise ConfigurationError(f"{name} is not an ARN: {value[:80]!r}")
    return value


def _base_url(env: Mapping[str, str]) -> str:
    value = env.get(ENV_OPENAI_BASE_URL, "").strip() or DEFAULT_OPENAI_BASE_URL
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ConfigurationError(f"{ENV_OPENAI_BASE_URL} must be an http(s) URL, got {value[:80]!r}")
    return value.rstrip("/")


def _int(env: Mapping[str, str], name: str, *, default: int, minimum: int, maximum: int | None = None) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw[:40]!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise ConfigurationError(f"{name} must be {bounds}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, *, default: float, minimum: float, maximum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw[:40]!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigurationError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value
