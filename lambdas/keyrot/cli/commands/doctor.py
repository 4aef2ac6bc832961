"""`keyrot doctor`: the troubleshooting checklist for one key. Exit 0 when no check fails, 1 otherwise.

The previous key and any other live key of the secret are judged by the inventory (keyrot.inventory, the rules the
janitor and `keyrot status` apply), taken for this one secret with the admin key: a key labelled revoked counts as
revoked only once OpenAI no longer lists it. Without the admin key, the label alone speaks and the finding says so.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Annotated

import typer

from keyrot.cli import audit_log_check, checks, guardrails_view, output, scopes_view
from keyrot.cli.checks import Finding
from keyrot.cli.context import CliContext, KeyTarget
from keyrot.cli.errors import classify
from keyrot.cli.exit_codes import ExitCode
from keyrot.cli.key_state import KeyState, build_key_state, read_key_metas
from keyrot.cli.options import Environment, Json, KeyName, StuckAfter, cli_of
from keyrot.errors import KeyrotError
from keyrot.rotation import secret_inventory


def doctor(
    ctx: typer.Context,
    env: Environment,
    key: KeyName,
    json_output: Json = False,
    stuck_after: StuckAfter = 30,
    inference_probe: Annotated[
        bool,
        typer.Option(
            "--inference-probe",
            help="Read rate limits from a one-token chat completion (OpenAI documents x-ratelimit-* headers on "
            "model responses; costs a fraction of a cent).",
        ),
    ] = False,
    probe_model: Annotated[str, typer.Option("--probe-model", help="Model for --inference-probe.")] = "gpt-4o-mini",
) -> None:
    """Check AWS access, the secret, the key at OpenAI and its scopes, rate limits, rotation health, the admin key and
    guardrails."""
    cli = cli_of(ctx)
    now = cli.now()
    findings = [checks.aws_identity(cli)]
    if findings[-1].status != "fail":
        found, target = checks.find_secret(cli, env, key)
        findings.append(found)
        if target is not None:
            readable, managed = checks.read_current(cli, target)
            findings.append(readable)
            if managed is not None:
                probed, check = checks.probe_key(cli, target, managed, now)
                findings.append(probed)
                findings.append(scopes_view.doctor_finding(managed, check))  # least-privilege keys (issue 14)
                if check is not None and check.status.value != "dead":
                    if inference_probe:
                        findings.append(checks.inference_headroom(cli, managed, probe_model))
                    else:
                        findings.append(checks.rate_headroom(check.rate_limits))
            health = checks.rotation_health(cli, target, now, timedelta(minutes=stuck_after))
            findings += [f for f in health if f.check != "previous key"] + _retired_keys(cli, target)
            findings.append(checks.admin_key(cli, env))
            findings.append(guardrails_view.doctor_finding(cli, env))
            findings.append(audit_log_check.doctor_finding(cli, env))  # the monitor's tripwire (issue 14)
    failed = any(finding.status == "fail" for finding in findings)
    if json_output:
        output.emit_json(
            "doctor",
            {"environment": env, "key_name": key, "ok": not failed, "findings": [asdict(f) for f in findings]},
        )
    else:
        for finding in findings:
            output.finding(finding.status, finding.check, finding.detail, finding.hint)
        counts = {status: sum(1 for f in findings if f.status == status) for status in ("ok", "warn", "fail")}
        output.line(
            f"{counts['fail']} failing, {counts['warn']} warning(s), {counts['ok']} ok",
            style="bold red" if failed else "green",
        )
    if failed:
        raise typer.Exit(ExitCode.FAILURE)


def _retired_keys(cli: CliContext, target: KeyTarget) -> list[Finding]:
    """The previous key, and keys of the secret no label accounts for, as the inventory sees them."""
    reason = None
    try:
        secret = secret_inventory(cli.rotation_context(target.environment), target.arn)
        state = build_key_state(cli.secrets, target.description, inventory=secret)
    except KeyrotError as exc:
        found = classify(exc)
        reason = found[1] if found else f"{type(exc).__name__}: {exc}"
        try:
            state = build_key_state(cli.secrets, target.description, read_key_metas(cli.secrets, target.description))
        except KeyrotError as unreadable:
            return [Finding("warn", "previous key", f"cannot read it: {unreadable}")]
    revoke = f"keyrot revoke-previous --env {target.environment} --key {target.key_name}"
    findings = [_previous(state, revoke, reason)]
    if state.displaced:
        findings.append(
            Finding(
                "fail",
                "other live keys",
                f"{', '.join(state.displaced)} still authenticate(s) though no label accounts for them",
                "the monitor's janitor revokes them at its next run; now: "
                f"keyrot rotate --env {target.environment} --key {target.key_name} --emergency",
            )
        )
    elif reason is None:
        findings.append(Finding("ok", "other live keys", "none"))
    return findings


def _previous(state: KeyState, revoke: str, unchecked: str | None) -> Finding:
    if state.previous_version is None:
        return Finding("ok", "previous key", "none")
    key_id = state.previous.key_id if state.previous else "?"
    if state.previous_labelled_revoked_but_live:
        detail = f"{key_id} is labelled revoked but OpenAI still lists it"
        return Finding("fail", "previous key", detail, f"revoke it again: {revoke} (the janitor does at its next run)")
    if state.previous_revoked and state.previous_confirmed:
        return Finding("ok", "previous key", f"{key_id} revoked (OpenAI no longer lists it)")
    if state.previous_revoked:
        return Finding("warn", "previous key", f"{key_id} labelled revoked; not checked at OpenAI: {unchecked}")
    hint = f"the janitor revokes it after the grace period; to revoke now: {revoke}"
    return Finding("warn", "previous key", f"{key_id} not revoked yet", hint)
