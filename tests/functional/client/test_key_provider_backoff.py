"""KeyProvider under a throttled or failing Secrets Manager: one read at a time and backoff, from the very first call.

The application at 3 a.m.: a fleet restarts while Secrets Manager throttles. Every process must send one
GetSecretValue at a time, however many requests are waiting for their first key, and space its attempts out.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st

from keyrot.client import KeyProvider, KeyUnavailableError
from keyrot.secret_model import ManagedKey
from lab.scenario import RotationWorld

CALLERS = 100


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Throttle:
    """botocore handlers on a real client: count GetSecretValue calls, their overlap, and throttle while `on`."""

    def __init__(self, client: Any, *, hold_seconds: float = 0.0) -> None:
        self.on = True
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self._hold = hold_seconds
        self._lock = threading.Lock()
        client.meta.events.register("before-call.secrets-manager.GetSecretValue", self._before)

    def _before(self, **_: Any) -> None:
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self._hold)  # a slow answer, so concurrent callers pile up behind it
            if self.on:
                raise ClientError(
                    {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetSecretValue"
                )
        finally:
            with self._lock:
                self.in_flight -= 1


def _call_concurrently(provider: KeyProvider, callers: int) -> list[BaseException | str]:
    barrier = threading.Barrier(callers)
    outcomes: list[BaseException | str] = []
    lock = threading.Lock()

    def call() -> None:
        barrier.wait()
        try:
            outcome: BaseException | str = provider()
        except KeyUnavailableError as exc:
            outcome = exc
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.fixture
def rotated(world: RotationWorld) -> str:
    arn = world.create_managed_secret("chat-backend")
    assert world.driver().rotate(arn).succeeded
    return arn


def test_concurrent_first_callers_under_throttling_share_one_read(world: RotationWorld, rotated: str) -> None:
    # GIVEN a process with no key yet, and Secrets Manager throttling every call (each answer takes a while)
    clock = FakeClock()
    throttle = Throttle(world.secrets, hold_seconds=0.05)
    provider = KeyProvider(rotated, client=world.secrets, clock=clock)
    # WHEN 100 requests ask for their first key at the same moment
    outcomes = _call_concurrently(provider, CALLERS)
    # THEN Secrets Manager saw one call, and every caller got a clear, typed error naming the throttling
    assert throttle.calls == 1 and throttle.most_in_flight == 1
    assert len(outcomes) == CALLERS and all(isinstance(outcome, KeyUnavailableError) for outcome in outcomes)
    assert all("ThrottlingException" in str(outcome) for outcome in outcomes)


def test_first_read_retries_only_after_a_growing_backoff(world: RotationWorld, rotated: str) -> None:
    # GIVEN a first read that failed under throttling
    clock = FakeClock()
    throttle = Throttle(world.secrets)
    provider = KeyProvider(rotated, client=world.secrets, clock=clock)
    with pytest.raises(KeyUnavailableError):
        provider()
    # WHEN requests keep coming inside the backoff, then after it, then after the doubled backoff
    for _ in range(50):
        with pytest.raises(KeyUnavailableError, match="next attempt in"):
            provider()
    calls_within_first_backoff = throttle.calls
    clock.now += 2.0
    with pytest.raises(KeyUnavailableError):
        provider()
    clock.now += 2.0  # the second failure doubled the backoff to 4 s
    with pytest.raises(KeyUnavailableError, match="next attempt in"):
        provider()
    calls_within_second_backoff = throttle.calls
    clock.now += 2.0
    throttle.on = False
    key = provider()
    # THEN each backoff window held one call, and the first call after the throttling ends serves the key
    assert (calls_within_first_backoff, calls_within_second_backoff, throttle.calls) == (1, 2, 3)
    assert key.startswith("sk-") and provider.key_id == world.current(rotated).key_id


def test_concurrent_callers_after_the_backoff_make_one_more_read(world: RotationWorld, rotated: str) -> None:
    # GIVEN a failed first read, its backoff over, and Secrets Manager answering again (slowly)
    clock = FakeClock()
    throttle = Throttle(world.secrets, hold_seconds=0.05)
    provider = KeyProvider(rotated, client=world.secrets, clock=clock)
    with pytest.raises(KeyUnavailableError):
        provider()
    clock.now += 60
    throttle.on = False
    # WHEN 100 requests arrive together
    outcomes = _call_concurrently(provider, CALLERS)
    # THEN one read served them all
    assert throttle.calls == 2 and throttle.most_in_flight == 1
    assert len(set(outcomes)) == 1 and isinstance(outcomes[0], str)


# --- the schedule, as a property ------------------------------------------------------------------------------------


class ScriptedSecrets:
    """An in-memory Secrets Manager client whose answers follow a script: True = answer, False = throttle."""

    def __init__(self, clock: FakeClock, script: list[bool]) -> None:
        self.clock = clock
        self.script = script
        self.calls: list[tuple[float, bool]] = []  # (when, answered)
        self.value = ManagedKey(
            api_key="sk-fake-backoff-property-0001",
            key_id="key_backoffProperty",
            service_account_id="svc_acct_backoffProperty",
            project_id="proj_backoffProperty",
            environment="dev",
            key_name="chat-backend",
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        ).to_json()

    def get_secret_value(self, **_: Any) -> dict[str, Any]:
        answered = self.script[len(self.calls) % len(self.script)]
        self.calls.append((self.clock.now, answered))
        if not answered:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetSecretValue")
        return {"SecretString": self.value, "VersionId": "v1"}


@settings(max_examples=150, deadline=None)
@given(
    script=st.lists(st.booleans(), min_size=1, max_size=8),
    steps=st.lists(st.floats(min_value=0, max_value=400, allow_nan=False), min_size=1, max_size=40),
)
def test_reads_never_come_faster_than_the_backoff_or_the_ttl_allows(script: list[bool], steps: list[float]) -> None:
    # GIVEN any sequence of Secrets Manager answers and any spacing of requests
    clock = FakeClock()
    secrets = ScriptedSecrets(clock, script)
    ttl = 300.0
    provider = KeyProvider("keyrot/dev/chat-backend", client=secrets, ttl_seconds=ttl, clock=clock)
    # WHEN the application asks for its key at each step
    for step in steps:
        clock.now += step
        try:
            provider()
        except KeyUnavailableError:
            pass
    # THEN after a failure the next call waits out 2^n s (n consecutive failures; capped at 30 s before the first
    # key, at the TTL after it), and after a success the next call waits for the TTL (less its 10% jitter)
    failures, served = 0, False
    for (when, answered), (later, _) in zip(secrets.calls, secrets.calls[1:], strict=False):
        if answered:
            failures, served = 0, True
            assert later - when >= ttl * 0.9
        else:
            failures += 1
            cap = ttl if served else 30.0
            assert later - when >= min(cap, 2.0**failures)
