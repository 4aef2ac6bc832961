"""keyrot's settings: one validator for the stack configuration and for `KeyrotEnvironmentArgs`.

`validate` is a pure function over a mapping of setting names (`gracePeriodHours`, ...) to values: either the raw
strings Pulumi hands a program from its stack configuration, or the native values (numbers, lists, booleans) a
program passes to the component. Both go through the same rules and produce the same messages. Every problem found
is collected and reported together in one `ConfigError`, each line naming the setting (`keyrot:<setting>`) and what
is wrong, so `pulumi preview` fails once with the whole list.

A value another resource will provide (a `pulumi.Output`, such as a reader role the program creates) is `PENDING`
here: it counts as given, and its shape and account are checked when it resolves (keyrot.pulumi.environment).

`parse_config` (raw strings; the environment defaults to the stack name) and `load_config` (reads `pulumi.Config`)
are the stack configuration's reader. Defaults live in `SETTINGS` below; `Pulumi.yaml` declares the same defaults
(a test keeps them equal).
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from keyrot.constants import (
    DEFAULT_ADMIN_KEY_EXPIRY_SLACK_SECONDS,
    DEFAULT_ADMIN_ROTATION_INTERVAL_SECONDS,
    admin_secret_name,
)
from keyrot.metric_names import ANOMALY_SIGNALS
from keyrot.pulumi.schedule import ScheduleError, check_window, parse_schedule, parse_window
from keyrot.redaction import scrub
from keyrot.scopes import ScopesError, parse_scopes
from keyrot.secret_model import ENVIRONMENT_PATTERN, KEY_NAME_PATTERN, OPENAI_ID_PATTERN
from keyrot.settings import ADMIN_KEY_MAX_LIFETIME_SECONDS, DEFAULT_RUNBOOK_URL, DEFAULT_USAGE_KINDS, IN_USE_POLICIES

NAMESPACE = "keyrot"
# The name part of the admin-key secret (`keyrot/<env>/openai-admin-key`): a managed key may not take it.
RESERVED_KEY_NAME = admin_secret_name("x").rsplit("/", 1)[1]
# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
# The OpenAI-side expiry backstop may not exceed a year.
MAX_KEY_EXPIRY_HOURS = 8760
# Margin added to interval + max grace for the default key expiry: covers the rotation window and a retry day.
KEY_EXPIRY_MARGIN_HOURS = 24
# The monitor-heartbeat alarm looks at 3 intervals; CloudWatch caps period x evaluation periods at one day.
MAX_MONITOR_INTERVAL_MINUTES = 480
MAX_QUIET_WINDOW_MINUTES = 7 * 24 * 60
MAX_SETTLE_DELAY_MINUTES = 24 * 60
MAX_ANOMALY_BAND_WIDTH = 10.0
# A Lambda function's environment variables may take 4 KB in all (keys and values).
LAMBDA_ENVIRONMENT_LIMIT_BYTES = 4096
# The declared guardrails document goes into an SSM parameter (Intelligent-Tiering: Advanced above 4 KB, at most 8 KB).
MAX_GUARDRAILS_DOCUMENT_BYTES = 8192

_ROLE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?P<path>(?:[\w+=,.@-]+/)*)(?P<name>[\w+=,.@-]{1,64})$"
)
# Administrators and deployers may be roles or users, and may end in `*` (an SSO permission-set role has a random
# suffix); see _wildcard_problem for how far a wildcard may reach.
_PRINCIPAL_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):(?:role|user)/[\w+=,.@/*-]+$")
_SECRET_ARN = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):secret:[\w/+=.@-]+$"
)
_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):[A-Za-z0-9_-]{1,256}$")
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):key/[A-Za-z0-9-]{1,128}$")
_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TRUE = ("true", "True", "TRUE", "1", "yes")
_FALSE = ("false", "False", "FALSE", "0", "no")


class ConfigError(Exception):
    """The configuration is invalid. `problems` lists every finding, each naming its setting."""

    def __init__(self, problems: Sequence[str]) -> None:
        # Problems quote the offending value: scrub anything key-shaped someone pasted into the wrong setting.
        self.problems = tuple(scrub(problem) for problem in problems)
        super().__init__("invalid keyrot configuration:\n  " + "\n  ".join(self.problems))


class Pending:
    """A value another resource provides (a `pulumi.Output`): given, but only checked once it resolves."""

    _instance: Pending | None = None

    def __new__(cls) -> Pending:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "PENDING"


PENDING = Pending()


@dataclass(frozen=True)
class Setting:
    key: str
    kind: str  # string | integer | number | boolean | list | keys | guardrails | adminKeyRotation (objects)
    default: Any
    description: str


# Defaults: `None` means "no value" (optional) or "computed" (see the description).
SETTINGS: tuple[Setting, ...] = (
    Setting("environment", "string", None, "Environment name; defaults to the stack name."),
    Setting("openaiProjectId", "string", None, "OpenAI project whose keys keyrot mints (required)."),
    Setting(
        "keys", "keys", None, "Managed keys: [{name, readerRoleArns: [...], scopes: [...]}] (required, at least one)."
    ),
    Setting(
        "rotationSchedule", "string", "rate(30 days)", "Secrets Manager schedule: rate(N hours|days) or cron(...)."
    ),
    Setting("rotationWindow", "string", "3h", "Rotation window length, 1h-24h."),
    Setting("gracePeriodHours", "integer", 24, "How long the previous key stays valid; 0 = emergency mode."),
    Setting("maxGracePeriodHours", "integer", 72, "When a still-used previous key is handled by inUsePolicy."),
    Setting(
        "quietWindowMinutes", "integer", 60, "Previous key must be unused this long before the janitor revokes it."
    ),
    Setting("inUsePolicy", "string", "keep", "keep or revoke a previous key still in use at maxGracePeriodHours."),
    Setting("keyExpiryHours", "integer", None, "OpenAI-side expiry; default interval + max grace + 24 h; 0 = none."),
    Setting("oncallEmails", "list", (), "Email addresses subscribed to the on-call topic."),
    Setting("oncallHttpsEndpoints", "list", (), "HTTPS endpoints subscribed to the on-call topic."),
    Setting("oncallTopicArn", "string", None, "Existing SNS topic to notify instead of creating one."),
    Setting("dailySpendLimitUsd", "number", 100.0, "Alarm when the project's spend today exceeds this (USD)."),
    Setting("monitorIntervalMinutes", "integer", 15, "How often the monitor runs."),
    Setting("settleDelayMinutes", "integer", 10, "Usage buckets younger than this are read on a later run."),
    Setting("usageKinds", "list", DEFAULT_USAGE_KINDS, "OpenAI usage endpoints the monitor reads."),
    Setting("logRetentionDays", "integer", 90, "CloudWatch Logs retention for both functions."),
    Setting(
        "existingAdminKeySecretArn", "string", None, "Use this populated admin-key secret instead of creating one."
    ),
    Setting("administratorArns", "list", (), "IAM principals allowed break-glass access to the key secrets."),
    Setting("openaiBaseUrl", "string", None, "Override of the OpenAI API base URL."),
    Setting("anomalyBandWidth", "number", 2.0, "Anomaly-detection band width in standard deviations."),
    Setting(
        "anomalyAlarms",
        "list",
        ("requests", "inputTokens"),
        "The usage signals each key's anomaly alarms watch (each 0.60 USD a month per key).",
    ),
    Setting(
        "dashboard",
        "boolean",
        False,
        "Create the CloudWatch dashboard, and publish the per-key metrics only it shows (3 USD a month plus about "
        "0.90 per key).",
    ),
    Setting("runbookUrl", "string", DEFAULT_RUNBOOK_URL, "Where alarms and notifications link (docs/runbook.md)."),
    Setting("sharedProjectEnvironments", "list", (), "Other environments declared to share the OpenAI project."),
    Setting("production", "boolean", False, "A production stack: KMS key and secrets protected, kept on delete."),
    Setting("existingKmsKeyArn", "string", None, "Encrypt with this KMS key instead of creating one."),
    Setting("vpcSubnetIds", "list", (), "Run both functions in these VPC subnets (with vpcSecurityGroupIds)."),
    Setting("vpcSecurityGroupIds", "list", (), "Security groups of the functions' network interfaces in the VPC."),
    Setting("deployerArns", "list", (), "IAM roles or users that run `pulumi up`/`destroy` (default: the caller)."),
    Setting(
        "guardrails",
        "guardrails",
        None,
        "OpenAI project guardrails: rateLimits, spendLimitUsd, spendAlerts, models, enforce (docs/guardrails.md).",
    ),
    Setting(
        "adminKeyRotation",
        "adminKeyRotation",
        None,
        "Rotate the admin key keyrot's own admin-key secret holds: {schedule, deleteBootstrapKey}.",
    ),
)
SETTING_KEYS = tuple(s.key for s in SETTINGS)
DEFAULTS = {s.key: s.default for s in SETTINGS}


@dataclass(frozen=True)
class RoleArn:
    arn: str
    account: str
    name: str

    @classmethod
    def parse(cls, text: str) -> RoleArn | None:
        match = _ROLE_ARN.match(text)
        return cls(text, match.group("account"), match.group("name")) if match else None


@dataclass(frozen=True)
class KeyConfig:
    name: str
    # Each reader role, or PENDING where the program passes an Output (checked when it resolves).
    readers: tuple[RoleArn | Pending, ...]
    # The scopes each of its keys is minted with (keyrot.scopes lists the names); None: unrestricted (the default).
    scopes: tuple[str, ...] | None = None

    @property
    def reader_roles(self) -> tuple[RoleArn, ...]:
        """The reader roles known now (plain ARNs)."""
        return tuple(r for r in self.readers if isinstance(r, RoleArn))

    @property
    def reader_role_arns(self) -> tuple[str, ...]:
        return tuple(r.arn for r in self.reader_roles)


@dataclass(frozen=True)
class AdminKeyRotation:
    """The admin key's own rotation (`adminKeyRotation`): when Secrets Manager rotates it, and whether the first
    rotation deletes the human-made bootstrap key too."""

    schedule: str
    # The longest gap between two rotations (hours): the admin rotation function's interval, the age alarm's base.
    max_interval_hours: int
    delete_bootstrap_key: bool = False


@dataclass(frozen=True)
class KeyrotConfig:
    environment: str
    openai_project_id: str
    keys: tuple[KeyConfig, ...]
    rotation_schedule: str
    # Shortest / longest gap between rotations (equal for rate expressions).
    rotation_min_interval_hours: int
    rotation_max_interval_hours: int
    rotation_window: str
    grace_period_hours: int
    max_grace_period_hours: int
    quiet_window_minutes: int
    in_use_policy: str
    key_expiry_hours: int
    oncall_emails: tuple[str, ...]
    oncall_https_endpoints: tuple[str, ...]
    oncall_topic_arn: str | None
    daily_spend_limit_usd: float
    monitor_interval_minutes: int
    settle_delay_minutes: int
    usage_kinds: tuple[str, ...]
    log_retention_days: int
    existing_admin_key_secret_arn: str | None
    administrator_arns: tuple[str, ...]
    openai_base_url: str | None
    anomaly_band_width: float
    anomaly_alarms: tuple[str, ...]  # keys of metric_names.ANOMALY_SIGNALS
    dashboard: bool
    runbook_url: str = DEFAULT_RUNBOOK_URL
    shared_project_environments: tuple[str, ...] = ()
    production: bool = False
    existing_kms_key_arn: str | None = None
    vpc_subnet_ids: tuple[str, ...] = ()
    vpc_security_group_ids: tuple[str, ...] = ()
    deployer_arns: tuple[str, ...] = ()
    # The declared OpenAI guardrails (keyrot.guardrails.DeclaredGuardrails), or None when the stack declares none.
    guardrails: Any = None
    # The admin key's own rotation, or None (the default: the admin key is not rotated by keyrot).
    admin_key_rotation: AdminKeyRotation | None = None
    # Settings the program passes as Outputs (keyrot.pulumi.environment checks them when they resolve).
    pending: frozenset[str] = frozenset()

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys)

    @property
    def uses_existing_topic(self) -> bool:
        return self.oncall_topic_arn is not None or "oncallTopicArn" in self.pending

    @property
    def uses_existing_kms_key(self) -> bool:
        return self.existing_kms_key_arn is not None or "existingKmsKeyArn" in self.pending

    @property
    def in_vpc(self) -> bool:
        return bool(self.vpc_subnet_ids) or "vpcSubnetIds" in self.pending


class _Collector:
    """Reads values, converting and recording a problem (rather than raising) for each bad one.

    A value is what the stack configuration holds (text; lists and objects as JSON text) or what a program passes
    (numbers, booleans, lists, dicts); scalars are read through their text, so both get the same messages.
    """

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.problems: list[str] = []
        self.pending: set[str] = set()

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{NAMESPACE}:{key}: {message}")

    def text(self, key: str) -> str | None:
        value = self.raw.get(key)
        if isinstance(value, bool):
            value = "true" if value else "false"
        if value is None or value is PENDING or not str(value).strip():
            default = DEFAULTS[key]
            return None if default is None else str(default)
        return str(value).strip()

    def is_pending(self, key: str) -> bool:
        if self.raw.get(key) is PENDING:
            self.pending.add(key)
            return True
        return False

    def integer(self, key: str, *, minimum: int, maximum: int | None = None) -> int | None:
        text = self.text(key)
        if text is None:
            return None
        try:
            value = int(text)
        except ValueError:
            self.problem(key, f"must be a whole number, got {text!r}")
            return None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            self.problem(key, f"must be {bounds}, got {value}")
            return None
        return value

    def number(self, key: str, *, exclusive_minimum: float, maximum: float | None = None) -> float | None:
        text = self.text(key)
        if text is None:
            return None
        try:
            value = float(text)
        except ValueError:
            self.problem(key, f"must be a number, got {text!r}")
            return None
        if not math.isfinite(value) or value <= exclusive_minimum or (maximum is not None and value > maximum):
            upper = "" if maximum is None else f" and at most {maximum:g}"
            self.problem(key, f"must be greater than {exclusive_minimum:g}{upper}, got {text!r}")
            return None
        return value

    def boolean(self, key: str) -> bool | None:
        text = self.text(key)
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        self.problem(key, f"must be true or false, got {text!r}")
        return None

    def json_value(self, key: str) -> Any:
        value = self.raw.get(key)
        if isinstance(value, (list, tuple, dict)):
            return list(value) if isinstance(value, tuple) else value
        if value is None or not str(value).strip():
            return None
        try:
            return json.loads(value)
        except (ValueError, RecursionError):  # not JSON, nested too deep, or an integer past Python's digit limit
            return _NOT_JSON

    def string_list(self, key: str, *, allow_pending: bool = False) -> tuple[Any, ...] | None:
        value = self.json_value(key)
        if value is None:
            return tuple(DEFAULTS[key])
        if allow_pending and isinstance(value, list) and any(v is PENDING for v in value):
            self.pending.add(key)
        if (
            value is _NOT_JSON
            or not isinstance(value, list)
            or not all(isinstance(v, str) or (allow_pending and v is PENDING) for v in value)
        ):
            self.problem(
                key, "must be a list of strings (set it with `pulumi config set --path 'keyrot:" + key + "[0]' ...`)"
            )
            return None
        return tuple(v if v is PENDING else v.strip() for v in value)


_NOT_JSON = object()


def _split_url(text: str) -> SplitResult | None:
    """urlsplit, or None for what it refuses (an unclosed IPv6 bracket, a host that normalises to '#' or '/')."""
    try:
        parts = urlsplit(text)
        parts.hostname  # noqa: B018 - parses (and may refuse) the bracketed host
    except ValueError:
        return None
    return parts


def _wildcard_problem(arn: str) -> str | None:
    """Why a wildcard in an administrator or deployer ARN reaches too far, or None.

    Such an ARN is exempt from both caps on the key secrets (who reads a key, who changes its versions). A wildcard
    may only complete a named prefix: a single trailing `*` after at least one character of a role or user path or
    name (`role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_PlatformAdmin_*`, `role/breakglass/*`). `role/*`
    would exempt every role in the account, and a `*` inside the name more than the prefix says.
    """
    if "*" not in arn and "?" not in arn:
        return None
    resource = arn.split(":", 5)[5]
    kind, _, rest = resource.partition("/")
    if "?" in arn or arn.count("*") > 1 or not arn.endswith("*"):
        return (
            f"{arn} uses a wildcard other than one trailing '*'; only a named prefix may end in '*' "
            "(e.g. role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_PlatformAdmin_*)"
        )
    if not rest.rstrip("*").strip("/"):
        return (
            f"{arn} matches every {kind} in the account: it would exempt all of them from both caps on the key "
            "secrets (reading a key, changing its versions); name the role, or end a named path or name prefix "
            "with '*' (e.g. role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_PlatformAdmin_*)"
        )
    return None


def parse_config(raw: Mapping[str, str | None], *, stack: str) -> KeyrotConfig:
    """Validate the raw `keyrot:*` values (key without namespace -> string as Pulumi passes it)."""
    return validate(raw, default_environment=stack, default_source=f"the stack name {stack!r}")


def validate(
    raw: Mapping[str, Any], *, default_environment: str | None = None, default_source: str = ""
) -> KeyrotConfig:
    """Validate settings (setting name -> text, native value or PENDING); raise ConfigError listing every problem.

    `default_environment` is what `environment` defaults to (the stack name, for a stack's configuration).
    """
    c = _Collector(raw)

    for key in sorted(set(raw) - set(SETTING_KEYS)):
        close = [k for k in SETTING_KEYS if k.lower() == key.lower()]
        hint = f"; did you mean keyrot:{close[0]}?" if close else f"; known settings: {', '.join(SETTING_KEYS)}"
        c.problem(key, f"is not a keyrot setting{hint}")

    environment = c.text("environment") or default_environment
    if environment is None:
        c.problem("environment", "is required: the environment name used in every resource name, e.g. 'dev'")
        environment = ""
    elif not ENVIRONMENT_PATTERN.fullmatch(environment):
        source = "" if c.text("environment") else f" (defaults to {default_source})"
        c.problem(
            "environment",
            f"must match {ENVIRONMENT_PATTERN.pattern}: a lower-case letter, then up to 31 lower-case letters, "
            f"digits or '-'{source}, got {environment!r}",
        )

    project_id = c.text("openaiProjectId")
    if project_id is None:
        c.problem(
            "openaiProjectId",
            "is required: the OpenAI project id, e.g. `pulumi config set keyrot:openaiProjectId proj_abc123`",
        )
    elif not OPENAI_ID_PATTERN.fullmatch(project_id):
        c.problem(
            "openaiProjectId", f"must be an OpenAI project id (letters, digits, '_' and '-'), got {project_id[:80]!r}"
        )

    keys = _parse_keys(c)

    schedule = None
    schedule_text = c.text("rotationSchedule") or ""
    try:
        schedule = parse_schedule(schedule_text)
    except ScheduleError as exc:
        c.problem("rotationSchedule", f"{exc}, got {schedule_text!r}" if "got" not in str(exc) else str(exc))

    window_text = c.text("rotationWindow") or ""
    window_hours: int | None = None
    try:
        window_hours = parse_window(window_text)
        if schedule is not None:
            check_window(schedule, window_hours)
    except ScheduleError as exc:
        c.problem("rotationWindow", f"{exc}, got {window_text!r}" if "got" not in str(exc) else str(exc))

    grace = c.integer("gracePeriodHours", minimum=0)
    max_grace = c.integer("maxGracePeriodHours", minimum=0)
    interval = schedule.min_interval_hours if schedule else None
    if grace is not None and interval is not None and grace >= interval:
        c.problem(
            "gracePeriodHours",
            f"must be shorter than the rotation interval ({interval} h for {schedule_text}), "
            f"or a previous key would outlive the next rotation, got {grace}",
        )
    if grace is not None and max_grace is not None and max_grace < grace:
        c.problem("maxGracePeriodHours", f"must be >= gracePeriodHours ({grace}), got {max_grace}")
    elif max_grace is not None and interval is not None and max_grace >= interval:
        c.problem(
            "maxGracePeriodHours",
            f"must be shorter than the rotation interval ({interval} h for {schedule_text}): the next rotation "
            f"replaces AWSPREVIOUS, so the janitor must have dealt with the previous key by then, got {max_grace}",
        )

    quiet = c.integer("quietWindowMinutes", minimum=0, maximum=MAX_QUIET_WINDOW_MINUTES)

    policy = c.text("inUsePolicy")
    if policy not in IN_USE_POLICIES:
        c.problem("inUsePolicy", f"must be one of {', '.join(IN_USE_POLICIES)}, got {policy!r}")

    expiry = _key_expiry(c, schedule, max_grace)

    emails = c.string_list("oncallEmails")
    for email in emails or ():
        if not _EMAIL.match(email):
            c.problem("oncallEmails", f"{email!r} is not an email address")
    endpoints = c.string_list("oncallHttpsEndpoints")
    for endpoint in endpoints or ():
        parts = _split_url(endpoint)
        if parts is None or parts.scheme != "https" or not parts.netloc:
            c.problem("oncallHttpsEndpoints", f"must be https:// URLs, got {endpoint[:120]!r}")
    topic_pending = c.is_pending("oncallTopicArn")
    topic = c.text("oncallTopicArn")
    if topic is not None and not _TOPIC_ARN.match(topic):
        c.problem("oncallTopicArn", f"must be an SNS topic ARN, got {topic[:120]!r}")
    if (topic is not None or topic_pending) and (emails or endpoints):
        c.problem(
            "oncallTopicArn",
            "cannot be combined with oncallEmails/oncallHttpsEndpoints: subscribe them where that topic is managed",
        )
    if topic is None and not topic_pending and emails == () and endpoints == ():
        c.problem("oncallEmails", "nobody would be notified: set oncallEmails, oncallHttpsEndpoints or oncallTopicArn")

    spend = c.number("dailySpendLimitUsd", exclusive_minimum=0)
    monitor_interval = c.integer("monitorIntervalMinutes", minimum=1, maximum=MAX_MONITOR_INTERVAL_MINUTES)
    settle = c.integer("settleDelayMinutes", minimum=0, maximum=MAX_SETTLE_DELAY_MINUTES)

    kinds = c.string_list("usageKinds")
    if kinds is not None:
        unknown = [k for k in kinds if k not in DEFAULT_USAGE_KINDS]
        if unknown:
            c.problem(
                "usageKinds",
                f"unknown usage kind(s) {', '.join(map(repr, unknown))}; choose from {', '.join(DEFAULT_USAGE_KINDS)}",
            )
        elif not kinds:
            c.problem("usageKinds", f"must list at least one of {', '.join(DEFAULT_USAGE_KINDS)}")
        elif len(set(kinds)) != len(kinds):
            c.problem("usageKinds", "lists a usage kind more than once")

    retention = c.integer("logRetentionDays", minimum=1)
    if retention is not None and retention not in LOG_RETENTION_DAYS:
        c.problem(
            "logRetentionDays",
            f"must be one of CloudWatch Logs' values {', '.join(map(str, LOG_RETENTION_DAYS))}, got {retention}",
        )

    admin_secret = c.text("existingAdminKeySecretArn")
    if admin_secret is not None and not _SECRET_ARN.match(admin_secret):
        c.problem("existingAdminKeySecretArn", f"must be a Secrets Manager secret ARN, got {admin_secret[:120]!r}")

    administrators = _principals(c, "administratorArns")
    deployers = _principals(c, "deployerArns")

    base_url = c.text("openaiBaseUrl")
    if base_url is not None:
        parts = _split_url(base_url)
        loopback = parts is not None and parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts is None or (parts.scheme != "https" and not loopback) or not parts.netloc:
            # Plain http only for a local stand-in (the rehearsal); anything that leaves the machine is https.
            c.problem("openaiBaseUrl", f"must be an https:// URL (http only on loopback), got {base_url[:120]!r}")
        base_url = base_url.rstrip("/")

    band = c.number("anomalyBandWidth", exclusive_minimum=0, maximum=MAX_ANOMALY_BAND_WIDTH)
    signals = c.string_list("anomalyAlarms")
    if signals is not None:
        choices = ", ".join(ANOMALY_SIGNALS)
        unknown = [s for s in signals if s not in ANOMALY_SIGNALS]
        if unknown:
            c.problem("anomalyAlarms", f"unknown signal(s) {', '.join(map(repr, unknown))}; choose from {choices}")
        elif not signals:
            c.problem("anomalyAlarms", f"must list at least one of {choices} (the usage-anomaly alarm needs a signal)")
        elif len(set(signals)) != len(signals):
            c.problem("anomalyAlarms", "lists a signal more than once")
    dashboard = c.boolean("dashboard")

    runbook_url = c.text("runbookUrl") or DEFAULT_RUNBOOK_URL
    runbook = _split_url(runbook_url)
    if runbook is None or runbook.scheme != "https" or not runbook.netloc or runbook.fragment or len(runbook_url) > 512:
        c.problem("runbookUrl", f"must be an https:// URL without a #fragment, got {runbook_url[:120]!r}")

    shared = c.string_list("sharedProjectEnvironments")
    for name in shared or ():
        if not ENVIRONMENT_PATTERN.fullmatch(name):
            c.problem(
                "sharedProjectEnvironments",
                f"must be environment names ({ENVIRONMENT_PATTERN.pattern}), got {name[:80]!r}",
            )
        elif name == environment:
            c.problem(
                "sharedProjectEnvironments",
                f"lists this environment itself ({name!r}); list only the other environments using the project",
            )
    if shared is not None and len(set(shared)) != len(shared):
        c.problem("sharedProjectEnvironments", "lists an environment more than once")

    production = c.boolean("production")

    kms_pending = c.is_pending("existingKmsKeyArn")
    kms_key = c.text("existingKmsKeyArn")
    if kms_key is not None and not _KMS_KEY_ARN.match(kms_key):
        c.problem(
            "existingKmsKeyArn",
            f"must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), got {kms_key[:120]!r}",
        )

    subnets = c.string_list("vpcSubnetIds", allow_pending=True)
    groups = c.string_list("vpcSecurityGroupIds", allow_pending=True)
    for key, values, pattern, example in (
        ("vpcSubnetIds", subnets, _SUBNET_ID, "subnet-0123456789abcdef0"),
        ("vpcSecurityGroupIds", groups, _SECURITY_GROUP_ID, "sg-0123456789abcdef0"),
    ):
        for value in values or ():
            if value is not PENDING and not pattern.fullmatch(value):
                c.problem(key, f"must be ids such as {example}, got {value[:80]!r}")
        if values is not None and len({v for v in values if v is not PENDING}) != len(
            [v for v in values if v is not PENDING]
        ):
            c.problem(key, "lists an id more than once")
    if subnets and groups == ():
        c.problem("vpcSubnetIds", "needs vpcSecurityGroupIds too: the functions' network interfaces need a group")
    if groups and subnets == ():
        c.problem("vpcSecurityGroupIds", "needs vpcSubnetIds too: without subnets the functions are not in a VPC")

    guardrails = _guardrails(c)
    admin_rotation = _admin_key_rotation(c, window_hours=window_hours, existing_admin_secret=admin_secret)

    if c.problems:
        raise ConfigError(c.problems)
    assert schedule is not None and keys is not None and grace is not None and max_grace is not None
    return KeyrotConfig(
        environment=environment,
        openai_project_id=project_id or "",
        keys=keys,
        rotation_schedule=schedule.expression,
        rotation_min_interval_hours=schedule.min_interval_hours,
        rotation_max_interval_hours=schedule.max_interval_hours,
        rotation_window=window_text,
        grace_period_hours=grace,
        max_grace_period_hours=max_grace,
        quiet_window_minutes=_given(quiet),
        in_use_policy=policy or "",
        key_expiry_hours=_given(expiry),
        oncall_emails=emails or (),
        oncall_https_endpoints=endpoints or (),
        oncall_topic_arn=topic,
        daily_spend_limit_usd=_given(spend),
        monitor_interval_minutes=_given(monitor_interval),
        settle_delay_minutes=_given(settle),
        usage_kinds=_given(kinds),
        log_retention_days=_given(retention),
        existing_admin_key_secret_arn=admin_secret,
        administrator_arns=administrators or (),
        openai_base_url=base_url,
        anomaly_band_width=_given(band),
        anomaly_alarms=_given(signals),
        dashboard=bool(dashboard),
        runbook_url=runbook_url,
        shared_project_environments=shared or (),
        production=bool(production),
        existing_kms_key_arn=kms_key,
        vpc_subnet_ids=tuple(v for v in subnets or () if v is not PENDING),
        vpc_security_group_ids=tuple(v for v in groups or () if v is not PENDING),
        deployer_arns=deployers or (),
        guardrails=guardrails,
        admin_key_rotation=admin_rotation,
        pending=frozenset(c.pending | ({"existingKmsKeyArn"} if kms_pending else set())),
    )


def _guardrails(c: _Collector) -> Any:
    """The `guardrails` block, validated by keyrot.guardrails (its problems named `keyrot:guardrails.<path>`), or
    None when the stack declares none. Its document must fit the SSM parameter the deployment writes it to."""
    value = c.raw.get("guardrails")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if _holds_pending(value):
        c.problem(
            "guardrails",
            "must be given as plain values, not Outputs: the document's digest goes into the guardrails function's "
            "configuration at preview",
        )
        return None
    from keyrot.guardrails import GuardrailsConfigError, document_json, parse_guardrails

    try:
        declared = parse_guardrails(value)
    except GuardrailsConfigError as exc:
        for problem in exc.problems:
            c.problem(problem.config_key, problem.message)
        return None
    size = len(document_json(declared).encode())
    if size > MAX_GUARDRAILS_DOCUMENT_BYTES:
        c.problem(
            "guardrails",
            f"the declared document would take {size} bytes, over the {MAX_GUARDRAILS_DOCUMENT_BYTES} an SSM "
            "parameter holds: declare fewer models, rate limits or spend alerts",
        )
        return None
    return declared


ADMIN_ROTATION_FIELDS = ("schedule", "deleteBootstrapKey")
DEFAULT_ADMIN_ROTATION_SCHEDULE = f"rate({DEFAULT_ADMIN_ROTATION_INTERVAL_SECONDS // 86400} days)"


def _admin_key_rotation(
    c: _Collector, *, window_hours: int | None, existing_admin_secret: str | None
) -> AdminKeyRotation | None:
    """`adminKeyRotation`: absent (no rotation of the admin key) or {schedule, deleteBootstrapKey}; `{}` rotates on
    the default schedule. Only for the admin-key secret keyrot creates: its policy is keyrot's to set, so the admin
    rotation function can be the only keyrot function that writes it."""
    key = "adminKeyRotation"
    value = c.json_value(key)
    if value is None:
        return None
    if value is _NOT_JSON or not isinstance(value, dict):
        c.problem(
            key,
            "must be an object {schedule, deleteBootstrapKey} (e.g. `pulumi config set --path "
            "'keyrot:adminKeyRotation.schedule' 'rate(30 days)'`)",
        )
        return None
    problems = len(c.problems)
    unknown = sorted(set(value) - set(ADMIN_ROTATION_FIELDS), key=str)
    if unknown:
        c.problem(key, f"unknown field(s) {', '.join(map(str, unknown))}; it has {' and '.join(ADMIN_ROTATION_FIELDS)}")
    if existing_admin_secret is not None:
        c.problem(
            key,
            "rotates only the admin-key secret keyrot creates, not existingAdminKeySecretArn: keyrot sets no policy "
            "on a secret it does not own, so it could not make its admin rotation function the only one that writes it",
        )
    raw_schedule = value.get("schedule", DEFAULT_ADMIN_ROTATION_SCHEDULE)
    schedule = None
    if not isinstance(raw_schedule, str) or not raw_schedule.strip():
        c.problem(
            f"{key}.schedule", f"must be a Secrets Manager schedule such as 'rate(30 days)', got {raw_schedule!r}"
        )
    else:
        try:
            schedule = parse_schedule(raw_schedule.strip())
            if window_hours is not None:
                check_window(schedule, window_hours)
        except ScheduleError as exc:
            message = str(exc) if "got" in str(exc) else f"{exc}, got {raw_schedule.strip()!r}"
            c.problem(f"{key}.schedule", f"{message} (rotations run within rotationWindow)")
            schedule = None
    if schedule is not None:
        lifetime = schedule.max_interval_hours * 3600 + DEFAULT_ADMIN_KEY_EXPIRY_SLACK_SECONDS
        if lifetime > ADMIN_KEY_MAX_LIFETIME_SECONDS:
            longest = (ADMIN_KEY_MAX_LIFETIME_SECONDS - DEFAULT_ADMIN_KEY_EXPIRY_SLACK_SECONDS) // 86400
            c.problem(
                f"{key}.schedule",
                f"leaves up to {schedule.max_interval_hours} h between rotations; each admin key expires 14 days "
                f"after that and OpenAI lets an admin key live at most a year: rotate at least every {longest} days",
            )
    delete_bootstrap = value.get("deleteBootstrapKey", False)
    if isinstance(delete_bootstrap, str) and delete_bootstrap.strip() in (*_TRUE, *_FALSE):
        delete_bootstrap = delete_bootstrap.strip() in _TRUE
    if not isinstance(delete_bootstrap, bool):
        c.problem(f"{key}.deleteBootstrapKey", f"must be true or false, got {str(delete_bootstrap)[:40]!r}")
    if len(c.problems) > problems or schedule is None:
        return None
    return AdminKeyRotation(
        schedule=schedule.expression,
        max_interval_hours=schedule.max_interval_hours,
        delete_bootstrap_key=bool(delete_bootstrap),
    )


def _holds_pending(value: Any) -> bool:
    if value is PENDING:
        return True
    if isinstance(value, Mapping):
        return any(_holds_pending(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_pending(v) for v in value)
    return False


def _principals(c: _Collector, key: str) -> tuple[str, ...] | None:
    """administratorArns / deployerArns: IAM role or user ARNs, a wildcard only completing a named prefix."""
    values = c.string_list(key)
    for arn in values or ():
        if not _PRINCIPAL_ARN.match(arn):
            c.problem(key, f"must be IAM role or user ARNs, got {arn[:120]!r}")
            continue
        reason = _wildcard_problem(arn)
        if reason:
            c.problem(key, reason)
    return values


def principal_matches(pattern: str, arn: str) -> bool:
    """Whether `arn` is `pattern` or matches its trailing-`*` prefix (the ArnLike reading of a validated pattern)."""
    return fnmatch.fnmatchcase(arn, pattern) if "*" in pattern else arn == pattern


def check_account(config: KeyrotConfig, account_id: str, region: str | None = None) -> None:
    """Reader roles, administrators and deployers must live in the account being deployed to; an existing
    admin-key secret, on-call topic and KMS key in that account and region too.

    Reader policies are attached to the roles (an attachment cannot cross accounts), and the secrets' resource
    policies only deny: a principal from another account would still lack an allow. The functions' policies grant
    the admin-key secret, the topic and the key by ARN, and the environment's alarms live in this account and
    region, which an alarm action or a cross-account secret read would not reach.
    """
    problems: list[str] = []
    for setting, arn in (
        ("existingAdminKeySecretArn", config.existing_admin_key_secret_arn),
        ("oncallTopicArn", config.oncall_topic_arn),
        ("existingKmsKeyArn", config.existing_kms_key_arn),
    ):
        if arn is None:
            continue
        problems += _placement_problems(setting, arn, account_id, region)
    for key in config.keys:
        for role in key.reader_roles:
            problems += _reader_account_problems(key.name, role, account_id)
    for setting, arns in (("administratorArns", config.administrator_arns), ("deployerArns", config.deployer_arns)):
        for arn in arns:
            account = arn.split(":")[4]
            if account != account_id:
                problems.append(
                    f"{NAMESPACE}:{setting}: {arn} is in account {account}, but this stack deploys to {account_id}"
                )
    if problems:
        raise ConfigError(problems)


def _placement_problems(setting: str, arn: str, account_id: str, region: str | None) -> list[str]:
    """An ARN in another account or region than the stack's, as problems naming `setting`."""
    problems = []
    arn_region, arn_account = arn.split(":")[3:5]
    if arn_account != account_id:
        problems.append(
            f"{NAMESPACE}:{setting}: {arn} is in account {arn_account}, but this stack deploys to {account_id}"
        )
    if region is not None and arn_region != region:
        problems.append(f"{NAMESPACE}:{setting}: {arn} is in region {arn_region}, but this stack deploys to {region}")
    return problems


def _reader_account_problems(key_name: str, role: RoleArn, account_id: str) -> list[str]:
    if role.account == account_id:
        return []
    return [
        f"{NAMESPACE}:keys: {key_name}: reader role {role.arn} is in account {role.account}, "
        f"but this stack deploys to account {account_id}"
    ]


def check_resolved_reader(key_name: str, index: int, arn: Any, account_id: str) -> RoleArn:
    """A reader role the program passed as an Output, once resolved: the same rules as a plain one."""
    role = RoleArn.parse(arn) if isinstance(arn, str) else None
    where = f"keys[{index}]" if index >= 0 else "keys"
    if role is None:
        raise ConfigError(
            [
                f"{NAMESPACE}:{where}.readerRoleArns: must be IAM role ARNs (arn:aws:iam::<account>:role/[path/]name), "
                f"got {str(arn)[:120]!r} for key {key_name!r}"
            ]
        )
    problems = _reader_account_problems(key_name, role, account_id)
    if problems:
        raise ConfigError(problems)
    return role


def check_resolved_arn(setting: str, arn: Any, account_id: str, region: str) -> str:
    """An existing topic or KMS key the program passed as an Output, once resolved: shape, account and region."""
    pattern = {"oncallTopicArn": _TOPIC_ARN, "existingKmsKeyArn": _KMS_KEY_ARN}[setting]
    if not isinstance(arn, str) or not pattern.match(arn):
        raise ConfigError([f"{NAMESPACE}:{setting}: must be an ARN of the right kind, got {str(arn)[:120]!r}"])
    problems = _placement_problems(setting, arn, account_id, region)
    if problems:
        raise ConfigError(problems)
    return arn


def check_deployer(config: KeyrotConfig, caller_arn: str) -> None:
    """The identity running `pulumi up` must stay able to manage the secrets after this update.

    Their resource policies deny changing a policy, a rotation configuration or a `keyrot:*` tag to everyone but
    the deployers and administrators; a caller in neither list would lock itself out of the next `pulumi up`.
    """
    if not config.deployer_arns:
        return  # the caller is the deployer
    allowed = (*config.deployer_arns, *config.administrator_arns)
    if not any(principal_matches(pattern, caller_arn) for pattern in allowed):
        raise ConfigError(
            [
                f"{NAMESPACE}:deployerArns: the identity running this update ({caller_arn}) is in neither deployerArns "
                "nor administratorArns: the secrets' policies would deny it the next update. Add it, or deploy as one "
                "of the listed roles"
            ]
        )


def _given(value: Any) -> Any:
    assert value is not None
    return value


def _parse_keys(c: _Collector) -> tuple[KeyConfig, ...] | None:
    value = c.json_value("keys")
    example = "e.g. `pulumi config set --path 'keyrot:keys[0].name' chat-backend`"
    if value is None:
        c.problem("keys", f"is required: a list of {{name, readerRoleArns}} objects, {example}")
        return None
    if value is _NOT_JSON or not isinstance(value, list):
        c.problem("keys", f"must be a list of {{name, readerRoleArns}} objects, {example}")
        return None
    if not value:
        c.problem("keys", "must list at least one key")
        return None
    keys: list[KeyConfig] = []
    seen: set[str] = set()
    ok = True
    for index, item in enumerate(value):
        where = f"keys[{index}]"
        if not isinstance(item, dict):
            c.problem(where, "must be an object {name, readerRoleArns}")
            ok = False
            continue
        unknown = sorted(set(item) - {"name", "readerRoleArns", "scopes"})
        if unknown:
            c.problem(where, f"unknown field(s) {', '.join(unknown)}; a key has name, readerRoleArns and scopes")
            ok = False
        scopes, scopes_ok = _key_scopes(c, where, item.get("scopes"))
        ok = ok and scopes_ok
        name = item.get("name")
        if not isinstance(name, str) or not KEY_NAME_PATTERN.fullmatch(name):
            c.problem(
                f"{where}.name",
                f"must match {KEY_NAME_PATTERN.pattern} (lower-case letter, then lower-case letters, digits, '-'), "
                f"got {name!r}",
            )
            ok = False
        elif name == RESERVED_KEY_NAME:
            c.problem(f"{where}.name", f"{RESERVED_KEY_NAME!r} is reserved for the admin-key secret")
            ok = False
        elif name in seen:
            c.problem(f"{where}.name", f"duplicate key name {name!r}")
            ok = False
        else:
            seen.add(name)
        raw_roles = item.get("readerRoleArns", [])
        if isinstance(raw_roles, tuple):
            raw_roles = list(raw_roles)
        readers: list[RoleArn | Pending] = []
        if not isinstance(raw_roles, list):
            c.problem(f"{where}.readerRoleArns", "must be a list of IAM role ARNs")
            ok = False
            raw_roles = []
        for role_index, text in enumerate(raw_roles):
            if text is PENDING:
                c.pending.add("keys")
                readers.append(PENDING)
                continue
            role = RoleArn.parse(text) if isinstance(text, str) else None
            if role is None:
                c.problem(
                    f"{where}.readerRoleArns[{role_index}]",
                    f"must be an IAM role ARN (arn:aws:iam::<account>:role/[path/]name), got {str(text)[:120]!r}",
                )
                ok = False
            elif role in readers:
                c.problem(f"{where}.readerRoleArns[{role_index}]", f"{role.arn} is listed twice")
                ok = False
            else:
                readers.append(role)
        if ok:
            keys.append(KeyConfig(name=str(name), readers=tuple(readers), scopes=scopes))
    return tuple(keys) if ok else None


def _key_scopes(c: _Collector, where: str, value: Any) -> tuple[tuple[str, ...] | None, bool]:
    """keys[i].scopes: absent or null (an unrestricted key, keyrot's behaviour before scopes), or scopes OpenAI
    documents (keyrot.scopes). Returns (the scopes or None, whether they are valid); a problem is recorded if not."""
    if value is None:
        return None, True
    if value is PENDING or (isinstance(value, (list, tuple)) and any(scope is PENDING for scope in value)):
        message = "must be plain values, not Outputs: they go into the rotation function's configuration at preview"
        c.problem(f"{where}.scopes", message)
        return None, False
    try:
        return parse_scopes(value), True
    except ScopesError as exc:
        c.problems.append(f"{NAMESPACE}:{exc.at(f'{where}.scopes')}")
        return None, False


def _key_expiry(c: _Collector, schedule: Any, max_grace: int | None) -> int | None:
    floor: int | None = (
        schedule.max_interval_hours + max_grace if schedule is not None and max_grace is not None else None
    )
    if not str(c.raw.get("keyExpiryHours") if c.raw.get("keyExpiryHours") is not None else "").strip():
        if floor is None:
            return 0  # the rotation schedule or grace is already reported
        default = floor + KEY_EXPIRY_MARGIN_HOURS
        if default > MAX_KEY_EXPIRY_HOURS:
            c.problem(
                "keyExpiryHours",
                f"the default (interval {schedule.max_interval_hours} h + max grace {max_grace} h + "
                f"{KEY_EXPIRY_MARGIN_HOURS} h = {default} h) exceeds {MAX_KEY_EXPIRY_HOURS} h; set keyExpiryHours "
                "to 0 (no expiry) or rotate more often",
            )
            return None
        return default
    expiry = c.integer("keyExpiryHours", minimum=0, maximum=MAX_KEY_EXPIRY_HOURS)
    if expiry and floor is not None and expiry < floor:
        c.problem(
            "keyExpiryHours",
            f"must be 0 (no expiry) or at least the rotation interval plus maxGracePeriodHours ({floor} h), "
            f"or keys would expire before they are replaced, got {expiry}",
        )
    return expiry


def load_config() -> KeyrotConfig:
    """Read every `keyrot:*` value from the stack and validate it (raises ConfigError listing every problem)."""
    import pulumi

    config = pulumi.Config(NAMESPACE)
    keys = sorted(set(SETTING_KEYS) | set(_configured_keys()))
    return parse_config({key: config.get(key) for key in keys}, stack=pulumi.get_stack())


def _configured_keys() -> list[str]:
    """Every `keyrot:*` key the stack sets, so typos are reported instead of silently ignored.

    Pulumi has no public API listing config keys; this reads the runtime's config map and the PULUMI_CONFIG
    environment the language host fills. If either is unavailable the typo check simply finds nothing.
    """
    from pulumi.runtime import config as runtime_config

    names: set[str] = set()
    store = getattr(runtime_config, "CONFIG", None)
    try:
        names |= set(store.get()) if store is not None else set()
    except (LookupError, TypeError):
        pass
    names |= set(runtime_config.get_config_env())
    prefix = NAMESPACE + ":"
    return sorted(n[len(prefix) :] for n in names if n.startswith(prefix))
