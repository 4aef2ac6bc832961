"""`keyrot rotate`: start (or resume) a rotation through Secrets Manager and follow it to the end.

--emergency, once the new key is live, revokes from this machine every other key of the secret (the key that was
current, a previous key still in its grace, displaced keys, abandoned attempts: keyrot.cli.emergency) and says whether
exactly one live key is left; --discard-pending drops a stuck attempt (its AWSPENDING label and its service account)
before starting a fresh one. --json prints one document on stdout when the rotation ends (also when it fails) and the
progress lines on stderr. --admin rotates the environment's OpenAI admin key instead (through its own rotation
function), and shows its id, age and next rotation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from keyrot.admin_rotation import (
    AdminKeyName,
    AdminKeyState,
    build_admin_rotation_context,
    clean_up,
    read_admin_key_state,
)
from keyrot.admin_rotation.keys import delete_attempt_keys, live_admin_keys
from keyrot.aws.errors import aws_errors
from keyrot.cli import output
from keyrot.cli.context import CliContext, KeyTarget, check_environment
from keyrot.cli.emergency import contain_leak
from keyrot.cli.errors import CliError, RotationFailedError, UsageError, classify, one_line
from keyrot.cli.follow import Progress, RotationFollower, RotationLog
from keyrot.cli.interaction import confirm
from keyrot.cli.key_state import KeyState, PendingRotation, build_key_state, read_key_metas
from keyrot.cli.options import Environment, Json, Yes, cli_of
from keyrot.constants import ADMIN_ROTATION_PURPOSE, STAGE_CURRENT, STAGE_PENDING, TAG_PROJECT_ID
from keyrot.errors import AdminKeyError, AwsCallError, KeyrotError
from keyrot.names import log_group_name, tag_map
from keyrot.rotation.attempts import delete_attempt_accounts
from keyrot.rotation.context import admin_errors
from keyrot.rotation.naming import ServiceAccountName
from keyrot.settings import AdminRotationSettings

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
    key: Annotated[str | None, typer.Option("--key", "-k", help="Key name (the keyrot:key-name tag).")] = None,
    admin: Annotated[
        bool, typer.Option("--admin", help="Rotate the environment's OpenAI admin key instead of a managed key.")
    ] = False,
    emergency: Annotated[
        bool,
        typer.Option(
            "--emergency",
            help="Once the new key is live, revoke every other key of the secret: exactly one live key is left.",
        ),
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
    """Rotate a key (or, with --admin, the admin key) now and follow it step by step (exit 6 if it fails)."""
    cli = cli_of(ctx)
    narration = _Narration(json_output)
    if admin == (key is not None):
        raise UsageError("give --key K to rotate a managed key, or --admin to rotate the admin key (not both)")
    if admin:
        options = _Options(emergency, yes, discard_pending, timeout, poll_interval, json_output)
        _AdminRotation(cli, check_environment(env), narration, options).run()
        return
    assert key is not None
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
        version = f" (version {state.current_version})" if state.current_version else ""
        confirm(
            f"Emergency rotation of {target.name}: a new key is minted, then the current key {current}{version} and "
            "every other key of the secret but the new one are revoked at once (no grace period); processes still "
            "using them will fail. Continue?",
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
    token = document["token"] = _start(cli, target.arn, target.name, target.environment, token)
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
    new = read_key_metas(cli.secrets, cli.store.describe(target.arn)).get(STAGE_CURRENT)
    document["current_key_id"] = new.key_id if new else None
    was = f" (was {state.current.key_id})" if state.current else ""
    narration.say(f"Rotation complete: current key {new.key_id if new else '?'}{was}", style="green")
    if emergency:
        document["revocation"] = _contain(cli, target, state, narration)


def _start(cli: CliContext, arn: str, name: str, environment: str, token: str | None) -> str:
    kwargs = {"SecretId": arn, **({"ClientRequestToken": token} if token else {})}
    try:
        with aws_errors("RotateSecret"):
            response = cli.secrets.rotate_secret(**kwargs)
    except AwsCallError as exc:
        if exc.code == "InvalidRequestException" and "previous rotation" in str(exc).lower():
            raise RotationFailedError(
                f"a rotation of {name} is already in progress: see `keyrot status --env "
                f"{environment}`, resume it with `keyrot rotate`, or start over with --discard-pending"
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


def _contain(cli: CliContext, target: KeyTarget, state: KeyState, narration: _Narration) -> dict[str, Any]:
    """Revoke every key of the secret but the new one (keyrot.cli.emergency), and say what is left live."""
    rotation = cli.rotation_context(target.environment, grace_period_seconds=0)
    leaked = state.current.key_id if state.current else None
    retry = (
        f"retry with `keyrot revoke-previous --env {target.environment} --key {target.key_name}` (the monitor's "
        "janitor revokes any other leftover at its next run)"
    )
    try:
        containment = contain_leak(rotation, target.arn, leaked_version=state.current_version, leaked_key_id=leaked)
    except KeyrotError as exc:
        raise RotationFailedError(f"the new key is live but containing the old keys failed: {exc}; {retry}") from exc
    if containment.revoked:
        narration.say(
            f"Revoked {', '.join(containment.revoked)} (every key of {target.name} but the new one); OpenAI now "
            "rejects them",
            style="green",
        )
    else:
        narration.say("No other key to revoke (this was the first rotation).")
    if containment.in_progress:
        narration.say(
            f"Left alone: service account(s) {', '.join(containment.in_progress)} of a newer rotation under way",
            style="yellow",
        )
    if not (containment.one_live_key and containment.leaked_key_dead):
        raise RotationFailedError(
            f"the new key is live but {len(containment.live)} keys of {target.name} still authenticate at OpenAI "
            f"({', '.join(containment.live)}); {retry}"
        )
    narration.say(f"Exactly one live key is left: {containment.current_key_id} (the new one)", style="green")
    return containment.as_json()


# --- the admin key ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Options:
    emergency: bool
    yes: bool
    discard_pending: bool
    timeout: float
    poll_interval: float
    json: bool


@dataclass
class _AdminRotation:
    """`keyrot rotate --admin`: RotateSecret on the admin-key secret, followed through the admin rotation function.

    The previous admin key is deleted by the scheduled cleanup once its grace has passed (functions may hold it);
    --emergency deletes it from this machine as soon as the new key is current, with the new key (and, before the
    rotation, a previous key still in its grace, which would otherwise make the rotation wait for it).
    """

    cli: CliContext
    environment: str
    narration: _Narration
    options: _Options
    document: dict[str, Any] = field(default_factory=dict)

    def run(self) -> None:
        arn = self.cli.admin_secret_arn(self.environment)
        description = self.cli.store.describe(arn)
        if not description.rotation_lambda_arn:
            raise CliError(
                f"{description.name} has no rotation function: enable adminKeyRotation in the stack configuration "
                "and deploy (pulumi up) first"
            )
        before = read_admin_key_state(self.cli.secrets, description)
        self.document.update(
            environment=self.environment,
            admin=True,
            key_name=None,
            secret_name=description.name,
            secret_arn=arn,
            emergency=self.options.emergency,
            previous_key_id=before.key_id,
            current_key_id=None,
            token=None,
            resumed=False,
            discarded=None,
            revocation=None,
            admin_key=None,
            steps=self.narration.steps,
            ok=False,
            error=None,
        )
        try:
            self._rotate(before)
        except (RotationFailedError, AdminKeyError) as exc:
            if self.options.json:
                output.emit_json("rotate", {**self.document, "error": one_line(output.safe(exc))})
            raise
        if self.options.json:
            output.emit_json("rotate", {**self.document, "ok": True})

    def _rotate(self, before: AdminKeyState) -> None:
        options, narration = self.options, self.narration
        arn, name = before.secret_arn, before.secret_name
        if options.emergency:
            confirm(
                f"Emergency rotation of the {self.environment} admin key: a new admin key is minted, then the current "
                f"admin key {before.key_id or '(id not recorded)'}{_and_previous(before)} is deleted at once (no "
                "grace period, even a key an owner made); a function running with it fails until its next "
                "invocation, and so does any other environment or tool that uses the same admin key. Continue?",
                yes=options.yes,
                action="emergency rotation",
            )
            self._delete_previous("before the rotation")  # a previous key in its grace would hold the rotation up
        token = None
        if before.pending_version is not None and options.discard_pending:
            self.document["discarded"] = self._discard(before)
        elif before.pending_version is not None:
            token = before.pending_version
            self.document["resumed"] = True
            narration.say(f"Resuming the pending rotation {token} of {name}")
        elif options.discard_pending:
            narration.say("No pending rotation to discard.")
        started_ms = int(time.time() * 1000) - LOG_CLOCK_SKEW_MS
        token = self.document["token"] = _start(self.cli, arn, name, self.environment, token)
        narration.say(f"Rotating the admin key {name} (token {token})")
        RotationFollower(
            store=self.cli.store,
            arn=arn,
            name=name,
            token=token,
            log=self._open_log(frozenset({arn, name}), started_ms),
            poll_seconds=options.poll_interval,
            timeout_seconds=options.timeout,
            report=narration.step,
        ).run()
        if options.emergency:
            self.document["revocation"] = self._delete_previous("after the rotation")
        after = read_admin_key_state(self.cli.secrets, self.cli.store.describe(arn))
        now = self.cli.now()
        self.document["current_key_id"] = after.key_id
        self.document["admin_key"] = after.as_json(now)
        was = f" (was {before.key_id})" if before.key_id else ""
        narration.say(f"Rotation complete: current admin key {after.key_id or '?'}{was}", style="green")
        narration.say(admin_key_summary(after, now))
        if not options.emergency and before.key_id:
            narration.say(
                f"The previous admin key {before.key_id} is deleted by the scheduled cleanup once no function can "
                "still hold it (about 16 minutes), if keyrot minted it or deleteBootstrapKey is on"
            )

    def _open_log(self, secret_ids: frozenset[str], started_ms: int) -> RotationLog | None:
        group = log_group_name(self.environment, ADMIN_ROTATION_PURPOSE)
        try:
            with aws_errors("DescribeLogGroups"):
                groups = self.cli.client("logs").describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
        except AwsCallError as exc:
            found = classify(exc)
            output.note(f"Following labels only; cannot read the admin rotation log: {found[1] if found else exc}")
            return None
        if not any(entry.get("logGroupName") == group for entry in groups):
            output.note("Following labels only; the admin rotation log group does not exist (yet).")
            return None
        return RotationLog(self.cli.client("logs"), group, secret_ids, started_ms)

    def _discard(self, before: AdminKeyState) -> dict[str, Any]:
        """AWSPENDING off the stuck version first (its steps then refuse to run), then the admin keys minted for it,
        with the current admin key; never the current or previous key."""
        version = before.pending_version
        assert version is not None
        admin = self.cli.admin_client(self.environment)  # before changing anything: deleting needs the admin key
        self.cli.store.remove_stage(before.secret_arn, STAGE_PENDING, from_version=version)
        after = self.cli.store.describe(before.secret_arn)
        if STAGE_CURRENT in after.stages_of(version):
            raise CliError(
                f"the pending rotation {version} finished while it was being discarded; its key is now current, so "
                "nothing was deleted: check `keyrot status`"
            )
        keep = {before.key_id, before.previous_key_id}
        with admin_errors():
            listed = live_admin_keys(admin, self.cli.now())
        deleted = delete_attempt_keys(admin, listed, AdminKeyName(self.environment, version), keep=keep)
        self.narration.say(
            f"Discarded pending rotation {version}: AWSPENDING removed, {len(deleted)} admin key(s) deleted"
        )
        return {"version_id": version, "key_id": before.pending_key_id, "admin_keys_deleted": deleted}

    def _delete_previous(self, when: str) -> dict[str, Any]:
        """Delete the previous admin key now, with the current one (the bootstrap key too: it may be the leaked one)."""
        settings = AdminRotationSettings(
            environment=self.environment,
            admin_secret_arn=self.cli.admin_secret_arn(self.environment),
            project_id=self._project_id(),
            openai_base_url=self.cli.openai_base_url,
            grace_period_seconds=0,
            delete_bootstrap_key=True,
        )
        ctx = build_admin_rotation_context(settings, self.cli.secrets, transport=self.cli.transport())
        try:
            cleanup = clean_up(ctx, grace_seconds=0, strict=True, probes=False)
        except KeyrotError as exc:
            raise RotationFailedError(
                f"deleting the previous admin key {when} failed: {exc}; retry with `keyrot rotate --admin --env "
                f"{self.environment} --emergency`, or delete it in the OpenAI console"
            ) from exc
        deleted = [doomed.key_id for doomed in cleanup.deleted]
        for note in cleanup.notes:
            self.narration.say(f"Not deleted: {note}", style="yellow")
        if deleted:
            self.narration.say(
                f"Deleted admin key(s) {', '.join(deleted)} {when}; OpenAI now rejects them", style="green"
            )
        return {"deleted": deleted, "kept": list(cleanup.notes)}

    def _project_id(self) -> str:
        """The environment's OpenAI project (from its managed secrets' tags): the settings need one."""
        tags = [tag_map(entry.get("Tags")) for entry in self.cli.tagged(self.environment)]
        projects = sorted({found for entry in tags if (found := entry.get(TAG_PROJECT_ID))})
        if not projects:
            raise CliError(f"no managed secret of {self.environment} names its OpenAI project ({TAG_PROJECT_ID})")
        return projects[0]


def _and_previous(state: AdminKeyState) -> str:
    if state.previous_key_id is None or state.previous_deleted or state.previous_key_id == state.key_id:
        return ""
    return f" (and the previous admin key {state.previous_key_id}, if still live)"


def admin_key_summary(state: AdminKeyState, now: Any) -> str:
    """One line: the admin key's id, age and next rotation."""
    age = state.age(now)
    shown_age = output.duration(age.total_seconds()) if age is not None else "unknown"
    origin = " since it was stored" if state.created_from == "stored" else ""
    if state.rotation_enabled:
        next_rotation = ("~" if state.next_rotation_estimated else "") + output.when(state.next_rotation)
    else:
        next_rotation = "none (admin key rotation is not enabled)"
    return f"Admin key {state.key_id or '(id not recorded)'}: age {shown_age}{origin}; next rotation {next_rotation}"
