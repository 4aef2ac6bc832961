"""The key lifecycle as a state machine: random sequences of scheduled, manual and emergency rotations, janitor runs,
crashes after any remote call, duplicate invocations, stalls between createSecret and finishSecret, time passing and
application reads, over moto and the OpenAI stand-in on one manual clock. After every step:

- AWSCURRENT holds a key that authenticates;
- no more than two keyrot keys of the secret are live besides those of the rotation in flight (Secrets Manager
  retries a failed rotation, with its token, before it lets a new one start) and of attempts discarded while a crash
  kept their accounts alive (the inventory accounts for those, and the janitor revokes them once abandoned);
- every live key keyrot minted is accounted for by the inventory (current, pending, previous, displaced, or an
  attempt in progress) until OpenAI rejects it;
- no key material in any log record or error message;
and after a janitor run no displaced key is live, and after an emergency rotation the new key is the only live one.

The janitor rule is a whole monitor run (keyrot.monitor.run, whose janitor part plans from the inventory and revokes
through keyrot.monitor.janitor.carry_out); the emergency rule is a rotation followed by the containment `keyrot rotate
--emergency` runs (keyrot.cli.emergency.contain_leak). Crashes also run the function-level emergency (grace 0).

`make test` runs a bounded number of sequences; KEYROT_SOAK=1 (what `make soak` sets) runs many more, longer ones.
The run's figures are printed with the fault matrices': `lifecycle: N random sequences, M steps, 0 invariant
violations`.
"""

from __future__ import annotations

import itertools
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
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

from keyrot.aws.secrets import SecretStore
from keyrot.cli.emergency import contain_leak
from keyrot.constants import STAGE_CURRENT, STAGE_PENDING, state_parameter_name
from keyrot.errors import KeyrotError
from keyrot.inventory import KEYROT_LIVE_STATES, KeyState, ServiceAccountName, load_inventory
from keyrot.monitor.run import MonitorDependencies, run_monitor
from keyrot.openai_admin import OpenAIAdminClient, OpenAITransport
from keyrot.rotation import discard_attempt
from keyrot.rotation.events import STEP_NAMES
from keyrot.secret_model import ManagedKey
from keyrot.settings import MonitorSettings
from lab.openai_standin import ManualClock, OpenAIStandIn
from lab.openai_standin.state import ISSUED_SECRETS
from lab.remote_calls import RemoteCallLog, SimulatedCrash
from lab.rotation_driver import RotationDriver, RotationRun
from lab.scenario import RotationWorld
from tests.prove.faultkit import FIGURES

REGION = "us-east-1"
KEY = "app"
MINUTE, HOUR, DAY = 60, 3600, 86400
GRACE, MAX_GRACE, INTERVAL = DAY, 3 * DAY, 7 * DAY
EXPIRY = INTERVAL + MAX_GRACE + DAY  # the stack's default backstop
SOAK = os.environ.get("KEYROT_SOAK", "") not in ("", "0")
BOUNDED = settings(
    max_examples=300 if SOAK else 15,
    stateful_step_count=40 if SOAK else 15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


START = 1_800_000_000


@dataclass
class Lab:
    """What every sequence shares: moto, the stand-in and its clock. Each sequence gets its own environment."""

    openai: OpenAIStandIn
    clock: ManualClock
    secrets: Any  # Secrets Manager's side, and the checks
    function_secrets: Any  # the function's client for the crash rule: its calls are recorded in `log`
    monitor_clients: dict[str, Any]  # the monitor's CloudWatch, SSM and SNS
    log: RemoteCallLog | None = None
    sequences: int = 0
    steps: int = 0

    def after_aws_call(self, **kwargs: Any) -> None:
        if self.log is not None:
            self.log._after_aws_call(**kwargs)


LAB: Lab | None = None
_environments = itertools.count(1)


class KeyrotLogs(logging.Handler):
    """Every record keyrot's loggers emit during a sequence, formatted, for the key-material check."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(record.getMessage() + (self.format(record) if record.exc_info else ""))


class Lifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        assert LAB is not None
        self.lab = LAB
        self.lab.sequences += 1
        self.lab.clock.set(START)  # every sequence (and Hypothesis's replay of it) starts at the same moment
        self.environment = f"life-{next(_environments)}"
        self.world = RotationWorld.create(
            self.lab.openai,
            self.lab.secrets,
            environment=self.environment,
            now=lambda: datetime.fromtimestamp(self.lab.clock(), UTC),
            grace_period_seconds=GRACE,
            max_grace_period_seconds=MAX_GRACE,
            rotation_interval_seconds=INTERVAL,
            key_expiry_seconds=EXPIRY,
            validation_attempts=2,
            validation_delay_seconds=0.0,
        )
        self.arn = self.world.create_managed_secret(KEY)
        topic = self.lab.monitor_clients["sns"].create_topic(Name=f"keyrot-{self.environment}-oncall")
        self.topic_arn = str(topic["TopicArn"])
        self.in_flight: str | None = None  # the token of a rotation Secrets Manager has not seen succeed
        # Tokens of attempts discarded (AWSPENDING removed) whose accounts a crash may have left live: displaced or
        # still storable, accounted for by the inventory, revoked by the janitor once abandoned (checked there)
        self.leftovers: set[str] = set()
        self.errors: list[str] = []
        self.logs = KeyrotLogs()
        logging.getLogger("keyrot").addHandler(self.logs)

    def teardown(self) -> None:
        logging.getLogger("keyrot").removeHandler(self.logs)

    # --- the world's own operations ---------------------------------------------------------------------------

    def _driver(self, world: RotationWorld, *, crash_after: int | None = None) -> RotationDriver:
        if crash_after is None:
            return world.driver()
        log = RemoteCallLog()
        log.crash_after = crash_after
        self.lab.log = log
        function = replace(world, secrets=self.lab.function_secrets, session_factory=log.session)
        return RotationDriver(self.world.secrets, function.invoker())

    def _rotate(self, world: RotationWorld, *, crash_after: int | None = None) -> RotationRun | None:
        """Secrets Manager's rotation: first its retry of a rotation in flight (same token), else a new one."""
        driver = self._driver(world, crash_after=crash_after)
        token = self.in_flight or str(uuid.uuid4())
        self.in_flight = token
        try:
            run = driver.rotate(self.arn, token=token, max_attempts=2)
        except SimulatedCrash:
            return None
        self.errors += [f"{type(error).__name__}: {error}" for _, error in run.failures]
        if run.succeeded or STAGE_PENDING not in self.world.stages(self.arn).get(token, []):
            if not run.succeeded:
                self.leftovers.add(token)  # discarded (a pending key too close to its expiry, or a stale token)
            self.in_flight = None  # finished, or discarded
        return run

    def _live_keyrot_keys(self) -> dict[str, str]:
        """key id -> token, for every key the stand-in still honours that keyrot minted for this secret."""
        prefix = f"keyrot:{self.environment}:{KEY}:"
        state = self.lab.openai.state
        with state.lock:
            keys = [k for k in state.keys.values() if k.owner_name.startswith(prefix) and state.key_is_live(k.id)]
        return {key.id: key.owner_name[len(prefix) :] for key in keys}

    def _inventory(self) -> Any:
        assert self.world.settings is not None
        return load_inventory(
            SecretStore(self.world.secrets),
            OpenAIAdminClient(self.world.admin_key, OpenAITransport(self.lab.openai.base_url)),
            environment=self.environment,
            deployment=self.world.settings.deployment,
            now=self.world.now(),
            grace_period_seconds=GRACE,
        )

    def _current(self) -> ManagedKey | None:
        return self.world.read(self.arn, STAGE_CURRENT)

    def _schedule(self) -> None:
        """The rotation schedule: once the current key has been current for the interval, Secrets Manager rotates
        (retrying a rotation in flight first; after a refused stale attempt, the operator runs `keyrot rotate`)."""
        for _ in range(3):
            promoted = self._inventory().secret(KEY)
            if promoted is None or promoted.promoted_at is None:
                return
            if (self.world.now() - promoted.promoted_at).total_seconds() < INTERVAL:
                return
            self._rotate(self.world)

    def _life_left(self) -> float:
        current = self._current()
        assert current is not None and current.expires_at is not None
        return (current.expires_at - self.world.now()).total_seconds()

    # --- rules ------------------------------------------------------------------------------------------------

    @initialize()
    def first_rotation(self) -> None:
        run = self._rotate(self.world)
        assert run is not None and run.succeeded, run and run.failures

    @rule(kind=st.sampled_from(["scheduled", "manual"]))
    def rotation(self, kind: str) -> None:
        self.lab.steps += 1
        self._rotate(self.world)

    @rule()
    def manual_rotation_discarding_the_pending_attempt(self) -> None:
        """`keyrot rotate --discard-pending`: drop a stuck attempt (label, then accounts), then rotate afresh."""
        self.lab.steps += 1
        if self.in_flight and STAGE_CURRENT not in self.world.stages(self.arn).get(self.in_flight, []):
            name = ServiceAccountName(self.environment, KEY, self.in_flight)
            discard_attempt(self.world.context(), self.arn, self.in_flight, name, self.world.project_id)
            self.in_flight = None
        self._rotate(self.world)

    @rule()
    def emergency_rotation(self) -> None:
        """`keyrot rotate --emergency`: a rotation, then (once it succeeded) the CLI's containment, asked to revoke
        the key that was current when the operator confirmed."""
        self.lab.steps += 1
        if self.in_flight and STAGE_CURRENT in self.world.stages(self.arn).get(self.in_flight, []):
            # A rotation that promoted its key and died before its cleanup: Secrets Manager's retry finishes it (the
            # CLI sees no pending rotation there, and starts a new one)
            self._rotate(self.world)
        shown = self._current()
        shown_version = next(v for v, s in self.world.stages(self.arn).items() if STAGE_CURRENT in s)
        run = self._rotate(self.world)
        if run is not None and run.succeeded:
            containment = contain_leak(
                self.world.context(),
                self.arn,
                leaked_version=shown_version,
                leaked_key_id=shown.key_id if shown else None,
            )
            current = self._current()
            live = self._live_keyrot_keys()
            assert current is not None and set(live) == {current.key_id}, f"emergency left {len(live)} live keys"
            assert containment.one_live_key and containment.leaked_key_dead, containment

    @rule(after=st.integers(1, 45), emergency=st.booleans())
    def crash(self, after: int, emergency: bool) -> None:
        """The function dies right after its `after`-th remote call of a rotation (or of Secrets Manager's retry)."""
        self.lab.steps += 1
        world = self.world.with_settings(grace_period_seconds=0) if emergency else self.world
        self._rotate(world, crash_after=after)

    @rule(step=st.sampled_from(STEP_NAMES))
    def duplicate_invocation(self, step: str) -> None:
        """A step delivered again: for the rotation in flight, or for the finished one (the current version)."""
        self.lab.steps += 1
        token = self.in_flight or next(v for v, s in self.world.stages(self.arn).items() if STAGE_CURRENT in s)
        try:
            self.world.driver().step(self.arn, token, step)
        except KeyrotError as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")

    @precondition(lambda self: self.in_flight is None)
    @rule(stall=st.sampled_from([HOUR, 25 * HOUR, 5 * DAY]), steps=st.integers(1, 3))
    def stalled_rotation(self, stall: int, steps: int) -> None:
        """A rotation runs its first steps, then nothing happens for `stall` (admin key revoked, a weekend). A stall
        longer than the current key's OpenAI-side life is an outage by design (the backstop expiry), not modelled."""
        self.lab.steps += 1
        if self._life_left() <= stall + HOUR:
            return
        driver = self.world.driver()
        token = driver.start(self.arn)
        self.in_flight = token
        for step in STEP_NAMES[:steps]:
            try:
                driver.step(self.arn, token, step)
            except KeyrotError as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
                break
        self.lab.clock.advance(stall)
        self._schedule()

    @rule(seconds=st.sampled_from([MINUTE, HOUR, 12 * HOUR, 25 * HOUR, 3 * DAY]))
    def time_passes(self, seconds: int) -> None:
        self.lab.steps += 1
        self.lab.clock.advance(seconds)
        self._schedule()

    @rule()
    def application_reads_and_calls(self) -> None:
        """An application reads AWSCURRENT and uses it (OpenAI records the use)."""
        self.lab.steps += 1
        current = self._current()
        assert current is not None
        self.lab.openai.state.authenticate(current.api_key)

    @rule(policy=st.sampled_from(["keep", "revoke"]))
    def janitor_run(self, policy: str) -> None:
        """A whole monitor run (usage, findings, costs, the janitor, gauges), as the scheduled function runs it."""
        self.lab.steps += 1
        assert self.world.settings is not None
        monitor = MonitorSettings(
            environment=self.environment,
            admin_secret_arn=self.world.admin_secret_arn,
            project_id=self.world.project_id,
            topic_arn=self.topic_arn,
            state_parameter=state_parameter_name(self.environment),
            openai_base_url=self.lab.openai.base_url,
            grace_period_seconds=GRACE,
            max_grace_period_seconds=MAX_GRACE,
            quiet_window_seconds=HOUR,
            in_use_policy=policy,
            validation_attempts=2,
            validation_delay_seconds=0.0,
            managed_secrets=self.world.settings.managed_secrets,
            shared_environments=(),
        )
        admin = OpenAIAdminClient(self.world.admin_key, OpenAITransport(self.lab.openai.base_url))
        rotation = self.world.context()
        rotation.admin_factory = lambda: admin
        report = run_monitor(
            MonitorDependencies(monitor, admin, rotation, now=self.world.now, **self.lab.monitor_clients)
        )
        assert not report.revocation_failures, report.revocation_failures
        inventory = self._inventory()
        live_displaced = [e.key_id for e in inventory.of_state(KeyState.DISPLACED) if e.listed]
        assert not live_displaced, f"displaced keys live after a janitor run: {live_displaced}"

    # --- invariants -------------------------------------------------------------------------------------------

    @invariant()
    def current_key_authenticates(self) -> None:
        current = self._current()
        assert current is not None, "the secret has no AWSCURRENT value"
        state = self.lab.openai.state
        key = state.keys.get(current.key_id)
        assert key is not None and key.value == current.api_key and state.key_is_live(current.key_id), (
            "the AWSCURRENT key does not authenticate"
        )

    @invariant()
    def at_most_two_live_keys_besides_the_rotation_in_flight(self) -> None:
        live = self._live_keyrot_keys()
        self.leftovers &= set(live.values())  # a discarded attempt whose keys are all dead is settled
        settled = [key for key, token in live.items() if token != self.in_flight and token not in self.leftovers]
        minting = [key for key, token in live.items() if token == self.in_flight]
        assert len(settled) <= 2, f"{len(settled)} live keys besides the rotation in flight"
        assert len(minting) <= 2, f"{len(minting)} live keys for the rotation in flight"

    @invariant()
    def every_live_keyrot_key_is_accounted_for(self) -> None:
        inventory = self._inventory()
        for key_id in self._live_keyrot_keys():
            entry = inventory.by_key_id(key_id)
            assert entry is not None and entry.state in KEYROT_LIVE_STATES, f"{key_id} is {entry and entry.state}"

    @invariant()
    def no_key_material_in_logs_or_errors(self) -> None:
        leaked = ISSUED_SECRETS.found_in("\n".join(self.logs.texts + self.errors))
        assert not leaked, f"{len(leaked)} key value(s) in logs or error messages"


@pytest.fixture
def lab(aws: None) -> Iterator[Lab]:
    global LAB
    clock = ManualClock(START)
    with OpenAIStandIn(clock=clock) as openai:
        function_secrets = boto3.client("secretsmanager", region_name=REGION)
        monitor_clients = {name: boto3.client(name, region_name=REGION) for name in ("cloudwatch", "ssm", "sns")}
        LAB = Lab(openai, clock, boto3.client("secretsmanager", region_name=REGION), function_secrets, monitor_clients)
        function_secrets.meta.events.register("after-call.*.*", LAB.after_aws_call)
        try:
            yield LAB
        finally:
            LAB = None


@pytest.mark.timeout(3600 if SOAK else 300)
def test_no_key_outlives_its_purpose_whatever_the_order_of_events(lab: Lab) -> None:
    # GIVEN one secret per sequence, rotated once
    # WHEN random sequences of rotations, janitor runs, crashes, duplicates, stalls, reads and time passing run
    # THEN every invariant above holds after every step
    try:
        run_state_machine_as_test(Lifecycle, settings=BOUNDED)
    except BaseException:
        FIGURES.append(f"lifecycle: {lab.sequences} random sequences, {lab.steps} steps, 1 invariant violations")
        raise
    FIGURES.append(f"lifecycle: {lab.sequences} random sequences, {lab.steps} steps, 0 invariant violations")
