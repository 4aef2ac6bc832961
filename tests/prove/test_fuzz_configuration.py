"""Hostile stack configurations and Lambda environments: a correct, typed result or the reader's own error.

The stack configuration reader (`keyrot.pulumi.config.parse_config`, what `load_config` hands every `keyrot:*`
value to) and the Lambda settings readers (`RotationSettings.from_env`, `MonitorSettings.from_env`) are fed
near-misses of their real inputs: the values of Pulumi.dev.yaml / Pulumi.prod.yaml as the CLI passes them, and the
environments keyrot/pulumi/lambda_settings.py builds from them. Settings are dropped, retyped, made huge, negative
or unicode; ARNs, emails, URLs, schedules and windows are garbled; timings are made inconsistent; key names are
duplicated; unknown settings are added; key-shaped values are planted anywhere.

Every case ends in a result that keeps the reader's promises (re-derived from the input, not taken from the reader)
or in ConfigError / ConfigurationError naming a setting that was changed. Nothing else escapes; the input, the
module's defaults and the process environment are left as they were; nothing is printed or logged; no message
carries a planted key. The inputs that once crashed a reader are replayed through the same property at the end.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import logging
import math
import os
import re
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from types import MappingProxyType
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from keyrot import constants
from keyrot.errors import ConfigurationError
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
from keyrot.settings import DEFAULT_RUNBOOK_URL, DEFAULT_USAGE_KINDS, IN_USE_POLICIES, MonitorSettings, RotationSettings
from lab.pulumi_program import stack_config
from tests.prove.strategies import MARKER, huge_ints, huge_text, json_values, unicode_text

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_STACK_ACCOUNTS = {"dev": "111111111111", "prod": "222222222222"}
_OTHER_ACCOUNT = "333333333333"
_REGION = "us-east-1"
_TIMING = frozenset({"rotationSchedule", "rotationWindow", "gracePeriodHours", "maxGracePeriodHours", "keyExpiryHours"})
_ONCALL = frozenset({"oncallEmails", "oncallHttpsEndpoints", "oncallTopicArn"})
_VPC = frozenset({"vpcSubnetIds", "vpcSecurityGroupIds"})
_DEFAULTS_BEFORE = copy.deepcopy(DEFAULTS)

# Key-shaped values planted in inputs. Redaction may show a key's first 8 characters; nothing after them may appear.
_PLANTED = (
    MARKER,
    # Built at import, never written out whole: the repository holds no literal shaped like a real key.
    "-".join(("sk", "proj", "PLANTED" + "a7Qx2Lm9Vw4Kc8Rz1Tn6Yb3Hd5Jf0GsUe")),
    "-".join(("sk", "admin", "PLANTED" + "z9Yx8Wv7Ut6Sr5Qp4On3Ml2Kj1Ih0Gf")),
    "-".join(("sk", "PLANTED" + "b4Nm7Qw2Er5Ty8Ui1Op3As6Df9GhJk")),
)
_KEY_FRAGMENTS = tuple({secret[i : i + 10] for secret in _PLANTED for i in range(8, len(secret) - 9)})
# Shapes that once crashed a reader (deep or huge JSON, '²' and other Unicode digits, URLs urlsplit refuses).
_CRASHERS = ("[" * 100_000, "1" * 5000, "https://[::1", "https://wiki\uff03example.com/x", '["https://["]', "   ")


def _stack_values(stack: str) -> dict[str, str]:
    """The `keyrot:*` values the CLI hands the program for `stack` (as tests/infra/test_config.py builds them)."""
    prefix = f"{NAMESPACE}:"
    return {k[len(prefix) :]: v for k, v in stack_config(stack).items() if k.startswith(prefix)}


_BASELINE = {stack: _stack_values(stack) for stack in _STACK_ACCOUNTS}


# --- observing the readers -----------------------------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def _watched() -> Iterator[list[str]]:
    """Collects everything printed or logged meanwhile (the readers print and log nothing)."""
    handler = _Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    out, err = io.StringIO(), io.StringIO()
    output: list[str] = []
    try:
        with redirect_stdout(out), redirect_stderr(err):
            yield output
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        output.extend([*handler.lines, out.getvalue(), err.getvalue()])


def _assert_no_key_material(*texts: str) -> None:
    for text in texts:
        leaked = [fragment for fragment in _KEY_FRAGMENTS if fragment in text]
        assert not leaked, f"a planted key reached the output: ...{leaked[0]}..."


def _tally(outcome: str) -> None:
    """Counts an outcome for --hypothesis-show-statistics (the replayed cases run outside Hypothesis)."""
    if currently_in_test_context():
        event(outcome)


def _error_texts(error: BaseException) -> tuple[str, str, str]:
    """What a log line or a `pulumi preview` could show of `error`."""
    return str(error), repr(error), "".join(traceback.format_exception(error))


# --- values as `pulumi config` hands them over: strings (lists and objects as JSON) -------------------------------

_secrets = st.sampled_from(_PLANTED)
_secret_bearing = st.one_of(
    _secrets,
    _secrets.map(lambda s: f"  {s}\t"),
    st.tuples(st.text(max_size=130), _secrets, st.text(max_size=5)).map("".join),  # cut anywhere by a truncation
    _secrets.map(lambda s: f"https://{s}.example.com/v1"),
    _secrets.map(lambda s: f"https://hooks.example.com/{s}"),
    _secrets.map(lambda s: f"arn:aws:iam::111111111111:role/{s}"),
    _secrets.map(lambda s: f"arn:aws:sns:us-east-1:111111111111:{s}"),
    _secrets.map(lambda s: f"{s}@example.com"),
    _secrets.map(lambda s: f"rate({s} days)"),
    _secrets.map(lambda s: f"cron(0 {s} * * ? *)"),
    _secrets.map(lambda s: json.dumps([s])),
    _secrets.map(lambda s: json.dumps([{"name": s, "readerRoleArns": [s]}])),
)
_hostile = st.one_of(
    st.sampled_from(
        ["", " ", "\t\n", "null", "None", "[]", "{}", "[", '""', "true", "0", "-0", "-1", "1.5", "1e3", "1e309"]
    ),
    st.sampled_from(
        ["-1e309", "nan", "inf", "0x10", "+3", " 7 ", "1_000", "\u0663", "\u00b2", "\u216b", "\x00", "\u200b"]
    ),
    st.sampled_from(_CRASHERS),
    st.integers(-(10**6), 10**6).map(str),
    huge_ints.map(str),
    unicode_text,
    huge_text,
    json_values.map(json.dumps),
    _secret_bearing,
)
_accounts = st.sampled_from(
    ["111111111111", "222222222222", _OTHER_ACCOUNT, "11111111111", "1111111111111", "abcdefghijkl", "\u0661" * 12]
)
_partitions = st.sampled_from(["aws", "aws-cn", "aws-us-gov", "AWS", "", "aws_x"])
_regions = st.sampled_from([_REGION, "eu-west-1", "US-EAST-1", "", "us east 1"])
_iam_names = st.one_of(
    st.from_regex(r"[A-Za-z0-9+=,.@_-]{1,70}", fullmatch=True),
    st.sampled_from(["r", "r" * 64, "r" * 65, "", "*", "ro le", "r\u00e9le", "chat-backend-dev"]),
)
_role_arns = st.one_of(
    st.builds(
        lambda part, account, path, name: f"arn:{part}:iam::{account}:role/{path}{name}",
        _partitions,
        _accounts,
        st.sampled_from(["", "service/", "a/b/", "/", "x y/", "aws-reserved/sso.amazonaws.com/"]),
        _iam_names,
    ),
    _accounts.map(lambda account: f"arn:aws:iam::{account}:role/chat-backend-dev"),
    st.sampled_from(
        [
            "arn:aws:iam::111111111111:user/bob",
            "arn:aws:iam:us-east-1:111111111111:role/r",
            "arn:aws:sts::111111111111:assumed-role/r/s",
            "arn:aws:iam::111111111111:role/",
            "chat-backend-dev",
            "arn:aws:iam::111111111111:role/a\nb",
        ]
    ),
)
_principal_arns = st.one_of(
    _role_arns,
    st.builds(
        lambda part, account, kind, name: f"arn:{part}:iam::{account}:{kind}/{name}",
        _partitions,
        _accounts,
        st.sampled_from(["role", "user", "group", "root"]),
        st.sampled_from(["admin", "aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_*", "*", "", "a b", "x:y"]),
    ),
)
_secret_arns = st.builds(
    lambda part, service, region, account, name: f"arn:{part}:{service}:{region}:{account}:secret:{name}",
    _partitions,
    st.sampled_from(["secretsmanager", "secretsmanager", "ssm", "kms"]),
    _regions,
    _accounts,
    st.sampled_from(["openai/prod/admin-key-Xy12Ab", "a b", "", "x*", "k" * 600]),
)
_topic_arns = st.builds(
    lambda part, service, region, account, name: f"arn:{part}:{service}:{region}:{account}:{name}",
    _partitions,
    st.sampled_from(["sns", "sns", "sqs"]),
    _regions,
    _accounts,
    st.sampled_from(["platform-oncall", "a" * 256, "a" * 257, "ops.fifo", "", "ops/x"]),
)
_urls = st.one_of(
    st.sampled_from(
        [
            "https://proxy.example.com/v1",
            "https://proxy.example.com/v1///",
            "http://proxy.example.com/v1",
            "https://",
            "https:///v1",
            "ftp://proxy.example.com",
            "proxy.example.com/v1",
            "https://wiki.example.com/runbook#top",
            "https://wiki.example.com/" + "r" * 600,
            "http://127.0.0.1:8080/v1",
            "http://localhost/v1/",
            "http://[::1]:8080/",
            "http://127.0.0.2/v1",
            "HTTPS://PROXY.EXAMPLE.COM",
            "https://x.y?q=1",
            "javascript:alert(1)",
        ]
    ),
    st.sampled_from(
        ["https://[::1", "http://[::1", "https://::1]/", "https://[v1.x]/", "https://api\uff03openai.com/v1"]
    ),
    st.builds(
        lambda scheme, host, path: f"{scheme}://{host}/{path}",
        st.sampled_from(["https", "http", "HTTPS", "file", ""]),
        st.one_of(st.sampled_from(["example.com", "localhost", "127.0.0.1", "[::1]", "ex ample.com"]), unicode_text),
        st.text(max_size=20),
    ),
)
_emails = st.one_of(
    st.sampled_from(
        ["ops@example.com", "not-an-address", "a@b", "a b@c.d", "@x.y", "x@y.z", "x@@y.z", " ops@example.com "]
    ),
    st.sampled_from(
        ["ops@exa mple.com", "ops@.example.com", "ops@example.", "ops@example.com\n", "\u00f6ps@b\u00fccher.de"]
    ),
    st.from_regex(r"[a-z0-9._+-]{1,20}@[a-z0-9-]{1,10}\.[a-z]{2,6}", fullmatch=True),
)


def _json_lists(items: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    """A JSON list of `items` (mostly), or something that is not a list of strings."""
    return st.one_of(
        st.lists(items, max_size=4).map(json.dumps),
        st.lists(items, max_size=4).map(json.dumps),
        st.sampled_from(['"ops@example.com"', "[1]", "[null]", "{}", "[[]]", "not json", "[,]", '["a",]', "[1e999]"]),
    )


def _integers(*boundaries: int) -> st.SearchStrategy[str]:
    """Whole numbers around `boundaries`, and spellings of numbers a reader may or may not take."""
    return st.one_of(
        st.sampled_from([str(b + delta) for b in boundaries for delta in (-1, 0, 1)]),
        st.integers(-5, 100).map(str),
        st.integers(-(10**5), 10**5).map(str),
        st.sampled_from(["1.0", "1e2", " 12 ", "+12", "\u0661\u0662", "\u00b2", "1_2", "12h", "twelve", "-0", "   "]),
    )


_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.floats(-20, 500).map(repr),
    st.sampled_from(["0", "-0", "0.0001", "10", "10.0000001", "1e-320", "nan", "NaN", "1,5", "25 USD", "$25", "2"]),
    st.sampled_from(["inf", "-inf", "Infinity", "1e309", "\u0662\u0665"]),
)
_key_names = st.one_of(
    st.sampled_from(
        ["chat-backend", "batch-embeddings", "support-assistant", RESERVED_KEY_NAME, "Chat", "chat_backend"]
    ),
    st.sampled_from(["1chat", "-", "a" * 64, "a" * 65, "", "chat backend", "ch\u00e4t", "chat\n"]),
    st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True),
    _secrets,
    st.sampled_from([None, 1, 1.5, True, [], {}, ["chat-backend"]]),
)
_schedules = st.one_of(
    st.builds(
        lambda n, unit: f"rate({n} {unit})",
        st.one_of(st.integers(-2, 30), st.integers(0, 1100), st.sampled_from([4, 23, 24, 999, 1000, 10**30])),
        st.sampled_from(["hour", "hours", "day", "days", "Days", "minutes", "weeks", "days "]),
    ),
    st.builds(
        lambda hours, dow: f"cron(0 {hours} ? * {dow} *)",
        st.sampled_from(
            ["0", "2", "21", "22", "23", "*/6", "*/2", "0,12", "0-23/4", "24", "x", "*/0", "5-3", "\u00b2"]
        ),
        st.sampled_from(["MON", "MON-FRI", "*", "SUN,WED", "2#1", "6L", "L", "MON#6", "8", "FRI-MON", "MON#\u00b2"]),
    ),
    st.builds(
        lambda hours, dom, month: f"cron(0 {hours} {dom} {month} ? *)",
        st.sampled_from(["0", "3", "22", "*/8", "0/\u00b2", "\u0662"]),
        st.sampled_from(["1", "L", "15W", "1,15", "*", "32", "0", "*/7", "29", "31", "1" * 5000]),
        st.sampled_from(["*", "JAN", "JAN-JUN", "2/3", "13", "FEB", "*/12"]),
    ),
    st.sampled_from(
        ["", "rate(7 days", "rate( 7 days)", "rate(7days)", "cron(5 0 * * ? *)", "cron(0 0 * * ? 2030)", "cron()"]
    ),
    st.sampled_from(
        ["cron(0 0 * * *)", "cron(0 0 * * MON *)", "cron(0 0 ? * * *)", "cron(0 0 31 2 ? *)", "cron(0 0 29 2 ? *)"]
    ),
    st.sampled_from(
        [
            "cron(((",
            " rate(7 days) ",
            "RATE(7 DAYS)",
            "every week",
            "rate(\u0667 days)",
            "rate(" + "9" * 5000 + " days)",
        ]
    ),
)
_windows = st.one_of(
    st.integers(-2, 30).map(lambda n: f"{n}h"),
    st.sampled_from(["", "3", "3 h", "3H", "03h", "003h", "3h30m", "h", "1.5h", "180m", " 4h ", "24h", "25h"]),
    st.sampled_from(["\u0664h", "\u0661\u0662h", "\u00b2h"]),
)


@st.composite
def _keys_values(draw: st.DrawFn, stack: str) -> str:
    """The stack's `keys` JSON with entries renamed, duplicated, dropped, retyped or given odd reader roles."""
    keys: list[Any] = json.loads(_BASELINE[stack]["keys"])
    account = _STACK_ACCOUNTS[stack]
    for _ in range(draw(st.integers(1, 3))):
        operation = draw(
            st.sampled_from(["rename", "duplicate", "drop", "add", "field", "unfield", "roles", "dup-role", "entry"])
        )
        if not keys:
            keys.append({"name": draw(_key_names), "readerRoleArns": []})
            continue
        index = draw(st.integers(0, len(keys) - 1))
        entry = keys[index]
        if not isinstance(entry, dict):
            keys[index] = {"name": draw(_key_names)}
        elif operation == "rename":
            entry["name"] = draw(_key_names)
        elif operation == "duplicate":
            keys.append(copy.deepcopy(entry))
        elif operation == "drop":
            keys.pop(index)
        elif operation == "add":
            keys.append({"name": draw(_key_names), "readerRoleArns": [f"arn:aws:iam::{account}:role/new-reader"]})
        elif operation == "field":
            entry[draw(st.sampled_from(["readers", "Name", "readerRoleArn", "", MARKER]))] = draw(json_values)
        elif operation == "unfield":
            entry.pop(draw(st.sampled_from(["name", "readerRoleArns"])), None)
        elif operation == "roles":
            entry["readerRoleArns"] = draw(
                st.one_of(st.lists(st.one_of(_role_arns, _secret_bearing, json_values), max_size=3), json_values)
            )
        elif operation == "dup-role":
            roles = entry.get("readerRoleArns")
            if isinstance(roles, list) and roles:
                roles.append(roles[0])
        else:
            keys[index] = draw(json_values)
    return draw(
        st.one_of(
            st.just(json.dumps(keys)),
            st.just(json.dumps(keys)),
            st.just(json.dumps(keys)),
            st.sampled_from(["[]", "{}", '"chat-backend"', "chat-backend", "[", "null", "[{}]", "[" * 100_000]),
        )
    )


def _near_misses(stack: str) -> dict[str, st.SearchStrategy[str]]:
    """For every setting, values close to what a stack would really hold: some fine, most subtly wrong."""
    account = _STACK_ACCOUNTS[stack]
    return {
        "environment": st.one_of(
            st.sampled_from(
                ["dev", "prod", "qa-2", "Dev", "dev_1", "1dev", "-dev", "d", "a" * 32, "a" * 33, "d\u00e9v"]
            ),
            st.from_regex(r"[a-z][a-z0-9-]{0,40}", fullmatch=True),
        ),
        "openaiProjectId": st.one_of(
            st.sampled_from(
                ["proj_abc", "proj abc", "p" * 128, "p" * 129, "sk-proj-abcdef", "proj/abc", "proj_\u00e9"]
            ),
            st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True),
        ),
        "keys": _keys_values(stack),
        "rotationSchedule": _schedules,
        "rotationWindow": _windows,
        "gracePeriodHours": _integers(0, 6, 24, 72, 167, 168, 720),
        "maxGracePeriodHours": _integers(0, 24, 72, 167, 168, 720),
        "keyExpiryHours": _integers(0, 216, 816, 8760),
        "quietWindowMinutes": _integers(0, 60, 10080),
        "inUsePolicy": st.sampled_from(
            ["keep", "revoke", "KEEP", "delete", "keep ", "revoke\n", "kept", "keep,revoke"]
        ),
        "oncallEmails": _json_lists(st.one_of(_emails, _emails, st.integers(), st.none())),
        "oncallHttpsEndpoints": _json_lists(_urls),
        "oncallTopicArn": st.one_of(_topic_arns, st.just(f"arn:aws:sns:{_REGION}:{account}:platform-oncall")),
        "dailySpendLimitUsd": _numbers,
        "monitorIntervalMinutes": _integers(1, 10, 15, 480),
        "settleDelayMinutes": _integers(0, 10, 1440),
        "usageKinds": _json_lists(
            st.sampled_from([*DEFAULT_USAGE_KINDS, "videos", "Completions", "", " images ", "completions,images"])
        ),
        "logRetentionDays": st.one_of(st.sampled_from([str(d) for d in LOG_RETENTION_DAYS]), _integers(0, 10, 3653)),
        "existingAdminKeySecretArn": _secret_arns,
        "administratorArns": _json_lists(_principal_arns),
        "openaiBaseUrl": _urls,
        "anomalyBandWidth": _numbers,
        "dashboard": st.sampled_from(["true", "false", "True", "FALSE", "1", "0", "yes", "no", "on", "t", "2"]),
        "runbookUrl": _urls,
        "sharedProjectEnvironments": _json_lists(
            st.sampled_from(["prod", "dev", "staging", "qa-2", "Prod", "a" * 33, "", "dev,prod", stack])
        ),
        "production": st.sampled_from(["true", "false", "True", "FALSE", "1", "0", "yes", "no", "on", "t", "2"]),
        "existingKmsKeyArn": st.builds(
            lambda part, service, region, account, key: f"arn:{part}:{service}:{region}:{account}:{key}",
            _partitions,
            st.sampled_from(["kms", "kms", "secretsmanager"]),
            _regions,
            st.sampled_from([account, account, *_STACK_ACCOUNTS.values()]),
            st.sampled_from(["key/1234abcd-12ab-34cd-56ef-1234567890ab", "alias/keyrot", "key/", "key/a b"]),
        ),
        "vpcSubnetIds": _json_lists(
            st.sampled_from(["subnet-0123456789abcdef0", "subnet-12345678", "subnet-XYZ", "sg-0123456789abcdef0", ""])
        ),
        "vpcSecurityGroupIds": _json_lists(
            st.sampled_from(["sg-0123456789abcdef0", "sg-12345678", "sg-", "subnet-0123456789abcdef0", " "])
        ),
        "deployerArns": _json_lists(_principal_arns),
    }


_NEAR = {stack: _near_misses(stack) for stack in _STACK_ACCOUNTS}


@dataclasses.dataclass(frozen=True)
class ConfigCase:
    """A stack name, the raw `keyrot:*` values, and the settings a mutation touched (unknown names included)."""

    stack: str
    raw: dict[str, str]
    touched: frozenset[str]


@st.composite
def config_cases(draw: st.DrawFn) -> ConfigCase:
    base = draw(st.sampled_from(sorted(_BASELINE)))
    stack = base if draw(st.integers(0, 9)) else draw(st.sampled_from(["staging", "Dev_Stack", "a" * 40, "1st", "q"]))
    raw = dict(_BASELINE[base])
    touched: set[str] = set() if stack == base else {"environment"}
    for _ in range(draw(st.integers(0, 4))):
        operation = draw(st.sampled_from(["drop", "near", "near", "near", "hostile", "secret", "unknown", "timing"]))
        setting = draw(st.sampled_from(SETTING_KEYS))
        if operation == "drop":
            raw.pop(setting, None)
        elif operation == "near":
            raw[setting] = draw(_NEAR[base][setting])
        elif operation == "hostile":
            raw[setting] = draw(_hostile)
        elif operation == "secret":
            raw[setting] = draw(_secret_bearing)
        elif operation == "unknown":
            setting = draw(
                st.one_of(
                    st.sampled_from(
                        ["rotationschedule", "GracePeriodHours", "keys2", "rotation_schedule", "Dashboard"]
                    ),
                    st.sampled_from(["aws:region", "keyrot:keys", "", "x" * 5000, "keys[0]", "a\nb"]),
                    unicode_text,
                    _secrets,
                ).filter(lambda name: name not in SETTING_KEYS)
            )
            raw[setting] = draw(_hostile)
        else:
            for name in sorted(_TIMING):
                if draw(st.booleans()):
                    raw[name] = draw(_NEAR[base][name])
                    touched.add(name)
            continue
        touched.add(setting)
    return ConfigCase(stack, raw, frozenset(touched))


# --- the stack configuration ---------------------------------------------------------------------------------------


def _suspects(touched: frozenset[str]) -> frozenset[str]:
    """The settings a problem may blame: those changed, and those whose rules read a changed one."""
    suspects = set(touched)
    for group in (_TIMING, _ONCALL, _VPC):
        if suspects & group:
            suspects |= group
    return frozenset(suspects)


def _names_one_of(problem: str, names: frozenset[str] | set[str]) -> bool:
    # A key-shaped unknown setting is named in its redacted form.
    return any(problem.startswith((f"{NAMESPACE}:{scrub(n)}:", f"{NAMESPACE}:{scrub(n)}[")) for n in names)


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
    _assert_no_key_material(*_error_texts(error))


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
    assert config.dashboard is (raw.get("dashboard", "true") in ("true", "True", "TRUE", "1", "yes"))
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
    account = _STACK_ACCOUNTS.get(stack, _OTHER_ACCOUNT)
    foreign = [role.arn for key in config.keys for role in key.reader_roles if role.arn.split(":")[4] != account]
    foreign += [arn for arn in (*config.administrator_arns, *config.deployer_arns) if arn.split(":")[4] != account]
    for arn in (config.existing_admin_key_secret_arn, config.oncall_topic_arn, config.existing_kms_key_arn):
        if arn is not None and arn.split(":")[3:5] != [_REGION, account]:
            foreign.append(arn)
    try:
        check_account(config, account, _REGION)
    except ConfigError as exc:
        assert foreign, f"refused a stack whose ARNs are all in {account}/{_REGION}: {exc}"
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
        _assert_no_key_material(*_error_texts(exc))
    else:
        assert not foreign, f"accepted ARNs outside {account}/{_REGION}: {foreign}"


def _check_lambda_round_trip(config: KeyrotConfig, stack: str) -> None:
    """The environments the program gives the functions read back, through their own readers, to the same values."""
    account = _STACK_ACCOUNTS.get(stack, _OTHER_ACCOUNT)
    admin = config.existing_admin_key_secret_arn or (
        f"arn:aws:secretsmanager:{_REGION}:{account}:secret:keyrot/{config.environment}/openai-admin-key-AbCdEf"
    )
    topic = config.oncall_topic_arn or f"arn:aws:sns:{_REGION}:{account}:keyrot-{config.environment}-oncall"
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
    with _watched() as output:
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
        _tally("refused")
        _check_refusal(error, case)
        return
    _tally("accepted")
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
    stack = data.draw(st.sampled_from(sorted(_BASELINE)), label="stack")
    near = _NEAR[stack][setting]
    value = data.draw(st.one_of(near, near, near, _hostile, _secret_bearing), label="value")
    # WHEN the reader reads it THEN the whole property holds: a refusal blames that setting (or one its rule reads)
    _check_case(ConfigCase(stack, {**_BASELINE[stack], setting: value}, frozenset({setting})))


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
        "stack": draw(st.sampled_from(sorted(_BASELINE))),
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
    raw = dict(_BASELINE[case["stack"]])
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
        _tally("refused")
        assert all(_names_one_of(p, _TIMING) for p in error.problems), error.problems
        return
    _tally("accepted")
    assert config is not None
    assert config.rotation_min_interval_hours == config.rotation_max_interval_hours == interval
    assert (config.grace_period_hours, config.max_grace_period_hours) == (case["grace"], case["max_grace"])
    expiry = interval + case["max_grace"] + 24 if case["expiry"] is None else case["expiry"]
    assert config.key_expiry_hours == expiry


def test_the_committed_stacks_are_valid_and_every_setting_is_fuzzed() -> None:
    for stack, raw in _BASELINE.items():
        # GIVEN a committed stack file, read as the CLI hands it over
        # THEN it passes unchanged (else every example would fail for the same reason) and keeps every promise
        _check_case(ConfigCase(stack, raw, frozenset()))
        assert parse_config(raw, stack=stack).environment == stack
        # AND every setting the reader knows has near-miss values (a new setting must be added here)
        assert set(_NEAR[stack]) == set(SETTING_KEYS)


# --- the Lambda settings -------------------------------------------------------------------------------------------

_VARIABLES = (
    constants.ENV_ENVIRONMENT,
    constants.ENV_ADMIN_SECRET_ARN,
    constants.ENV_OPENAI_BASE_URL,
    constants.ENV_GRACE_PERIOD_SECONDS,
    constants.ENV_KEY_EXPIRY_SECONDS,
    constants.ENV_VALIDATION_ATTEMPTS,
    constants.ENV_VALIDATION_DELAY_SECONDS,
    constants.ENV_PROJECT_ID,
    constants.ENV_TOPIC_ARN,
    constants.ENV_STATE_PARAMETER,
    constants.ENV_MAX_GRACE_PERIOD_SECONDS,
    constants.ENV_QUIET_WINDOW_SECONDS,
    constants.ENV_IN_USE_POLICY,
    constants.ENV_SETTLE_DELAY_SECONDS,
    constants.ENV_USAGE_KINDS,
    constants.ENV_NOTIFY_DEDUP_SECONDS,
    constants.ENV_RUNBOOK_URL,
)
_BAD: Any = object()  # the model's "this variable is invalid"


def _function_environment(stack: str) -> dict[str, str]:
    """Both functions' variables as the program sets them for `stack` (each reader ignores the other's)."""
    config = parse_config(_BASELINE[stack], stack=stack)
    account = _STACK_ACCOUNTS[stack]
    admin = config.existing_admin_key_secret_arn or (
        f"arn:aws:secretsmanager:{_REGION}:{account}:secret:keyrot/{stack}/openai-admin-key-AbCdEf"
    )
    topic = f"arn:aws:sns:{_REGION}:{account}:keyrot-{stack}-oncall"
    variables = {
        **rotation_environment(config, admin_secret_arn=admin),
        **monitor_environment(config, admin_secret_arn=admin, topic_arn=topic),
    }
    return {name: str(value) for name, value in variables.items()}


_ENV_BASELINE = {stack: _function_environment(stack) for stack in _STACK_ACCOUNTS}
# Valid but different: a reader that fell back to the process environment would return these instead of defaults.
_POISON = {
    constants.ENV_ENVIRONMENT: "poisoned",
    constants.ENV_ADMIN_SECRET_ARN: "arn:aws:secretsmanager:eu-west-1:999999999999:secret:poisoned",
    constants.ENV_OPENAI_BASE_URL: "https://poisoned.example.com/v1",
    constants.ENV_GRACE_PERIOD_SECONDS: "7",
    constants.ENV_KEY_EXPIRY_SECONDS: "77",
    constants.ENV_VALIDATION_ATTEMPTS: "7",
    constants.ENV_VALIDATION_DELAY_SECONDS: "7.5",
    constants.ENV_PROJECT_ID: "proj_poisoned",
    constants.ENV_TOPIC_ARN: "arn:aws:sns:eu-west-1:999999999999:poisoned",
    constants.ENV_STATE_PARAMETER: "/poisoned",
    constants.ENV_MAX_GRACE_PERIOD_SECONDS: "77",
    constants.ENV_QUIET_WINDOW_SECONDS: "7",
    constants.ENV_IN_USE_POLICY: "revoke",
    constants.ENV_SETTLE_DELAY_SECONDS: "7",
    constants.ENV_USAGE_KINDS: "images",
    constants.ENV_NOTIFY_DEDUP_SECONDS: "7",
    constants.ENV_RUNBOOK_URL: "https://poisoned.example.com/runbook",
}
_seconds = st.one_of(
    st.integers(-5, 100).map(str),
    st.integers(0, 40_000_000).map(str),
    st.sampled_from(["604800", "604801", "86400", "86401", "2592000", "2592001", "34560000", "34560001", "0", "-1"]),
    st.sampled_from(["1.5", "1e3", "0x10", " 60 ", "+60", "-0", "\u0661\u0662", "\u00b2", "6_0", "60s", ""]),
)
_ENV_NEAR: dict[str, st.SearchStrategy[str]] = {
    constants.ENV_ENVIRONMENT: _NEAR["dev"]["environment"],
    constants.ENV_ADMIN_SECRET_ARN: st.one_of(
        _secret_arns, st.sampled_from(["arn:", "arn:a:b:c:d", "arn:a:b:c:d:e", "ARN:x"])
    ),
    constants.ENV_OPENAI_BASE_URL: _urls,
    constants.ENV_GRACE_PERIOD_SECONDS: _seconds,
    constants.ENV_KEY_EXPIRY_SECONDS: _seconds,
    constants.ENV_VALIDATION_ATTEMPTS: st.one_of(st.integers(-2, 40).map(str), st.sampled_from(["6.0", " 6", "six"])),
    constants.ENV_VALIDATION_DELAY_SECONDS: st.one_of(
        _numbers, st.sampled_from(["60", "60.0001", "1e-9", "-0.0", "inf", "-inf", "1e309"])
    ),
    constants.ENV_PROJECT_ID: _NEAR["dev"]["openaiProjectId"],
    constants.ENV_TOPIC_ARN: st.one_of(_topic_arns, st.sampled_from(["arn:", "arn:a:b:c:d:e", " keyrot-dev-oncall "])),
    constants.ENV_STATE_PARAMETER: st.sampled_from(["/keyrot/dev/monitor-state", "keyrot/dev", "/", " /x ", "", "\\x"]),
    constants.ENV_MAX_GRACE_PERIOD_SECONDS: _seconds,
    constants.ENV_QUIET_WINDOW_SECONDS: _seconds,
    constants.ENV_IN_USE_POLICY: _NEAR["dev"]["inUsePolicy"],
    constants.ENV_SETTLE_DELAY_SECONDS: _seconds,
    constants.ENV_USAGE_KINDS: st.one_of(
        st.lists(st.sampled_from([*DEFAULT_USAGE_KINDS, "videos", "", " images ", "Images"]), max_size=7).map(",".join),
        st.sampled_from([",,,", " , ", "completions;images", '["completions"]']),
    ),
    constants.ENV_NOTIFY_DEDUP_SECONDS: _seconds,
    constants.ENV_RUNBOOK_URL: _urls,
}


@dataclasses.dataclass(frozen=True)
class EnvCase:
    stack: str
    env: dict[str, str]


@st.composite
def env_cases(draw: st.DrawFn) -> EnvCase:
    """A function environment the program would set, with variables dropped, garbled or given planted keys."""
    stack = draw(st.sampled_from(sorted(_ENV_BASELINE)))
    env = dict(_ENV_BASELINE[stack])
    for _ in range(draw(st.integers(0, 4))):
        variable = draw(st.sampled_from(_VARIABLES))
        operation = draw(st.sampled_from(["drop", "near", "near", "hostile", "secret"]))
        if operation == "drop":
            env.pop(variable, None)
        elif operation == "near":
            env[variable] = draw(_ENV_NEAR[variable])
        elif operation == "hostile":
            env[variable] = draw(_hostile)
        else:
            env[variable] = draw(_secret_bearing)
    if draw(st.booleans()):
        # Look-alikes the readers must ignore (Lambda environments are case-sensitive).
        look_alike = draw(st.sampled_from(["keyrot_environment", "KEYROT_ENVIRONMENTS", "KEYROT_", "PATH", MARKER]))
        env[look_alike] = draw(_hostile)
    return EnvCase(stack, env)


def _model_text(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()


def _model_int(env: Mapping[str, str], name: str, default: int, low: int, high: int | None = None) -> Any:
    text = _model_text(env, name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        return _BAD
    return value if low <= value and (high is None or value <= high) else _BAD


def _model_float(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> Any:
    text = _model_text(env, name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        return _BAD
    return value if low <= value <= high else _BAD


def _model_arn(env: Mapping[str, str], name: str) -> Any:
    text = _model_text(env, name)
    return text if text.startswith("arn:") and text.count(":") >= 5 else _BAD


def _model_url(env: Mapping[str, str]) -> Any:
    text = _model_text(env, constants.ENV_OPENAI_BASE_URL) or constants.DEFAULT_OPENAI_BASE_URL
    try:
        parts = urlsplit(text)
        host = parts.hostname  # may refuse a bracketed host
    except ValueError:
        return _BAD
    del host
    return text.rstrip("/") if parts.scheme in ("http", "https") and parts.netloc else _BAD


def _model_environment(env: Mapping[str, str]) -> Any:
    text = _model_text(env, constants.ENV_ENVIRONMENT)
    return text if ENVIRONMENT_PATTERN.fullmatch(text) else _BAD


def _rotation_model(env: Mapping[str, str]) -> tuple[dict[str, Any], set[str]]:
    """What `RotationSettings.from_env` must return for `env`, and the variables it may blame (none: valid)."""
    fields = {
        "environment": (constants.ENV_ENVIRONMENT, _model_environment(env)),
        "admin_secret_arn": (constants.ENV_ADMIN_SECRET_ARN, _model_arn(env, constants.ENV_ADMIN_SECRET_ARN)),
        "openai_base_url": (constants.ENV_OPENAI_BASE_URL, _model_url(env)),
        "grace_period_seconds": (
            constants.ENV_GRACE_PERIOD_SECONDS,
            _model_int(env, constants.ENV_GRACE_PERIOD_SECONDS, 86400, 0),
        ),
        "key_expiry_seconds": (
            constants.ENV_KEY_EXPIRY_SECONDS,
            _model_int(env, constants.ENV_KEY_EXPIRY_SECONDS, 0, 0, 400 * 86400),
        ),
        "validation_attempts": (
            constants.ENV_VALIDATION_ATTEMPTS,
            _model_int(env, constants.ENV_VALIDATION_ATTEMPTS, 6, 1, 30),
        ),
        "validation_delay_seconds": (
            constants.ENV_VALIDATION_DELAY_SECONDS,
            _model_float(env, constants.ENV_VALIDATION_DELAY_SECONDS, 2.0, 0, 60),
        ),
    }
    return {k: v for k, (_, v) in fields.items()}, {name for name, v in fields.values() if v is _BAD}


def _monitor_model(env: Mapping[str, str]) -> tuple[dict[str, Any], set[str]]:
    """What `MonitorSettings.from_env` must return for `env`, and the variables it may blame (none: valid)."""
    common, blamed = _rotation_model(env)
    del common["key_expiry_seconds"]
    blamed.discard(constants.ENV_KEY_EXPIRY_SECONDS)
    project = _model_text(env, constants.ENV_PROJECT_ID)
    state = _model_text(env, constants.ENV_STATE_PARAMETER)
    kinds = (
        tuple(k.strip() for k in env.get(constants.ENV_USAGE_KINDS, "").split(",") if k.strip()) or DEFAULT_USAGE_KINDS
    )
    fields = {
        "project_id": (constants.ENV_PROJECT_ID, project if OPENAI_ID_PATTERN.fullmatch(project) else _BAD),
        "topic_arn": (constants.ENV_TOPIC_ARN, _model_arn(env, constants.ENV_TOPIC_ARN)),
        "state_parameter": (constants.ENV_STATE_PARAMETER, state if state.startswith("/") else _BAD),
        "max_grace_period_seconds": (
            constants.ENV_MAX_GRACE_PERIOD_SECONDS,
            _model_int(env, constants.ENV_MAX_GRACE_PERIOD_SECONDS, 72 * 3600, 0),
        ),
        "quiet_window_seconds": (
            constants.ENV_QUIET_WINDOW_SECONDS,
            _model_int(env, constants.ENV_QUIET_WINDOW_SECONDS, 3600, 0, 604800),
        ),
        "in_use_policy": (constants.ENV_IN_USE_POLICY, _model_text(env, constants.ENV_IN_USE_POLICY) or "keep"),
        "settle_delay_seconds": (
            constants.ENV_SETTLE_DELAY_SECONDS,
            _model_int(env, constants.ENV_SETTLE_DELAY_SECONDS, 600, 0, 86400),
        ),
        "usage_kinds": (constants.ENV_USAGE_KINDS, kinds),
        "notify_dedup_seconds": (
            constants.ENV_NOTIFY_DEDUP_SECONDS,
            _model_int(env, constants.ENV_NOTIFY_DEDUP_SECONDS, 86400, 0, 30 * 86400),
        ),
        "runbook_url": (constants.ENV_RUNBOOK_URL, _model_text(env, constants.ENV_RUNBOOK_URL) or DEFAULT_RUNBOOK_URL),
    }
    expected = {**common, **{k: v for k, (_, v) in fields.items()}}
    blamed |= {name for name, v in fields.values() if v is _BAD}
    if blamed:
        return expected, blamed
    # Only a settings object whose every variable parsed is checked as a whole.
    if expected["max_grace_period_seconds"] < expected["grace_period_seconds"]:
        return expected, {constants.ENV_MAX_GRACE_PERIOD_SECONDS, constants.ENV_GRACE_PERIOD_SECONDS}
    if expected["in_use_policy"] not in IN_USE_POLICIES:
        return expected, {constants.ENV_IN_USE_POLICY}
    if not set(kinds) <= set(DEFAULT_USAGE_KINDS):
        return expected, {constants.ENV_USAGE_KINDS}
    return expected, set()


def _names_variable(message: str, variables: set[str]) -> bool:
    # Whole names only: KEYROT_GRACE_PERIOD_SECONDS must not be found inside KEYROT_MAX_GRACE_PERIOD_SECONDS.
    return any(re.search(rf"(?<![A-Z_]){re.escape(v)}(?![A-Z_])", message) for v in variables)


_READERS: tuple[tuple[str, Callable[[Mapping[str, str]], Any], Callable[..., Any]], ...] = (
    ("rotation", RotationSettings.from_env, _rotation_model),
    ("monitor", MonitorSettings.from_env, _monitor_model),
)


def _check_env_case(case: EnvCase) -> None:
    """The whole property for one environment, for both readers."""
    before = dict(case.env)
    for which, reader, model in _READERS:
        expected, blamed = model(case.env)
        error: ConfigurationError | None = None
        result: Any = None
        with mock.patch.dict(os.environ, _POISON), _watched() as output:
            environ = dict(os.environ)
            try:
                result = reader(MappingProxyType(case.env))
            except ConfigurationError as exc:
                error = exc
            assert dict(os.environ) == environ, f"{which} changed the process environment"
        assert case.env == before
        assert not "".join(output), f"{which} printed or logged: {''.join(output)[:200]!r}"
        if error is not None:
            _tally(f"{which}: refused")
            assert blamed, f"{which} refused a valid environment: {error}"
            assert _names_variable(str(error), blamed), f"{which}: {str(error)[:200]!r} names none of {blamed}"
            _assert_no_key_material(*_error_texts(error))
        else:
            _tally(f"{which}: accepted")
            assert not blamed, f"{which} accepted an environment with {sorted(blamed)} wrong"
            assert dataclasses.asdict(result) == expected


@settings(FUZZ, max_examples=300)
@given(case=env_cases())
def test_lambda_settings_are_read_exactly_or_refused_naming_a_variable(case: EnvCase) -> None:
    # GIVEN a function environment near the one the program sets, and a process environment holding different
    # valid values the readers must not fall back to
    # WHEN each function's settings reader reads it
    # THEN it changes nothing and prints nothing, and either refuses naming one of the variables that are wrong
    # (quoting no planted key) or returns exactly the values the environment holds, defaults for the rest
    _check_env_case(case)


@pytest.mark.parametrize("variable", _VARIABLES)
@settings(FUZZ, max_examples=25)
@given(data=st.data())
def test_each_variable_alone_is_read_exactly_or_refused_by_its_name(variable: str, data: st.DataObject) -> None:
    # GIVEN a function environment with only `variable` changed (or removed)
    stack = data.draw(st.sampled_from(sorted(_ENV_BASELINE)), label="stack")
    near = _ENV_NEAR[variable]
    value = data.draw(st.one_of(st.none(), near, near, near, _hostile, _secret_bearing), label="value")
    env = {k: v for k, v in _ENV_BASELINE[stack].items() if k != variable}
    if value is not None:
        env[variable] = value
    # WHEN both readers read it THEN the whole property holds
    _check_env_case(EnvCase(stack, env))


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
    _check_case(ConfigCase("dev", {**_BASELINE["dev"], setting: value}, frozenset({setting})))


@pytest.mark.parametrize("value", ["https://[::1", "https://api\uff03openai.com/v1"])
def test_base_urls_that_broke_the_settings_readers_are_now_refused_by_name(value: str) -> None:
    # GIVEN a function environment whose OPENAI_BASE_URL urlsplit refuses (both readers raised its ValueError)
    # WHEN it is read THEN both readers refuse it with ConfigurationError naming the variable
    _check_env_case(EnvCase("dev", {**_ENV_BASELINE["dev"], constants.ENV_OPENAI_BASE_URL: value}))
    for reader in (RotationSettings.from_env, MonitorSettings.from_env):
        with pytest.raises(ConfigurationError, match=constants.ENV_OPENAI_BASE_URL):
            reader({**_ENV_BASELINE["dev"], constants.ENV_OPENAI_BASE_URL: value})
