"""`keyrot revoke-previous`: revoke the AWSPREVIOUS key now, without waiting for the janitor.

The command decides on the version it shows the operator and revokes exactly that one (`expected_version`, as the
janitor does): if a rotation moves AWSPREVIOUS between the prompt and the revocation, it refuses rather than revoke a
key nobody was asked about.
"""

from __future__ import annotations

import typer

from keyrot.cli import output
from keyrot.cli.interaction import confirm
from keyrot.cli.key_state import read_key_metas
from keyrot.cli.options import Environment, Json, KeyName, Yes, cli_of
from keyrot.constants import STAGE_PREVIOUS, STAGE_REVOKED
from keyrot.rotation import RevocationResult
from keyrot.rotation import revoke_previous as revoke


def revoke_previous(
    ctx: typer.Context,
    env: Environment,
    key: KeyName,
    yes: Yes = False,
    json_output: Json = False,
) -> None:
    """Revoke the previous key: delete its service account and confirm OpenAI rejects it."""
    cli = cli_of(ctx)
    target = cli.key(env, key)
    previous_version = target.description.version_with(STAGE_PREVIOUS)
    metas = read_key_metas(cli.secrets, target.description)
    previous = metas.get(STAGE_PREVIOUS) or metas.get(STAGE_REVOKED)
    if previous_version is None:
        result = RevocationResult("nothing-to-revoke")  # nothing shown, nothing decided: a later previous is not ours
    else:
        if STAGE_REVOKED not in target.description.stages_of(previous_version):
            shown = previous.key_id if previous else "(unreadable)"
            confirm(
                f"Revoke the previous key {shown} (version {previous_version}) of {target.name} now? Processes "
                "still using it will fail.",
                yes=yes,
                action="revocation",
            )
        context = cli.rotation_context(env, grace_period_seconds=0)
        result = revoke(context, target.arn, expected_version=previous_version)
    if json_output:
        output.emit_json(
            "revoke-previous",
            {
                "environment": env,
                "key_name": key,
                "status": result.status,
                "key_id": result.key_id,
                "service_account_id": result.service_account_id,
                "version_id": result.version_id,
            },
        )
        return
    if result.status == "revoked":
        output.line(
            f"revoked: previous key {result.key_id} of {target.name} is revoked; OpenAI rejects it", style="green"
        )
    elif result.status == "already-revoked":
        output.line(f"already-revoked: previous key {result.key_id} of {target.name} was already revoked")
    else:
        output.line(f"nothing-to-revoke: {target.name} has no previous key")
