"""`keyrot guardrails`: the declared guardrails beside OpenAI's actual ones. Exit 0 when in step, 1 on drift."""

from __future__ import annotations

import typer

from keyrot.cli import output
from keyrot.cli.context import check_environment
from keyrot.cli.exit_codes import ExitCode
from keyrot.cli.guardrails_view import GuardrailsView, load_view
from keyrot.cli.options import Environment, Json, cli_of


def guardrails(ctx: typer.Context, env: Environment, json_output: Json = False) -> None:
    """Declared guardrails (rate limits, hard spend limit, spend alerts, models) beside OpenAI's, with drift."""
    cli = cli_of(ctx)
    view = load_view(cli, check_environment(env))
    if json_output:
        output.emit_json("guardrails", view.as_json())
    else:
        _print(view)
    if view.drifted:
        raise typer.Exit(ExitCode.FAILURE)


def _print(view: GuardrailsView) -> None:
    title = f"OpenAI guardrails of {view.environment} (project {view.project_id})"
    states = {"ok": "ok", "differs": "fail", "problem": "fail", "unmanaged": "info"}
    output.table(
        title,
        ("Setting", "Declared", "Actual", "State"),
        (
            (
                row.setting,
                row.declared,
                row.actual,
                output.styled(f"{row.state}{f' ({row.note})' if row.note else ''}", states[row.state]),
            )
            for row in view.rows
        ),
    )
    if view.declared is None:
        output.line(
            f"No guardrails declared for {view.environment} (no parameter {view.parameter}): keyrot manages none. "
            "Declare them in the stack's keyrot:guardrails (docs/guardrails.md).",
            style="cyan",
        )
        return
    output.line(f"enforce: {view.declared.enforce}")
    if view.report is not None and view.report.problems:
        for problem in view.report.problems:
            output.line(str(problem), style="red")
    if view.drifted and view.report is not None:
        output.line(f"Drift in {view.environment}: `pulumi up` would change:", style="bold red")
        for step in view.report.restore_plan:
            output.line(f"  {step}")
    else:
        output.line(f"{view.environment} has the declared guardrails.", style="green")
