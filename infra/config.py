"""The stack's configuration: the one place that calls `pulumi.Config`, returning a frozen, validated dataclass.

`parse_config` is a pure function over the raw strings Pulumi hands the program, so every rule is unit-testable
without the Pulumi engine. Every problem found is collected and reported together in one `ConfigError`, each line
naming the key (`keyrot:<key>`) and what is wrong, so `pulumi preview` fails once with the whole list.

Defaults live in `SETTINGS` below; `Pulumi.yaml` declares the same defaults (a test keeps them equal).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

import pulumi
from pulumi.runtime import config as runtime_config

from infra.schedule import ScheduleError, check_window, parse_schedule, parse_window
from keyrot.constants import admin_secret_name
from keyrot.redaction import scrub
from keyrot.secret_model import ENVIRONMENT_PATTERN, KEY_NAME_PATTERN, OPENAI_ID_PATTERN
from keyrot.settings import DEFAULT_RUNBOOK_URL, DEFAULT_USAGE_KINDS, IN_USE_POLICIES

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

_ROLE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?P<path>(?:[\w+=,.@-]+/)*)(?P<name>[\w+=,.@-]{1,64})$"
)
# Administrators may be roles or users, and may use `*` (e.g. an SSO permission-set role with a random suffix).
_PRINCIPAL_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):(?:role|user)/[\w+=,.@/*-]+$")
_SECRET_ARN = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):secret:[\w/+=.@-]+$"
)
_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):[A-Za-z0-9_-]{1,256}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TRUE = ("true", "True", "TRUE", "1", "yes")
_FALSE = ("false", "False", "FALSE", "0", "no")


class ConfigError(Exception):
    """The stack configuration is invalid. `problems` lists every finding, each naming its key."""

    def __init__(self, problems: Sequence[str]) -> None:
        # Problems quote the offending value: scrub anything key-shaped someone pasted into the wrong setting.
        self.problems = tuple(scrub(problem) for problem in problems)
        super().__init__("invalid keyrot configuration:\n  " + "\n  ".join(self.problems))


@dataclass(frozen=True)
class Setting:
    key: str
    kind: str  # string | integer | number | boolean | list | keys
    default: Any
    description: str


# Defaults: `None` means "no value" (optional) or "computed" (see the description).
SETTINGS: tuple[Setting, ...] = (
    Setting("environment", "string", None, "Environment name; defaults to the stack name."),
    Setting("openaiProjectId", "string", None, "OpenAI project whose keys keyrot mints (required)."),
    Setting("keys", "keys", None, "Managed keys: [{name, readerRoleArns: [...]}] (required, at least one)."),
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
    Setting("dashboard", "boolean", True, "Create the CloudWatch dashboard."),
    Setting("runbookUrl", "string", DEFAULT_RUNBOOK_URL, "Where alarms and notifications link (docs/runbook.md)."),
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
    reader_roles: tuple[RoleArn, ...]

    @property
    def reader_role_arns(self) -> tuple[str, ...]:
        return tuple(r.arn for r in self.reader_roles)


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
    dashboard: bool
    runbook_url: str = DEFAULT_RUNBOOK_URL

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(k.name for k in self.keys)


class _Collector:
    """Reads raw values, converting and recording a problem (rather than raising) for each bad one."""

    def __init__(self, raw: Mapping[str, str | None]) -> None:
        self.raw = raw
        self.problems: list[str] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.append(f"{NAMESPACE}:{key}: {message}")

    def text(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is None or not str(value).strip():
            default = DEFAULTS[key]
            return None if default is None else str(default)
        return str(value).strip()

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
        if value is None or not str(value).strip():
            return None
        try:
            return json.loads(value)
        except (ValueError, RecursionError):  # not JSON, nested too deep, or an integer past Python's digit limit
            return _NOT_JSON

    def string_list(self, key: str) -> tuple[str, ...] | None:
        value = self.json_value(key)
        if value is None:
            return tuple(DEFAULTS[key])
        if value is _NOT_JSON or not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(
                key, "must be a list of strings (set it with `pulumi config set --path 'keyrot:" + key + "[0]' ...`)"
            )
            return None
        return tuple(v.strip() for v in value)


_NOT_JSON = object()


def _split_url(text: str) -> SplitResult | None:
    """urlsplit, or None for what it refuses (an unclosed IPv6 bracket, a host that normalises to '#' or '/')."""
    try:
        parts = urlsplit(text)
        parts.hostname  # noqa: B018 - parses (and may refuse) the bracketed host
    except ValueError:
        return None
    return parts


def parse_config(raw: Mapping[str, str | None], *, stack: str) -> KeyrotConfig:
    """Validate the raw `keyrot:*` values (key without namespace -> string as Pulumi passes it)."""
    c = _Collector(raw)

    for key in sorted(set(raw) - set(SETTING_KEYS)):
        close = [k for k in SETTING_KEYS if k.lower() == key.lower()]
        hint = f"; did you mean keyrot:{close[0]}?" if close else f"; known settings: {', '.join(SETTING_KEYS)}"
        c.problem(key, f"is not a keyrot setting{hint}")

    environment = c.text("environment") or stack
    if not ENVIRONMENT_PATTERN.fullmatch(environment):
        source = "" if c.text("environment") else f" (defaults to the stack name {stack!r})"
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
    topic = c.text("oncallTopicArn")
    if topic is not None and not _TOPIC_ARN.match(topic):
        c.problem("oncallTopicArn", f"must be an SNS topic ARN, got {topic[:120]!r}")
    if topic is not None and (emails or endpoints):
        c.problem(
            "oncallTopicArn",
            "cannot be combined with oncallEmails/oncallHttpsEndpoints: subscribe them where that topic is managed",
        )
    if topic is None and emails == () and endpoints == ():
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

    administrators = c.string_list("administratorArns")
    for arn in administrators or ():
        if not _PRINCIPAL_ARN.match(arn):
            c.problem("administratorArns", f"must be IAM role or user ARNs, got {arn[:120]!r}")

    base_url = c.text("openaiBaseUrl")
    if base_url is not None:
        parts = _split_url(base_url)
        loopback = parts is not None and parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts is None or (parts.scheme != "https" and not loopback) or not parts.netloc:
            # Plain http only for a local stand-in (the rehearsal); anything that leaves the machine is https.
            c.problem("openaiBaseUrl", f"must be an https:// URL (http only on loopback), got {base_url[:120]!r}")
        base_url = base_url.rstrip("/")

    band = c.number("anomalyBandWidth", exclusive_minimum=0, maximum=MAX_ANOMALY_BAND_WIDTH)
    dashboard = c.boolean("dashboard")

    runbook_url = c.text("runbookUrl") or DEFAULT_RUNBOOK_URL
    runbook = _split_url(runbook_url)
    if runbook is None or runbook.scheme != "https" or not runbook.netloc or runbook.fragment or len(runbook_url) > 512:
        c.problem("runbookUrl", f"must be an https:// URL without a #fragment, got {runbook_url[:120]!r}")

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
        dashboard=bool(dashboard),
        runbook_url=runbook_url,
    )


def check_account(config: KeyrotConfig, account_id: str, region: str | None = None) -> None:
    """Reader roles and administrators must live in the account being deployed to; an existing admin-key secret
    and on-call topic in that account and region too.

    Reader policies are attached to the roles (an attachment cannot cross accounts), and the secrets' resource
    policies only deny: a principal from another account would still lack an allow. The functions' policies grant
    the admin-key secret and the topic by ARN, and the environment's KMS key and alarms live in this account and
    region, which an alarm action or a cross-account secret read would not reach.
    """
    problems: list[str] = []
    for setting, arn in (
        ("existingAdminKeySecretArn", config.existing_admin_key_secret_arn),
        ("oncallTopicArn", config.oncall_topic_arn),
    ):
        if arn is None:
            continue
        arn_region, arn_account = arn.split(":")[3:5]
        if arn_account != account_id:
            problems.append(
                f"{NAMESPACE}:{setting}: {arn} is in account {arn_account}, but this stack deploys to {account_id}"
            )
        if region is not None and arn_region != region:
            problems.append(
                f"{NAMESPACE}:{setting}: {arn} is in region {arn_region}, but this stack deploys to {region}"
            )
    for key in config.keys:
        for role in key.reader_roles:
            if role.account != account_id:
                problems.append(
                    f"{NAMESPACE}:keys: {key.name}: reader role {role.arn} is in account {role.account}, "
                    f"but this stack deploys to account {account_id}"
                )
    for arn in config.administrator_arns:
        account = arn.split(":")[4]
        if account != account_id:
            problems.append(
                f"{NAMESPACE}:administratorArns: {arn} is in account {account}, but this stack deploys to {account_id}"
            )
    if problems:
        raise ConfigError(problems)


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
        unknown = sorted(set(item) - {"name", "readerRoleArns"})
        if unknown:
            c.problem(where, f"unknown field(s) {', '.join(unknown)}; a key has name and readerRoleArns")
            ok = False
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
        roles: list[RoleArn] = []
        if not isinstance(raw_roles, list):
            c.problem(f"{where}.readerRoleArns", "must be a list of IAM role ARNs")
            ok = False
            raw_roles = []
        for role_index, text in enumerate(raw_roles):
            role = RoleArn.parse(text) if isinstance(text, str) else None
            if role is None:
                c.problem(
                    f"{where}.readerRoleArns[{role_index}]",
                    f"must be an IAM role ARN (arn:aws:iam::<account>:role/[path/]name), got {str(text)[:120]!r}",
                )
                ok = False
            elif role in roles:
                c.problem(f"{where}.readerRoleArns[{role_index}]", f"{role.arn} is listed twice")
                ok = False
            else:
                roles.append(role)
        if ok:
            keys.append(KeyConfig(name=str(name), reader_roles=tuple(roles)))
    return tuple(keys) if ok else None


def _key_expiry(c: _Collector, schedule: Any, max_grace: int | None) -> int | None:
    floor = schedule.max_interval_hours + max_grace if schedule is not None and max_grace is not None else None
    if not str(c.raw.get("keyExpiryHours") or "").strip():
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
    """Read every `keyrot:*` value from Pulumi and validate it (raises ConfigError listing every problem)."""
    config = pulumi.Config(NAMESPACE)
    keys = sorted(set(SETTING_KEYS) | set(_configured_keys()))
    return parse_config({key: config.get(key) for key in keys}, stack=pulumi.get_stack())


def _configured_keys() -> list[str]:
    """Every `keyrot:*` key the stack sets, so typos are reported instead of silently ignored.

    Pulumi has no public API listing config keys; this reads the runtime's config map and the PULUMI_CONFIG
    environment the language host fills. If either is unavailable the typo check simply finds nothing.
    """
    names: set[str] = set()
    store = getattr(runtime_config, "CONFIG", None)
    try:
        names |= set(store.get()) if store is not None else set()
    except (LookupError, TypeError):
        pass
    names |= set(runtime_config.get_config_env())
    prefix = NAMESPACE + ":"
    return sorted(n[len(prefix) :] for n in names if n.startswith(prefix))
