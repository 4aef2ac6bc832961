"""`keyrot status`: every key's current key, age, rotations, pending or stuck rotation, previous key and alarms; and
the environment's admin key: its id, age and next rotation.

Each key's state is the inventory's (keyrot.cli.inventory): a previous key is shown as revoked only once OpenAI no
longer lists it; labelled revoked while OpenAI still lists it, it is shown as live (the janitor revokes it again).
Without the admin key (or OpenAI) the keys are still shown, the revocations as unconfirmed, with the reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import typer
from rich.text import Text

from keyrot.admin_rotation import AdminKeyState, read_admin_key_state
from keyrot.cli import inventory, output
from keyrot.cli.alarms import Alarm, EnvironmentAlarms, load_alarms, summarise
from keyrot.cli.context import CliContext, check_environment
from keyrot.cli.errors import NotFoundError, classify
from keyrot.cli.guardrails_view import spend_summary
from keyrot.cli.key_state import KeyState, build_key_state
from keyrot.cli.options import Json, StuckAfter, cli_of
from keyrot.constants import TAG_ENVIRONMENT
from keyrot.errors import AwsCallError


def status(
    ctx: typer.Context,
    env: Annotated[str | None, typer.Option("--env", "-e", help="Only this environment (default: all).")] = None,
    json_output: Json = False,
    stuck_after: StuckAfter = 30,
) -> None:
    """Every key: current key id, age, last/next rotation, pending or failed rotation, previous key, alarms."""
    cli = cli_of(ctx)
    environments = [check_environment(env)] if env else cli.environments()
    if not environments:
        raise NotFoundError(f"no keyrot secrets tagged {TAG_ENVIRONMENT} in region {cli.region}")
    now = cli.now()
    threshold = timedelta(minutes=stuck_after)
    reports = [_environment_report(cli, name, now, threshold) for name in environments]
    if json_output:
        output.emit_json(
            "status", {"region": cli.region, "generated_at": now, "environments": [r["json"] for r in reports]}
        )
        return
    for report in reports:
        _print_environment(report, now, threshold)


def _environment_report(cli: CliContext, environment: str, now: datetime, threshold: timedelta) -> dict[str, Any]:
    found = inventory.load_best_effort(cli, environment, grace_period_seconds=inventory.DEFAULT_GRACE_PERIOD_SECONDS)
    states = [
        build_key_state(cli.secrets, cli.store.describe(secret.arn), inventory=secret)
        for secret in found.readable_secrets
    ]
    alarms, alarms_error = _alarms(cli, environment, [state.key_name for state in states])
    keys = [_key_json(state, alarms.of_key(state.key_name), now, threshold) for state in states]
    document: dict[str, Any] = {
        "environment": environment,
        "keys": keys,
        "problems": [{"secret": name, "problem": problem} for name, problem in found.inventory.problems],
        "openai": {"checked": found.openai_read, "error": found.openai_error},
        "alarms": {
            "available": alarms_error is None,
            "error": alarms_error,
            "environment_wide": [alarm.as_json() for alarm in alarms.environment_wide],
            "firing": [alarm.name for alarm in alarms.firing],
        },
    }
    # OpenAI's hard spend limit and alerts beside the monitor's spend alarm (keyrot.cli.guardrails_view)
    document["openai_spend"], spend_text = spend_summary(cli, environment, list(found.projects))
    admin = _admin_key(cli, environment)
    document["admin_key"] = admin.as_json(now) if admin is not None else None
    report = {
        "json": document,
        "states": states,
        "alarms": alarms,
        "alarms_error": alarms_error,
        "spend": spend_text,
        "openai_error": found.openai_error,
    }
    return {**report, "admin": admin}


def _admin_key(cli: CliContext, environment: str) -> AdminKeyState | None:
    """The admin key's state; None when the environment has no admin-key secret (a value that cannot be read is
    reported in the state, and the keys are still shown)."""
    try:
        arn = cli.admin_secret_arn(environment)
    except NotFoundError:
        return None
    return read_admin_key_state(cli.secrets, cli.store.describe(arn))


def _alarms(cli: CliContext, environment: str, key_names: list[str]) -> tuple[EnvironmentAlarms, str | None]:
    """Alarms are a bonus: without cloudwatch:DescribeAlarms the rest of the status is still worth showing."""
    try:
        return load_alarms(cli.client("cloudwatch"), environment, key_names), None
    except AwsCallError as exc:
        found = classify(exc)
        return EnvironmentAlarms(), found[1] if found else str(exc)


def health(state: KeyState, alarms: list[Alarm], now: datetime, threshold: timedelta) -> str:
    if state.current is None or not state.rotation_enabled:
        return "fail"
    if state.pending is not None and state.pending.stuck(now, threshold):
        return "fail"
    if any(alarm.state == "ALARM" for alarm in alarms):
        return "fail"
    age, interval = state.key_age(now), state.interval
    if state.pending is not None or (age is not None and interval is not None and age > interval + timedelta(days=1)):
        return "warn"
    if state.displaced or state.previous_labelled_revoked_but_live:
        return "warn"  # a key nobody should hold still authenticates (the janitor revokes it)
    return "ok"


def _key_json(state: KeyState, alarms: list[Alarm], now: datetime, threshold: timedelta) -> dict[str, Any]:
    current = state.current
    pending = state.pending
    age = state.key_age(now)
    pending_age = pending.age(now) if pending else None
    return {
        "key_name": state.key_name,
        "secret_name": state.secret_name,
        "secret_arn": state.arn,
        "health": health(state, alarms, now, threshold),
        "rotation_enabled": state.rotation_enabled,
        "rotation_interval_days": state.rotation_days,
        "last_rotated": state.last_rotated,
        "next_rotation": state.next_rotation,
        "next_rotation_estimated": state.next_rotation_estimated,
        "current": None
        if current is None
        else {
            "key_id": current.key_id,
            "version_id": state.current_version,
            "created_at": current.created_at,
            "age_seconds": int(age.total_seconds()) if age is not None else None,
            "expires_at": current.expires_at,
        },
        "pending": None
        if pending is None
        else {
            "version_id": pending.version_id,
            "since": pending.since,
            "age_seconds": int(pending_age.total_seconds()) if pending_age is not None else None,
            "value_stored": pending.key is not None,
            "key_id": pending.key.key_id if pending.key else None,
            "state": "stuck" if pending.stuck(now, threshold) else "in-progress",
        },
        "previous": None
        if state.previous_version is None
        else {
            "key_id": state.previous.key_id if state.previous else None,
            "version_id": state.previous_version,
            "revoked": state.previous_revoked and state.previous_confirmed,
            "state": state.previous_state,
            "checked_at_openai": state.previous_confirmed,
        },
        "displaced_keys": list(state.displaced),
        "alarms": [alarm.as_json() for alarm in alarms],
    }


def _print_environment(report: dict[str, Any], now: datetime, threshold: timedelta) -> None:
    document = report["json"]
    environment = document["environment"]
    rows = []
    for state, key in zip(report["states"], document["keys"], strict=True):
        rows.append(
            (
                output.styled(state.key_name, key["health"]),
                state.current.key_id if state.current else output.styled("no value yet: keyrot rotate", "fail"),
                output.duration(state.key_age(now).total_seconds()) if state.current else None,
                output.when(state.last_rotated),
                _next_rotation(state),
                _rotation(state, now, threshold),
                _previous(state),
                summarise(Alarm(a["name"], a["state"]) for a in key["alarms"]),
            )
        )
    columns = ("Key", "Current key", "Age", "Last rotated", "Next rotation", "Rotation", "Previous key", "Alarms")
    output.table(f"keyrot {environment}", columns, rows)
    if report["alarms_error"]:
        output.line(f"Alarms unavailable: {report['alarms_error']}", style="yellow")
    else:
        output.line(f"Environment alarms: {summarise(report['alarms'].environment_wide)}")
    output.line(report["spend"])
    if report["openai_error"]:
        output.line(f"Revocations not checked at OpenAI: {report['openai_error']}", style="yellow")
    for state in report["states"]:
        if state.displaced:
            output.line(
                f"Displaced keys of {state.key_name} still live at OpenAI: {', '.join(state.displaced)} "
                "(no label accounts for them; the janitor revokes them)",
                style="red",
            )
    for problem in document["problems"]:
        output.line(f"Malformed secret {problem['secret']}: {problem['problem']}", style="red")
    if report["admin"] is not None:
        _print_admin_key(report["admin"], now)


def _print_admin_key(admin: AdminKeyState, now: datetime) -> None:
    """The admin key in one line (id, age, next rotation), then a pending rotation or a previous key not deleted."""
    age = admin.age(now)
    shown_age = output.duration(age.total_seconds()) if age is not None else "unknown"
    since = " since stored" if admin.created_from == "stored" else ""
    if admin.rotation_enabled:
        next_rotation = ("~" if admin.next_rotation_estimated else "") + output.when(admin.next_rotation)
    else:
        next_rotation = "none (admin key rotation is off)"
    interval = timedelta(days=admin.rotation_days) if admin.rotation_days else None
    overdue = age is not None and interval is not None and age > interval + timedelta(days=1)
    output.line(
        f"Admin key: {admin.key_id or '(id not recorded)'}, age {shown_age}{since}, next rotation {next_rotation}",
        style="yellow" if overdue else None,
    )
    if admin.pending_version is not None:
        output.line(f"  admin key rotation pending: version {admin.pending_version}", style="yellow")
    if admin.previous_key_id is not None and not admin.previous_deleted:
        output.line(f"  previous admin key {admin.previous_key_id}: not deleted yet")
    if admin.problem:
        output.line(f"  admin-key secret partly unreadable: {admin.problem}", style="yellow")


def _next_rotation(state: KeyState) -> str:
    if not state.rotation_enabled:
        return "—"
    shown = output.when(state.next_rotation)
    return f"~{shown}" if state.next_rotation_estimated else shown


def _rotation(state: KeyState, now: datetime, threshold: timedelta) -> Text:
    if not state.rotation_enabled:
        return output.styled("disabled", "fail")
    pending = state.pending
    if pending is None:
        return output.styled("ok", "ok")
    age = pending.age(now)
    step = "value stored" if pending.key else "no value yet"
    if pending.stuck(now, threshold):
        return output.styled(f"STUCK {output.duration(age.total_seconds() if age else None)} ({step})", "fail")
    return output.styled(f"pending {output.duration(age.total_seconds() if age else None)} ({step})", "warn")


def _previous(state: KeyState) -> Text | None:
    if state.previous_version is None:
        return None
    key_id = state.previous.key_id if state.previous else "?"
    if state.previous_labelled_revoked_but_live:
        return output.styled(f"{key_id} (labelled revoked, still live at OpenAI)", "fail")
    if state.previous_revoked and state.previous_confirmed:
        return output.styled(f"{key_id} (revoked)", "ok")
    if state.previous_revoked:
        return output.styled(f"{key_id} (labelled revoked, not checked at OpenAI)", "warn")
    return output.styled(f"{key_id} (not revoked)", "warn")
