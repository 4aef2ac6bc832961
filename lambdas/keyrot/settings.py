"""Runtime settings. The only module that reads environment variables.

Resolution order: explicit argument (the dataclass constructor), then environment variable, then default.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from keyrot import metric_names as m
from keyrot.constants import (
    ADMIN_KEY_AGE_ALARM_SLACK_SECONDS,
    DEFAULT_ADMIN_KEY_EXPIRY_SLACK_SECONDS,
    DEFAULT_ADMIN_KEY_GRACE_SECONDS,
    DEFAULT_ADMIN_ROTATION_INTERVAL_SECONDS,
    DEFAULT_OPENAI_BASE_URL,
    ENV_ADMIN_DELETE_BOOTSTRAP_KEY,
    ENV_ADMIN_KEY_EXPIRY_SLACK_SECONDS,
    ENV_ADMIN_KEY_GRACE_SECONDS,
    ENV_ADMIN_ROTATION_INTERVAL_SECONDS,
    ENV_ADMIN_SECRET_ARN,
    ENV_ANOMALY_METRICS,
    ENV_DASHBOARD_METRICS,
    ENV_ENVIRONMENT,
    ENV_GRACE_PERIOD_SECONDS,
    ENV_IN_USE_POLICY,
    ENV_KEY_EXPIRY_SECONDS,
    ENV_KEY_SCOPES,
    ENV_MANAGED_SECRETS,
    ENV_MAX_GRACE_PERIOD_SECONDS,
    ENV_NOTIFY_DEDUP_SECONDS,
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
    ENV_VALIDATION_ATTEMPTS,
    ENV_VALIDATION_DELAY_SECONDS,
)
from keyrot.errors import ConfigurationError
from keyrot.scopes import ScopesError, parse_scopes
from keyrot.secret_model import ENVIRONMENT_PATTERN, KEY_NAME_PATTERN, OPENAI_ID_PATTERN

DEFAULT_USAGE_KINDS = (
    "completions",
    "embeddings",
    "moderations",
    "images",
    "audio_speeches",
    "audio_transcriptions",
)
MONITORED_USAGE_KINDS = frozenset(DEFAULT_USAGE_KINDS)
IN_USE_POLICIES = ("keep", "revoke")
DEFAULT_RUNBOOK_URL = "https://github.com/keyrot/keyrot/blob/main/docs/runbook.md"

_ARN_PREFIX = "arn:"
# A Secrets Manager secret ARN: arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-<6 characters>.
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@\-]{1,512}$")
_MAX_MANAGED_SECRETS_CHARS = 3000  # Lambda's whole environment is 4 KB
DEFAULT_MAX_GRACE_PERIOD_SECONDS = 72 * 3600


@dataclass(frozen=True)
class Deployment:
    """What the deployment (never a writable tag) says an environment manages.

    `managed_secrets` maps each key name to its secret's ARN; `project_id` is the OpenAI project; and
    `shared_environments` are the other environments declared to share that project. None means "not declared"
    (an older deployment): callers then fall back to the secrets' keyrot:* tags and treat every keyrot-named
    environment as another environment's, as keyrot did before these variables existed.
    """

    managed_secrets: Mapping[str, str] | None = None
    project_id: str | None = None
    shared_environments: tuple[str, ...] | None = None

    def key_name_of(self, arn: str) -> str | None:
        """The key name the deployment declares for secret `arn`, or None when it declares no such secret."""
        if self.managed_secrets is None:
            return None
        return next((name for name, declared in self.managed_secrets.items() if declared == arn), None)


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
    # The longest a previous key may stay live after its rotation (the janitor's bound), and the longest time between
    # two scheduled rotations (0: unknown). A pending key whose OpenAI-side expiry leaves less than their sum is
    # never promoted: it would die while still current, before the next rotation replaces it.
    max_grace_period_seconds: int = DEFAULT_MAX_GRACE_PERIOD_SECONDS
    rotation_interval_seconds: int = 0
    # What the deployment declares (see Deployment): None when not declared.
    project_id: str | None = None
    managed_secrets: Mapping[str, str] | None = None
    shared_environments: tuple[str, ...] | None = None
    # The scopes each key is minted with ({key name: scopes}); a key not named here gets an unrestricted key.
    key_scopes: Mapping[str, tuple[str, ...]] | None = None

    def __post_init__(self) -> None:
        if self.max_grace_period_seconds < self.grace_period_seconds:
            raise ConfigurationError(
                f"{ENV_MAX_GRACE_PERIOD_SECONDS} ({self.max_grace_period_seconds}) must not be shorter than "
                f"{ENV_GRACE_PERIOD_SECONDS} ({self.grace_period_seconds})"
            )

    def scopes_for(self, key_name: str) -> tuple[str, ...] | None:
        """The scopes `key_name`'s keys are minted with; None: unrestricted (keyrot's behaviour before scopes)."""
        return (self.key_scopes or {}).get(key_name)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RotationSettings:
        env = os.environ if environ is None else environ
        environment = _environment(env)
        managed_secrets = managed_secrets_from_env(env)
        return cls(
            environment=environment,
            admin_secret_arn=_required_arn(env, ENV_ADMIN_SECRET_ARN),
            openai_base_url=_base_url(env),
            grace_period_seconds=_int(env, ENV_GRACE_PERIOD_SECONDS, default=24 * 3600, minimum=0),
            key_expiry_seconds=_int(env, ENV_KEY_EXPIRY_SECONDS, default=0, minimum=0, maximum=400 * 86400),
            validation_attempts=_int(env, ENV_VALIDATION_ATTEMPTS, default=6, minimum=1, maximum=30),
            validation_delay_seconds=_float(env, ENV_VALIDATION_DELAY_SECONDS, default=2.0, minimum=0, maximum=60),
            max_grace_period_seconds=_int(
                env, ENV_MAX_GRACE_PERIOD_SECONDS, default=DEFAULT_MAX_GRACE_PERIOD_SECONDS, minimum=0
            ),
            rotation_interval_seconds=_int(
                env, ENV_ROTATION_INTERVAL_SECONDS, default=0, minimum=0, maximum=1000 * 86400
            ),
            project_id=_optional_project_id(env),
            managed_secrets=managed_secrets,
            shared_environments=shared_environments_from_env(env, environment),
            key_scopes=key_scopes_from_env(env, managed_secrets),
        )

    @property
    def emergency(self) -> bool:
        """True when the previous key must be revoked as soon as the new one is live."""
        return self.grace_period_seconds == 0

    @property
    def deployment(self) -> Deployment:
        return Deployment(self.managed_secrets, self.project_id, self.shared_environments)

    @property
    def promotion_floor_seconds(self) -> int:
        """The OpenAI-side lifetime a key must have left to be promoted: the next rotation plus the maximum grace."""
        return self.rotation_interval_seconds + self.max_grace_period_seconds


@dataclass(frozen=True)
class MonitorSettings:
    """What the monitor Lambda (usage metrics, unknown and retired keys, the janitor) needs."""

    environment: str
    admin_secret_arn: str
    project_id: str
    topic_arn: str
    state_parameter: str
    openai_base_url: str = DEFAULT_OPENAI_BASE_URL
    grace_period_seconds: int = 24 * 3600
    # A previous key still in use this long after its rotation is handled by `in_use_policy`.
    max_grace_period_seconds: int = 72 * 3600
    # The janitor revokes a previous key only after this long without usage.
    quiet_window_seconds: int = 3600
    in_use_policy: str = "keep"
    # Usage buckets younger than this may still fill in; they are read on a later run.
    settle_delay_seconds: int = 600
    usage_kinds: tuple[str, ...] = DEFAULT_USAGE_KINDS
    notify_dedup_seconds: int = 24 * 3600
    validation_attempts: int = 6
    validation_delay_seconds: float = 2.0
    runbook_url: str = DEFAULT_RUNBOOK_URL
    # What the deployment declares (see Deployment): None when not declared.
    managed_secrets: Mapping[str, str] | None = None
    shared_environments: tuple[str, ...] | None = None
    # The metrics only the dashboard reads (metric_names.DASHBOARD_ONLY): published only when a dashboard shows
    # them, since each costs a custom metric (per key for most). True when not declared (an older deployment).
    dashboard_metrics: bool = True
    # The per-key usage metrics the anomaly alarms read: published whether or not there is a dashboard. Both when not
    # declared (an older deployment).
    anomaly_metrics: tuple[str, ...] = (m.REQUESTS, m.INPUT_TOKENS)

    def __post_init__(self) -> None:
        if self.max_grace_period_seconds < self.grace_period_seconds:
            raise ConfigurationError(
                f"{ENV_MAX_GRACE_PERIOD_SECONDS} ({self.max_grace_period_seconds}) must not be shorter than "
                f"{ENV_GRACE_PERIOD_SECONDS} ({self.grace_period_seconds})"
            )
        if self.in_use_policy not in IN_USE_POLICIES:
            raise ConfigurationError(f"{ENV_IN_USE_POLICY} must be one of {', '.join(IN_USE_POLICIES)}")
        signals = tuple(m.ANOMALY_SIGNALS.values())
        if not self.anomaly_metrics or any(metric not in signals for metric in self.anomaly_metrics):
            raise ConfigurationError(f"{ENV_ANOMALY_METRICS} must list some of {', '.join(signals)}")
        unknown = [kind for kind in self.usage_kinds if kind not in MONITORED_USAGE_KINDS]
        if unknown or not self.usage_kinds:
            raise ConfigurationError(
                f"{ENV_USAGE_KINDS} must list some of {', '.join(DEFAULT_USAGE_KINDS)}; unknown: {', '.join(unknown)}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MonitorSettings:
        env = os.environ if environ is None else environ
        kinds = tuple(k.strip() for k in env.get(ENV_USAGE_KINDS, "").split(",") if k.strip()) or DEFAULT_USAGE_KINDS
        project_id = env.get(ENV_PROJECT_ID, "").strip()
        if not OPENAI_ID_PATTERN.fullmatch(project_id):
            raise ConfigurationError(f"{ENV_PROJECT_ID} must be an OpenAI project id, got {project_id[:40]!r}")
        state_parameter = env.get(ENV_STATE_PARAMETER, "").strip()
        if not state_parameter.startswith("/"):
            raise ConfigurationError(f"{ENV_STATE_PARAMETER} must be an SSM parameter name starting with '/'")
        return cls(
            environment=_environment(env),
            admin_secret_arn=_required_arn(env, ENV_ADMIN_SECRET_ARN),
            project_id=project_id,
            topic_arn=_required_arn(env, ENV_TOPIC_ARN),
            state_parameter=state_parameter,
            openai_base_url=_base_url(env),
            grace_period_seconds=_int(env, ENV_GRACE_PERIOD_SECONDS, default=24 * 3600, minimum=0),
            max_grace_period_seconds=_int(env, ENV_MAX_GRACE_PERIOD_SECONDS, default=72 * 3600, minimum=0),
            quiet_window_seconds=_int(env, ENV_QUIET_WINDOW_SECONDS, default=3600, minimum=0, maximum=7 * 86400),
            in_use_policy=env.get(ENV_IN_USE_POLICY, "").strip() or "keep",
            settle_delay_seconds=_int(env, ENV_SETTLE_DELAY_SECONDS, default=600, minimum=0, maximum=86400),
            usage_kinds=kinds,
            notify_dedup_seconds=_int(env, ENV_NOTIFY_DEDUP_SECONDS, default=86400, minimum=0, maximum=30 * 86400),
            validation_attempts=_int(env, ENV_VALIDATION_ATTEMPTS, default=6, minimum=1, maximum=30),
            validation_delay_seconds=_float(env, ENV_VALIDATION_DELAY_SECONDS, default=2.0, minimum=0, maximum=60),
            runbook_url=env.get(ENV_RUNBOOK_URL, "").strip() or DEFAULT_RUNBOOK_URL,
            managed_secrets=managed_secrets_from_env(env),
            shared_environments=shared_environments_from_env(env, _environment(env)),
            dashboard_metrics=_bool(env, ENV_DASHBOARD_METRICS, default=True),
            anomaly_metrics=_anomaly_metrics(env),
        )

    @property
    def unpublished_metrics(self) -> frozenset[str]:
        """The metrics this monitor leaves out: with no dashboard, those only it shows and the usage signals no
        anomaly alarm reads."""
        if self.dashboard_metrics:
            return frozenset()
        return m.DASHBOARD_ONLY | (frozenset(m.ANOMALY_SIGNALS.values()) - set(self.anomaly_metrics))

    @property
    def deployment(self) -> Deployment:
        return Deployment(self.managed_secrets, self.project_id, self.shared_environments)

    def rotation_settings(self) -> RotationSettings:
        """The subset revocation needs (the janitor revokes with the rotation engine's `revoke`)."""
        return RotationSettings(
            environment=self.environment,
            admin_secret_arn=self.admin_secret_arn,
            openai_base_url=self.openai_base_url,
            grace_period_seconds=self.grace_period_seconds,
            validation_attempts=self.validation_attempts,
            validation_delay_seconds=self.validation_delay_seconds,
            max_grace_period_seconds=self.max_grace_period_seconds,
            project_id=self.project_id,
            managed_secrets=self.managed_secrets,
            shared_environments=self.shared_environments,
        )


# An admin key's lifetime may not exceed what OpenAI accepts for expires_in_seconds (the spec: 1 to 31,536,000 s).
ADMIN_KEY_MAX_LIFETIME_SECONDS = 31_536_000
_MIN_ADMIN_ROTATION_INTERVAL_SECONDS = 4 * 3600  # Secrets Manager rotates at most every 4 hours
_MIN_ADMIN_KEY_EXPIRY_SLACK_SECONDS = 86400
_PROMOTION_WINDOW_SECONDS = 86400  # how long a freshly minted admin key must stay promotable
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class AdminRotationSettings:
    """What the admin rotation function (the admin-key secret's own rotation, and its cleanup) needs."""

    environment: str
    admin_secret_arn: str
    project_id: str  # testSecret proves the new admin key may list and create service accounts in this project
    openai_base_url: str = DEFAULT_OPENAI_BASE_URL
    # adminKeyRotation.schedule: the longest time between two rotations of the admin key.
    rotation_interval_seconds: int = DEFAULT_ADMIN_ROTATION_INTERVAL_SECONDS
    # Each minted admin key expires (OpenAI-side) this long after its rotation interval: the backstop.
    expiry_slack_seconds: int = DEFAULT_ADMIN_KEY_EXPIRY_SLACK_SECONDS
    # How long the previous admin key stays live after a promotion (see DEFAULT_ADMIN_KEY_GRACE_SECONDS).
    grace_period_seconds: int = DEFAULT_ADMIN_KEY_GRACE_SECONDS
    # adminKeyRotation.deleteBootstrapKey: also delete the human-made admin key once a rotation replaced it.
    delete_bootstrap_key: bool = False
    validation_attempts: int = 6
    validation_delay_seconds: float = 2.0

    def __post_init__(self) -> None:
        if not OPENAI_ID_PATTERN.fullmatch(self.project_id):
            raise ConfigurationError(f"{ENV_PROJECT_ID} must be an OpenAI project id, got {self.project_id[:40]!r}")
        if self.rotation_interval_seconds < _MIN_ADMIN_ROTATION_INTERVAL_SECONDS:
            raise ConfigurationError(
                f"{ENV_ADMIN_ROTATION_INTERVAL_SECONDS} must be at least {_MIN_ADMIN_ROTATION_INTERVAL_SECONDS} "
                f"(Secrets Manager rotates at most every 4 hours), got {self.rotation_interval_seconds}"
            )
        if self.expiry_slack_seconds < _MIN_ADMIN_KEY_EXPIRY_SLACK_SECONDS:
            raise ConfigurationError(
                f"{ENV_ADMIN_KEY_EXPIRY_SLACK_SECONDS} must be at least {_MIN_ADMIN_KEY_EXPIRY_SLACK_SECONDS} (a day "
                f"to fix a failing rotation before the admin key expires), got {self.expiry_slack_seconds}"
            )
        if self.expiry_seconds > ADMIN_KEY_MAX_LIFETIME_SECONDS:
            raise ConfigurationError(
                f"{ENV_ADMIN_ROTATION_INTERVAL_SECONDS} plus {ENV_ADMIN_KEY_EXPIRY_SLACK_SECONDS} is "
                f"{self.expiry_seconds} s, longer than the {ADMIN_KEY_MAX_LIFETIME_SECONDS} s OpenAI allows an admin "
                "key to live"
            )
        if self.grace_period_seconds < 0:
            raise ConfigurationError(
                f"{ENV_ADMIN_KEY_GRACE_SECONDS} must be at least 0, got {self.grace_period_seconds}"
            )
        # A minted key must stay promotable for a day (Secrets Manager's retries): its expiry may not come before its
        # successor is due (the interval and the age alarm's slack) and its own grace has run out.
        needed = ADMIN_KEY_AGE_ALARM_SLACK_SECONDS + self.grace_period_seconds + _PROMOTION_WINDOW_SECONDS
        if self.expiry_slack_seconds < needed:
            raise ConfigurationError(
                f"{ENV_ADMIN_KEY_EXPIRY_SLACK_SECONDS} ({self.expiry_slack_seconds}) must be at least {needed}: a day "
                f"past the age alarm ({ADMIN_KEY_AGE_ALARM_SLACK_SECONDS} s after the interval) plus "
                f"{ENV_ADMIN_KEY_GRACE_SECONDS} ({self.grace_period_seconds}), plus a day to promote a new key"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AdminRotationSettings:
        env = os.environ if environ is None else environ
        project_id = env.get(ENV_PROJECT_ID, "").strip()
        if not OPENAI_ID_PATTERN.fullmatch(project_id):
            raise ConfigurationError(f"{ENV_PROJECT_ID} must be an OpenAI project id, got {project_id[:40]!r}")
        return cls(
            environment=_environment(env),
            admin_secret_arn=_required_arn(env, ENV_ADMIN_SECRET_ARN),
            project_id=project_id,
            openai_base_url=_base_url(env),
            rotation_interval_seconds=_int(
                env,
                ENV_ADMIN_ROTATION_INTERVAL_SECONDS,
                default=DEFAULT_ADMIN_ROTATION_INTERVAL_SECONDS,
                minimum=_MIN_ADMIN_ROTATION_INTERVAL_SECONDS,
                maximum=ADMIN_KEY_MAX_LIFETIME_SECONDS,
            ),
            expiry_slack_seconds=_int(
                env,
                ENV_ADMIN_KEY_EXPIRY_SLACK_SECONDS,
                default=DEFAULT_ADMIN_KEY_EXPIRY_SLACK_SECONDS,
                minimum=_MIN_ADMIN_KEY_EXPIRY_SLACK_SECONDS,
                maximum=ADMIN_KEY_MAX_LIFETIME_SECONDS,
            ),
            grace_period_seconds=_int(
                env, ENV_ADMIN_KEY_GRACE_SECONDS, default=DEFAULT_ADMIN_KEY_GRACE_SECONDS, minimum=0, maximum=86400
            ),
            delete_bootstrap_key=_bool(env, ENV_ADMIN_DELETE_BOOTSTRAP_KEY, default=False),
            validation_attempts=_int(env, ENV_VALIDATION_ATTEMPTS, default=6, minimum=1, maximum=30),
            validation_delay_seconds=_float(env, ENV_VALIDATION_DELAY_SECONDS, default=2.0, minimum=0, maximum=60),
        )

    @property
    def expiry_seconds(self) -> int:
        """The expires_in_seconds of every admin key keyrot mints."""
        return self.rotation_interval_seconds + self.expiry_slack_seconds

    @property
    def age_alarm_seconds(self) -> int:
        """An admin key older than this missed its rotation (the AdminKeyAgeHours alarm's threshold)."""
        return self.rotation_interval_seconds + ADMIN_KEY_AGE_ALARM_SLACK_SECONDS

    @property
    def promotion_floor_seconds(self) -> int:
        """The OpenAI-side life a pending admin key must have left to be promoted: until its successor is promoted
        (the interval, plus the age alarm's slack for a late rotation) and its own grace has ended."""
        return self.age_alarm_seconds + self.grace_period_seconds


def managed_secrets_from_env(env: Mapping[str, str]) -> Mapping[str, str] | None:
    """KEYROT_MANAGED_SECRETS: a JSON object {key name: secret ARN}. None when absent (an older deployment)."""
    raw = env.get(ENV_MANAGED_SECRETS, "").strip()
    if not raw:
        return None
    if len(raw) > _MAX_MANAGED_SECRETS_CHARS:
        raise ConfigurationError(f"{ENV_MANAGED_SECRETS} is longer than {_MAX_MANAGED_SECRETS_CHARS} characters")
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):
        raise ConfigurationError(f"{ENV_MANAGED_SECRETS} must be a JSON object {{key name: secret ARN}}") from None
    if not isinstance(payload, dict):
        raise ConfigurationError(f"{ENV_MANAGED_SECRETS} must be a JSON object {{key name: secret ARN}}")
    seen: set[str] = set()
    for name, arn in payload.items():
        if not KEY_NAME_PATTERN.fullmatch(name):
            raise ConfigurationError(f"{ENV_MANAGED_SECRETS} names an invalid key name {name[:40]!r}")
        if not isinstance(arn, str) or not _SECRET_ARN.fullmatch(arn):
            raise ConfigurationError(f"{ENV_MANAGED_SECRETS} entry {name!r} is not a Secrets Manager secret ARN")
        if arn in seen:
            raise ConfigurationError(f"{ENV_MANAGED_SECRETS} gives the secret of {name!r} to another key as well")
        seen.add(arn)
    return dict(payload)


def key_scopes_from_env(
    env: Mapping[str, str], managed_secrets: Mapping[str, str] | None = None
) -> Mapping[str, tuple[str, ...]] | None:
    """KEYROT_KEY_SCOPES: a JSON object {key name: [scope, ...]}, every scope one keyrot.scopes documents. None when
    absent (every key unrestricted). A key it names must be one of the declared managed secrets, when declared."""
    raw = env.get(ENV_KEY_SCOPES, "").strip()
    if not raw:
        return None
    if len(raw) > _MAX_MANAGED_SECRETS_CHARS:
        raise ConfigurationError(f"{ENV_KEY_SCOPES} is longer than {_MAX_MANAGED_SECRETS_CHARS} characters")
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError):
        payload = None
    if not isinstance(payload, dict):
        raise ConfigurationError(f"{ENV_KEY_SCOPES} must be a JSON object {{key name: [scope, ...]}}")
    scopes: dict[str, tuple[str, ...]] = {}
    for name, value in payload.items():
        if not KEY_NAME_PATTERN.fullmatch(name):
            raise ConfigurationError(f"{ENV_KEY_SCOPES} names an invalid key name {name[:40]!r}")
        if managed_secrets is not None and name not in managed_secrets:
            raise ConfigurationError(f"{ENV_KEY_SCOPES} names {name!r}, which is not in {ENV_MANAGED_SECRETS}")
        try:
            scopes[name] = parse_scopes(value)
        except ScopesError as exc:
            raise ConfigurationError(f"{ENV_KEY_SCOPES} entry {name!r}: {exc.at('scopes')}") from None
    return scopes


def shared_environments_from_env(env: Mapping[str, str], environment: str) -> tuple[str, ...] | None:
    """KEYROT_SHARED_ENVIRONMENTS: comma-separated environment names sharing the OpenAI project. None when absent;
    an empty value declares that no other environment shares it."""
    if ENV_SHARED_ENVIRONMENTS not in env:
        return None
    names = [name.strip() for name in env[ENV_SHARED_ENVIRONMENTS].split(",") if name.strip()]
    for name in names:
        if not ENVIRONMENT_PATTERN.fullmatch(name):
            raise ConfigurationError(f"{ENV_SHARED_ENVIRONMENTS} names an invalid environment {name[:40]!r}")
        if name == environment:
            raise ConfigurationError(f"{ENV_SHARED_ENVIRONMENTS} lists this function's own environment {name!r}")
    return tuple(sorted(set(names)))


def _optional_project_id(env: Mapping[str, str]) -> str | None:
    value = env.get(ENV_PROJECT_ID, "").strip()
    if not value:
        return None
    if not OPENAI_ID_PATTERN.fullmatch(value):
        raise ConfigurationError(f"{ENV_PROJECT_ID} must be an OpenAI project id, got {value[:40]!r}")
    return value


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
    try:
        parts = urlsplit(value)
        parts.hostname  # noqa: B018 - parses (and may refuse) the bracketed host
    except ValueError:  # an unclosed IPv6 bracket, a host that normalises to '#' or '/'
        parts = None
    if parts is None or parts.scheme not in ("https", "http") or not parts.netloc:
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


def _anomaly_metrics(env: Mapping[str, str]) -> tuple[str, ...]:
    """KEYROT_ANOMALY_METRICS: comma-separated metric names, each a usage signal an anomaly alarm can read."""
    names = tuple(name.strip() for name in env.get(ENV_ANOMALY_METRICS, "").split(",") if name.strip())
    signals = tuple(m.ANOMALY_SIGNALS.values())
    if any(name not in signals for name in names):
        raise ConfigurationError(f"{ENV_ANOMALY_METRICS} must list some of {', '.join(signals)}")
    return names or signals


def _bool(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in _BOOLEANS:
        raise ConfigurationError(f"{name} must be true or false, got {raw[:40]!r}")
    return _BOOLEANS[raw]


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
