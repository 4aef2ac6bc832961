"""Benchmark 5, zero downtime: an application keeps calling OpenAI through 20 rotations, then 20 emergency rotations.

The application is the README's snippet, `keyrot.client.openai_client(secret)` (the official `openai` SDK with
KeyProvider as its api_key and keyrot's retry on a revoked key), in two threads sending chat completions back to
back to the stand-in; it reads the secret from moto's server on 127.0.0.1 over HTTP, as an application reads
Secrets Manager. The SDK's own retries are off, so any failed request counts.

- Normal rotations: time is compressed; the interval between rotations stands for the grace period, and before each
  rotation the key from two rotations ago (then AWSPREVIOUS, past its grace) is revoked as the janitor would. The
  provider's TTL is compressed in proportion, so the application picks up each key through its TTL.
- Emergency rotations: as `keyrot rotate --emergency`, each rotation is followed at once by the revocation of the
  key that was current a moment before, the one the application caches. The snippet runs with its shipped defaults
  (a 5-minute TTL): only its refresh on OpenAI's 401 invalid_api_key can save the requests in flight.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.common import REGION, BenchResult, moto_server, sandbox_env, stopwatch

ROTATIONS = 20
TTL_SECONDS = 0.2
INTERVAL_SECONDS = 0.6  # between rotations: 3 TTLs, standing in for a 24 h grace against a 5 min TTL
EMERGENCY_INTERVAL_SECONDS = 0.4  # load between two emergency rotations
SHIPPED_TTL_SECONDS = 300  # KeyProvider's default, which the emergency scenario keeps
APP_THREADS = 2


class App:
    """The application: SDK calls in a loop, each counted; stops when told."""

    def __init__(self, client: Any, key_id: Callable[[], str | None]) -> None:
        self.client = client
        self.key_id = key_id
        self.sent = 0
        self.failed = 0
        self.errors: Counter[str] = Counter()
        self.key_ids: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, name=f"app-{i}", daemon=True) for i in range(APP_THREADS)]

    def start(self) -> App:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)

    def _loop(self) -> None:
        import openai

        while not self._stop.is_set():
            failed, error = False, None
            try:
                self.client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "is the key still good?"}]
                )
            except openai.OpenAIError as exc:
                failed, error = True, type(exc).__name__
            with self._lock:
                self.sent += 1
                if failed:
                    self.failed += 1
                    self.errors[str(error)] += 1
                key_id = self.key_id()
                if key_id and (not self.key_ids or self.key_ids[-1] != key_id):
                    self.key_ids.append(key_id)


class RejectionCounter:
    """An httpx response hook counting OpenAI's 401 answers (each one a request the retry sent again, or a failure)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, response: Any) -> None:
        if response.status_code == 401:
            with self._lock:
                self.count += 1


@dataclass
class Scenario:
    """What one scenario measured."""

    rotations: int
    rotated_first_attempt: int
    revoked: int
    app: App
    keys_minted: list[str]
    live_at_end: list[str]
    failed_per_rotation: list[int]
    rejections_absorbed: int
    provider_refreshes: int


def run(smoke: bool = False) -> BenchResult:
    result = BenchResult("zero_downtime", "5. Zero downtime", smoke=smoke)
    elapsed = stopwatch()
    rotations = 2 if smoke else ROTATIONS
    with sandbox_env(), moto_server() as endpoint, sandbox_env(AWS_ENDPOINT_URL=endpoint):
        import boto3

        from lab.openai_standin import OpenAIStandIn
        from lab.scenario import RotationWorld

        with OpenAIStandIn() as openai:
            session = boto3.session.Session(region_name=REGION)
            world = RotationWorld.create(openai, session.client("secretsmanager", endpoint_url=endpoint))
            normal = _normal_rotations(world, session, endpoint, rotations)
            emergency = _emergency_rotations(world, rotations)
    _report(result, normal, emergency)
    result.seconds = elapsed()
    return result


def _normal_rotations(world: Any, session: Any, endpoint: str, rotations: int) -> Scenario:
    from keyrot.client import KeyProvider, openai_client
    from keyrot.rotation import revoke_previous

    arn = world.create_managed_secret("zero-downtime")
    if not world.driver().rotate(arn).succeeded:
        raise RuntimeError("the first rotation failed")
    provider = KeyProvider(arn, client=session.client("secretsmanager", endpoint_url=endpoint), ttl_seconds=TTL_SECONDS)
    client = openai_client(provider, base_url=world.openai.base_url, max_retries=0, timeout=10)
    app = App(client, lambda: provider.key_id).start()
    rotated, revoked, minted, failed_at = 0, 0, [world.current(arn).key_id], [0]
    try:
        time.sleep(INTERVAL_SECONDS)
        for index in range(rotations):
            if index >= 1:  # the janitor, past the grace of the key replaced one rotation ago
                outcome = revoke_previous(world.context(), arn)
                revoked += outcome.status == "revoked"
            run = world.driver().rotate(arn)
            rotated += run.succeeded and run.attempts == 1
            minted.append(world.current(arn).key_id)
            time.sleep(INTERVAL_SECONDS)
            failed_at.append(app.failed)
    finally:
        app.stop()
    live = [key_id for key_id in minted if world.openai.state.key_is_live(key_id)]
    per_rotation = [after - before for before, after in itertools.pairwise(failed_at)]
    return Scenario(rotations, rotated, revoked, app, minted, live, per_rotation, 0, provider.refreshes)


def _emergency_rotations(world: Any, rotations: int) -> Scenario:
    """`keyrot rotate --emergency` under load: rotate, then at once revoke the key that was current (the cached one)."""
    import openai

    from keyrot.client import KeyProvider, openai_client
    from keyrot.rotation import revoke_previous

    arn = world.create_managed_secret("zero-downtime-emergency")
    if not world.driver().rotate(arn).succeeded:
        raise RuntimeError("the first rotation failed")
    rejected = RejectionCounter()
    http = openai.DefaultHttpxClient(event_hooks={"response": [rejected]})
    # The README's snippet, `openai_client(arn)`: it builds exactly this provider (shipped defaults, its own boto3
    # client, here through AWS_ENDPOINT_URL), named only to read its figures; http_client only counts the 401s.
    provider = KeyProvider(arn)
    client = openai_client(provider, base_url=world.openai.base_url, max_retries=0, timeout=10, http_client=http)
    app = App(client, lambda: provider.key_id).start()
    rotated, revoked, minted, failed_at = 0, 0, [world.current(arn).key_id], [0]
    try:
        time.sleep(EMERGENCY_INTERVAL_SECONDS)
        for _ in range(rotations):
            run = world.driver().rotate(arn)
            rotated += run.succeeded and run.attempts == 1
            minted.append(world.current(arn).key_id)
            outcome = revoke_previous(world.context(), arn)  # as the CLI does right after an emergency rotation
            revoked += outcome.status == "revoked"
            time.sleep(EMERGENCY_INTERVAL_SECONDS)
            failed_at.append(app.failed)
    finally:
        app.stop()
    live = [key_id for key_id in minted if world.openai.state.key_is_live(key_id)]
    per_rotation = [after - before for before, after in itertools.pairwise(failed_at)]
    return Scenario(rotations, rotated, revoked, app, minted, live, per_rotation, rejected.count, provider.refreshes)


def _report(result: BenchResult, normal: Scenario, emergency: Scenario) -> None:
    result.target(
        f"requests failed during {normal.rotations} rotations and {normal.revoked} revocations",
        _failures(normal.app),
        "0 failed",
        normal.app.failed == 0 and normal.app.sent > 0,
    )
    worst = max(emergency.failed_per_rotation, default=0)
    result.target(
        f"requests failed per emergency rotation ({emergency.rotations}, {APP_THREADS} threads, 1 process)",
        f"at most {worst}; {_failures(emergency.app)}",
        "≤ 1 per emergency rotation",
        worst <= 1 and emergency.app.sent > 0 and emergency.revoked == emergency.rotations,
    )
    result.row("rotations succeeded at the first attempt", f"{normal.rotated_first_attempt} of {normal.rotations}")
    result.row(
        "keys the application moved through",
        f"{len(normal.app.key_ids)} of {len(normal.keys_minted)} minted; {len(normal.live_at_end)} still live at the "
        "end (current and previous)",
    )
    result.row(
        "emergency: requests OpenAI refused with the revoked key, then sent again with the new one",
        f"{emergency.rejections_absorbed}; {emergency.provider_refreshes} reads of the secret in all "
        f"(TTL {SHIPPED_TTL_SECONDS} s); {len(emergency.live_at_end)} key(s) live at the end",
    )
    result.figures = {
        "rotations": normal.rotations,
        "rotations_succeeded_first_attempt": normal.rotated_first_attempt,
        "revocations": normal.revoked,
        "requests_sent": normal.app.sent,
        "requests_failed": normal.app.failed,
        "errors": dict(normal.app.errors),
        "ttl_seconds": TTL_SECONDS,
        "interval_seconds": INTERVAL_SECONDS,
        "app_threads": APP_THREADS,
        "keys_minted": len(normal.keys_minted),
        "keys_seen_by_app": len(normal.app.key_ids),
        "provider_refreshes": normal.provider_refreshes,
        "emergency": {
            "rotations": emergency.rotations,
            "rotations_succeeded_first_attempt": emergency.rotated_first_attempt,
            "revocations": emergency.revoked,
            "requests_sent": emergency.app.sent,
            "requests_failed": emergency.app.failed,
            "failed_per_rotation": emergency.failed_per_rotation,
            "errors": dict(emergency.app.errors),
            "rejections_absorbed": emergency.rejections_absorbed,
            "provider_refreshes": emergency.provider_refreshes,
            "keys_minted": len(emergency.keys_minted),
            "keys_live_at_end": len(emergency.live_at_end),
            "interval_seconds": EMERGENCY_INTERVAL_SECONDS,
            "ttl_seconds": SHIPPED_TTL_SECONDS,
        },
    }
    result.notes.append(
        f"Zero downtime: time compressed; the {INTERVAL_SECONDS:g} s between rotations stands for the grace period "
        f"(3× the {TTL_SECONDS:g} s TTL; the shipped defaults are 24 h against 5 min, 288×). Emergency rotations run "
        f"the README snippet with its shipped 5-minute TTL, {EMERGENCY_INTERVAL_SECONDS:g} s of load apart."
    )


def _failures(app: App) -> str:
    return f"{app.failed} of {app.sent:,} sent" + (f" ({dict(app.errors)})" if app.errors else "")
