"""AsyncKeyProvider: one shared, shielded refresh task; cancelled callers cost no executor thread.

The asyncio service under load: requests time out and are cancelled while Secrets Manager is slow. Each cancelled
caller must leave nothing behind in the default executor, or a handful of them starve `loop.getaddrinfo` (every
new connection) and `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from keyrot.client import AsyncKeyProvider
from keyrot.secret_model import ManagedKey

EXECUTOR_THREADS = 4  # a small default executor, so starving it takes only a few stuck threads
LIVENESS_SECONDS = 20  # how long a call that should be immediate may take before the executor counts as starved


def _key(name: str) -> ManagedKey:
    return ManagedKey(
        api_key=f"sk-fake-async-{name}-0001",
        key_id=f"key_async{name}",
        service_account_id=f"svc_acct_async{name}",
        project_id="proj_async",
        environment="dev",
        key_name="chat-backend",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


OLD, NEW = _key("Old"), _key("New")


class SlowSecrets:
    """An in-memory Secrets Manager client whose GetSecretValue blocks until `release` is set; counts calls."""

    def __init__(self, current: ManagedKey) -> None:
        self.current = current
        self.calls = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.entered = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def get_secret_value(self, **_: Any) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.entered.set()
        try:
            self.release.wait(60)
            return {"SecretString": self.current.to_json(), "VersionId": self.current.key_id}
        finally:
            with self._lock:
                self.in_flight -= 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _until(event: threading.Event) -> None:
    """Wait for a thread's event without using an executor thread (those are what the tests count)."""
    for _ in range(LIVENESS_SECONDS * 100):
        if event.is_set():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the read never reached Secrets Manager")


async def _start_and_cancel(call: Any, bursts: int) -> None:
    """Start a caller, let it reach the executor, cancel it; `bursts` times in a row (each one a timed-out request)."""
    for _ in range(bursts):
        caller = asyncio.ensure_future(call())
        for _ in range(5):
            await asyncio.sleep(0)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller


async def _executor_still_serves() -> None:
    loop = asyncio.get_running_loop()
    await asyncio.wait_for(loop.getaddrinfo("127.0.0.1", 443), LIVENESS_SECONDS)
    assert await asyncio.wait_for(asyncio.to_thread(lambda: 42), LIVENESS_SECONDS) == 42


def test_concurrent_first_callers_share_one_read() -> None:
    # GIVEN an async provider with no key yet and a slow Secrets Manager
    secrets = SlowSecrets(OLD)
    provider = AsyncKeyProvider("keyrot/dev/chat-backend", client=secrets)

    async def main() -> list[str]:
        callers = [asyncio.ensure_future(provider()) for _ in range(50)]
        await _until(secrets.entered)
        secrets.release.set()
        return await asyncio.gather(*callers)

    # WHEN 50 requests want their first key at once
    keys = asyncio.run(main())
    # THEN one read served them all
    assert keys == [OLD.api_key] * 50 and secrets.calls == 1


def test_cancelling_the_caller_that_started_the_read_does_not_cancel_it() -> None:
    # GIVEN a read started by a caller that is then cancelled, and another caller waiting for a key
    secrets = SlowSecrets(OLD)
    provider = AsyncKeyProvider("keyrot/dev/chat-backend", client=secrets)

    async def main() -> str:
        first = asyncio.ensure_future(provider())
        await _until(secrets.entered)
        second = asyncio.ensure_future(provider())
        await asyncio.sleep(0)
        first.cancel()
        secrets.release.set()
        return await second

    # WHEN the read completes
    # THEN the waiting caller gets the key from that same read
    assert asyncio.run(main()) == OLD.api_key and secrets.calls == 1


def test_a_burst_of_cancelled_first_reads_does_not_starve_the_default_executor() -> None:
    # GIVEN a small default executor and a Secrets Manager that does not answer
    secrets = SlowSecrets(OLD)
    provider = AsyncKeyProvider("keyrot/dev/chat-backend", client=secrets)

    async def main() -> str:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=EXECUTOR_THREADS))
        # WHEN request after request times out waiting for the first key (twice the executor's threads)
        await _start_and_cancel(provider, 2 * EXECUTOR_THREADS)
        # THEN name resolution and to_thread still get a thread at once, and one read was ever in flight
        await _executor_still_serves()
        assert secrets.most_in_flight == 1
        secrets.release.set()
        return await provider()

    assert asyncio.run(main()) == OLD.api_key


def test_a_burst_of_cancelled_rejection_refreshes_does_not_starve_the_default_executor() -> None:
    # GIVEN a provider serving a key that was just revoked, a rotation done, and Secrets Manager slow to answer
    clock = FakeClock()
    secrets = SlowSecrets(OLD)
    provider = AsyncKeyProvider("keyrot/dev/chat-backend", client=secrets, clock=clock)
    secrets.release.set()

    async def main() -> str | None:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=EXECUTOR_THREADS))
        await provider()
        secrets.release.clear()
        secrets.current = NEW
        # WHEN request after request gets a 401 for the old key and is cancelled while the refresh waits
        await _start_and_cancel(lambda: provider.key_rejected(OLD.api_key), 2 * EXECUTOR_THREADS)
        # THEN the executor still serves others, and the refresh, once answered, gives the new key
        await _executor_still_serves()
        assert secrets.most_in_flight == 1
        secrets.release.set()
        return await provider.replacement_for(OLD.api_key)

    assert asyncio.run(main()) == NEW.api_key
    assert secrets.calls == 2


def test_concurrent_rejections_of_one_key_collapse_into_one_read() -> None:
    # GIVEN a provider serving a key that was just revoked in an emergency
    secrets = SlowSecrets(OLD)
    secrets.release.set()
    provider = AsyncKeyProvider("keyrot/dev/chat-backend", client=secrets)

    async def main() -> list[bool]:
        await provider()
        secrets.current = NEW
        # WHEN 20 in-flight requests all get the 401 at once
        return await asyncio.gather(*(provider.key_rejected(OLD.api_key) for _ in range(20)))

    verdicts = asyncio.run(main())
    # THEN one refresh happened, and the provider serves the new key
    assert verdicts.count(True) == 1 and secrets.calls == 2 and provider.key_id == NEW.key_id


def test_an_expired_key_is_served_while_its_refresh_is_under_way() -> None:
    # GIVEN a cached key past its TTL and a slow Secrets Manager
    clock = FakeClock()
    secrets = SlowSecrets(OLD)
    secrets.release.set()
    provider = AsyncKeyProvider("keyrot/dev/chat-backend", client=secrets, clock=clock, ttl_seconds=60)

    async def main() -> tuple[str, list[str]]:
        await provider()
        secrets.release.clear()
        secrets.entered.clear()
        secrets.current = NEW
        clock.now += 61
        refreshing = asyncio.ensure_future(provider())
        await _until(secrets.entered)
        # WHEN other requests need the key meanwhile
        meanwhile = [await provider() for _ in range(10)]
        secrets.release.set()
        return await refreshing, meanwhile

    refreshed, meanwhile = asyncio.run(main())
    # THEN they are served the cached key without waiting, and the refresh brings the new one
    assert meanwhile == [OLD.api_key] * 10 and refreshed == NEW.api_key
