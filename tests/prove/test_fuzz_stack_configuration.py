"""Hostile stack configurations: a correct, typed configuration or ConfigError naming a setting that was changed.

The stack configuration reader (`keyrot.pulumi.config.parse_config`, what `load_config` hands every `keyrot:*` value
to) is fed near-misses of the values of Pulumi.dev.yaml / Pulumi.prod.yaml as the CLI passes them. Settings are
dropped, retyped, made huge, negative or unicode; ARNs, emails, URLs, schedules and windows are garbled; timings are
made inconsistent; key names are duplicated; unknown settings are added; key-shaped values are planted anywhere.

Every case ends in a configuration that keeps the reader's promises (re-derived from the input, not taken from the
reader), whose ARNs the account check judges exactly and whose function environments the functions' own readers read
back to the same values; or in ConfigError whose every problem names a setting that was changed (or one whose rule
reads it). Nothing else escapes; the input, the module's defaults and the process environment are left as they were;
nothing is printed or logged; no message carries a planted key. The inputs that once crashed the reader are replayed
through the same property at the end. The functions' readers have their own file: test_fuzz_lambda_settings.py.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import re
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyrot import constants
from keyrot.pulumi.config import (
    DEFAULTS,
    LOG_RETENTION_DAYS,
    NAMESPACE,
    RESERVED_KEY_NAME,
    SETTING_KEYS,
    ConfigError,
    KeyrotConfig,
    check_account,
    parse_config,
)
from keyrot.pulumi.lambda_settings import monitor_environment, rotation_environment
from keyrot.pulumi.schedule import parse_schedule
from keyrot.redaction import scrub
from keyrot.secret_model import ENVIRONMENT_PATTERN, KEY_NAME_PATTERN, OPENAI_ID_PATTERN
from keyrot.settings import DEFAULT_USAGE_KINDS, IN_USE_POLICIES, MonitorSettings, RotationSettings
from tests.prove import config_strategies as cs
from tests.prove.config_strategies import FUZZ
from tests.prove.strategies import unicode_text

_TIMING = frozenset({"rotationSchedule", "rotationWindow", "gracePeriodHours", "maxGracePeriodHours", "keyExpiryHours"})
_ONCALL = frozenset({"oncallEmails", "oncallHttpsEndpoints", "oncallTopicArn"})
_VPC = frozenset({"vpcSubnetIds", "vpcSecurityGroupIds"})
# The admin key's rotation is checked against the rotation window and only for the admin-key secret keyrot creates.
_ADMIN = frozenset({"adminKeyRotation", "rotationWindow", "existingAdminKeySecretArn"})
_DEFAULTS_BEFORE = copy.deepcopy(DEFAULTS)


@dataclasses.dataclass(frozen=True)
class ConfigCase:
    """A stack name, the raw `keyrot:*` values, and the settings a mutation touched (unknown names included)."""

    stack: str
    raw: dict[str, str]
    touched: frozenset[str]


@st.composite
def config_cases(draw: st.DrawFn) -> ConfigCase:
    base = draw(st.sampled_from(sorted(cs.BASELINE)))
    stack = base if draw(st.integers(0, 9)) else draw(st.sampled_from(["staging", "Dev_Stack", "a" * 40, "1st", "q"]))
    raw = dict(cs.BASELINE[base])
    touched: set[str] = set() if stack == base else {"environment"}
    for _ in range(draw(st.integers(0, 4))):
        operation = draw(st.sampled_from(["drop", "near", "near", "near", "hostile", "secret", "unknown", "timing"]))
        setting = draw(st.sampled_from(SETTING_KEYS))
        if operation == "drop":
            raw.pop(setting, None)
        elif operation == "near":
            raw[setting] = draw(cs.NEAR[base][setting])
        elif operation == "hostile":
            raw[setting] = draw(cs.hostile)
        elif operation == "secret":
            raw[setting] = draw(cs.secret_bearing)
        elif operation == "unknown":
            setting = draw(
                st.one_of(
                    st.sampled_from(
                        ["rotationschedule", "GracePeriodHours", "keys2", "rotation_schedule", "Dashboard"]
                    ),
                    st.sampled_from(["aws:region", "keyrot:keys", "", "x" * 5000, "keys[0]", "a\nb"]),
                    unicode_text,
                    cs.planted_keys,
                ).filter(lambda name: name not in SETTING_KEYS)
            )
            raw[setting] = draw(cs.hostile)
        else:
            for name in sorted(_TIMING):
                if draw(st.booleans()):
                    raw[name] = draw(cs.NEAR[base][name])
                    touched.add(name)
            continue
        touched.add(setting)
    return ConfigCase(stack, raw, frozenset(touched))


# --- the stack configuration ---------------------------------------------------------------------------------------


def _suspects(touched: frozenset[str]) -> frozenset[str]:
    """The settings a problem may blame: those changed, and those whose rules read a changed one."""
    suspects = set(touched)
    for group in (_TIMING, _ONCALL, _VPC, _ADMIN):
        if suspects & group:
            suspects |= group
    return frozenset(suspects)


def _names_one_of(problem: str, names: frozenset[str] | set[str]) -> bool:
    # A key-shaped unknown setting is named in its redacted form; a field of an object setting as `setting.field`.
    return any(
        problem.startswith((f"{NAMESPACE}:{scrub(n)}:", f"{NAMESPACE}:{scrub(n)}[", f"{NAMESPACE}:{scrub(n)}."))
        for n in names
    )


def _check_refusal(error: ConfigError, case: ConfigCase) -> None:
    """Every problem names a setting, one the mutation touched or one whose rule reads it, and quotes no key."""
    assert error.problems
    text = str(error)
    assert text.startswith("invalid keyrot configuration:") and all(p in text for p in error.problems)
    known = frozenset(SETTING_KEYS) | frozenset(case.raw)
    suspects = _suspects(case.touched)
    for problem in error.problems:
        assert _names_one_of(problem, known), f"names no setting: {problem[:200]}"
        assert _names_one_of(problem, suspects), f"blames a setting nobody changed: {problem[:200]}"
    cs.assert_no_key_material(*cs.error_texts(error))


def _check_config(config: KeyrotConfig, case: ConfigCase) -> None:
    """The promises an accepted configuration keeps, re-derived from the input rather than taken from the reader."""
    raw = {k: v.strip() for k, v in case.raw.items() if v.strip()}

    def number(key: str) -> float:
        return float(raw.get(key, DEFAULTS[key]))

    # Identity
    assert config.environment == raw.get("environment", case.stack)
    assert ENVIRONMENT_PATTERN.fullmatch(config.environment)
    assert config.openai_project_id == raw["openaiProjectId"]
    assert OPENAI_ID_PATTERN.fullmatch(config.openai_project_id) and not config.openai_project_id.startswith("sk-")
    # Keys: as listed, names unique, valid and not the admin key's, each role a distinct IAM role ARN
    entries = json.loads(raw["keys"])
    names = [key.name for key in config.keys]
    assert names == [entry["name"] for entry in entries] and names
    assert len(set(names)) == len(names) and RESERVED_KEY_NAME not in names
    assert all(KEY_NAME_PATTERN.fullmatch(name) for name in names)
    for key, entry in zip(config.keys, entries, strict=True):
        assert list(key.reader_role_arns) == entry.get("readerRoleArns", [])
        assert len(set(key.reader_role_arns)) == len(key.reader_role_arns)
        for role in key.reader_roles:
            fields = role.arn.split(":")
            assert fields[0] == "arn" and fields[1].startswith("aws") and fields[2:4] == ["iam", ""]
            assert role.account == fields[4] and len(role.account) == 12 and fields[5].startswith("role/")
            assert role.name == role.arn.rsplit("/", 1)[1] and 1 <= len(role.name) <= 64
    # Timing: a schedule and window AWS takes, the window inside the interval, grace and max grace shorter than it
    assert config.rotation_schedule.isascii() and config.rotation_window.isascii()
    schedule = parse_schedule(config.rotation_schedule)
    assert config.rotation_schedule == raw.get("rotationSchedule", DEFAULTS["rotationSchedule"])
    assert (config.rotation_min_interval_hours, config.rotation_max_interval_hours) == (
        schedule.min_interval_hours,
        schedule.max_interval_hours,
    )
    assert 4 <= config.rotation_min_interval_hours <= config.rotation_max_interval_hours <= 999 * 24
    assert re.fullmatch(r"[0-9]{1,2}h", config.rotation_window)
    window = int(config.rotation_window[:-1])
    assert 1 <= window <= min(24, config.rotation_min_interval_hours)
    assert max(schedule.start_hours) + window <= 24
    grace, max_grace = config.grace_period_hours, config.max_grace_period_hours
    assert (grace, max_grace) == (int(number("gracePeriodHours")), int(number("maxGracePeriodHours")))
    assert 0 <= grace <= max_grace < config.rotation_min_interval_hours
    floor = config.rotation_max_interval_hours + max_grace
    if "keyExpiryHours" in raw:
        assert config.key_expiry_hours == int(raw["keyExpiryHours"])
        assert config.key_expiry_hours == 0 or floor <= config.key_expiry_hours <= 8760
    else:
        assert config.key_expiry_hours == floor + 24 <= 8760
    assert 0 <= config.quiet_window_minutes <= 7 * 24 * 60
    assert config.in_use_policy in IN_USE_POLICIES
    # Notifications: someone is told, by a topic or by keyrot's own subscriptions, never both
    for email in config.oncall_emails:
        local, _, domain = email.partition("@")
        assert local and "@" not in domain and not any(c.isspace() for c in email)
        assert "." in domain[1:-1], email
    assert all(urlsplit(e).scheme == "https" and urlsplit(e).netloc for e in config.oncall_https_endpoints)
    subscriptions = config.oncall_emails or config.oncall_https_endpoints
    assert (config.oncall_topic_arn is None) == bool(subscriptions)
    if config.oncall_topic_arn is not None:
        fields = config.oncall_topic_arn.split(":")
        assert fields[0] == "arn" and fields[1].startswith("aws") and fields[2] == "sns" and len(fields[4]) == 12
    # Monitoring
    assert math.isfinite(config.daily_spend_limit_usd) and config.daily_spend_limit_usd > 0
    assert config.daily_spend_limit_usd == number("dailySpendLimitUsd")
    assert 0 < config.anomaly_band_width <= 10 and config.anomaly_band_width == number("anomalyBandWidth")
    assert 1 <= config.monitor_interval_minutes <= 480 and 0 <= config.settle_delay_minutes <= 1440
    assert config.log_retention_days in LOG_RETENTION_DAYS
    kinds = config.usage_kinds
    assert kinds and len(set(kinds)) == len(kinds) and set(kinds) <= set(DEFAULT_USAGE_KINDS)
    signals = config.anomaly_alarms
    assert signals and len(set(signals)) == len(signals) and set(signals) <= {"requests", "inputTokens"}
    assert config.dashboard is (raw.get("dashboard", "false") in ("true", "True", "TRUE", "1", "yes"))
    # ARNs and URLs
    if config.existing_admin_key_secret_arn is not None:
        assert config.existing_admin_key_secret_arn.split(":")[2] == "secretsmanager"
    for arn in config.administrator_arns:
        fields = arn.split(":")
        assert fields[2:4] == ["iam", ""] and len(fields[4]) == 12 and fields[5].startswith(("role/", "user/"))
    if config.openai_base_url is not None:
        parts = urlsplit(config.openai_base_url)
        loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
        assert (parts.scheme == "https" or loopback) and parts.netloc and not config.openai_base_url.endswith("/")
    runbook = urlsplit(config.runbook_url)
    assert runbook.scheme == "https" and runbook.netloc and not runbook.fragment and len(config.runbook_url) <= 512
    # Deployment: peers, protection, the KMS key, the VPC, who deploys
    shared = config.shared_project_environments
    assert len(set(shared)) == len(shared) and all(ENVIRONMENT_PATTERN.fullmatch(n) for n in shared)
    assert config.environment not in shared
    assert config.production is (raw.get("production", "false") in ("true", "True", "TRUE", "1", "yes"))
    if config.existing_kms_key_arn is not None:
        fields = config.existing_kms_key_arn.split(":")
        assert fields[2] == "kms" and len(fields[4]) == 12 and fields[5].startswith("key/")
    assert bool(config.vpc_subnet_ids) == bool(config.vpc_security_group_ids)
    assert all(i.startswith("subnet-") for i in config.vpc_subnet_ids)
    assert all(i.startswith("sg-") for i in config.vpc_security_group_ids)
    for arn in (*config.administrator_arns, *config.deployer_arns):
        fields = arn.split(":")
        assert fields[2:4] == ["iam", ""] and len(fields[4]) == 12 and fields[5].startswith(("role/", "user/"))
        # A wildcard only completes a named prefix: never a whole account's roles
        if "*" in arn:
            assert arn.count("*") == 1 and arn.endswith("*") and fields[5].split("/", 1)[1].rstrip("*").strip("/")


def _check_account_rule(config: KeyrotConfig, stack: str) -> None:
    """`check_account` refuses exactly the ARNs outside the deploying account and region, naming their setting."""
    account = cs.STACK_ACCOUNTS.get(stack, cs.OTHER_ACCOUNT)
    foreign = [role.arn for key in config.keys for role in key.reader_roles if role.arn.split(":")[4] != account]
    foreign += [arn for arn in (*config.administrator_arns, *config.deployer_arns) if arn.split(":")[4] != account]
    for arn in (config.existing_admin_key_secret_arn, config.oncall_topic_arn, config.existing_kms_key_arn):
        if arn is not None and arn.split(":")[3:5] != [cs.REGION, account]:
            foreign.append(arn)
    try:
        check_account(config, account, cs.REGION)
    except ConfigError as exc:
        assert foreign, f"refused a stack whose ARNs are all in {account}/{cs.REGION}: {exc}"
        owners = tuple(
            f"{NAMESPACE}:{o}:"
            for o in (
                "keys",
                "administratorArns",
                "deployerArns",
                *_ONCALL,
                "existingAdminKeySecretArn",
                "existingKmsKeyArn",
            )
        )
        assert all(problem.startswith(owners) for problem in exc.problems), exc.problems
        assert all(scrub(arn) in str(exc) for arn in foreign)
        cs.assert_no_key_material(*cs.error_texts(exc))
    else:
        assert not foreign, f"accepted ARNs outside {account}/{cs.REGION}: {foreign}"


def _check_lambda_round_trip(config: KeyrotConfig, stack: str) -> None:
    """The environments the program gives the functions read back, through their own readers, to the same values."""
    account = cs.STACK_ACCOUNTS.get(stack, cs.OTHER_ACCOUNT)
    admin = config.existing_admin_key_secret_arn or (
        f"arn:aws:secretsmanager:{cs.REGION}:{account}:secret:keyrot/{config.environment}/openai-admin-key-AbCdEf"
    )
    topic = config.oncall_topic_arn or f"arn:aws:sns:{cs.REGION}:{account}:keyrot-{config.environment}-oncall"
    rotation = RotationSettings.from_env(rotation_environment(config, admin_secret_arn=admin))
    monitor = MonitorSettings.from_env(monitor_environment(config, admin_secret_arn=admin, topic_arn=topic))
    base_url = config.openai_base_url or constants.DEFAULT_OPENAI_BASE_URL
    assert (rotation.environment, rotation.admin_secret_arn, rotation.openai_base_url) == (
        config.environment,
        admin,
        base_url,
    )
    assert rotation.grace_period_seconds == config.grace_period_hours * 3600
    assert rotation.key_expiry_seconds == config.key_expiry_hours * 3600
    assert (monitor.environment, monitor.project_id, monitor.topic_arn, monitor.openai_base_url) == (
        config.environment,
        config.openai_project_id,
        topic,
        base_url,
    )
    assert monitor.grace_period_seconds == config.grace_period_hours * 3600
    assert monitor.max_grace_period_seconds == config.max_grace_period_hours * 3600
    assert monitor.quiet_window_seconds == config.quiet_window_minutes * 60
    assert monitor.settle_delay_seconds == config.settle_delay_minutes * 60
    assert (monitor.in_use_policy, monitor.usage_kinds, monitor.runbook_url) == (
        config.in_use_policy,
        config.usage_kinds,
        config.runbook_url,
    )


def _read_config(case: ConfigCase) -> tuple[KeyrotConfig | None, ConfigError | None]:
    """Runs the reader on a read-only view of the input; checks it changed nothing and printed nothing."""
    before = copy.deepcopy(case.raw)
    environ = dict(os.environ)
    config: KeyrotConfig | None = None
    error: ConfigError | None = None
    with cs.watched() as output:
        try:
            config = parse_config(MappingProxyType(case.raw), stack=case.stack)
        except ConfigError as exc:
            error = exc
    assert case.raw == before and DEFAULTS == _DEFAULTS_BEFORE and dict(os.environ) == environ
    assert not "".join(output), f"the reader printed or logged: {''.join(output)[:200]!r}"
    return config, error


def _check_case(case: ConfigCase) -> None:
    """The whole property for one configuration: a refusal by setting, or a result that keeps every promise."""
    config, error = _read_config(case)
    if error is not None:
        cs.tally("refused")
        _check_refusal(error, case)
        return
    cs.tally("accepted")
    assert config is not None
    _check_config(config, case)
    _check_account_rule(config, case.stack)
    _check_lambda_round_trip(config, case.stack)


@FUZZ
@given(case=config_cases())
def test_a_stack_configuration_is_read_correctly_or_refused_by_setting(case: ConfigCase) -> None:
    # GIVEN a near-miss of a committed stack's configuration
    # WHEN the stack configuration reader reads it
    # THEN it refuses, every problem naming a setting that was changed and quoting no planted key; or the
    # configuration keeps every promise, the account check refuses exactly the foreign ARNs, and the functions read
    # their environments back to the same values. Either way nothing else is raised, changed, printed or logged.
    _check_case(case)


@pytest.mark.parametrize("setting", SETTING_KEYS)
@settings(FUZZ, max_examples=40)
@given(data=st.data())
def test_each_setting_alone_is_read_correctly_or_refused_by_its_name(setting: str, data: st.DataObject) -> None:
    # GIVEN a committed stack with only `setting` changed, mostly to a near-miss (rare shapes get their turn here)
    stack = data.draw(st.sampled_from(sorted(cs.BASELINE)), label="stack")
    near = cs.NEAR[stack][setting]
    value = data.draw(st.one_of(near, near, near, cs.hostile, cs.secret_bearing), label="value")
    # WHEN the reader reads it THEN the whole property holds: a refusal blames that setting (or one its rule reads)
    _check_case(ConfigCase(stack, {**cs.BASELINE[stack], setting: value}, frozenset({setting})))


@st.composite
def timing_cases(draw: st.DrawFn) -> dict[str, Any]:
    """Rate schedules, windows, grace, max grace and expiry around every boundary the rules draw."""
    unit = draw(st.sampled_from(["hour", "hours", "day", "days"]))
    if unit.startswith("hour"):
        value = draw(st.one_of(st.integers(-1, 26), st.sampled_from([3, 4, 23, 24])))
    else:
        value = draw(st.one_of(st.integers(-1, 40), st.sampled_from([364, 365, 366, 999, 1000]), st.integers(0, 1001)))
    interval = max(value, 1) * (1 if unit.startswith("hour") else 24)
    around = st.one_of(st.integers(-2, 30), st.integers(0, interval + 2), st.sampled_from([interval - 1, interval]))
    grace = draw(around)
    max_grace = draw(st.one_of(around, st.integers(grace - 2, grace + 2)))
    expiry = draw(st.one_of(st.none(), st.integers(-1, 9000), st.just(interval + max_grace), st.just(8760)))
    return {
        "stack": draw(st.sampled_from(sorted(cs.BASELINE))),
        "value": value,
        "unit": unit,
        "window": draw(st.integers(-1, 26)),
        "grace": grace,
        "max_grace": max_grace,
        "expiry": expiry,
    }


def _timing_model(case: dict[str, Any]) -> tuple[set[str], int]:
    """The timing settings an independent reading of the rules refuses, and the rotation interval in hours."""
    hours = case["unit"].startswith("hour")
    value, window, grace, max_grace, expiry = (case[k] for k in ("value", "window", "grace", "max_grace", "expiry"))
    refused: set[str] = set()
    interval = value if hours else value * 24
    if not (4 <= value <= 23 if hours else 1 <= value <= 999):
        refused.add("rotationSchedule")
        interval = 0
    if not 1 <= window <= 24 or (interval and window > interval):
        refused.add("rotationWindow")
    if grace < 0 or (interval and grace >= interval):
        refused.add("gracePeriodHours")
    if max_grace < 0 or (grace >= 0 and max_grace < grace) or (interval and max_grace >= interval):
        refused.add("maxGracePeriodHours")
    floor = interval + max_grace if interval and max_grace >= 0 else None
    if expiry is None:
        if floor is not None and floor + 24 > 8760:
            refused.add("keyExpiryHours")
    elif not 0 <= expiry <= 8760 or (expiry and floor is not None and expiry < floor):
        refused.add("keyExpiryHours")
    return refused, interval


@FUZZ
@given(case=timing_cases())
def test_timing_rules_match_an_independent_reading(case: dict[str, Any]) -> None:
    # GIVEN a stack whose schedule, window, grace, max grace and expiry sit around the rules' boundaries
    raw = dict(cs.BASELINE[case["stack"]])
    raw.update(
        rotationSchedule=f"rate({case['value']} {case['unit']})",
        rotationWindow=f"{case['window']}h",
        gracePeriodHours=str(case["grace"]),
        maxGracePeriodHours=str(case["max_grace"]),
    )
    raw.pop("keyExpiryHours", None)
    if case["expiry"] is not None:
        raw["keyExpiryHours"] = str(case["expiry"])
    refused, interval = _timing_model(case)
    # WHEN the reader reads it
    config, error = _read_config(ConfigCase(case["stack"], raw, _TIMING))
    # THEN it refuses exactly the settings the rules refuse (a grace as long as the interval included), or none
    blamed = {name for name in _TIMING if error and any(_names_one_of(p, {name}) for p in error.problems)}
    assert blamed == refused, error.problems if error else "accepted"
    if error is not None:
        cs.tally("refused")
        assert all(_names_one_of(p, _TIMING) for p in error.problems), error.problems
        return
    cs.tally("accepted")
    assert config is not None
    assert config.rotation_min_interval_hours == config.rotation_max_interval_hours == interval
    assert (config.grace_period_hours, config.max_grace_period_hours) == (case["grace"], case["max_grace"])
    expiry = interval + case["max_grace"] + 24 if case["expiry"] is None else case["expiry"]
    assert config.key_expiry_hours == expiry


def test_the_committed_stacks_are_valid_and_every_setting_is_fuzzed() -> None:
    for stack, raw in cs.BASELINE.items():
        # GIVEN a committed stack file, read as the CLI hands it over
        # THEN it passes unchanged (else every example would fail for the same reason) and keeps every promise
        _check_case(ConfigCase(stack, raw, frozenset()))
        assert parse_config(raw, stack=stack).environment == stack
        # AND every setting the reader knows has near-miss values (a new setting must be added here)
        assert set(cs.NEAR[stack]) == set(SETTING_KEYS)


# --- what this fuzzing found: inputs that crashed a reader or passed values AWS refuses ---------------------------
# Found at 3738689 and fixed in d079481 (infra/config.py, infra/schedule.py, keyrot/settings.py); they now go through
# the whole property above. Each comment says what the reader did before the fix.


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("keyExpiryHours", "   "),  # AssertionError: blank skipped the default branch, then `_given(None)`
        ("keys", "[" * 100_000),  # RecursionError out of json.loads (only JSONDecodeError was caught)
        ("oncallEmails", "[" * 100_000),
        ("keys", "1" * 5000),  # ValueError: a JSON integer past Python's 4300-digit limit
        ("administratorArns", "9" * 5000),
        ("rotationSchedule", "rate(" + "9" * 5000 + " days)"),  # ValueError from int() on an unbounded \d+
        ("rotationSchedule", "cron(0 \u00b2 * * ? *)"),  # ValueError: '²'.isdigit() is true, int('²') fails
        ("rotationSchedule", "cron(0 0/\u00b2 * * ? *)"),
        ("openaiBaseUrl", "https://[::1"),  # ValueError from urlsplit: unclosed IPv6 bracket
        ("oncallHttpsEndpoints", '["https://["]'),
        ("runbookUrl", "https://wiki\uff03example.com/runbook"),  # ValueError: host NFKC-normalises to '#'
        ("rotationSchedule", "rate(\u0667 days)"),  # accepted: Unicode digits, refused by AWS at deploy
        ("rotationSchedule", "cron(0 \u0662 ? * MON *)"),
        ("rotationWindow", "\u0664h"),
        ("dailySpendLimitUsd", "inf"),  # accepted: an infinite alarm threshold and dashboard annotation
        ("dailySpendLimitUsd", "1e309"),
    ],
)
def test_values_that_broke_the_stack_reader_are_now_refused_or_read_correctly(setting: str, value: str) -> None:
    # GIVEN the dev stack with one value that broke the reader
    # WHEN it is read THEN the whole property holds (for these: refused by name, or for the blank the default)
    _check_case(ConfigCase("dev", {**cs.BASELINE["dev"], setting: value}, frozenset({setting})))
