"""`keyrot revoke-previous`: revoke the AWSPREVIOUS key now, without waiting for the janitor."""

from __future__ import annotations

import typer

from keyrot.cli import output
from keyrot.cli.interaction import confirm
from keyrot.cli.key_state import read_key_metas
from keyrot.cli.options import Environment, Json, KeyName, Yes, cli_of
from keyrot.constants import STAGE_PREVIOUS, STAGE_REVOKED
from keyrot.monitor.ledger import KeyRole
from keyrot.rotation import revoke


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
    previous = read_key_metas(cli.secrets, target.description).get(KeyRole.PREVIOUS)
    if previous is not None and STAGE_REVOKED not in target.description.stages_of(previous_version or ""):
        confirm(
            f"Revoke the previous key {previous.key_id} of {target.name} now? Processes still using it will fail.",
            yes=yes,
            action="revocation",
        )
    result = revoke.revoke_previous(cli.rotation_context(env, grace_period_seconds=0), target.arn)
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
