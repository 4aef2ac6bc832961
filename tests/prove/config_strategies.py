"""What the configuration fuzz tests share: the committed stacks, planted keys, hostile and near-miss values.

tests/prove/test_fuzz_stack_configuration.py feeds the stack configuration reader (`keyrot.pulumi.config`), and
tests/prove/test_fuzz_lambda_settings.py the functions' settings readers (`keyrot.settings`), from these strategies.
Values are strings, as `pulumi config` and a Lambda environment hand them over (lists and objects as JSON).
"""

from __future__ import annotations

import copy
import io
import json
import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from typing import Any

from hypothesis import HealthCheck, currently_in_test_context, event, settings
from hypothesis import strategies as st

from keyrot.pulumi.config import LOG_RETENTION_DAYS, NAMESPACE, RESERVED_KEY_NAME, SETTING_KEYS
from keyrot.settings import DEFAULT_USAGE_KINDS
from lab.pulumi_program import stack_config
from tests.prove.strategies import MARKER, huge_ints, huge_text, json_values, unicode_text

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

STACK_ACCOUNTS = {"dev": "111111111111", "prod": "222222222222"}
OTHER_ACCOUNT = "333333333333"
REGION = "us-east-1"

# Key-shaped values planted in inputs. Redaction may show a key's first 8 characters; nothing after them may appear.
PLANTED = (
    MARKER,
    # Built at import, never written out whole: the repository holds no literal shaped like a real key.
    "-".join(("sk", "proj", "PLANTED" + "a7Qx2Lm9Vw4Kc8Rz1Tn6Yb3Hd5Jf0GsUe")),
    "-".join(("sk", "admin", "PLANTED" + "z9Yx8Wv7Ut6Sr5Qp4On3Ml2Kj1Ih0Gf")),
    "-".join(("sk", "PLANTED" + "b4Nm7Qw2Er5Ty8Ui1Op3As6Df9GhJk")),
)
KEY_FRAGMENTS = tuple({secret[i : i + 10] for secret in PLANTED for i in range(8, len(secret) - 9)})
# Shapes that once crashed a reader (deep or huge JSON, '²' and other Unicode digits, URLs urlsplit refuses).
CRASHERS = ("[" * 100_000, "1" * 5000, "https://[::1", "https://wiki\uff03example.com/x", '["https://["]', "   ")


def stack_values(stack: str) -> dict[str, str]:
    """The `keyrot:*` values the CLI hands the program for `stack` (as tests/infra/test_config.py builds them)."""
    prefix = f"{NAMESPACE}:"
    return {k[len(prefix) :]: v for k, v in stack_config(stack).items() if k.startswith(prefix)}


BASELINE = {stack: stack_values(stack) for stack in STACK_ACCOUNTS}


# --- observing the readers -----------------------------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def watched() -> Iterator[list[str]]:
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


def assert_no_key_material(*texts: str) -> None:
    for text in texts:
        leaked = [fragment for fragment in KEY_FRAGMENTS if fragment in text]
        assert not leaked, f"a planted key reached the output: ...{leaked[0]}..."


def tally(outcome: str) -> None:
    """Counts an outcome for --hypothesis-show-statistics (the replayed cases run outside Hypothesis)."""
    if currently_in_test_context():
        event(outcome)


def error_texts(error: BaseException) -> tuple[str, str, str]:
    """What a log line or a `pulumi preview` could show of `error`."""
    return str(error), repr(error), "".join(traceback.format_exception(error))


# --- values as `pulumi config` hands them over: strings (lists and objects as JSON) -------------------------------

planted_keys = st.sampled_from(PLANTED)
secret_bearing = st.one_of(
    planted_keys,
    planted_keys.map(lambda s: f"  {s}\t"),
    st.tuples(st.text(max_size=130), planted_keys, st.text(max_size=5)).map("".join),  # cut anywhere by a truncation
    planted_keys.map(lambda s: f"https://{s}.example.com/v1"),
    planted_keys.map(lambda s: f"https://hooks.example.com/{s}"),
    planted_keys.map(lambda s: f"arn:aws:iam::111111111111:role/{s}"),
    planted_keys.map(lambda s: f"arn:aws:sns:us-east-1:111111111111:{s}"),
    planted_keys.map(lambda s: f"{s}@example.com"),
    planted_keys.map(lambda s: f"rate({s} days)"),
    planted_keys.map(lambda s: f"cron(0 {s} * * ? *)"),
    planted_keys.map(lambda s: json.dumps([s])),
    planted_keys.map(lambda s: json.dumps([{"name": s, "readerRoleArns": [s]}])),
)
hostile = st.one_of(
    st.sampled_from(
        ["", " ", "\t\n", "null", "None", "[]", "{}", "[", '""', "true", "0", "-0", "-1", "1.5", "1e3", "1e309"]
    ),
    st.sampled_from(
        ["-1e309", "nan", "inf", "0x10", "+3", " 7 ", "1_000", "\u0663", "\u00b2", "\u216b", "\x00", "\u200b"]
    ),
    st.sampled_from(CRASHERS),
    st.integers(-(10**6), 10**6).map(str),
    huge_ints.map(str),
    unicode_text,
    huge_text,
    json_values.map(json.dumps),
    secret_bearing,
)
accounts = st.sampled_from(
    ["111111111111", "222222222222", OTHER_ACCOUNT, "11111111111", "1111111111111", "abcdefghijkl", "\u0661" * 12]
)
partitions = st.sampled_from(["aws", "aws-cn", "aws-us-gov", "AWS", "", "aws_x"])
regions = st.sampled_from([REGION, "eu-west-1", "US-EAST-1", "", "us east 1"])
iam_names = st.one_of(
    st.from_regex(r"[A-Za-z0-9+=,.@_-]{1,70}", fullmatch=True),
    st.sampled_from(["r", "r" * 64, "r" * 65, "", "*", "ro le", "r\u00e9le", "chat-backend-dev"]),
)
role_arns = st.one_of(
    st.builds(
        lambda part, account, path, name: f"arn:{part}:iam::{account}:role/{path}{name}",
        partitions,
        accounts,
        st.sampled_from(["", "service/", "a/b/", "/", "x y/", "aws-reserved/sso.amazonaws.com/"]),
        iam_names,
    ),
    accounts.map(lambda account: f"arn:aws:iam::{account}:role/chat-backend-dev"),
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
principal_arns = st.one_of(
    role_arns,
    st.builds(
        lambda part, account, kind, name: f"arn:{part}:iam::{account}:{kind}/{name}",
        partitions,
        accounts,
        st.sampled_from(["role", "user", "group", "root"]),
        st.sampled_from(["admin", "aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_*", "*", "", "a b", "x:y"]),
    ),
)
secret_arns = st.builds(
    lambda part, service, region, account, name: f"arn:{part}:{service}:{region}:{account}:secret:{name}",
    partitions,
    st.sampled_from(["secretsmanager", "secretsmanager", "ssm", "kms"]),
    regions,
    accounts,
    st.sampled_from(["openai/prod/admin-key-Xy12Ab", "a b", "", "x*", "k" * 600]),
)
topic_arns = st.builds(
    lambda part, service, region, account, name: f"arn:{part}:{service}:{region}:{account}:{name}",
    partitions,
    st.sampled_from(["sns", "sns", "sqs"]),
    regions,
    accounts,
    st.sampled_from(["platform-oncall", "a" * 256, "a" * 257, "ops.fifo", "", "ops/x"]),
)
urls = st.one_of(
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
emails = st.one_of(
    st.sampled_from(
        ["ops@example.com", "not-an-address", "a@b", "a b@c.d", "@x.y", "x@y.z", "x@@y.z", " ops@example.com "]
    ),
    st.sampled_from(
        ["ops@exa mple.com", "ops@.example.com", "ops@example.", "ops@example.com\n", "\u00f6ps@b\u00fccher.de"]
    ),
    st.from_regex(r"[a-z0-9._+-]{1,20}@[a-z0-9-]{1,10}\.[a-z]{2,6}", fullmatch=True),
)


def json_lists(items: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    """A JSON list of `items` (mostly), or something that is not a list of strings."""
    return st.one_of(
        st.lists(items, max_size=4).map(json.dumps),
        st.lists(items, max_size=4).map(json.dumps),
        st.sampled_from(['"ops@example.com"', "[1]", "[null]", "{}", "[[]]", "not json", "[,]", '["a",]', "[1e999]"]),
    )


def integers(*boundaries: int) -> st.SearchStrategy[str]:
    """Whole numbers around `boundaries`, and spellings of numbers a reader may or may not take."""
    return st.one_of(
        st.sampled_from([str(b + delta) for b in boundaries for delta in (-1, 0, 1)]),
        st.integers(-5, 100).map(str),
        st.integers(-(10**5), 10**5).map(str),
        st.sampled_from(["1.0", "1e2", " 12 ", "+12", "\u0661\u0662", "\u00b2", "1_2", "12h", "twelve", "-0", "   "]),
    )


numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.floats(-20, 500).map(repr),
    st.sampled_from(["0", "-0", "0.0001", "10", "10.0000001", "1e-320", "nan", "NaN", "1,5", "25 USD", "$25", "2"]),
    st.sampled_from(["inf", "-inf", "Infinity", "1e309", "\u0662\u0665"]),
)
key_names = st.one_of(
    st.sampled_from(
        ["chat-backend", "batch-embeddings", "support-assistant", RESERVED_KEY_NAME, "Chat", "chat_backend"]
    ),
    st.sampled_from(["1chat", "-", "a" * 64, "a" * 65, "", "chat backend", "ch\u00e4t", "chat\n"]),
    st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True),
    planted_keys,
    st.sampled_from([None, 1, 1.5, True, [], {}, ["chat-backend"]]),
)
schedules = st.one_of(
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
windows = st.one_of(
    st.integers(-2, 30).map(lambda n: f"{n}h"),
    st.sampled_from(["", "3", "3 h", "3H", "03h", "003h", "3h30m", "h", "1.5h", "180m", " 4h ", "24h", "25h"]),
    st.sampled_from(["\u0664h", "\u0661\u0662h", "\u00b2h"]),
)


# Identities both readers take: environment names, OpenAI project ids, the in-use policy.
environment_names = st.one_of(
    st.sampled_from(["dev", "prod", "qa-2", "Dev", "dev_1", "1dev", "-dev", "d", "a" * 32, "a" * 33, "d\u00e9v"]),
    st.from_regex(r"[a-z][a-z0-9-]{0,40}", fullmatch=True),
)
project_ids = st.one_of(
    st.sampled_from(["proj_abc", "proj abc", "p" * 128, "p" * 129, "sk-proj-abcdef", "proj/abc", "proj_\u00e9"]),
    st.from_regex(r"[A-Za-z0-9_-]{1,20}", fullmatch=True),
)
in_use_policies = st.sampled_from(["keep", "revoke", "KEEP", "delete", "keep ", "revoke\n", "kept", "keep,revoke"])


# --- near-misses of every stack setting ------------------------------------------------------------------------

GUARDRAILS = st.one_of(
    st.sampled_from(
        [
            "{}",
            '{"spendLimitUsd": 100}',
            '{"spendLimitUsd": -1}',
            '{"spendLimitUsd": "1e999999999"}',
            '{"rateLimits": {"gpt-4o-mini": {"maxRequestsPerMinute": 100}}}',
            '{"rateLimits": {"gpt-4o-mini": {"maxRequestsPerMinute": 0}}}',
            '{"spendAlerts": [50, 80]}',
            '{"models": ["gpt-4o-mini"]}',
            '{"enforce": "restore"}',
            '{"enforce": "sometimes"}',
            '{"unknown": 1}',
            "[]",
            "not json",
        ]
    ),
    json_values.map(json.dumps),
)
ADMIN_KEY_ROTATION = st.one_of(
    st.sampled_from(
        [
            "{}",
            '{"schedule": "rate(30 days)"}',
            '{"schedule": "rate(30 days)", "deleteBootstrapKey": true}',
            '{"schedule": "rate(400 days)"}',
            '{"schedule": "rate(1 hours)"}',
            '{"schedule": ""}',
            '{"deleteBootstrapKey": "yes"}',
            '{"schedule": 30}',
            '{"rotate": true}',
            "[]",
            "true",
        ]
    ),
    schedules.map(lambda schedule: json.dumps({"schedule": schedule})),
    json_values.map(json.dumps),
)


@st.composite
def keys_values(draw: st.DrawFn, stack: str) -> str:
    """The stack's `keys` JSON with entries renamed, duplicated, dropped, retyped or given odd reader roles."""
    keys: list[Any] = json.loads(BASELINE[stack]["keys"])
    account = STACK_ACCOUNTS[stack]
    for _ in range(draw(st.integers(1, 3))):
        operation = draw(
            st.sampled_from(["rename", "duplicate", "drop", "add", "field", "unfield", "roles", "dup-role", "entry"])
        )
        if not keys:
            keys.append({"name": draw(key_names), "readerRoleArns": []})
            continue
        index = draw(st.integers(0, len(keys) - 1))
        entry = keys[index]
        if not isinstance(entry, dict):
            keys[index] = {"name": draw(key_names)}
        elif operation == "rename":
            entry["name"] = draw(key_names)
        elif operation == "duplicate":
            keys.append(copy.deepcopy(entry))
        elif operation == "drop":
            keys.pop(index)
        elif operation == "add":
            keys.append({"name": draw(key_names), "readerRoleArns": [f"arn:aws:iam::{account}:role/new-reader"]})
        elif operation == "field":
            entry[draw(st.sampled_from(["readers", "Name", "readerRoleArn", "", MARKER]))] = draw(json_values)
        elif operation == "unfield":
            entry.pop(draw(st.sampled_from(["name", "readerRoleArns"])), None)
        elif operation == "roles":
            entry["readerRoleArns"] = draw(
                st.one_of(st.lists(st.one_of(role_arns, secret_bearing, json_values), max_size=3), json_values)
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


def near_misses(stack: str) -> dict[str, st.SearchStrategy[str]]:
    """For every setting, values close to what a stack would really hold: some fine, most subtly wrong."""
    account = STACK_ACCOUNTS[stack]
    near = {
        "environment": environment_names,
        "openaiProjectId": project_ids,
        "keys": keys_values(stack),
        "rotationSchedule": schedules,
        "rotationWindow": windows,
        "gracePeriodHours": integers(0, 6, 24, 72, 167, 168, 720),
        "maxGracePeriodHours": integers(0, 24, 72, 167, 168, 720),
        "keyExpiryHours": integers(0, 216, 816, 8760),
        "quietWindowMinutes": integers(0, 60, 10080),
        "inUsePolicy": in_use_policies,
        "oncallEmails": json_lists(st.one_of(emails, emails, st.integers(), st.none())),
        "oncallHttpsEndpoints": json_lists(urls),
        "oncallTopicArn": st.one_of(topic_arns, st.just(f"arn:aws:sns:{REGION}:{account}:platform-oncall")),
        "dailySpendLimitUsd": numbers,
        "monitorIntervalMinutes": integers(1, 10, 15, 480),
        "settleDelayMinutes": integers(0, 10, 1440),
        "usageKinds": json_lists(
            st.sampled_from([*DEFAULT_USAGE_KINDS, "videos", "Completions", "", " images ", "completions,images"])
        ),
        "logRetentionDays": st.one_of(st.sampled_from([str(d) for d in LOG_RETENTION_DAYS]), integers(0, 10, 3653)),
        "existingAdminKeySecretArn": secret_arns,
        "administratorArns": json_lists(principal_arns),
        "openaiBaseUrl": urls,
        "anomalyBandWidth": numbers,
        "anomalyAlarms": json_lists(st.sampled_from(["requests", "inputTokens", "Requests", "outputTokens", ""])),
        "dashboard": st.sampled_from(["true", "false", "True", "FALSE", "1", "0", "yes", "no", "on", "t", "2"]),
        "runbookUrl": urls,
        "sharedProjectEnvironments": json_lists(
            st.sampled_from(["prod", "dev", "staging", "qa-2", "Prod", "a" * 33, "", "dev,prod", stack])
        ),
        "production": st.sampled_from(["true", "false", "True", "FALSE", "1", "0", "yes", "no", "on", "t", "2"]),
        "existingKmsKeyArn": st.builds(
            lambda part, service, region, account, key: f"arn:{part}:{service}:{region}:{account}:{key}",
            partitions,
            st.sampled_from(["kms", "kms", "secretsmanager"]),
            regions,
            st.sampled_from([account, account, *STACK_ACCOUNTS.values()]),
            st.sampled_from(["key/1234abcd-12ab-34cd-56ef-1234567890ab", "alias/keyrot", "key/", "key/a b"]),
        ),
        "vpcSubnetIds": json_lists(
            st.sampled_from(["subnet-0123456789abcdef0", "subnet-12345678", "subnet-XYZ", "sg-0123456789abcdef0", ""])
        ),
        "vpcSecurityGroupIds": json_lists(
            st.sampled_from(["sg-0123456789abcdef0", "sg-12345678", "sg-", "subnet-0123456789abcdef0", " "])
        ),
        "deployerArns": json_lists(principal_arns),
        # Objects, validated on their own (tests/prove/test_fuzz_guardrails.py fuzzes the block itself).
        "guardrails": GUARDRAILS,
        "adminKeyRotation": ADMIN_KEY_ROTATION,
    }
    # Settings this version of the reader knows (a near-miss for one it does not know yet is not offered).
    return {setting: values for setting, values in near.items() if setting in SETTING_KEYS}


NEAR = {stack: near_misses(stack) for stack in STACK_ACCOUNTS}
