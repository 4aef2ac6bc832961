"""`keyrot doctor`: the troubleshooting checklist for one key. Exit 0 when no check fails, 1 otherwise."""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Annotated

import typer

from keyrot.cli import audit_log_check, checks, guardrails_view, output, scopes_view
from keyrot.cli.exit_codes import ExitCode
from keyrot.cli.options import Environment, Json, KeyName, StuckAfter, cli_of


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
            findings += checks.rotation_health(cli, target, now, timedelta(minutes=stuck_after))
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
