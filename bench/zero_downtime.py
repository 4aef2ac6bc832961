"""Benchmark 5, zero downtime: an application keeps calling OpenAI through 20 rotations and the janitor's revocations.

The application is the official `openai` SDK with `KeyProvider` as its api_key (a short TTL), in two threads
sending chat completions back to back to the stand-in; it reads the secret from moto's server on 127.0.0.1 over
HTTP, as an application reads Secrets Manager. Time is compressed: the interval between rotations stands for the
grace period, and before each rotation the key from two rotations ago (then AWSPREVIOUS, past its grace) is revoked
as the janitor would. The SDK's own retries are off, so any failed request counts.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from bench.common import REGION, BenchResult, moto_server, sandbox_env, stopwatch

ROTATIONS = 20
TTL_SECONDS = 0.2
INTERVAL_SECONDS = 0.6  # between rotations: 3 TTLs, standing in for a 24 h grace against a 5 min TTL
APP_THREADS = 2


class App:
    """The application: SDK calls in a loop, each counted; stops when told."""

    def __init__(self, provider: Any, base_url: str) -> None:
        import openai

        self.provider = provider
        self.client = openai.OpenAI(api_key=provider, base_url=base_url, max_retries=0, timeout=10)
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
                key_id = self.provider.key_id
                if key_id and (not self.key_ids or self.key_ids[-1] != key_id):
                    self.key_ids.append(key_id)


def run(smoke: bool = False) -> BenchResult:
    result = BenchResult("zero_downtime", "5. Zero downtime", smoke=smoke)
    elapsed = stopwatch()
    rotations = 2 if smoke else ROTATIONS
    with sandbox_env(), moto_server() as endpoint:
        import boto3

        from keyrot.client import KeyProvider
        from keyrot.rotation import revoke_previous
        from lab.openai_standin import OpenAIStandIn
        from lab.scenario import RotationWorld

        with OpenAIStandIn() as openai:
            session = boto3.session.Session(region_name=REGION)
            world = RotationWorld.create(openai, session.client("secretsmanager", endpoint_url=endpoint))
            arn = world.create_managed_secret("zero-downtime")
            if not world.driver().rotate(arn).succeeded:
                raise RuntimeError("the first rotation failed")
            provider = KeyProvider(
                arn, client=session.client("secretsmanager", endpoint_url=endpoint), ttl_seconds=TTL_SECONDS
            )
            app = App(provider, openai.base_url).start()
            rotated, revoked, minted = 0, 0, [world.current(arn).key_id]
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
            finally:
                app.stop()
            live = [key_id for key_id in minted if openai.state.key_is_live(key_id)]
    result.target(
        f"requests failed during {rotations} rotations and {revoked} revocations",
        f"{app.failed} of {app.sent:,} sent" + (f" ({dict(app.errors)})" if app.errors else ""),
        "0 failed",
        app.failed == 0 and app.sent > 0,
    )
    result.row("rotations succeeded at the first attempt", f"{rotated} of {rotations}")
    result.row(
        "keys the application moved through",
        f"{len(app.key_ids)} of {len(minted)} minted; {len(live)} still live at the end (current and previous)",
    )
    result.figures = {
        "rotations": rotations,
        "rotations_succeeded_first_attempt": rotated,
        "revocations": revoked,
        "requests_sent": app.sent,
        "requests_failed": app.failed,
        "errors": dict(app.errors),
        "ttl_seconds": TTL_SECONDS,
        "interval_seconds": INTERVAL_SECONDS,
        "app_threads": APP_THREADS,
        "keys_minted": len(minted),
        "keys_seen_by_app": len(app.key_ids),
        "provider_refreshes": provider.refreshes,
    }
    result.notes.append(
        f"Zero downtime: time compressed; the {INTERVAL_SECONDS:g} s between rotations stands for the grace period "
        f"(3× the {TTL_SECONDS:g} s TTL; the shipped defaults are 24 h against 5 min, 288×)."
    )
    result.seconds = elapsed()
    return result
