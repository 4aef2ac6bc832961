"""The rehearsal's story, narrated and checked: every step must happen as described or the run fails."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import openai
from rich.console import Console
from rich.table import Table

from keyrot.constants import TAG_PROMOTED, state_parameter_name
from keyrot.openai_admin import KeyStatus, OpenAIKeyProbe, OpenAITransport
from lab.demo.admin_key import AdminRotations, rotate_admin_key
from lab.demo.emulator import AwsEmulator
from lab.demo.guardrails import apply_guardrails, guardrails_drift
from lab.demo.inbox import OnCallInbox
from lab.demo.narration import Narrator, Outcome, StoryStopped
from lab.demo.provision import NOT_EMULATED
from lab.demo.readings import gauge, last_line
from lab.demo.schedule import JanitorWindow, run_until_revoked
from lab.demo.tripwire import tripwire
from lab.demo.world import (
    COMPRESSION_NOTE,
    GRACE_SECONDS,
    QUIET_SECONDS,
    STACK,
    World,
    base_environment,
    emulated_world,
    provision_stack,
)

__all__ = ["Outcome", "run"]


@contextmanager
def application(world: World, secret: str, workdir: Path) -> Iterator[tuple[Path, Path]]:
    """Start the application process; yield (stats file, stop file); stop it however the block ends."""
    stats, stop = workdir / "app-stats.json", workdir / "app.stop"
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "lab.demo.app", secret, "--stats", str(stats), "--stop", str(stop)],
        env={**base_environment(), **world.environment()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield stats, stop
    finally:
        stop.touch()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _read_stats(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, ValueError):
        return {"sent": 0, "failed": 0, "errors": {}, "key_ids": [], "burst": 0}


def _wait_for(condition: Callable[[], Any], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


def run(console: Console | None = None) -> Outcome:
    console = console or Console()
    outcome = Outcome()
    story = Narrator(console, outcome)
    with tempfile.TemporaryDirectory(prefix="keyrot-rehearsal-") as scratch, ExitStack() as stack:
        with story.step("An OpenAI organization and an AWS account, both on 127.0.0.1"):
            world = stack.enter_context(emulated_world())
            story.say(f"AWS emulator (moto) at {world.aws.endpoint_url}")
            story.say(f"OpenAI stand-in at {world.openai_api.base_url}")
            story.say(f"OpenAI project {world.project_id} (from Pulumi.{STACK}.yaml), with an admin key for keyrot")
        try:
            _provision(story, world)
            _story(story, world, Path(scratch))
        except StoryStopped as stopped:
            console.print(f"\n[bold red]The rehearsal stopped[/]: the rest depends on “{stopped}”.")
    outcome.figures["seconds"] = round(time.monotonic() - story.started, 1)
    return outcome


def _provision(story: Narrator, world: World) -> None:
    with story.step(f"Provision the {STACK} stack exactly as the Pulumi program declares it"):
        provisioned = provision_stack(world)
        table = Table(show_header=True, header_style="bold")
        table.add_column("resource type")
        table.add_column("count", justify="right")
        for type_, count in sorted(provisioned.count_by_type().items()):
            table.add_row(type_.split(":", 1)[1], str(count))
        story.console.print(table)
        for item in provisioned.external:
            story.say(f"[dim]stood in: {item}[/]")
        story.say("[yellow]Not emulated (declared and stored, but nothing acts on them here):[/]")
        for line in NOT_EMULATED:
            story.say(f"  [dim]- {line}[/]")
        story.say(f"[dim]Time compressed for the rehearsal: {COMPRESSION_NOTE}.[/]")
        rotation = provisioned.workers.get(f"keyrot-{STACK}-rotation")
        story.expect(
            "nothing the program declared was left out",
            not provisioned.unsupported,
            ", ".join(provisioned.unsupported),
        )
        story.require(
            "the rotation function runs from the built Lambda archive",
            rotation is not None
            and "/keyrot/__init__.py" in rotation.loaded_from
            and "lambdas/keyrot" not in rotation.loaded_from,
            rotation.loaded_from if rotation else "no rotation function",
        )
        world.aws.rotation.wait()
        configured = [event for event in world.aws.rotation.events if event.name == "RotationSucceeded"]
        story.expect(
            "rotation is configured on every key without rotating yet (no admin key)",
            len(configured) >= len(world.key_names),
        )
        states = _alarm_states(world.aws)
        story.expect(
            "every alarm shows INSUFFICIENT_DATA, as a new alarm does: nothing evaluates alarms here",
            bool(states) and set(states.values()) == {"INSUFFICIENT_DATA"},
            f"{len(states)} alarms",
        )


def _story(story: Narrator, world: World, workdir: Path) -> None:
    aws, openai_api = world.aws, world.openai_api
    assert world.provisioned is not None
    secrets = aws.client("secretsmanager")
    probe = OpenAIKeyProbe(OpenAITransport(openai_api.base_url))
    monitor = world.provisioned.workers[f"keyrot-{STACK}-monitor"]

    with story.step("The operator puts the admin key (read from stdin, validated, never echoed)"):
        result = world.cli("admin-key", "set", "--env", STACK, stdin=world.admin_key + "\n", columns=story.columns)
        story.output(f"keyrot admin-key set --env {STACK}", result.stdout or result.stderr)
        story.require("keyrot admin-key set succeeded", result.returncode == 0, last_line(result.stderr))
        story.expect("the admin key was not printed", world.admin_key not in result.stdout + result.stderr)

    apply_guardrails(story, world)

    with story.step("First rotation of every key, through the real rotation handler"):
        for index, key_name in enumerate(world.key_names):
            result = world.cli("rotate", "--env", STACK, "--key", key_name, columns=story.columns)
            story.output(f"keyrot rotate --env {STACK} --key {key_name}", result.stdout, last=1 if index else None)
            story.require(f"keyrot rotate {key_name}", result.returncode == 0, last_line(result.stderr))
        chat = world.secret_id(world.key_names[0])
        first = _current(secrets, chat)
        story.expect(
            "the new key is current and works",
            probe.check(first["api_key"]).status is KeyStatus.VALID,
            first["key_id"],
        )

    now = int(time.time())
    # The monitor's first run would start at this minute; start it five minutes back so the application's first
    # minutes are published too.
    aws.client("ssm").put_parameter(
        Name=state_parameter_name(STACK),
        Type="String",
        Overwrite=True,
        Value=json.dumps(
            {"version": 1, "watermark": now - now % 60 - 300, "marker": 0, "intent": None, "notified": {}}
        ),
    )
    reports: list[dict[str, Any]] = []
    with application(world, chat, workdir) as (stats_file, _stop):
        with story.step("An application (OpenAI SDK + keyrot.client.openai_client) sends requests continuously"):
            story.require(
                "the application is serving requests",
                _wait_for(lambda: _read_stats(stats_file)["sent"] >= 20, timeout=20),
                f"{_read_stats(stats_file)['sent']} sent",
            )

        with story.step("Second rotation, under load; the old key stays valid through its grace period"):
            before = _read_stats(stats_file)
            result = world.cli("rotate", "--env", STACK, "--key", world.key_names[0], columns=story.columns)
            second = _current(secrets, chat)
            promoted_at, since = _retired_since(secrets, chat, second)
            reports.append(monitor.invoke({}))
            after_promotion = time.time() - promoted_at
            story.output(f"keyrot rotate --env {STACK} --key {world.key_names[0]}", result.stdout)
            story.require("keyrot rotate under load", result.returncode == 0, last_line(result.stderr))
            story.expect(
                "during the grace period the janitor keeps the old key",
                first["key_id"] not in reports[-1]["revoked"],
                f"the monitor ran {after_promotion:.1f} s after {since}; the grace is {GRACE_SECONDS} s",
            )
            story.expect(
                "the old key still works during its grace period",
                probe.check(first["api_key"]).status is KeyStatus.VALID,
            )
            story.expect(
                "the application picked up the new key within its cache TTL",
                _wait_for(lambda: second["key_id"] in _read_stats(stats_file)["key_ids"], timeout=10),
                " → ".join(_read_stats(stats_file)["key_ids"]),
            )

        with story.step("The grace period runs out; the janitor revokes the old key once it is idle"):
            window = JanitorWindow.after(
                rotated_at=promoted_at, last_used=time.time(), grace_seconds=GRACE_SECONDS, quiet_seconds=QUIET_SECONDS
            )
            janitor = run_until_revoked(monitor.invoke, first["key_id"], window)
            reports.extend(janitor.reports)
            story.expect(
                "once the grace was over and the key idle, the janitor revoked it",
                janitor.revoked,
                f"{first['key_id']}, on the {_ordinal(janitor.runs)} scheduled run after the grace period",
            )
            if janitor.runs > 1:
                story.say(
                    f"[dim]The janitor revokes a key only once it has been idle for the quiet window ({QUIET_SECONDS} "
                    "s here), and OpenAI reports usage by the minute: a key counts as in use until the end of the "
                    "minute of its last request. The earlier runs rightly kept it.[/]"
                )
            story.expect("OpenAI now rejects the old key", probe.check(first["api_key"]).status is KeyStatus.DEAD)
            during = _read_stats(stats_file)
            story.expect(
                "no request failed during the rotations",
                during["failed"] == 0,
                f"{during['sent'] - before['sent']} requests since the second rotation, {during['failed']} failed",
            )

        with story.step("A usage spike, and a script using a hand-made key keyrot does not manage"):
            inbox = OnCallInbox.subscribe(aws, STACK)
            spend_before = gauge(aws, "SpendTodayUSD", {"Environment": STACK})
            (workdir / "app.stop.burst").write_text("300")
            rogue_id, rogue_value = openai_api.state.add_user_key(world.project_id, name="laptop script")
            rogue = openai.OpenAI(api_key=rogue_value, base_url=openai_api.base_url, max_retries=0)
            for _ in range(25):
                rogue.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            story.expect("the spike was sent", _wait_for(lambda: _read_stats(stats_file)["burst"] >= 300, timeout=20))
            time.sleep(1.0)
            reports.append(monitor.invoke({}))
            story.expect(
                "the monitor found the unmanaged key",
                rogue_id in reports[-1]["unmanaged_keys"],
                f"{rogue_id}, a user's key made in the dashboard",
            )
            notes = inbox.drain()
            for note in notes:
                story.notification(note.subject, note.headline())
            story.expect("on-call was notified about the unmanaged key", any(rogue_id in n.subject for n in notes))
            story.expect(
                "no notification contains key material",
                not any(value in json.dumps([n.raw for n in notes]) for value in openai_api.state.minted_values),
            )
            spend_after = gauge(aws, "SpendTodayUSD", {"Environment": STACK})
            story.expect(
                "the spend metric shows the spike and the script's requests",
                spend_after > spend_before,
                f"SpendTodayUSD {spend_before:.6f} → {spend_after:.6f} USD",
            )
            story.say(f"[dim]{_usage_published(reports)}[/]")
    stats = _read_stats(stats_file)

    admin = rotate_admin_key(story, world, monitor.invoke)
    notes += tripwire(story, world, monitor.invoke, inbox, admin.ids)
    notes += guardrails_drift(story, world, inbox).notes

    with story.step("Summary"):
        _summary(story, world, stats, len(notes), admin)
        story.expect(
            "zero failed requests over the whole run",
            stats["failed"] == 0 and stats["sent"] > 0,
            f"{stats['sent']} sent, {stats['failed']} failed"
            + (f": {', '.join(f'{k} ×{v}' for k, v in stats['errors'].items())}" if stats["errors"] else ""),
        )
        result = world.cli("status", "--env", STACK, columns=story.columns)
        story.output(f"keyrot status --env {STACK}", result.stdout)
        story.say(
            "[dim]Alarm states: INSUFFICIENT_DATA is what a new alarm shows until CloudWatch evaluates it; "
            "nothing evaluates alarms in the emulator.[/]"
        )
        story.expect("keyrot status works", result.returncode == 0, last_line(result.stderr))
        story.expect(
            "keyrot status shows no key material",
            not any(value in result.stdout for value in openai_api.state.minted_values),
        )


def _usage_published(reports: list[dict[str, Any]]) -> str:
    datums = sum(int(report.get("usage_datums") or 0) for report in reports)
    if datums:
        return (
            f"Per-key usage (requests, tokens) is published for each minute once it has closed: {datums} datapoints "
            f"over {len(reports)} monitor runs; the spike's minute follows on a later run."
        )
    return (
        "Per-key usage (requests, tokens) is published for each minute once it has closed; no minute with usage has "
        "closed yet in this run (`make sandbox` and its `tick` show it a minute later)."
    )


def _summary(story: Narrator, world: World, stats: dict[str, Any], notifications: int, admin: AdminRotations) -> None:
    accounts = world.openai_api.state.service_accounts.values()
    minted = sum(1 for account in accounts if account.name.startswith("keyrot:"))
    revoked = sum(1 for account in accounts if account.name.startswith("keyrot:") and account.deleted_at is not None)
    story.outcome.figures.update(
        requests_sent=stats["sent"],
        requests_failed=stats["failed"],
        keys_minted=minted,
        keys_revoked=revoked,
        notifications=notifications,
        key_ids_served=stats["key_ids"],
        admin_key_ids=admin.rotated,
        admin_keys_deleted=admin.deleted,
    )
    table = Table(show_header=True, header_style="bold")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("requests sent by the application", str(stats["sent"]))
    table.add_row("requests failed (target 0)", str(stats["failed"]))
    table.add_row("keys minted", str(minted))
    table.add_row("keys revoked", str(revoked))
    table.add_row("admin keys minted by keyrot rotate --admin", str(len(admin.rotated)))
    table.add_row("admin keys deleted by the scheduled cleanup", str(len(admin.deleted)))
    table.add_row("notifications to on-call", str(notifications))
    story.console.print(table)


def _current(secrets: Any, secret_id: str) -> dict[str, Any]:
    value = secrets.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")["SecretString"]
    return dict(json.loads(value))


def _retired_since(secrets: Any, secret_id: str, current: dict[str, Any]) -> tuple[float, str]:
    """When the previous key's grace began, as the janitor counts it: the promotion of the current version (its
    `keyrot:promoted` record), else the minting of the current key. Returns (epoch seconds, what that moment is)."""
    tags = {tag["Key"]: tag["Value"] for tag in secrets.describe_secret(SecretId=secret_id).get("Tags", [])}
    version, _, seconds = tags.get(TAG_PROMOTED, "").rpartition("@")
    current_version = secrets.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")["VersionId"]
    if seconds.isdigit() and version == current_version:
        return float(seconds), "the new key was promoted"
    return datetime.fromisoformat(current["created_at"]).timestamp(), "the new key was minted"


def _alarm_states(aws: AwsEmulator) -> dict[str, str]:
    pages = aws.client("cloudwatch").get_paginator("describe_alarms").paginate(AlarmNamePrefix=f"keyrot-{STACK}-")
    return {alarm["AlarmName"]: alarm["StateValue"] for page in pages for alarm in page.get("MetricAlarms", [])}


def _ordinal(number: int) -> str:
    return {1: "first", 2: "second", 3: "third"}.get(number, f"{number}th")
