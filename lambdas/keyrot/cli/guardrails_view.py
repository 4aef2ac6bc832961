"""What `keyrot guardrails` shows, and the pieces `doctor` and `status` show: the declared guardrails (the deployment's
parameter `/keyrot/<env>/guardrails`, shown as it is: the function, not the CLI, checks it against the digest in its
configuration before applying anything) beside OpenAI's actual ones, and spend against the hard limit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from keyrot.aws.errors import aws_errors
from keyrot.cli.checks import Finding
from keyrot.cli.context import CliContext
from keyrot.cli.errors import CliError, classify
from keyrot.constants import guardrails_parameter_name
from keyrot.errors import AwsCallError, KeyrotError
from keyrot.guardrails import (
    ActualGuardrails,
    DeclaredGuardrails,
    DriftReport,
    SpendStanding,
    check_drift,
    parse_document,
    read_actual,
    spend_standing,
)
from keyrot.guardrails import constants as c
from keyrot.guardrails.audit import rate_limit_events
from keyrot.guardrails.plan import describe_models
from keyrot.openai_admin import OpenAIAdminClient, admin_errors

_NOT_DECLARED = "not declared"


@dataclass(frozen=True)
class Row:
    setting: str
    declared: str
    actual: str
    state: str  # ok | differs | problem | unmanaged
    note: str = ""


@dataclass(frozen=True)
class GuardrailsView:
    environment: str
    project_id: str
    parameter: str
    declared: DeclaredGuardrails | None
    rows: tuple[Row, ...]
    report: DriftReport | None

    @property
    def drifted(self) -> bool:
        return self.report is not None and self.report.drifted

    def as_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "project_id": self.project_id,
            "parameter": self.parameter,
            "declared": self.declared is not None,
            "enforce": self.declared.enforce if self.declared else None,
            "in_step": not self.drifted,
            "settings": [vars(row) for row in self.rows],
            "drift": self.report.as_dict() if self.report else None,
        }


def load_view(cli: CliContext, environment: str) -> GuardrailsView:
    """Read the declared parameter and the project's guardrails (admin key), and compare them."""
    project_id = project_of(cli, environment)
    parameter = guardrails_parameter_name(environment)
    declared = read_declared(cli, parameter)
    admin = cli.admin_client(environment)
    with admin_errors():
        actual = read_actual(admin, project_id)
        report = None
        if declared is not None:
            report = check_drift(declared, actual, project_id)
            drifted_limits = [d.setting for d in report.drift if d.setting.startswith(c.RATE_LIMITS)]
            if drifted_limits:
                ids = [limit.id for limit in actual.rate_limits.values()]
                report = check_drift(declared, actual, project_id, rate_limit_events(admin, ids, time.time()))
    return GuardrailsView(environment, project_id, parameter, declared, rows(declared, actual, report), report)


def project_of(cli: CliContext, environment: str) -> str:
    """The environment's OpenAI project, from its managed secrets' tags."""
    projects = sorted({secret.identity.project_id for secret in cli.ledger(environment).secrets})
    if len(projects) != 1:
        raise CliError(f"environment {environment}'s secrets name {len(projects)} OpenAI projects, not one")
    return projects[0]


def read_declared(cli: CliContext, parameter: str) -> DeclaredGuardrails | None:
    """The deployment's declared document, or None when the stack declares no guardrails (no parameter)."""
    try:
        with aws_errors("GetParameter"):
            text = cli.client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"]
    except AwsCallError as exc:
        if exc.code == "ParameterNotFound":
            return None
        raise
    return parse_document(text)


def rows(declared: DeclaredGuardrails | None, actual: ActualGuardrails, report: DriftReport | None) -> tuple[Row, ...]:
    """One row per declared setting (and per alert either side has), with its state."""
    differing = {d.setting: d for d in report.drift} if report else {}
    problems = {p.setting: p.message for p in report.problems} if report else {}
    found: list[Row] = []

    def row(setting: str, want: str, have: str, note: str = "", parent: str | None = None) -> None:
        problem = problems.get(setting) or (problems.get(parent) if parent else None)
        if declared is None:
            found.append(Row(setting, _NOT_DECLARED, have, "unmanaged"))
        elif problem is not None:
            found.append(Row(setting, want, have, "problem", problem))
        elif setting in differing:
            drift = differing[setting]
            who = f"changed by {drift.actor}" if drift.actor else ""
            found.append(Row(setting, want, have, "differs", "; ".join(x for x in (who, note) if x)))
        else:
            found.append(Row(setting, want, have, "ok"))

    for model, limits in sorted((declared.rate_limits if declared else {}).items()):
        current = actual.rate_limits.get(model)
        for name, value in sorted(limits.items()):
            have = current.limits.get(name) if current else None
            note = ""
            if have is not None and value > have:
                note = "a raise: OpenAI allows it only up to the organization's limit for the model"
            shown = "—" if have is None else str(have)
            row(c.rate_limit_setting(model, name), str(value), shown, note, parent=c.rate_limit_setting(model))
    limit = actual.spend_limit
    row(
        c.SPEND_LIMIT_USD,
        _usd(declared.spend_limit_cents if declared else None),
        _usd(limit.threshold_cents if limit else None) + (f" ({limit.enforcement_status})" if limit else ""),
    )
    wanted = {a.threshold_cents: a.recipients for a in (declared.spend_alerts if declared else ())}
    listed: dict[int, list[tuple[str, ...]]] = {}
    for alert in actual.spend_alerts:
        listed.setdefault(alert.threshold_cents, []).append(tuple(sorted(alert.recipients)))
    for cents in sorted(set(wanted) | set(listed)):
        recipients = ", ".join(wanted[cents]) if cents in wanted else "none"
        holders = "; ".join(", ".join(r) for r in listed.get(cents, [])) or "none"
        row(c.alert_setting(cents), recipients, holders)
    models = declared.models if declared else None
    permissions = actual.model_permissions
    row(
        c.MODELS,
        describe_models(models.mode if models else None, models.model_ids if models else ()),
        describe_models(permissions.mode if permissions else None, permissions.model_ids if permissions else ()),
    )
    return tuple(found)


def _usd(cents: int | None) -> str:
    return "none" if cents is None else f"{c.usd(cents)} a month"


_FAILURES = (KeyrotError, ClientError, BotoCoreError)


def doctor_finding(cli: CliContext, environment: str) -> Finding:
    """`keyrot doctor`'s guardrails line: in step, drift (warn), a declared setting OpenAI cannot take (fail)."""
    title = "OpenAI guardrails"
    hint = f"keyrot guardrails --env {environment}"
    try:
        view = load_view(cli, environment)
    except _FAILURES as exc:
        found = classify(exc)
        return Finding("warn", title, f"cannot check them: {found[1] if found else exc}", hint)
    if view.declared is None:
        return Finding("ok", title, "none declared (keyrot:guardrails)")
    report = view.report
    if report is not None and report.problems:
        detail = "; ".join(str(p) for p in report.problems)
        return Finding("fail", title, detail, "fix keyrot:guardrails, then pulumi up")
    if report is not None and report.drift:
        detail = "; ".join(d.describe() for d in report.drift[:3]) + (" ..." if len(report.drift) > 3 else "")
        return Finding("warn", title, f"{len(report.drift)} setting(s) differ: {detail}", hint)
    return Finding("ok", title, f"as declared (enforce: {view.declared.enforce})")


def spend_summary(cli: CliContext, environment: str, project_ids: list[str]) -> tuple[dict[str, Any], str]:
    """`keyrot status`'s spend line (JSON, text): month-to-date against OpenAI's hard limit and alerts, for an
    environment that declares guardrails (only then does status read the admin key and call OpenAI). Without the
    parameter or the admin key the line says why, and the rest of the status stands."""
    if len(project_ids) != 1:
        return {"available": False, "error": "no single OpenAI project"}, "OpenAI spend: unavailable (no project)"
    try:
        declared = read_declared(cli, guardrails_parameter_name(environment))
        if declared is None:
            reason = "no guardrails declared (keyrot:guardrails)"
            return {"available": False, "error": reason}, f"OpenAI spend: not shown, {reason}"
        admin: OpenAIAdminClient = cli.admin_client(environment)
        with admin_errors():
            standing: SpendStanding = spend_standing(admin, project_ids[0], cli.now())
    except _FAILURES as exc:
        found = classify(exc)
        reason = found[1] if found else str(exc)
        return {"available": False, "error": reason}, f"OpenAI spend: unavailable ({reason})"
    return {"available": True, **standing.as_dict()}, standing.describe()
