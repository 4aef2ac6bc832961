"""Options, declared once: the shared AWS and OpenAI options every command accepts, and those several commands reuse.

--profile, --region and --openai-base-url are declared here only. They are accepted before the command
(`keyrot --region eu-west-1 status`) and after it (`keyrot status --region eu-west-1`; the later one wins), and
reach the command as one `CliContext` on typer's context object (click's `pass_obj` pattern): a command reads
`cli_of(ctx)`, never the options themselves.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
import typer.main
from typer.core import TyperCommand

from keyrot.cli.context import CliContext
from keyrot.constants import DEFAULT_OPENAI_BASE_URL, ENV_OPENAI_ADMIN_BASE_URL


def _given(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """Fold an option that was given into this context's CliContext (the child's copy only, so it wins there)."""
    if value is not None and param.name is not None:
        ctx.obj = cli_of(ctx).with_options(**{param.name: value})
    return value


Profile = Annotated[
    str | None,
    typer.Option(
        "--profile",
        callback=_given,
        expose_value=False,
        help="AWS named profile (default: the standard credential chain).",
    ),
]
Region = Annotated[
    str | None,
    typer.Option(
        "--region",
        callback=_given,
        expose_value=False,
        help="AWS region (default: AWS_REGION, else AWS_DEFAULT_REGION, else the profile's).",
    ),
]
OpenAIBaseUrl = Annotated[
    str | None,
    typer.Option(
        "--openai-base-url",
        callback=_given,
        expose_value=False,
        help=f"OpenAI API base URL, https (default: ${ENV_OPENAI_ADMIN_BASE_URL}, else {DEFAULT_OPENAI_BASE_URL}).",
        show_default=False,
    ),
]


def _declared(profile: Profile = None, region: Region = None, openai_base_url: OpenAIBaseUrl = None) -> None:
    """The shared options' one declaration (typer turns this signature into click options)."""


def shared_options() -> list[Any]:
    """Fresh click options for one command or group (click binds a parameter to one command)."""
    declaration = typer.Typer(add_completion=False)
    declaration.command()(_declared)
    return list(typer.main.get_command(declaration).params)


def cli_of(ctx: typer.Context) -> CliContext:
    """The command's CliContext: the global options, overridden by the ones given to the command itself."""
    found = ctx.find_object(CliContext)
    if found is None:  # a command invoked without keyrot's group (tests calling a command directly)
        found = ctx.obj = CliContext()
    return found


class KeyrotCommand(TyperCommand):
    """A keyrot command: accepts the shared options and checks them before the command body runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["params"] = [*(kwargs.get("params") or []), *shared_options()]
        super().__init__(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        cli_of(ctx).check()  # a bad --openai-base-url fails before anything is read or changed
        return super().invoke(ctx)


Environment = Annotated[str, typer.Option("--env", "-e", help="Environment, e.g. dev or prod.")]
KeyName = Annotated[str, typer.Option("--key", "-k", help="Key name (the keyrot:key-name tag).")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Json = Annotated[bool, typer.Option("--json", help="Print a stable machine-readable JSON document.")]
StuckAfter = Annotated[
    int, typer.Option("--stuck-after", min=1, help="Minutes after which a pending rotation counts as stuck.")
]
