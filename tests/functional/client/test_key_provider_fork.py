"""KeyProvider in a process forked while a refresh is in flight (gunicorn --preload, multiprocessing).

The parent's refresh is a real GetSecretValue to moto's server on 127.0.0.1, held open server-side; the process is
then forked with `os.fork()`. In the child that refresh's thread does not exist: without a reset its lock stays held
for ever, the 401 hook hangs every request, and after max_staleness_seconds the child can never serve again.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import select
import signal
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import httpx2
import pytest

from keyrot.client import AsyncKeyProvider, KeyProvider
from keyrot.secret_model import ManagedKey

CHILD_DEADLINE_SECONDS = 20  # a child that has not answered by then is deadlocked
TTL, MAX_STALENESS = 60.0, 600.0


def _key(name: str) -> ManagedKey:
    return ManagedKey(
        api_key=f"sk-fake-fork-{name}-0001",
        key_id=f"key_fork{name}",
        service_account_id=f"svc_acct_fork{name}",
        project_id="proj_fork",
        environment="dev",
        key_name="chat-backend",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


OLD, NEW = _key("Old"), _key("New")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class HeldRead:
    """Holds the next GetSecretValue moto's server answers until released (server side: any client is seen)."""

    armed: bool = False
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's server on 127.0.0.1 in this process; providers reach it through AWS_ENDPOINT_URL, as an app would."""
    from moto.core.base_backend import BackendDict
    from moto.server import ThreadedMotoServer

    from lab.moto_gaps import patched_moto

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    try:
        with patched_moto():
            yield endpoint
    finally:
        server.stop()
        BackendDict.reset()


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> Iterator[HeldRead]:
    from moto.secretsmanager import models

    hold = HeldRead()
    original = models.SecretsManagerBackend.get_secret_value

    def get_secret_value(backend: Any, *args: Any, **kwargs: Any) -> Any:
        if hold.armed:
            hold.armed = False
            hold.entered.set()
            hold.release.wait(60)
        return original(backend, *args, **kwargs)

    monkeypatch.setattr(models.SecretsManagerBackend, "get_secret_value", get_secret_value)
    yield hold
    hold.release.set()


@pytest.fixture
def secret(moto_endpoint: str) -> str:
    client = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=moto_endpoint)
    return str(client.create_secret(Name="keyrot/dev/chat-backend", SecretString=OLD.to_json())["ARN"])


def _rotate(secret: str, endpoint: str) -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=endpoint)
    client.put_secret_value(SecretId=secret, SecretString=NEW.to_json())


def _in_forked_child(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `work` in a child made by os.fork(); its JSON answer, or {"hung": True} if it never answers."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 0
        try:
            os.close(read_end)
            try:
                answer = work()
            except BaseException as exc:  # noqa: BLE001 - reported to the parent as the test's failure
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            os.write(write_end, json.dumps(answer).encode())
        except BaseException:  # noqa: BLE001
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], CHILD_DEADLINE_SECONDS)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            return {"hung": True}
        chunks = []
        while chunk := os.read(read_end, 65536):
            chunks.append(chunk)
        return dict(json.loads(b"".join(chunks) or b'{"error": "no answer"}'))
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)


def _refresh_in_flight(provider: Callable[[], Any], clock: FakeClock, hold: HeldRead) -> threading.Thread:
    """Expire the cached key and start a refresh in a thread; return once its GetSecretValue is held by the server."""
    clock.now += TTL + 1
    hold.armed = True
    thread = threading.Thread(target=provider, daemon=True)
    thread.start()
    assert hold.entered.wait(30), "the parent's refresh never reached Secrets Manager"
    return thread


def _invalid_key_401(key: str) -> httpx2.Response:
    request = httpx2.Request(
        "POST", "https://api.openai.com/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}
    )
    body = {
        "error": {"message": "Incorrect API key provided", "code": "invalid_api_key", "type": "invalid_request_error"}
    }
    return httpx2.Response(401, json=body, request=request)


def test_a_child_forked_mid_refresh_refreshes_with_its_own_lock_and_client(
    held: HeldRead, secret: str, moto_endpoint: str
) -> None:
    # GIVEN a provider serving the old key, the secret rotated, and the parent's refresh held in flight
    clock = FakeClock()
    provider = KeyProvider(secret, ttl_seconds=TTL, max_staleness_seconds=MAX_STALENESS, clock=clock)
    assert provider() == OLD.api_key
    parent_client_used_in: list[int] = []
    provider._client.meta.events.register("before-call", lambda **_: parent_client_used_in.append(os.getpid()))
    _rotate(secret, moto_endpoint)
    refreshing = _refresh_in_flight(provider, clock, held)

    # WHEN the process forks and the child reads its key at once
    def child() -> dict[str, Any]:
        provider.refresh()
        return {"key_id": provider.key_id, "parent_client_used": os.getpid() in parent_client_used_in}

    answer = _in_forked_child(child)
    held.release.set()
    refreshing.join(30)
    # THEN the child read the new key over a client of its own, and never waited for the parent's lock
    assert answer == {"key_id": NEW.key_id, "parent_client_used": False}


def test_the_401_hook_in_a_child_forked_mid_refresh_refreshes_instead_of_hanging(
    held: HeldRead, secret: str, moto_endpoint: str
) -> None:
    # GIVEN a provider whose cached key was revoked in an emergency, and the parent's refresh held in flight
    clock = FakeClock()
    provider = KeyProvider(secret, ttl_seconds=TTL, max_staleness_seconds=MAX_STALENESS, clock=clock)
    assert provider() == OLD.api_key
    _rotate(secret, moto_endpoint)
    refreshing = _refresh_in_flight(provider, clock, held)

    # WHEN a request in the forked child gets OpenAI's 401 invalid_api_key and the response hook runs
    def child() -> dict[str, Any]:
        provider.response_hook(_invalid_key_401(OLD.api_key))
        return {"key_id": provider.key_id}

    answer = _in_forked_child(child)
    held.release.set()
    refreshing.join(30)
    # THEN the hook refreshed the key in the child (it did not hang on the parent's lock)
    assert answer == {"key_id": NEW.key_id}


def test_a_child_forked_mid_refresh_serves_again_after_max_staleness(
    held: HeldRead, secret: str, moto_endpoint: str
) -> None:
    # GIVEN the parent's refresh held in flight at the fork
    clock = FakeClock()
    provider = KeyProvider(secret, ttl_seconds=TTL, max_staleness_seconds=MAX_STALENESS, clock=clock)
    assert provider() == OLD.api_key
    _rotate(secret, moto_endpoint)
    refreshing = _refresh_in_flight(provider, clock, held)

    # WHEN the child's requests come after max_staleness_seconds, when the cached key may no longer be served
    def child() -> dict[str, Any]:
        clock.now += MAX_STALENESS + 1
        served = provider()
        return {"served_new_key": served == NEW.api_key, "key_id": provider.key_id}

    answer = _in_forked_child(child)
    held.release.set()
    refreshing.join(30)
    # THEN the child is not down for good: it read the current key
    assert answer == {"served_new_key": True, "key_id": NEW.key_id}


def test_an_async_provider_in_a_child_forked_mid_refresh_serves_the_new_key(
    held: HeldRead, secret: str, moto_endpoint: str
) -> None:
    # GIVEN an AsyncKeyProvider whose shared refresh task is held in flight on an event loop in another thread
    clock = FakeClock()
    provider = AsyncKeyProvider(secret, ttl_seconds=TTL, max_staleness_seconds=MAX_STALENESS, clock=clock)
    assert asyncio.run(provider()) == OLD.api_key
    _rotate(secret, moto_endpoint)
    refreshing = _refresh_in_flight(lambda: asyncio.run(provider.key_rejected(OLD.api_key)), clock, held)

    # WHEN the child runs its own event loop and reports the rejected key again
    def child() -> dict[str, Any]:
        refreshed = asyncio.run(provider.key_rejected(OLD.api_key))
        return {"refreshed": refreshed, "key_id": provider.key_id}

    answer = _in_forked_child(child)
    held.release.set()
    refreshing.join(30)
    # THEN the child refreshed on its own
    assert answer == {"refreshed": True, "key_id": NEW.key_id}


def test_fork_safety_keeps_no_provider_alive() -> None:
    # GIVEN an application that builds providers and drops them (one per tenant, per test, per reload)
    providers = [KeyProvider("keyrot/dev/chat-backend", client=object()) for _ in range(50)]
    references = [weakref.ref(provider) for provider in providers]
    # WHEN it drops them
    del providers
    gc.collect()
    # THEN the fork registry held none of them alive
    assert all(reference() is None for reference in references)
