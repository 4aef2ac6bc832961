"""The rehearsal's provisioning does what `pulumi up` does with a deploy-time invocation (the guardrails apply), and
its admin-key, tripwire and guardrails chapters happen for real: judged from the stand-in's state, SNS and CloudWatch.

The dev stack creates its admin-key secret empty, so the first update's guardrails apply cannot read an admin key: it
is kept pending, as `pulumi up` would stop there, and nothing is claimed applied. Once the operator has put the admin
key, the next update (`Provisioned.apply_pending`) applies the declared guardrails to the OpenAI project.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from rich.console import Console

from keyrot.constants import admin_secret_name, guardrails_parameter_name
from keyrot.secret_model import AdminCredentials
from lab.demo.admin_key import AdminRotations, rotate_admin_key
from lab.demo.guardrails import PERSON as DRIFT_PERSON
from lab.demo.guardrails import DriftCheck, apply_guardrails, guardrails_drift
from lab.demo.inbox import Notification, OnCallInbox
from lab.demo.narration import Narrator, Outcome
from lab.demo.readings import admin_credentials, gauge
from lab.demo.tripwire import PERSON as TRIPWIRE_PERSON
from lab.demo.tripwire import tripwire
from lab.demo.world import STACK, World, emulated_world, provision_stack
from lab.openai_standin.state import AdminKey

pytestmark = pytest.mark.timeout(300)


def test_the_guardrails_apply_waits_for_the_admin_key_then_applies_the_declared_document() -> None:
    with emulated_world() as world:
        # GIVEN the dev stack provisioned before any admin key was put
        provisioned = provision_stack(world)
        # THEN the apply is pending with the function's own error, and the project's guardrails are untouched
        (pending,) = provisioned.pending
        assert pending.function_name == f"keyrot-{STACK}-guardrails" and pending.event["action"] == "apply"
        assert "holds no value" in pending.error
        assert world.openai_api.state.guardrails_for(world.project_id).spend_limit_cents is None
        assert not provisioned.unsupported
        # WHEN the operator puts the admin key and the stack is updated again
        stored = world.cli("admin-key", "set", "--env", STACK, stdin=world.admin_key + "\n")
        assert stored.returncode == 0, stored.stderr
        (result,) = provisioned.apply_pending().values()
        # THEN the declared document is applied, and nothing is pending
        assert result["action"] == "apply" and result["changes"]
        assert not provisioned.pending
        parameter = world.aws.client("ssm").get_parameter(Name=guardrails_parameter_name(STACK))["Parameter"]
        declared = json.loads(parameter["Value"])
        assert world.openai_api.state.guardrails_for(world.project_id).spend_limit_cents == round(
            declared["spendLimitUsd"] * 100
        )


# --- the rehearsal's admin-key, tripwire and guardrails chapters, checked against the stand-in and SNS themselves ---


@dataclass
class Chapters:
    """The chapters run once on a provisioned dev stack; what the tests read off it."""

    world: World
    outcome: Outcome
    narration: str
    admin: AdminRotations
    drift: DriftCheck
    witness: list[Notification]  # every message the on-call topic delivered to a queue only the tests read
    # Read from the emulator before the tests run (each test's AWS sandbox points moto at another account)
    admin_secret: AdminCredentials
    drift_gauge: float


@pytest.fixture(scope="module")
def chapters() -> Iterator[Chapters]:
    with emulated_world() as world:
        # GIVEN the dev stack provisioned, the admin key put, and the monitor running on its schedule
        provision_stack(world)
        assert world.provisioned is not None
        stored = world.cli("admin-key", "set", "--env", STACK, stdin=world.admin_key + "\n")
        assert stored.returncode == 0, stored.stderr
        # a queue of the test's own on the on-call topic: what SNS really published, whatever the narration says
        witness = OnCallInbox.subscribe(world.aws, STACK, queue="keyrot-{stack}-test-witness")
        monitor = world.provisioned.workers[f"keyrot-{STACK}-monitor"].invoke
        monitor({})
        # WHEN the rehearsal's chapters run: guardrails applied, the admin key rotated twice, a key made by hand with
        # a hand-made admin key, a rate limit raised in the console
        out, outcome = io.StringIO(), Outcome()
        story = Narrator(Console(file=out, width=120, soft_wrap=True), outcome)
        inbox = OnCallInbox.subscribe(world.aws, STACK)
        apply_guardrails(story, world)
        admin = rotate_admin_key(story, world, monitor)
        tripwire(story, world, monitor, inbox, admin.ids)
        drift = guardrails_drift(story, world, inbox)
        secret = admin_credentials(world.aws.client("secretsmanager"), admin_secret_name(STACK))
        drifted = gauge(world.aws, "GuardrailDrift", {"Environment": STACK})
        yield Chapters(world, outcome, out.getvalue(), admin, drift, witness.drain(), secret, drifted)


def _admin_key(world: World, key_id: str) -> AdminKey:
    return next(key for key in world.openai_api.state.admin_keys.values() if key.id == key_id)


def test_every_check_of_the_chapters_held(chapters: Chapters) -> None:
    # THEN each narrated check passed (the story's own verdicts; the tests below judge the world itself)
    assert chapters.outcome.ok, chapters.outcome.failed
    assert "✗" not in chapters.narration


def test_the_admin_key_rotation_leaves_the_new_key_current_and_the_old_one_rejected(chapters: Chapters) -> None:
    world, admin = chapters.world, chapters.admin
    first, second = admin.rotated
    state = world.openai_api.state
    # THEN the secret holds the second minted key, OpenAI accepts it and rejects the first (deleted by the cleanup)
    current = chapters.admin_secret
    assert current.key_id == second and len({admin.bootstrap_id, first, second}) == 3
    assert state.authenticate(current.admin_key).kind == "admin"
    assert _admin_key(world, first).revoked and state.authenticate(_admin_key(world, first).value).kind == "invalid"
    assert admin.deleted == [first]
    # AND the bootstrap key an owner made is kept, as Pulumi.dev.yaml's deleteBootstrapKey: false says
    assert admin.bootstrap_id is not None
    assert state.authenticate(_admin_key(world, admin.bootstrap_id).value).kind == "admin"


def test_on_call_is_told_who_made_an_admin_key_by_hand(chapters: Chapters) -> None:
    # THEN SNS published an admin-key notification naming the person, not keyrot
    told = [n for n in chapters.witness if "Admin key created outside keyrot" in n.subject]
    assert told and all(TRIPWIRE_PERSON in n.message for n in told)


def test_on_call_is_told_which_admin_key_made_a_key_in_the_project(chapters: Chapters) -> None:
    # GIVEN the admin key the person made, and the key made with it (as the stand-in records them)
    state = chapters.world.openai_api.state
    made_with = next(key.id for key in state.admin_keys.values() if key.owner_email == TRIPWIRE_PERSON)
    with state.lock:
        key_id = next(key.id for key in state.keys.values() if key.owner_name == "casey-bot")
    # THEN SNS published a notification about that key naming the admin key that made it
    assert any(key_id in n.subject and f"API key {made_with}" in n.message for n in chapters.witness)


def test_keyrots_own_admin_key_rotations_are_never_notified(chapters: Chapters) -> None:
    # THEN no published notification names an admin key keyrot held or minted (its own rotations and cleanup)
    assert chapters.admin.ids and len(chapters.admin.ids) == 3
    assert not [n.subject for n in chapters.witness for key in chapters.admin.ids if key in n.subject + n.message]


def test_the_console_change_is_found_as_drift_naming_who_and_left_as_notify_says(chapters: Chapters) -> None:
    world = chapters.world
    # THEN the guardrails function's scheduled check reported the changed rate limit with its actor
    report = chapters.drift.result["drift"]
    (found,) = [d for d in report["drift"] if d["setting"] == "rateLimits.gpt-4o-mini.max_requests_per_1_minute"]
    assert (found["declared"], found["actual"], found["actor"]) == ("500", "5000", DRIFT_PERSON)
    # AND with enforce: notify nothing was put back: OpenAI's project keeps the console's value
    assert report["enforce"] == "notify" and chapters.drift.result["changes"] == []
    limit = world.openai_api.state.guardrails_for(world.project_id).rate_limits["rl-gpt-4o-mini"]
    assert limit.values["max_requests_per_1_minute"] == 5000
    # AND the drift gauge the alarm watches was published
    assert chapters.drift_gauge >= 1


def test_on_call_is_told_about_the_drift_naming_who_changed_the_limit(chapters: Chapters) -> None:
    # THEN SNS published the guardrails drift notification, naming the person who changed the limit in the console
    told = [n for n in chapters.witness if "guardrails drift" in n.subject]
    assert told and all(f"changed by {DRIFT_PERSON}" in n.message for n in told)
