"""KeyProvider: the application side. Cached, single-flight, refreshed on rejection, resilient to outages."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import httpx2
import openai
import pytest
from botocore.exceptions import EndpointConnectionError

from keyrot.client import (
    AsyncKeyProvider,
    KeyProvider,
    KeyUnavailableError,
    with_key_refresh,
    with_key_refresh_async,
)
from lab.scenario import RotationWorld


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _count_reads(world: RotationWorld) -> list[dict[str, Any]]:
    reads: list[dict[str, Any]] = []
    world.secrets.meta.events.register(
        "provide-client-params.secrets-manager.GetSecretValue", lambda params, **_: reads.append(dict(params))
    )
    return reads


@pytest.fixture
def rotated(world: RotationWorld) -> str:
    arn = world.create_managed_secret("chat-backend")
    assert world.driver().rotate(arn).succeeded
    return arn


def test_provider_is_the_sdk_api_key(world: RotationWorld, rotated: str) -> None:
    provider = KeyProvider(rotated, client=world.secrets)
    client = openai.OpenAI(api_key=provider, base_url=world.openai.base_url, max_retries=0)
    assert [model.id for model in client.models.list()][:1] == ["gpt-4o-mini"]
    assert provider.key_id == world.current(rotated).key_id


def test_reads_are_cached_for_the_ttl(world: RotationWorld, rotated: str) -> None:
    clock, reads = FakeClock(), _count_reads(world)
    provider = KeyProvider(rotated, client=world.secrets, ttl_seconds=60, clock=clock)
    for _ in range(1000):
        provider()
    assert len(reads) == 1 and reads[0]["VersionStage"] == "AWSCURRENT"
    clock.now += 61
    provider()
    assert len(reads) == 2


def test_a_rotation_is_picked_up_when_the_ttl_runs_out(world: RotationWorld, rotated: str) -> None:
    clock = FakeClock()
    provider = KeyProvider(rotated, client=world.secrets, ttl_seconds=60, clock=clock)
    provider()
    first = provider.key_id
    assert world.driver().rotate(rotated).succeeded
    provider()
    assert provider.key_id == first  # still cached (the old key is valid for its grace period)
    clock.now += 61
    provider()
    assert provider.key_id == world.current(rotated).key_id != first


def test_many_threads_share_one_refresh(world: RotationWorld, rotated: str) -> None:
    clock, reads = FakeClock(), _count_reads(world)
    provider = KeyProvider(rotated, client=world.secrets, ttl_seconds=60, clock=clock)
    barrier = threading.Barrier(24)
    results: list[str] = []

    def read() -> None:
        barrier.wait()
        results.append(provider())

    def slow_read(**_: Any) -> None:
        time.sleep(0.2)

    world.secrets.meta.events.register("before-call.secrets-manager.GetSecretValue", slow_read)
    threads = [threading.Thread(target=read) for _ in range(24)]  # cold start: all wait for one fetch
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(reads) == 1 and len(set(results)) == 1
    clock.now += 61  # expired: one thread refreshes, the others are served the cached key meanwhile
    results.clear()
    barrier.reset()
    threads = [threading.Thread(target=read) for _ in range(24)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(reads) == 2 and len(results) == 24
    assert time.perf_counter() - started < 5


def test_rejected_key_triggers_an_immediate_refresh_at_most_once_per_interval(
    world: RotationWorld, rotated: str
) -> None:
    clock = FakeClock()
    provider = KeyProvider(rotated, client=world.secrets, ttl_seconds=300, clock=clock)
    old = provider()
    assert world.driver().rotate(rotated).succeeded
    assert provider.key_rejected(old) is True
    assert provider.key_id == world.current(rotated).key_id
    assert provider.key_rejected(old) is False  # that key is already replaced
    assert provider.key_rejected() is False  # within the interval
    clock.now += 6
    assert provider.key_rejected() is True
    assert provider.refreshes == 3


def test_each_newly_rejected_key_refreshes_at_once_even_within_the_interval(world: RotationWorld, rotated: str) -> None:
    # GIVEN a provider whose key is rejected, then the key it moved to is rejected seconds later (two emergencies)
    clock = FakeClock()
    provider = KeyProvider(rotated, client=world.secrets, ttl_seconds=300, clock=clock)
    first = provider()
    assert world.driver().rotate(rotated).succeeded
    assert provider.key_rejected(first) is True
    second = provider()
    assert world.driver().rotate(rotated).succeeded
    # WHEN the second key is reported rejected within the rate-limit interval of the first refresh
    refreshed = provider.key_rejected(second)
    # THEN it refreshes at once (a new fact), but a repeated report of the same key waits for the interval
    assert refreshed is True and provider.key_id == world.current(rotated).key_id
    assert provider.key_rejected(provider()) is True  # first report of the third key
    assert provider.key_rejected(provider()) is False  # the same key again, within the interval
    assert provider.refreshes == 4


@pytest.fixture
def emergency(openai_standin: Any, secrets_client: Any) -> tuple[RotationWorld, str]:
    """A secret rotated once in an environment with grace 0: every later rotation revokes the previous key at once."""
    world = RotationWorld.create(openai_standin, secrets_client, grace_period_seconds=0)
    arn = world.create_managed_secret("chat-backend")
    assert world.driver().rotate(arn).succeeded
    return world, arn


def test_sdk_response_hook_recovers_from_an_emergency_rotation(emergency: tuple[RotationWorld, str]) -> None:
    world, arn = emergency
    provider = KeyProvider(arn, client=world.secrets, ttl_seconds=3600)
    http = httpx2.Client(event_hooks={"response": [provider.response_hook]})
    client = openai.OpenAI(api_key=provider, base_url=world.openai.base_url, max_retries=0, http_client=http)
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    client.chat.completions.create(**chat)
    assert world.driver().rotate(arn).succeeded  # the key the provider caches is now revoked
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(**chat)
    client.chat.completions.create(**chat)  # the hook refreshed the key
    assert provider.key_id == world.current(arn).key_id


def test_with_key_refresh_retries_once_after_a_rejection(emergency: tuple[RotationWorld, str]) -> None:
    world, arn = emergency
    provider = KeyProvider(arn, client=world.secrets, ttl_seconds=3600)
    client = openai.OpenAI(api_key=provider, base_url=world.openai.base_url, max_retries=0)
    provider()
    assert world.driver().rotate(arn).succeeded
    models = with_key_refresh(provider, lambda: client.models.list())
    assert models.data


def test_outage_serves_the_last_good_key_until_max_staleness(world: RotationWorld, rotated: str) -> None:
    clock, reads = FakeClock(), _count_reads(world)
    provider = KeyProvider(rotated, client=world.secrets, ttl_seconds=60, max_staleness_seconds=600, clock=clock)
    good = provider()
    outage = {"on": True}

    def fail(**_: Any) -> None:
        if outage["on"]:
            raise EndpointConnectionError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com")

    world.secrets.meta.events.register("before-call.secrets-manager.GetSecretValue", fail)
    clock.now += 61
    for _ in range(50):
        assert provider() == good
    attempts = len(reads)
    assert attempts <= 3  # backs off instead of hammering a failing service
    clock.now += 600
    with pytest.raises(KeyUnavailableError, match="older than 600 s") as caught:
        for _ in range(10):
            clock.now += 10
            provider()
    assert good not in str(caught.value)
    outage["on"] = False
    clock.now += 300
    assert provider() == good


def test_a_malformed_secret_fails_clearly_without_the_value(world: RotationWorld) -> None:
    arn = world.secrets.create_secret(Name="keyrot/dev/broken", SecretString='{"api_key": "sk-not-shown-123456789"}')[
        "ARN"
    ]
    with pytest.raises(KeyUnavailableError, match="missing field") as caught:
        KeyProvider(arn, client=world.secrets)()
    assert "sk-not-shown" not in str(caught.value)


def test_async_provider_with_async_openai(world: RotationWorld, rotated: str) -> None:
    provider = AsyncKeyProvider(rotated, client=world.secrets)

    async def main() -> list[str]:
        client = openai.AsyncOpenAI(api_key=provider, base_url=world.openai.base_url, max_retries=0)
        results = await asyncio.gather(*(client.models.list() for _ in range(8)))
        return [page.data[0].id for page in results]

    assert asyncio.run(main()) == ["gpt-4o-mini"] * 8
    assert provider.refreshes == 1 and provider.key_id == world.current(rotated).key_id


def test_async_response_hook_recovers_from_an_emergency_rotation(emergency: tuple[RotationWorld, str]) -> None:
    # GIVEN an AsyncOpenAI client whose http client carries the async provider's hook, and an emergency rotation
    world, arn = emergency
    provider = AsyncKeyProvider(arn, client=world.secrets, ttl_seconds=3600)
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

    async def main() -> None:
        http = httpx2.AsyncClient(event_hooks={"response": [provider.response_hook]})
        client = openai.AsyncOpenAI(api_key=provider, base_url=world.openai.base_url, max_retries=0, http_client=http)
        await client.chat.completions.create(**chat)
        assert world.driver().rotate(arn).succeeded  # the cached key is revoked now
        with pytest.raises(openai.AuthenticationError):
            await client.chat.completions.create(**chat)
        await client.chat.completions.create(**chat)  # the hook refreshed the key

    asyncio.run(main())
    assert provider.key_id == world.current(arn).key_id


def test_with_key_refresh_async_retries_once_after_a_rejection(emergency: tuple[RotationWorld, str]) -> None:
    world, arn = emergency
    provider = AsyncKeyProvider(arn, client=world.secrets, ttl_seconds=3600)

    async def main() -> Any:
        client = openai.AsyncOpenAI(api_key=provider, base_url=world.openai.base_url, max_retries=0)
        await provider()
        assert world.driver().rotate(arn).succeeded  # revokes the key the provider caches
        return await with_key_refresh_async(provider, lambda: client.models.list())

    assert asyncio.run(main()).data
    assert provider.key_id == world.current(arn).key_id


def test_invalid_construction_is_refused() -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        KeyProvider("x", ttl_seconds=600, max_staleness_seconds=60)
