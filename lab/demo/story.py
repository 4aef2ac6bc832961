"""The rehearsal's story, narrated and checked: every step must happen as described or the run fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import yaml
from rich.console import Console
from rich.table import Table

from keyrot.constants import state_parameter_name
from keyrot.openai_admin import KeyStatus, OpenAIKeyProbe, OpenAITransport
from lab.demo.emulator import AwsEmulator, running_emulator
from lab.demo.provision import NOT_EMULATED, Provisioned, provision
from lab.openai_standin import OpenAIStandIn
from lab.pulumi_program import REPO_ROOT

STACK = "dev"
GRACE_SECONDS = 8
QUIET_SECONDS = 3
# Time compressed so the story fits in a minute: these replace the stack's hours for the rehearsal only.
TIME_COMPRESSION = {
    f"keyrot-{STACK}-rotation": {"KEYROT_VALIDATION_DELAY_SECONDS": "0.2"},
    f"keyrot-{STACK}-monitor": {
        "KEYROT_GRACE_PERIOD_SECONDS": str(GRACE_SECONDS),
        "KEYROT_MAX_GRACE_PERIOD_SECONDS": "120",
        "KEYROT_QUIET_WINDOW_SECONDS": str(QUIET_SECONDS),
        "KEYROT_SETTLE_DELAY_SECONDS": "0",
        "KEYROT_VALIDATION_DELAY_SECONDS": "0.2",
    },
}


@dataclass
class Outcome:
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(passed for _, passed, _ in self.checks)


class Narrator:
    def __init__(self, console: Console, outcome: Outcome) -> None:
        self.console = console
        self.outcome = outcome
        self.started = time.monotonic()

    def chapter(self, title: str) -> None:
        self.console.print(f"\n[bold cyan]▶ {title}[/]  [dim]({time.monotonic() - self.started:.1f} s)[/]")

    def say(self, text: str) -> None:
        self.console.print(f"  {text}")

    def expect(self, what: str, passed: bool, detail: str = "") -> bool:
        self.outcome.checks.append((what, passed, detail))
        mark = "[green]✓[/]" if passed else "[bold red]✗[/]"
        self.console.print(f"  {mark} {what}" + (f" [dim]({detail})[/]" if detail else ""))
        return passed


@dataclass
class Cli:
    """The operator's `keyrot` command, run as a separate process against the emulator."""

    environment: dict[str, str]

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", "from keyrot.cli import main; main()", *args]
        return subprocess.run(  # noqa: S603 - our own interpreter and CLI
            command, input=stdin, capture_output=True, text=True, env=self.environment, timeout=120, check=False
        )


@contextmanager
def application(aws: AwsEmulator, secret: str, base_url: str, workdir: Path) -> Iterator[tuple[Path, Path]]:
    """Start the application process; yield (stats file, stop file); stop it however the block ends."""
    stats, stop = workdir / "app-stats.json", workdir / "app.stop"
    env = {**_base_env(), **aws.process_environment()}
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "lab.demo.app", secret, base_url, str(stats), str(stop)],
        env=env,
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


def _base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR")
    return {name: os.environ[name] for name in keep if name in os.environ}


def _read_stats(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, ValueError):
        return {"sent": 0, "failed": 0, "errors": {}, "key_ids": [], "burst": 0}


def _wait_for(condition: Any, timeout: float, interval: float = 0.1) -> bool:
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
    stack_file = yaml.safe_load((REPO_ROOT / f"Pulumi.{STACK}.yaml").read_text())["config"]
    project_id = stack_file["keyrot:openaiProjectId"]
    key_names = [key["name"] for key in stack_file["keyrot:keys"]]
    with (
        tempfile.TemporaryDirectory(prefix="keyrot-rehearsal-") as scratch,
        running_emulator() as aws,
        OpenAIStandIn() as openai_api,
    ):
        workdir = Path(scratch)
        story.chapter("An OpenAI organization and an AWS account, both on 127.0.0.1")
        openai_api.state.add_project(project_id, name=f"{STACK} project")
        admin_key = openai_api.state.add_admin_key(name="keyrot rehearsal")
        story.say(f"AWS emulator (moto) at {aws.endpoint_url}; OpenAI stand-in at {openai_api.base_url}")
        story.say(f"OpenAI project {project_id} (from Pulumi.{STACK}.yaml) with an admin key for keyrot")

        provisioned = _provision(story, aws, openai_api.base_url)
        try:
            _story(story, aws, openai_api, provisioned, admin_key, project_id, key_names, workdir)
        finally:
            for worker in provisioned.workers.values():
                worker.stop()
    outcome.figures["seconds"] = round(time.monotonic() - story.started, 1)
    return outcome


def _provision(story: Narrator, aws: AwsEmulator, base_url: str) -> Provisioned:
    story.chapter(f"Provision the {STACK} stack exactly as the Pulumi program declares it")
    provisioned = provision(
        aws, stack=STACK, overrides={"keyrot:openaiBaseUrl": base_url}, function_overrides=TIME_COMPRESSION
    )
    table = Table(title=None, show_header=True, header_style="bold")
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
    story.say("[dim]Time compressed for the rehearsal: grace 6 h → 8 s, quiet window 30 min → 3 s, settle 0 s.[/]")
    rotation = provisioned.workers.get(f"keyrot-{STACK}-rotation")
    story.expect(
        "nothing the program declared was left out", not provisioned.unsupported, ", ".join(provisioned.unsupported)
    )
    story.expect(
        "the rotation function runs from the built Lambda archive",
        rotation is not None
        and "/keyrot/__init__.py" in rotation.loaded_from
        and "lambdas/keyrot" not in rotation.loaded_from,
        rotation.loaded_from if rotation else "no rotation function",
    )
    aws.rotation.wait()
    configured = [event for event in aws.rotation.events if event.name == "RotationSucceeded"]
    story.expect("rotation is configured on every key without rotating yet (no admin key)", len(configured) >= 2)
    return provisioned


def _story(
    story: Narrator,
    aws: AwsEmulator,
    openai_api: OpenAIStandIn,
    provisioned: Provisioned,
    admin_key: str,
    project_id: str,
    key_names: list[str],
    workdir: Path,
) -> None:
    secrets = aws.client("secretsmanager")
    cli = Cli({**_base_env(), **aws.process_environment(), "OPENAI_BASE_URL": openai_api.base_url})
    probe = OpenAIKeyProbe(OpenAITransport(openai_api.base_url))
    monitor = provisioned.workers[f"keyrot-{STACK}-monitor"]

    story.chapter("The operator puts the admin key (read from stdin, validated, never echoed)")
    result = cli("admin-key", "set", "--env", STACK, stdin=admin_key + "\n")
    story.say(result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr.strip())
    story.expect("keyrot admin-key set succeeded", result.returncode == 0, result.stderr.strip()[:200])
    story.expect("the admin key was not printed", admin_key not in result.stdout + result.stderr)

    story.chapter("First rotation of every key, through the real rotation handler")
    for key_name in key_names:
        result = cli("rotate", "--env", STACK, "--key", key_name)
        story.say(f"[dim]{_last_lines(result.stdout, 2)}[/]")
        story.expect(f"keyrot rotate {key_name}", result.returncode == 0, _last_lines(result.stderr, 1))
    chat = f"keyrot/{STACK}/{key_names[0]}"
    first = _current(secrets, chat)
    story.expect(
        "the new key is current and works", probe.check(first["api_key"]).status is KeyStatus.VALID, first["key_id"]
    )

    story.chapter("An application (OpenAI SDK + KeyProvider) sends requests continuously")
    now = int(time.time())
    aws.client("ssm").put_parameter(
        Name=state_parameter_name(STACK),
        Type="String",
        Overwrite=True,
        Value=json.dumps(
            {"version": 1, "watermark": now - now % 60 - 300, "marker": 0, "intent": None, "notified": {}}
        ),
    )
    with application(aws, chat, openai_api.base_url, workdir) as (stats_file, _stop):
        story.expect(
            "the application is serving requests",
            _wait_for(lambda: _read_stats(stats_file)["sent"] >= 20, timeout=20),
            f"{_read_stats(stats_file)['sent']} sent",
        )

        story.chapter("Second rotation, under load")
        before = _read_stats(stats_file)
        result = cli("rotate", "--env", STACK, "--key", key_names[0])
        story.say(f"[dim]{_last_lines(result.stdout, 2)}[/]")
        story.expect("keyrot rotate under load", result.returncode == 0, _last_lines(result.stderr, 1))
        second = _current(secrets, chat)
        story.expect(
            "the application picked up the new key within its cache TTL",
            _wait_for(lambda: second["key_id"] in _read_stats(stats_file)["key_ids"], timeout=10),
            " → ".join(_read_stats(stats_file)["key_ids"]),
        )
        rotated_at = time.time()

        story.chapter("The grace period runs out; the janitor revokes the old key once it is idle")
        early = monitor.invoke({})
        story.expect("during the grace period the janitor keeps the old key", not early["revoked"])
        story.expect(
            "the old key still works during its grace period", probe.check(first["api_key"]).status is KeyStatus.VALID
        )
        time.sleep(max(0.0, rotated_at + GRACE_SECONDS + QUIET_SECONDS + 1 - time.time()))
        late = monitor.invoke({})
        story.expect(
            "after the grace period the janitor revoked the old key",
            first["key_id"] in late["revoked"],
            f"revoked {late['revoked']}",
        )
        story.expect("OpenAI now rejects the old key", probe.check(first["api_key"]).status is KeyStatus.DEAD)
        during_rotations = _read_stats(stats_file)
        story.expect(
            "no request failed during the rotations",
            during_rotations["failed"] == 0,
            f"{during_rotations['sent'] - before['sent']} requests during the second rotation",
        )

        story.chapter("A usage spike, and a script using a hand-made key keyrot does not manage")
        inbox = _subscribe_inbox(aws)
        spend_before = _gauge(aws, "SpendTodayUSD", {"Environment": STACK})
        (workdir / "app.stop.burst").write_text("300")
        rogue_id, rogue_value = openai_api.state.add_user_key(project_id, name="laptop script")
        rogue = openai.OpenAI(api_key=rogue_value, base_url=openai_api.base_url, max_retries=0)
        for _ in range(25):
            rogue.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        story.expect("the spike was sent", _wait_for(lambda: _read_stats(stats_file)["burst"] >= 300, timeout=20))
        time.sleep(1.0)
        report = monitor.invoke({})
        story.expect(
            "the monitor found the unmanaged key",
            rogue_id in report["unmanaged_keys"],
            f"{report['usage_datums']} usage datapoints published",
        )
        notes = _drain(aws, inbox)
        subjects = [note["Subject"] for note in notes]
        for subject in subjects:
            story.say(f"[magenta]✉ {subject}[/]")
        story.expect("on-call was notified about the unmanaged key", any(rogue_id in s for s in subjects))
        everything = json.dumps(notes)
        story.expect(
            "no notification contains key material",
            not any(value in everything for value in openai_api.state.minted_values),
        )
        spend_after = _gauge(aws, "SpendTodayUSD", {"Environment": STACK})
        story.expect(
            "the spend metric shows the spike and the script's requests",
            spend_after > spend_before,
            f"SpendTodayUSD {spend_before:.6f} → {spend_after:.6f} USD",
        )
        story.say(
            f"[dim]Per-minute usage is published once each minute has closed: this run published "
            f"{report['usage_datums']} datapoints; the spike's minute follows on the next run.[/]"
        )
    stats = _read_stats(stats_file)

    story.chapter("Summary")
    accounts = openai_api.state.service_accounts.values()
    minted = sum(1 for account in accounts if account.name.startswith("keyrot:"))
    revoked = sum(1 for account in accounts if account.name.startswith("keyrot:") and account.deleted_at is not None)
    story.outcome.figures.update(
        requests_sent=stats["sent"],
        requests_failed=stats["failed"],
        keys_minted=minted,
        keys_revoked=revoked,
        notifications=len(notes),
        key_ids_served=stats["key_ids"],
    )
    table = Table(show_header=True, header_style="bold")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("requests sent by the application", str(stats["sent"]))
    table.add_row("requests failed (target 0)", str(stats["failed"]))
    table.add_row("keys minted", str(minted))
    table.add_row("keys revoked", str(revoked))
    table.add_row("notifications to on-call", str(len(notes)))
    story.console.print(table)
    story.expect("zero failed requests over the whole run", stats["failed"] == 0, json.dumps(stats["errors"]))
    result = cli("status", "--env", STACK)
    story.console.print(result.stdout)
    story.expect("keyrot status works", result.returncode == 0, _last_lines(result.stderr, 1))
    story.expect(
        "keyrot status shows no key material",
        not any(value in result.stdout for value in openai_api.state.minted_values),
    )


def _current(secrets: Any, secret_id: str) -> dict[str, Any]:
    value = secrets.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")["SecretString"]
    return dict(json.loads(value))


def _subscribe_inbox(aws: AwsEmulator) -> str:
    sqs, sns = aws.client("sqs"), aws.client("sns")
    queue_url = sqs.create_queue(QueueName="rehearsal-oncall-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith(f"keyrot-{STACK}-oncall"))
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return str(queue_url)


def _drain(aws: AwsEmulator, queue_url: str) -> list[dict[str, Any]]:
    sqs, found = aws.client("sqs"), []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _gauge(aws: AwsEmulator, name: str, dimensions: dict[str, str]) -> float:
    """The latest value of a gauge the monitor published."""
    from datetime import UTC, datetime, timedelta

    end = datetime.now(UTC) + timedelta(minutes=1)
    points = aws.client("cloudwatch").get_metric_statistics(
        Namespace="Keyrot",
        MetricName=name,
        StartTime=end - timedelta(hours=1),
        EndTime=end,
        Period=60,
        Statistics=["Maximum"],
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
    )["Datapoints"]
    latest = max(points, key=lambda point: point["Timestamp"], default=None)
    return float(latest["Maximum"]) if latest else 0.0


def _last_lines(text: str, count: int) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:])
