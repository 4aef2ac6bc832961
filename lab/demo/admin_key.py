"""The rehearsal's admin-key chapter: the organization admin key rotates through `keyrot rotate --admin` (the real CLI,
the admin rotation function behind Secrets Manager), twice as a month apart, and the scheduled cleanup deletes keyrot's
previous admin key once its grace is over: OpenAI then rejects it, the new one works, and `keyrot status` names it.

The dev stack keeps the bootstrap key an owner made in the console (adminKeyRotation.deleteBootstrapKey: false), so the
first rotation leaves it live and the second shows a deletion. The monitor runs between the two rotations, as its
five-minute schedule does in the month between them.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from keyrot.constants import admin_secret_name
from lab.demo.narration import Narrator
from lab.demo.readings import admin_credentials, admin_key_accepted, last_line
from lab.demo.schedule import JanitorWindow, run_until, scheduled_event
from lab.demo.world import ADMIN_GRACE_SECONDS, STACK, World

ADMIN_FUNCTION = f"keyrot-{STACK}-admin-rotation"
CLEANUP_SCHEDULE = f"keyrot-{STACK}-admin-key-cleanup"


@dataclass
class AdminRotations:
    """What the chapter saw, by id (never a value): the bootstrap key, the current key after each rotation, and what
    the scheduled cleanup deleted."""

    bootstrap_id: str | None = None
    rotated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    @property
    def ids(self) -> set[str]:
        """Every admin key keyrot held or minted in this chapter."""
        return {key_id for key_id in (self.bootstrap_id, *self.rotated) if key_id}


def rotate_admin_key(story: Narrator, world: World, monitor: Callable[[dict[str, Any]], Any]) -> AdminRotations:
    """Two narrated steps: the first admin rotation, then the next one and the cleanup. Returns the ids seen."""
    secrets = world.aws.client("secretsmanager")
    secret = admin_secret_name(STACK)
    base_url = world.openai_api.base_url
    seen = AdminRotations()

    with story.step("The admin key rotates too: keyrot rotate --admin replaces the key an owner made with its own"):
        bootstrap = admin_credentials(secrets, secret)
        seen.bootstrap_id = bootstrap.key_id
        _rotate(story, world)
        first = admin_credentials(secrets, secret)
        seen.rotated.append(first.key_id or "")
        story.expect(
            "a new admin key is current, and OpenAI accepts it",
            first.key_id not in (None, bootstrap.key_id) and admin_key_accepted(base_url, first.admin_key),
            f"{bootstrap.key_id} → {first.key_id}",
        )
        story.expect(
            "the bootstrap key an owner made is kept live (deleteBootstrapKey: false in Pulumi.dev.yaml)",
            admin_key_accepted(base_url, bootstrap.admin_key),
            f"{bootstrap.key_id}",
        )

    with story.step("A month later the admin key rotates again; the scheduled cleanup deletes keyrot's previous one"):
        monitor({})  # the monitor's five-minute schedule runs all month, with whichever admin key is current
        story.say("[dim]Meanwhile the monitor has run on its schedule, reading the admin key per invocation.[/]")
        _rotate(story, world, last=3)
        second = admin_credentials(secrets, secret)
        seen.rotated.append(second.key_id or "")
        rotated_at = time.time()
        cleanup = world.provisioned.workers[ADMIN_FUNCTION] if world.provisioned else None
        assert cleanup is not None
        window = JanitorWindow(rotated_at + ADMIN_GRACE_SECONDS, rotated_at + ADMIN_GRACE_SECONDS)
        runs = run_until(
            cleanup.invoke,
            scheduled_event(world.aws, CLEANUP_SCHEDULE),
            lambda result: any(entry.startswith(f"{first.key_id} ") for entry in result.get("deleted") or []),
            window,
        )
        seen.deleted = [entry.split(" ", 1)[0] for result in runs.results for entry in result.get("deleted") or []]
        story.expect(
            "once its grace was over, the scheduled cleanup deleted keyrot's previous admin key",
            runs.done,
            f"{first.key_id}, {ADMIN_GRACE_SECONDS} s after the promotion of {second.key_id}",
        )
        story.expect("OpenAI now rejects the previous admin key", not admin_key_accepted(base_url, first.admin_key))
        story.expect("the new admin key works", admin_key_accepted(base_url, second.admin_key), f"{second.key_id}")
        status = world.cli("status", "--env", STACK, columns=story.columns)
        lines = _admin_lines(status.stdout)
        story.output(f"keyrot status --env {STACK}   (its admin key lines)", "\n".join(lines))
        story.expect(
            "keyrot status shows the new admin key",
            status.returncode == 0 and bool(lines) and f"{second.key_id}," in lines[0],
            last_line(status.stderr) if status.returncode else "",
        )
    return seen


def _rotate(story: Narrator, world: World, *, last: int | None = None) -> None:
    result = world.cli("rotate", "--admin", "--env", STACK, columns=story.columns)
    story.output(f"keyrot rotate --admin --env {STACK}", result.stdout, last=last)
    story.require("keyrot rotate --admin", result.returncode == 0, last_line(result.stderr))


def _admin_lines(status: str) -> list[str]:
    """The admin key's lines of `keyrot status` (its line, and the previous admin key's under it)."""
    lines = status.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Admin key")), None)
    if start is None:
        return []
    return [lines[start], *itertools.takewhile(lambda line: line.startswith("  "), lines[start + 1 :])]
