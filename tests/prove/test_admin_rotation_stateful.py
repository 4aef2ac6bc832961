"""The admin key's lifecycle as a state machine: random sequences of scheduled and emergency admin rotations, crashes
after any remote call, stalled attempts, scheduled cleanups and time passing, over moto and the OpenAI stand-in on
one manual clock. After every step:

- AWSCURRENT holds an admin key that authenticates;
- at most two keyrot admin keys of the environment are live besides those of the rotation in flight, and at most
  two for it (a twin whose create answer was lost, until the retry deletes it by name);
and after a cleanup: the previous admin key is dead once its grace has passed (if keyrot minted it, or it is the
bootstrap key and deleteBootstrapKey is on), and every other live keyrot admin key is current, pending, or younger
than any invocation; after an emergency rotation the old admin key is dead.

`make test` runs a bounded number of sequences; KEYROT_SOAK=1 runs many more, longer ones.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from keyrot.admin_rotation import AdminKeyName
from keyrot.constants import (
    ADMIN_ROTATION_TIMEOUT_SECONDS,
    CLOCK_SKEW_SECONDS,
    DEFAULT_ADMIN_KEY_GRACE_SECONDS,
    STAGE_PENDING,
)
from keyrot.errors import KeyrotError
from lab.openai_standin import ManualClock, OpenAIStandIn
from lab.remote_calls import RemoteCallLog, SimulatedCrash
from lab.rotation_driver import RotationDriver
from tests.functional.admin_rotation.world import AdminWorld
from tests.prove.faultkit import FIGURES

REGION = "us-east-1"
GRACE = DEFAULT_ADMIN_KEY_GRACE_SECONDS
ABANDONED = ADMIN_ROTATION_TIMEOUT_SECONDS + CLOCK_SKEW_SECONDS
START = 1_800_000_000
SOAK = os.environ.get("KEYROT_SOAK", "") not in ("", "0")
BOUNDED = settings(
    max_examples=200 if SOAK else 25,
    stateful_step_count=30 if SOAK else 15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


@dataclass
class Lab:
    openai: OpenAIStandIn
    clock: ManualClock
    secrets: Any
    function_secrets: Any  # the function's client in the crash rule: its calls are recorded in `log`
    log: RemoteCallLog | None = None
    sequences: int = 0
    steps: int = 0

    def after_aws_call(self, **kwargs: Any) -> None:
        if self.log is not None:
            self.log._after_aws_call(**kwargs)


LAB: Lab | None = None
_environments = itertools.count(1)


class AdminLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        assert LAB is not None
        self.lab = LAB
        self.lab.sequences += 1
        self.lab.clock.set(START)
        self.world: AdminWorld | None = None
        self.in_flight: str | None = None  # a rotation Secrets Manager has not seen succeed (it retries its token)

    @initialize(delete_bootstrap=st.booleans())
    def deploy(self, delete_bootstrap: bool) -> None:
        environment = f"adml-{next(_environments)}"
        self.world = AdminWorld.create(
            self.lab.openai,
            self.lab.secrets,
            environment=environment,
            delete_bootstrap_key=delete_bootstrap,
            validation_attempts=2,
            validation_delay_seconds=0.0,
        )

    # --- helpers ---------------------------------------------------------------------------------------------------

    @property
    def w(self) -> AdminWorld:
        assert self.world is not None
        return self.world

    def _driver(self, world: AdminWorld, crash_after: int | None) -> RotationDriver:
        if crash_after is None:
            return world.driver()
        log = RemoteCallLog()
        log.crash_after = crash_after
        self.lab.log = log
        function = replace(world, secrets=self.lab.function_secrets, session_factory=log.session)
        return RotationDriver(world.secrets, function.invoker())

    def _rotate(self, world: AdminWorld, crash_after: int | None = None) -> bool:
        """Secrets Manager's rotation: its retry of the rotation in flight first (same token), else a new one."""
        self.lab.steps += 1
        token = self.in_flight or str(uuid.uuid4())
        self.in_flight = token
        try:
            run = self._driver(world, crash_after).rotate(world.arn, token=token, max_attempts=2)
        except SimulatedCrash:
            return False
        finally:
            self.lab.log = None
        if run.succeeded or STAGE_PENDING not in world.stages().get(token, []):
            self.in_flight = None
        return run.succeeded

    def _keys_by_token(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for key in self.w.live_keyrot_keys():
            name = AdminKeyName.parse(key.name)
            assert name is not None
            found.setdefault(name.token, []).append(key.id)
        return found

    # --- rules -----------------------------------------------------------------------------------------------------

    @rule(crash=st.one_of(st.none(), st.integers(min_value=1, max_value=45)))
    def scheduled_rotation(self, crash: int | None) -> None:
        self._rotate(self.w, crash)

    @precondition(lambda self: self.in_flight is None)
    @rule()
    def emergency_rotation(self) -> None:
        # GIVEN whichever admin key is current; WHEN a rotation with no grace runs to the end
        before = self.w.current()
        if self._rotate(self.w.with_settings(grace_period_seconds=0)):
            # THEN the old admin key is dead, unless it is a human-made key kept by configuration
            minted = before.minted_by_keyrot or self.w.settings.delete_bootstrap_key
            if minted and before.key_id is not None:
                assert not self.w.authenticates(before.admin_key), "an emergency rotation left the old admin key live"

    @precondition(lambda self: self.in_flight is None)
    @rule()
    def stalled_attempt(self) -> None:
        """A rotation whose createSecret ran, then nothing (Secrets Manager retries it later, same token)."""
        self.lab.steps += 1
        driver = self.w.driver()
        token = driver.start(self.w.arn)
        self.in_flight = token
        with suppress(KeyrotError):  # refused (the previous key in its grace): retried later like any failure
            driver.step(self.w.arn, token, "createSecret")

    @rule()
    def scheduled_cleanup(self) -> None:
        self.lab.steps += 1
        self.w.cleanup()
        now = self.w.now().timestamp()
        previous, current = self.w.previous(), self.w.current()
        stages = self.w.stages()
        current_version = next(v for v, labels in stages.items() if "AWSCURRENT" in labels)
        promoted = self.w.secrets.describe_secret(SecretId=self.w.arn)
        promoted_at = _promoted_at(promoted, current_version)
        if previous is not None and previous.key_id != current.key_id and promoted_at is not None:
            due = now >= promoted_at + self.w.settings.grace_period_seconds
            deletable = previous.minted_by_keyrot or (
                self.w.settings.delete_bootstrap_key and previous.key_id is not None
            )
            if due and deletable:
                assert not self.w.authenticates(previous.admin_key), "the previous admin key outlived its grace"
        pending = self.w.pending()
        accounted = {current.key_id, previous.key_id if previous else None, pending.key_id if pending else None}
        for key in self.w.live_keyrot_keys():
            if key.id not in accounted:
                assert key.created_at >= now - ABANDONED, f"an orphan admin key survived the cleanup: {key.id}"

    @rule(seconds=st.sampled_from([30, 200, GRACE // 2, GRACE + 1, 86400]))
    def time_passes(self, seconds: int) -> None:
        self.lab.clock.advance(seconds)

    # --- invariants ------------------------------------------------------------------------------------------------

    @invariant()
    def the_current_admin_key_works(self) -> None:
        if self.world is not None:
            assert self.w.authenticates(self.w.current().admin_key), "AWSCURRENT does not authenticate"

    @invariant()
    def at_most_two_keyrot_admin_keys_besides_the_rotation_in_flight(self) -> None:
        if self.world is None:
            return
        by_token = self._keys_by_token()
        in_flight = len(by_token.pop(self.in_flight or "", []))
        others = sum(len(ids) for ids in by_token.values())
        assert others <= 2, f"{others} keyrot admin keys live besides the rotation in flight"
        assert in_flight <= 2, f"{in_flight} admin keys live for the rotation in flight"


def _promoted_at(description: dict[str, Any], version: str) -> float | None:
    tag = next((t["Value"] for t in description.get("Tags", []) if t["Key"] == "keyrot:promoted"), "")
    recorded, _, at = tag.partition("@")
    return float(at) if recorded == version and at.isdigit() else None


@pytest.fixture
def lab(aws: None) -> Iterator[Lab]:
    global LAB
    clock = ManualClock(START)
    with OpenAIStandIn(clock=clock) as openai:
        function_secrets = boto3.client("secretsmanager", region_name=REGION)
        LAB = Lab(openai, clock, boto3.client("secretsmanager", region_name=REGION), function_secrets)
        function_secrets.meta.events.register("after-call.*.*", LAB.after_aws_call)
        try:
            yield LAB
        finally:
            LAB = None


@pytest.mark.timeout(3600 if SOAK else 300)
def test_no_admin_key_outlives_its_purpose_whatever_the_order_of_events(lab: Lab) -> None:
    # GIVEN one admin-key secret per sequence, holding the bootstrap key
    # WHEN random sequences of rotations, emergencies, crashes, stalls, cleanups and time passing run
    # THEN every invariant above holds after every step
    try:
        run_state_machine_as_test(AdminLifecycle, settings=BOUNDED)
    except BaseException:
        FIGURES.append(f"admin lifecycle: {lab.sequences} random sequences, {lab.steps} steps, 1 invariant violations")
        raise
    FIGURES.append(f"admin lifecycle: {lab.sequences} random sequences, {lab.steps} steps, 0 invariant violations")
