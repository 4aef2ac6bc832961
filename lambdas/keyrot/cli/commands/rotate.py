"""`keyrot rotate`: start (or resume) a rotation through Secrets Manager and follow it to the end.

--emergency revokes the previous key from this machine as soon as the new key is live; --discard-pending drops a
stuck attempt (its AWSPENDING label and its service account) before starting a fresh one. --json prints one
document on stdout when the rotation ends (also when it fails) and the progress lines on stderr.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Annotated, Any

import typer

from keyrot.aws.errors import aws_errors
from keyrot.cli import output
from keyrot.cli.context import CliContext, KeyTarget
from keyrot.cli.errors import CliError, RotationFailedError, classify, one_line
from keyrot.cli.follow import Progress, RotationFollower, RotationLog
from keyrot.cli.interaction import confirm
from keyrot.cli.key_state import KeyState, PendingRotation, build_key_state, read_key_metas
from keyrot.cli.options import Environment, Json, KeyName, Yes, cli_of
from keyrot.constants import STAGE_CURRENT, STAGE_PENDING
from keyrot.errors import AwsCallError, RevocationError
from keyrot.monitor.ledger import KeyRole
from keyrot.rotation.attempts import delete_attempt_accounts
from keyrot.rotation.context import admin_errors
from keyrot.rotation.naming import ServiceAccountName
from keyrot.rotation.revoke import RevocationResult, revoke_previous

# Log lines are read from just before RotateSecret: allow this much clock difference between here and AWS.
LOG_CLOCK_SKEW_MS = 1000


@dataclass
class _Narration:
    """What rotate says: lines for people on stdout, or (--json) on stderr while stdout gets one document."""

    json: bool
    steps: list[dict[str, Any]] = field(default_factory=list)

    def say(self, text: str, *, style: str | None = None) -> None:
        if self.json:
            output.progress(text)
        else:
            output.line(text, style=style)

    def step(self, progress: Progress) -> None:
        self.steps.append({"ok": progress.ok, "text": output.safe(progress.text)})
        if progress.ok:
            self.say(f"  ✓ {progress.text}", style="green")
        else:
            self.say(f"  ✗ {progress.text}", style="red")


def rotate(
    ctx: typer.Context,
    env: Environment,
    key: KeyName,
    emergency: Annotated[
        bool, typer.Option("--emergency", help="Revoke the previous key as soon as the new one is live.")
    ] = False,
    yes: Yes = False,
    discard_pending: Annotated[
        bool,
        typer.Option("--discard-pending", help="Drop a stuck pending rotation and its service account, then rotate."),
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=1, help="Seconds to wait for the rotation.")] = 300,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", min=0.01, help="Seconds between progress checks.")
    ] = 2.0,
    json_output: Json = False,
) -> None:
    """Rotate a key now and follow the rotation step by step (exit 6 if it fails or times out)."""
    cli = cli_of(ctx)
    narration = _Narration(json_output)
    target = cli.key(env, key)
    if not target.description.rotation_lambda_arn:
        raise CliError(f"{target.name} has no rotation function configured: deploy the stack (pulumi up) first")
    state = build_key_state(cli.secrets, target.description, read_key_metas(cli.secrets, target.description))
    document: dict[str, Any] = {
        "environment": target.environment,
        "key_name": target.key_name,
        "secret_name": target.name,
        "secret_arn": target.arn,
        "emergency": emergency,
        "previous_key_id": state.current.key_id if state.current else None,
        "current_key_id": None,
        "token": None,
        "resumed": False,
        "discarded": None,
        "revocation": None,
        "steps": narration.steps,
        "ok": False,
        "error": None,
    }
    try:
        _rotate(cli, target, state, narration, document, emergency, yes, discard_pending, timeout, poll_interval)
    except RotationFailedError as exc:
        if json_output:
            output.emit_json("rotate", {**document, "error": one_line(output.safe(exc))})
        raise
    if json_output:
        output.emit_json("rotate", {**document, "ok": True})


def _rotate(
    cli: CliContext,
    target: KeyTarget,
    state: KeyState,
    narration: _Narration,
    document: dict[str, Any],
    emergency: bool,
    yes: bool,
    discard_pending: bool,
    timeout: float,
    poll_interval: float,
) -> None:
    if emergency:
        current = state.current.key_id if state.current else "(none)"
        confirm(
            f"Emergency rotation of {target.name}: a new key is minted, then the current key {current} is revoked "
            "at once (no grace period); processes still using it will fail. Continue?",
            yes=yes,
            action="emergency rotation",
        )
        cli.rotation_context(target.environment).admin()  # read the admin key now: fail before rotating, not after
    token = None
    if state.pending is not None and discard_pending:
        document["discarded"] = _discard(cli, target, state.pending, narration)
    elif state.pending is not None:
        token = state.pending.version_id
        document["resumed"] = True
        narration.say(f"Resuming the pending rotation {token} of {target.name}")
    elif discard_pending:
        narration.say("No pending rotation to discard.")
    started_ms = int(time.time() * 1000) - LOG_CLOCK_SKEW_MS
    token = document["token"] = _start(cli, target, token)
    narration.say(f"Rotating {target.name} (token {token})")
    RotationFollower(
        store=cli.store,
        arn=target.arn,
        name=target.name,
        token=token,
        log=_open_log(cli, target, started_ms),
        poll_seconds=poll_interval,
        timeout_seconds=timeout,
        report=narration.step,
    ).run()
    new = read_key_metas(cli.secrets, cli.store.describe(target.arn)).get(KeyRole.CURRENT)
    document["current_key_id"] = new.key_id if new else None
    was = f" (was {state.current.key_id})" if state.current else ""
    narration.say(f"Rotation complete: current key {new.key_id if new else '?'}{was}", style="green")
    if emergency:
        document["revocation"] = asdict(_revoke(cli, target, narration))


def _start(cli: CliContext, target: KeyTarget, token: str | None) -> str:
    kwargs = {"SecretId": target.arn, **({"ClientRequestToken": token} if token else {})}
    try:
        with aws_errors("RotateSecret"):
            response = cli.secrets.rotate_secret(**kwargs)
    except AwsCallError as exc:
        if exc.code == "InvalidRequestException" and "previous rotation" in str(exc).lower():
            raise RotationFailedError(
                f"a rotation of {target.name} is already in progress: see `keyrot status --env "
                f"{target.environment}`, resume it with `keyrot rotate`, or start over with --discard-pending"
            ) from exc
        raise
    return str(response["VersionId"])


def _open_log(cli: CliContext, target: KeyTarget, started_ms: int) -> RotationLog | None:
    try:
        log = RotationLog.open(cli.client("logs"), target.environment, frozenset({target.arn, target.name}), started_ms)
    except AwsCallError as exc:
        found = classify(exc)
        output.note(f"Following labels only; cannot read the rotation log: {found[1] if found else exc}")
        return None
    if log is None:
        output.note("Following labels only; the rotation log group does not exist (yet).")
    return log


def _discard(cli: CliContext, target: KeyTarget, pending: PendingRotation, narration: _Narration) -> dict[str, Any]:
    """Remove the stuck attempt's AWSPENDING label first (its steps then refuse to run), then its service account."""
    admin = cli.admin_client(target.environment)  # before changing anything: deleting needs the admin key
    age = pending.age(cli.now())
    if age is not None and age.total_seconds() < 300:
        output.note(f"The pending rotation {pending.version_id} is only {output.duration(age.total_seconds())} old.")
    cli.store.remove_stage(target.arn, STAGE_PENDING, from_version=pending.version_id)
    after = cli.store.describe(target.arn)
    if STAGE_CURRENT in after.stages_of(pending.version_id):
        raise CliError(
            f"the pending rotation {pending.version_id} finished while it was being discarded; its key is now "
            "current, so nothing was deleted: check `keyrot status`"
        )
    live = {meta.service_account_id for meta in read_key_metas(cli.secrets, after).values()}
    name = ServiceAccountName(target.environment, target.key_name, pending.version_id)
    with admin_errors():
        deleted = delete_attempt_accounts(admin, target.identity.project_id, name, keep=live)
    stored = f" (its key {pending.key.key_id} was never promoted)" if pending.key else ""
    narration.say(
        f"Discarded pending rotation {pending.version_id}{stored}: AWSPENDING removed, "
        f"{len(deleted)} service account(s) deleted"
    )
    return {
        "version_id": pending.version_id,
        "key_id": pending.key.key_id if pending.key else None,
        "service_accounts_deleted": deleted,
    }


def _revoke(cli: CliContext, target: KeyTarget, narration: _Narration) -> RevocationResult:
    rotation = cli.rotation_context(target.environment, grace_period_seconds=0)
    try:
        result = revoke_previous(rotation, target.arn)
    except RevocationError as exc:
        raise RotationFailedError(
            f"the new key is live but revoking the previous key failed: {exc}; retry with "
            f"`keyrot revoke-previous --env {target.environment} --key {target.key_name}`"
        ) from exc
    if result.status == "nothing-to-revoke":
        narration.say("No previous key to revoke (this was the first rotation).")
    else:
        narration.say(f"Revoked previous key {result.key_id} ({result.status}); OpenAI now rejects it", style="green")
    return result
