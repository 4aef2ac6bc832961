"""The troubleshooting checklist behind `keyrot doctor`: each check returns findings, each finding says what next.

Checks never raise for a failure they diagnose; they turn it into a `fail` or `warn` finding. The key is read to
probe it and dropped; findings carry ids and redacted prefixes only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from keyrot.cli.context import CliContext, KeyTarget
from keyrot.cli.errors import classify
from keyrot.cli.exit_codes import ExitCode
from keyrot.cli.follow import RotationLog
from keyrot.cli.key_state import KeyState, build_key_state, read_key_metas
from keyrot.constants import STAGE_CURRENT
from keyrot.errors import AdminKeyError, KeyrotError
from keyrot.names import STEP_FAILED
from keyrot.openai_admin import (
    NO_RETRY,
    BillingLimitError,
    InvalidKeyError,
    KeyCheck,
    KeyStatus,
    OpenAIConnectionError,
    OpenAIError,
    OpenAIKeyProbe,
    PermissionDeniedError,
    RateLimitedError,
    RateLimitHeadroom,
)
from keyrot.rotation.context import load_admin_client
from keyrot.secret_model import ManagedKey

LOW_HEADROOM = 0.1  # warn below 10% of a rate limit left
_AWS_FAILURES = (KeyrotError, ClientError, BotoCoreError)


@dataclass(frozen=True)
class Finding:
    status: str  # ok, warn, fail
    check: str
    detail: str
    hint: str = ""


def aws_identity(cli: CliContext) -> Finding:
    try:
        identity = cli.client("sts").get_caller_identity()
    except _AWS_FAILURES as exc:
        return Finding("fail", "AWS credentials", _why(exc), "configure credentials (aws sso login) or pass --profile")
    return Finding("ok", "AWS credentials", f"{identity.get('Arn')} in region {cli.region}")


def find_secret(cli: CliContext, env: str, key: str) -> tuple[Finding, KeyTarget | None]:
    try:
        target = cli.key(env, key)
    except _AWS_FAILURES as exc:
        return Finding("fail", "secret found", _why(exc), "check --env, --key, --region and --profile"), None
    return Finding("ok", "secret found", f"{target.name} ({target.arn})"), target


def read_current(cli: CliContext, target: KeyTarget) -> tuple[Finding, ManagedKey | None]:
    title = "secret readable"
    try:
        text = cli.store.get_string(target.arn, stage=STAGE_CURRENT)
        if text is None:
            return Finding(
                "fail",
                title,
                "the secret has no AWSCURRENT value: it was never rotated",
                f"run `keyrot rotate --env {target.environment} --key {target.key_name}`",
            ), None
        key = ManagedKey.from_json(text, what=f"secret {target.name}")
    except _AWS_FAILURES as exc:
        return Finding(
            "fail",
            title,
            _why(exc),
            "grant secretsmanager:GetSecretValue (and kms:Decrypt) and add this identity to the stack's "
            "administrators (the secret's resource policy denies everyone else)",
        ), None
    return Finding("ok", title, f"current key {key.key_id} (created {key.created_at:%Y-%m-%d %H:%M} UTC)"), key


def probe_key(cli: CliContext, target: KeyTarget, key: ManagedKey, now: datetime) -> tuple[Finding, KeyCheck | None]:
    title = "key valid at OpenAI"
    rotate = f"keyrot rotate --env {target.environment} --key {target.key_name}"
    try:
        check = OpenAIKeyProbe(cli.transport(NO_RETRY)).check(key.api_key)
    except BillingLimitError as exc:
        return Finding("fail", title, f"quota or billing limit: {exc}", "raise the limit in OpenAI billing"), None
    except RateLimitedError as exc:
        hint = "the key works but is throttled: check usage on the dashboard, or raise the project's rate limits"
        return Finding("warn", title, f"rate limited: {exc}", hint), None
    except OpenAIConnectionError as exc:
        hint = f"check network egress, proxy and DNS to {cli.openai_base_url}; https://status.openai.com"
        return Finding("fail", title, f"OpenAI unreachable: {exc}", hint), None
    except OpenAIError as exc:
        return Finding("warn", title, str(exc), "OpenAI failed: retry later; https://status.openai.com"), None
    if check.status is KeyStatus.DEAD:
        expired = key.expires_at is not None and key.expires_at <= now
        cause = "it passed its expiry backstop" if expired else "revoked, deleted or expired at OpenAI"
        return Finding("fail", title, f"DEAD: OpenAI rejects {key.key_id} ({cause})", f"rotate now: {rotate}"), check
    if check.status is KeyStatus.RESTRICTED:
        hint = "the key authenticates but is refused: check its permissions, the project's IP allow-list and region"
        return Finding("warn", title, f"RESTRICTED: {check.detail}", hint), check
    return Finding("ok", title, f"VALID: {key.key_id} authenticates"), check


def rate_headroom(limits: RateLimitHeadroom | None, *, source: str = "GET /v1/models") -> Finding:
    title = "rate-limit headroom"
    if limits is None:
        hint = (
            "OpenAI documents these headers on model responses: `--inference-probe` reads them from a one-token "
            "chat completion"
            if source == "GET /v1/models"
            else "nothing to do unless requests fail"
        )
        return Finding("warn", title, f"OpenAI sent no x-ratelimit-* headers on {source}", hint)
    parts, low = [], []
    for what, remaining, limit in (
        ("requests", limits.remaining_requests, limits.limit_requests),
        ("tokens", limits.remaining_tokens, limits.limit_tokens),
    ):
        if remaining is None or not limit:
            continue
        parts.append(f"{remaining}/{limit} {what} left")
        if remaining < limit * LOW_HEADROOM:
            low.append(what)
    detail = ", ".join(parts) or "no limits reported"
    if low:
        return Finding("warn", title, detail, f"close to the {' and '.join(low)} limit: slow down or raise limits")
    return Finding("ok", title, detail)


def inference_headroom(cli: CliContext, key: ManagedKey, model: str) -> Finding:
    """Rate-limit headroom from a one-token chat completion made with the key."""
    try:
        limits = OpenAIKeyProbe(cli.transport(NO_RETRY)).rate_limits_from_completion(key.api_key, model)
    except RateLimitedError as exc:
        return Finding("warn", "rate-limit headroom", f"rate limited now: {exc}", "slow down or raise the limits")
    except OpenAIError as exc:
        hint = f"pick a model the project may use with --probe-model (tried {model})"
        return Finding("warn", "rate-limit headroom", f"the one-token completion failed: {exc}", hint)
    return rate_headroom(limits, source=f"a one-token {model} completion")


def rotation_health(cli: CliContext, target: KeyTarget, now: datetime, stuck_after: timedelta) -> list[Finding]:
    try:
        state = build_key_state(cli.secrets, target.description, read_key_metas(cli.secrets, target.description))
    except _AWS_FAILURES as exc:
        return [Finding("warn", "rotation state", _why(exc), "needs secretsmanager:ListSecretVersionIds")]
    rotate = f"keyrot rotate --env {target.environment} --key {target.key_name}"
    findings = [
        Finding("ok", "rotation enabled", f"every {state.rotation_days or '?'} day(s)")
        if state.rotation_enabled
        else Finding("fail", "rotation enabled", "rotation is disabled", "restore the schedule: pulumi up")
    ]
    findings.append(_pending(cli, target, state, now, stuck_after, rotate))
    findings.append(_schedule(state, now, rotate))
    findings.append(_previous(state, target))
    return findings


def admin_key(cli: CliContext, environment: str) -> Finding:
    title = "admin key"
    fix = f"put a valid admin key: keyrot admin-key set --env {environment}"
    try:
        settings = cli.rotation_settings(environment)
        admin = load_admin_client(cli.store, settings, cli.transport(NO_RETRY))
    except AdminKeyError as exc:
        return Finding("fail", title, str(exc), fix)
    except _AWS_FAILURES as exc:
        found = classify(exc)
        if found and found[0] == ExitCode.ACCESS_DENIED:
            hint = "fine for read-only operators; revoking, --emergency, --discard-pending and audit need it"
            return Finding("warn", title, f"cannot check it: {found[1]}", hint)
        return Finding("fail", title, _why(exc), fix)
    try:
        admin.check_admin_key()
        admin.check_usage_access(int(time.time()))
    except InvalidKeyError as exc:
        return Finding("fail", title, f"OpenAI rejects the admin key: {exc}", fix)
    except PermissionDeniedError as exc:
        return Finding("fail", title, f"the admin key lacks a scope: {exc}", "it needs management write and usage read")
    except OpenAIError as exc:
        return Finding("fail", title, f"cannot check it: {exc}", "check OpenAI reachability, then retry")
    return Finding("ok", title, f"present and valid in {settings.admin_secret_arn.split(':')[-1]}")


def _pending(
    cli: CliContext, target: KeyTarget, state: KeyState, now: datetime, stuck_after: timedelta, rotate: str
) -> Finding:
    pending = state.pending
    if pending is None:
        return Finding("ok", "pending rotation", "none")
    age = pending.age(now)
    shown = f"{int(age.total_seconds() // 60)} min" if age is not None else "unknown age"
    failure = _last_logged_failure(cli, target, now)
    detail = f"version {pending.version_id}, {shown} old" + (f"; last failure {failure}" if failure else "")
    if pending.stuck(now, stuck_after):
        hint = f"fix the cause (see the failure), then `{rotate}` to resume, or `{rotate} --discard-pending`"
        return Finding("fail", "pending rotation", f"STUCK: {detail}", hint)
    return Finding("warn", "pending rotation", f"in progress: {detail}", f"follow it with `{rotate}`")


def _schedule(state: KeyState, now: datetime, rotate: str) -> Finding:
    age, interval = state.key_age(now), state.interval
    if age is None:
        return Finding("fail", "rotation schedule", "no current key", rotate)
    detail = f"key is {age.days}d {age.seconds // 3600}h old"
    if interval is not None:
        detail += f", interval {interval.days}d"
        if age > interval + timedelta(days=1):
            return Finding("fail", "rotation schedule", f"overdue: {detail}", f"see the pending rotation; {rotate}")
    return Finding("ok", "rotation schedule", detail)


def _previous(state: KeyState, target: KeyTarget) -> Finding:
    if state.previous_version is None:
        return Finding("ok", "previous key", "none")
    key_id = state.previous.key_id if state.previous else "?"
    if state.previous_revoked:
        return Finding("ok", "previous key", f"{key_id} revoked")
    hint = (
        "the janitor revokes it after the grace period; to revoke now: "
        f"keyrot revoke-previous --env {target.environment} --key {target.key_name}"
    )
    return Finding("warn", "previous key", f"{key_id} not revoked yet", hint)


def _last_logged_failure(cli: CliContext, target: KeyTarget, now: datetime) -> str | None:
    start_ms = int((now - timedelta(days=1)).timestamp() * 1000)
    try:
        log = RotationLog.open(cli.client("logs"), target.environment, frozenset({target.arn, target.name}), start_ms)
        lines = list(log.new_lines()) if log else []
    except _AWS_FAILURES:
        return None  # the log is a bonus; the labels already tell the story
    failures = [line for line in lines if line.get("message") == STEP_FAILED]
    if not failures:
        return None
    last = failures[-1]
    return f"{last.get('step')}: {last.get('error_class')}: {last.get('error')}"


def _why(exc: Any) -> str:
    found = classify(exc)
    return found[1] if found else f"{type(exc).__name__}: {exc}"
