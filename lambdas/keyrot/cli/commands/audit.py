"""`keyrot audit`: drift between OpenAI and the secrets. Exit 0 when clean, 1 when drift is found.

Drift is the inventory's answer (keyrot.cli.inventory, the rules the monitor and the janitor apply), grouped by
keyrot.cli.drift: the keys it reports are the keys the monitor's findings report for the same state.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import timedelta
from typing import Annotated, Any

import typer

from keyrot.cli import inventory, output
from keyrot.cli.drift import Drift, drift_of
from keyrot.cli.exit_codes import ExitCode
from keyrot.cli.options import Environment, Json, cli_of

_MASK = re.compile(r"\.\.\.|\*|…")
_PREFIX_LENGTH = 8


def audit(
    ctx: typer.Context,
    env: Environment,
    json_output: Json = False,
    grace_hours: Annotated[
        float,
        typer.Option("--grace-hours", min=0, help="A previous key younger than this is not yet drift."),
    ] = 24,
) -> None:
    """Orphaned service accounts, unmanaged keys, expired or missing managed keys, unrevoked previous keys (and keys
    labelled revoked that OpenAI still lists)."""
    cli = cli_of(ctx)
    inventory.deployment(cli, env)  # an unknown environment: exit 4 before the admin key is read
    admin = cli.admin_client(env)
    grace = int(timedelta(hours=grace_hours).total_seconds())
    found = inventory.load(cli, env, grace_period_seconds=grace, admin=admin)
    drift = drift_of(
        found.inventory, found.keys.values(), found.project_of, found.project_of, problems=found.inventory.problems
    )
    projects = list(found.projects)
    if json_output:
        output.emit_json("audit", _json(env, projects, drift))
    else:
        _print(env, drift)
    if drift.found:
        raise typer.Exit(ExitCode.FAILURE)


def shown_value(redacted_value: str) -> str:
    """Only the prefix of OpenAI's masked form (`sk-pro...xyz` -> `sk-pro…`): never the trailing characters."""
    prefix = _MASK.split(redacted_value, maxsplit=1)[0][:_PREFIX_LENGTH]
    return f"{prefix}…" if prefix else "n/a"


def _json(env: str, projects: list[str], drift: Drift) -> dict[str, Any]:
    def issues(items: list[Any]) -> list[dict[str, Any]]:
        return [asdict(item) for item in items]

    unmanaged = []
    for key in drift.unmanaged:
        item = asdict(key)
        item["redacted_value"] = shown_value(key.redacted_value)
        unmanaged.append(item)
    return {
        "environment": env,
        "projects": projects,
        "drift_found": drift.found,
        "counts": drift.counts,
        "orphans": issues(drift.orphans),
        "in_progress": issues(drift.in_progress),
        "unmanaged_keys": unmanaged,
        "expired_keys": issues(drift.expired),
        "missing_keys": issues(drift.missing),
        "unrevoked_previous_keys": issues(drift.unrevoked),
        "malformed_secrets": [{"secret": name, "problem": problem} for name, problem in drift.problems],
    }


def _print(env: str, drift: Drift) -> None:
    if drift.orphans:
        output.table(
            f"Orphaned service accounts ({env}): referenced by no secret version",
            ("Service account", "Name", "Key", "Token", "Key ids", "Created"),
            (
                (
                    o.service_account_id,
                    o.name,
                    o.key_name,
                    o.token,
                    ", ".join(o.key_ids) or "—",
                    output.when(o.created_at),
                )
                for o in drift.orphans
            ),
        )
    if drift.unmanaged:
        output.table(
            f"Unmanaged keys ({env}): not minted by keyrot",
            ("Key id", "Value", "Name", "Owner", "Created", "Last used"),
            (
                (
                    k.key_id,
                    shown_value(k.redacted_value),
                    k.name or "—",
                    f"{k.owner_type} {k.owner_name or '?'}"
                    + (f" ({k.owner_project_access})" if k.owner_project_access not in (None, "active") else ""),
                    output.when(k.created_at),
                    output.when(k.last_used_at) if k.last_used_at else "never",
                )
                for k in drift.unmanaged
            ),
        )
    for title, issues in (
        ("Managed keys past their expiry backstop", drift.expired),
        ("Managed keys missing at OpenAI", drift.missing),
    ):
        if issues:
            output.table(
                f"{title} ({env})",
                ("Key", "Key id", "Role", "Expired"),
                ((i.key_name, i.key_id, i.role, output.when(i.at) if i.at else "—") for i in issues),
            )
    if drift.unrevoked:
        output.table(
            f"Previous keys not revoked ({env})",
            ("Key", "Key id", "State", "Retired", "Drift"),
            (
                (
                    i.key_name,
                    i.key_id,
                    "labelled revoked, OpenAI still lists it" if i.role == "revoked-but-live" else i.role,
                    output.when(i.at) if i.at else "—",
                    "no (within grace)" if i.within_grace else "yes",
                )
                for i in drift.unrevoked
            ),
        )
    for orphan in drift.in_progress:
        output.line(f"Rotation in progress: {orphan.name} ({orphan.service_account_id}) belongs to a pending version")
    for name, problem in drift.problems:
        output.line(f"Malformed secret {name}: {problem}", style="red")
    if drift.found:
        summary = ", ".join(f"{count} {what.replace('_', ' ')}" for what, count in drift.counts.items() if count)
        output.line(f"Drift found in {env}: {summary}", style="bold red")
    else:
        output.line(f"No drift in {env}.", style="green")
