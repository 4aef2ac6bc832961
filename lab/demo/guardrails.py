"""The rehearsal's guardrails chapter: the deploy-time apply that the first `pulumi up` left pending (no admin key yet)
runs as the next update does, `keyrot guardrails` shows the project in step; later a person raises a rate limit in the
OpenAI console, and the guardrails function's scheduled check finds the drift, names who made it, and does what the
stack's `enforce` says (dev: notify, so the console's value stays until `pulumi up`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rich.markup import escape

from keyrot.constants import guardrails_parameter_name
from lab.demo.inbox import Notification, OnCallInbox
from lab.demo.narration import Narrator
from lab.demo.readings import gauge, last_line
from lab.demo.schedule import scheduled_event
from lab.demo.world import STACK, World

GUARDRAILS_FUNCTION = f"keyrot-{STACK}-guardrails"
CHECK_SCHEDULE = f"keyrot-{STACK}-guardrails-check"
PERSON = "dana@example.com"
PERSON_ID = "user_dana"


@dataclass(frozen=True)
class RateLimit:
    """One declared rate limit: a model's field and its value."""

    model: str
    field: str
    value: int

    @property
    def setting(self) -> str:
        return f"rateLimits.{self.model}.{self.field}"


def declared_document(world: World) -> dict[str, Any]:
    """The guardrails the program declared (the SSM parameter the function trusts)."""
    parameter = world.aws.client("ssm").get_parameter(Name=guardrails_parameter_name(STACK))["Parameter"]
    return dict(json.loads(parameter["Value"]))


def actual_rate_limit(world: World, limit: RateLimit) -> int | None:
    """What OpenAI's project has for `limit` now (the stand-in's own record, not keyrot's reading of it)."""
    rails = world.openai_api.state.guardrails_for(world.project_id)
    found = rails.rate_limits.get(f"rl-{limit.model}")
    return None if found is None else found.values.get(limit.field)


def apply_guardrails(story: Narrator, world: World) -> dict[str, Any]:
    """One narrated step: the pending apply, then `keyrot guardrails`. Returns the apply's result."""
    provisioned = world.provisioned
    assert provisioned is not None
    with story.step("The next pulumi up applies the declared OpenAI guardrails, now that the admin key is there"):
        for pending in provisioned.pending:
            stopped = f"The first update stopped at {pending.name} ({pending.function_name}): {pending.error}"
            story.say(f"[dim]{escape(stopped)}[/]")
        results = provisioned.apply_pending()
        result: dict[str, Any] = next((r for r in results.values() if r.get("action") == "apply"), {})
        for change in result.get("changes") or []:
            story.say(f"applied: {change}")
        story.require("the guardrails apply ran, and nothing is left pending", bool(result) and not provisioned.pending)
        declared = declared_document(world)
        limits = _rate_limits(declared)
        rails = world.openai_api.state.guardrails_for(world.project_id)
        story.expect(
            "OpenAI's project has the declared rate limits and hard spend limit",
            bool(limits)
            and all(actual_rate_limit(world, limit) == limit.value for limit in limits)
            and rails.spend_limit_cents == round(float(declared["spendLimitUsd"]) * 100),
            ", ".join(f"{limit.setting} {limit.value}" for limit in limits),
        )
        shown = world.cli("guardrails", "--env", STACK, columns=story.columns)
        story.output(f"keyrot guardrails --env {STACK}", shown.stdout)
        story.expect("keyrot guardrails finds the project in step (exit 0)", shown.returncode == 0)
    return result


@dataclass(frozen=True)
class DriftCheck:
    """The scheduled check's result (the function's own answer) and what on-call received meanwhile."""

    result: dict[str, Any]
    notes: list[Notification]


def guardrails_drift(story: Narrator, world: World, inbox: OnCallInbox) -> DriftCheck:
    """One narrated step: a console change, the scheduled check, `keyrot guardrails`."""
    provisioned = world.provisioned
    assert provisioned is not None
    with story.step("Someone raises a rate limit in the OpenAI console; the scheduled guardrails check finds it"):
        limit = _rate_limits(declared_document(world))[0]
        raised = limit.value * 10
        console = world.openai_api.console.as_user(PERSON, user_id=PERSON_ID)
        console.update_rate_limit(world.project_id, limit.model, **{limit.field: raised})
        story.say(f"{PERSON} sets {limit.setting} to {raised} in the OpenAI dashboard (declared: {limit.value})")
        check = provisioned.workers[GUARDRAILS_FUNCTION].invoke(scheduled_event(world.aws, CHECK_SCHEDULE))
        report = check.get("drift") or {}
        for drift in report.get("drift") or []:
            who = f" (changed by {drift['actor']})" if drift.get("actor") else ""
            story.say(f"drift: {drift['setting']}: declared {drift['declared']}, actual {drift['actual']}{who}")
        story.expect(
            "the scheduled check found the console change as drift, naming who made it",
            any(
                drift["setting"] == limit.setting and drift["actual"] == str(raised) and drift.get("actor") == PERSON
                for drift in report.get("drift") or []
            ),
            PERSON,
        )
        drifted = gauge(world.aws, "GuardrailDrift", {"Environment": STACK})
        story.expect(
            "the check published GuardrailDrift (the dashboard's drift gauge)", drifted >= 1, f"{drifted:g} setting(s)"
        )
        _enforced(story, world, limit, raised, report, check)
        notes = inbox.drain()
        for note in notes:
            story.notification(note.subject, note.headline())
        story.expect(
            "on-call was told about the drift, naming who made the change",
            any("guardrails drift" in n.subject and f"changed by {PERSON}" in n.message for n in notes),
            PERSON,
        )
        shown = world.cli("guardrails", "--env", STACK, columns=story.columns)
        story.output(f"keyrot guardrails --env {STACK}", shown.stdout)
        expected_exit = 0 if report.get("enforce") == "restore" else 1
        story.expect(
            f"keyrot guardrails shows declared against actual (exit {expected_exit})",
            shown.returncode == expected_exit and (expected_exit == 0 or PERSON in shown.stdout),
            last_line(shown.stderr) if shown.returncode not in (0, 1) else "",
        )
    return DriftCheck(check, notes)


def _enforced(
    story: Narrator, world: World, limit: RateLimit, raised: int, report: dict[str, Any], check: dict[str, Any]
) -> None:
    """What the stack's `enforce` promises: restore puts the declared value back, notify changes nothing."""
    actual = actual_rate_limit(world, limit)
    if report.get("enforce") == "restore":
        story.expect(
            "enforce: restore put the declared value back",
            actual == limit.value and bool(check.get("changes")),
            f"{limit.setting} {raised} → {actual}",
        )
        return
    story.expect(
        f"enforce: {report.get('enforce')} (Pulumi.{STACK}.yaml): the check changed nothing; `pulumi up` puts "
        f"{limit.value} back",
        actual == raised and not check.get("changes"),
        f"{limit.setting} stays {actual} until then",
    )


def _rate_limits(declared: dict[str, Any]) -> list[RateLimit]:
    return [
        RateLimit(model, field, int(value))
        for model, fields in sorted((declared.get("rateLimits") or {}).items())
        for field, value in sorted(fields.items())
    ]
