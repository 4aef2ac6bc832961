"""Options shared by several commands, declared once.

--profile, --region and --openai-base-url are accepted both before the command (`keyrot --region eu-west-1 status`)
and after it (`keyrot status --region eu-west-1`); the command-level value wins.
"""

from __future__ import annotations

from typing import Annotated

import typer

from keyrot.cli.context import CliContext, CliOptions, check_base_url
from keyrot.constants import ENV_OPENAI_BASE_URL

Profile = Annotated[
    str | None, typer.Option("--profile", help="AWS named profile (default: the standard credential chain).")
]
Region = Annotated[str | None, typer.Option("--region", help="AWS region (default: from the profile or AWS_REGION).")]
OpenAIBaseUrl = Annotated[
    str | None,
    typer.Option(
        "--openai-base-url",
        help=f"OpenAI API base URL (default: ${ENV_OPENAI_BASE_URL}, else https://api.openai.com/v1).",
        show_default=False,
    ),
]
Environment = Annotated[str, typer.Option("--env", "-e", help="Environment, e.g. dev or prod.")]
KeyName = Annotated[str, typer.Option("--key", "-k", help="Key name (the keyrot:key-name tag).")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Json = Annotated[bool, typer.Option("--json", help="Print a stable machine-readable JSON document.")]


def cli_context(
    ctx: typer.Context, *, profile: str | None = None, region: str | None = None, openai_base_url: str | None = None
) -> CliContext:
    """The command's context: the global options, overridden by the ones given to the command itself."""
    root = ctx.find_root().obj
    options = root.options if isinstance(root, CliContext) else CliOptions()
    merged = options.merged(
        profile=profile,
        region=region,
        openai_base_url=check_base_url(openai_base_url) if openai_base_url else None,
    )
    return CliContext(merged)
