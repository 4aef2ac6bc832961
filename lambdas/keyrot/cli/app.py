"""The typer application: global options, the commands, and the single place failures become exit codes."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from keyrot import __version__
from keyrot.cli import logs, output
from keyrot.cli.commands import admin_key, audit, doctor, guardrails, revoke_previous, rotate, status
from keyrot.cli.commands import exec as exec_command
from keyrot.cli.context import CliContext
from keyrot.cli.errors import classify
from keyrot.cli.exit_codes import ExitCode
from keyrot.cli.options import KeyrotCommand, cli_of, shared_options
from keyrot.redaction import scrub


class KeyrotGroup(TyperGroup):
    """Takes the shared options; reports every known failure as one scrubbed line on stderr with its exit code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["params"] = [*(kwargs.get("params") or []), *shared_options()]
        super().__init__(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except typer.TyperException as exc:
            # Usage errors (exit 2) quote the offending argument: a key pasted on the command line must not echo.
            exc.message = scrub(exc.message)
            raise
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:
            output.error("interrupted")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        except Exception as exc:  # noqa: BLE001 - the one place every failure becomes an exit code
            debug = _debug(ctx)
            if debug:
                output.traceback(exc)  # scrubbed; the exit code stays the one the error has without --debug
            hint = "" if debug else " (re-run with --debug)"
            code, message = classify(exc) or (ExitCode.FAILURE, f"unexpected {type(exc).__name__}: {exc}{hint}")
            output.error(message)
            raise typer.Exit(code) from None


def _debug(ctx: Any) -> bool:
    obj = ctx.find_root().obj
    return isinstance(obj, CliContext) and obj.options.debug


app = typer.Typer(
    cls=KeyrotGroup,
    name="keyrot",
    help="Operate keyrot: rotation and monitoring of OpenAI API keys kept in AWS Secrets Manager.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"keyrot {__version__}")
        raise typer.Exit()


@app.callback()
def global_options(
    ctx: typer.Context,
    debug: Annotated[
        bool,
        typer.Option("--debug", help="Also show keyrot's own debug log and tracebacks (scrubbed; same exit codes)."),
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Global options apply to every command (commands also accept --profile, --region, --openai-base-url)."""
    ctx.call_on_close(logs.configure(debug))
    ctx.obj = cli_of(ctx).with_options(debug=debug)
    ctx.obj.check()


app.command("status", cls=KeyrotCommand)(status.status)
app.command("rotate", cls=KeyrotCommand)(rotate.rotate)
app.command("revoke-previous", cls=KeyrotCommand)(revoke_previous.revoke_previous)
app.command("audit", cls=KeyrotCommand)(audit.audit)
app.command(
    "exec",
    cls=KeyrotCommand,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "allow_interspersed_args": False},
)(exec_command.exec_with_key)
app.command("doctor", cls=KeyrotCommand)(doctor.doctor)
app.command("guardrails", cls=KeyrotCommand)(guardrails.guardrails)

admin_key_app = typer.Typer(
    name="admin-key", help="Manage the OpenAI admin key of an environment.", no_args_is_help=True, rich_markup_mode=None
)
admin_key_app.command(
    "set", cls=KeyrotCommand, context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)(admin_key.set_admin_key)
app.add_typer(admin_key_app, name="admin-key")
