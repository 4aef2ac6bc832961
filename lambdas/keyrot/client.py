"""KeyProvider: applications read their OpenAI key from Secrets Manager through this, and survive every rotation.

    from openai import OpenAI
    from keyrot.client import KeyProvider

    client = OpenAI(api_key=KeyProvider("keyrot/prod/chat-backend"))

The SDK calls the provider before each request. The provider answers from memory (a lock-free read) and refreshes
the AWSCURRENT value when its TTL runs out, one thread doing the work while the others keep serving the cached
key (single flight). When OpenAI rejects the key (401 invalid_api_key), `key_rejected()` or the response hook
refreshes at once, at most once per short interval. Through a Secrets Manager outage it keeps serving the last
good key up to `max_staleness_seconds`, then fails with KeyUnavailableError.

Keep `ttl_seconds` well below the rotation grace period (default 5 minutes against a 24-hour grace).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from keyrot.aws.errors import aws_errors
from keyrot.constants import STAGE_CURRENT
from keyrot.errors import AwsCallError, KeyrotError, SecretContractError
from keyrot.secret_model import ManagedKey

logger = logging.getLogger(__name__)

_JITTER = 0.1  # refresh up to 10% early, so a fleet started together does not refresh together


class KeyUnavailableError(KeyrotError):
    """No key can be served: Secrets Manager has failed for longer than the maximum staleness allows."""


@dataclass(frozen=True)
class ServedKey:
    """What the provider serves right now. `key_id` is safe to log and to report; `api_key` is not."""

    key_id: str
    fetched_at: float  # monotonic clock
    version_id: str | None


class KeyProvider:
    """A cached, self-refreshing source of one managed secret's current OpenAI key. Thread-safe."""

    def __init__(
        self,
        secret_id: str,
        *,
        client: Any | None = None,
        region_name: str | None = None,
        ttl_seconds: float = 300.0,
        max_staleness_seconds: float = 3600.0,
        rejection_refresh_interval_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds <= 0 or max_staleness_seconds < ttl_seconds:
            raise ValueError("ttl_seconds must be positive and no longer than max_staleness_seconds")
        self.secret_id = secret_id
        self._client = client
        self._region_name = region_name
        self._ttl = ttl_seconds
        self._max_staleness = max_staleness_seconds
        self._rejection_interval = rejection_refresh_interval_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._refreshing = threading.Event()
        self._value: str | None = None
        self._served: ServedKey | None = None
        self._fresh_until = float("-inf")
        self._retry_at = float("-inf")
        self._failures = 0
        self._last_rejection_refresh = float("-inf")
        self.refreshes = 0  # successful GetSecretValue reads, for metrics and tests

    # --- the hot path ---------------------------------------------------------------------------

    def __call__(self) -> str:
        """The current key. Usable directly as `OpenAI(api_key=provider)`."""
        value = self._value
        if value is not None and self._clock() < self._fresh_until:
            return value
        return self._slow_path()

    def get(self) -> str:
        return self()

    @property
    def key_id(self) -> str | None:
        """The id (key_...) of the key being served, or None before the first read."""
        served = self._served
        return served.key_id if served else None

    @property
    def served(self) -> ServedKey | None:
        return self._served

    # --- refreshing ------------------------------------------------------------------------------

    def refresh(self) -> str:
        """Read AWSCURRENT now (blocking) and serve it."""
        with self._lock:
            return self._refresh_locked()

    def key_rejected(self, rejected_key: str | None = None) -> bool:
        """OpenAI rejected a key: refresh at once unless a newer key is already served or we just refreshed.

        Returns True when a refresh happened. Safe to call from every failing request: calls collapse into one.
        """
        with self._lock:
            if rejected_key is not None and rejected_key != self._value:
                return False  # that key was already replaced
            now = self._clock()
            if now - self._last_rejection_refresh < self._rejection_interval:
                return False
            self._last_rejection_refresh = now
            try:
                self._refresh_locked()
            except KeyUnavailableError:
                raise
            except KeyrotError as exc:
                logger.warning("refresh after a rejected key failed: %s", exc)
                return False
            return True

    def response_hook(self, response: Any) -> None:
        """An httpx (or httpx2) response event hook: a 401 invalid_api_key for the served key triggers a refresh.

        OpenAI(api_key=provider, http_client=DefaultHttpxClient(event_hooks={"response": [provider.response_hook]}))
        """
        if getattr(response, "status_code", None) != 401:
            return
        try:
            response.read()
        except Exception:  # noqa: BLE001 - a hook must never break the caller's request
            return
        rejected, used = _rejection(response)
        if rejected:
            self.key_rejected(used)

    def _slow_path(self) -> str:
        if self._value is None:
            with self._lock:  # first read: everyone waits for the one fetch
                if self._value is not None:
                    return self._value
                return self._refresh_locked()
        # A cached key exists: one thread refreshes, the others keep serving it (single flight).
        if not self._lock.acquire(blocking=False):
            return self._serve_stale()
        try:
            if self._clock() < self._fresh_until:
                return self._value  # another thread just refreshed
            if self._clock() < self._retry_at:
                return self._serve_stale()
            try:
                return self._refresh_locked()
            except KeyUnavailableError:
                raise
            except KeyrotError:
                return self._serve_stale()
        finally:
            self._lock.release()

    def _serve_stale(self) -> str:
        served, value = self._served, self._value
        if value is None or served is None:
            raise KeyUnavailableError(f"no key for {self.secret_id} has been read yet")
        if self._clock() - served.fetched_at > self._max_staleness:
            raise self._unavailable("the last refresh failed")
        return value

    def _unavailable(self, cause: str) -> KeyUnavailableError:
        return KeyUnavailableError(
            f"cannot refresh the OpenAI key for {self.secret_id} ({cause}) and the last good key is older than "
            f"{self._max_staleness:.0f} s; check this process's Secrets Manager access"
        )

    def _refresh_locked(self) -> str:
        try:
            key, version_id = self._read()
        except (AwsCallError, SecretContractError) as exc:
            self._failures += 1
            backoff = min(self._ttl, 2.0 ** min(self._failures, 8))
            self._retry_at = self._clock() + backoff
            logger.warning(
                "could not refresh OpenAI key for %s (attempt %d, retry in %.0f s): %s",
                self.secret_id,
                self._failures,
                backoff,
                exc,
            )
            if self._served is None:
                raise KeyUnavailableError(f"cannot read the OpenAI key for {self.secret_id}: {exc}") from exc
            if self._clock() - self._served.fetched_at > self._max_staleness:
                raise self._unavailable(str(exc)) from exc
            raise
        now = self._clock()
        previous = self.key_id
        self._value = key.api_key
        self._served = ServedKey(key.key_id, now, version_id)
        self._fresh_until = now + self._ttl * (1 - random.random() * _JITTER)  # noqa: S311 - jitter, not crypto
        self._failures = 0
        self.refreshes += 1
        if previous != key.key_id:
            logger.info("serving OpenAI key %s for %s (was %s)", key.key_id, self.secret_id, previous)
        return key.api_key

    def _read(self) -> tuple[ManagedKey, str | None]:
        client = self._client
        if client is None:
            import boto3

            client = self._client = boto3.session.Session().client("secretsmanager", region_name=self._region_name)
        with aws_errors("GetSecretValue"):
            response = client.get_secret_value(SecretId=self.secret_id, VersionStage=STAGE_CURRENT)
        return ManagedKey.from_json(response.get("SecretString"), what=f"secret {self.secret_id}"), response.get(
            "VersionId"
        )


class AsyncKeyProvider:
    """The same provider for `AsyncOpenAI(api_key=provider)`: awaitable, refreshing off the event loop."""

    def __init__(self, secret_id: str, **options: Any) -> None:
        self._sync = KeyProvider(secret_id, **options)
        self._lock: asyncio.Lock | None = None

    async def __call__(self) -> str:
        provider = self._sync
        value = provider._value
        if value is not None and provider._clock() < provider._fresh_until:
            return value
        if self._lock is None:
            self._lock = asyncio.Lock()
        if provider._value is not None and self._lock.locked():
            return provider._serve_stale()  # a refresh is already under way
        async with self._lock:
            return await asyncio.to_thread(provider)

    @property
    def key_id(self) -> str | None:
        return self._sync.key_id

    @property
    def refreshes(self) -> int:
        return self._sync.refreshes

    async def key_rejected(self, rejected_key: str | None = None) -> bool:
        return await asyncio.to_thread(self._sync.key_rejected, rejected_key)

    async def response_hook(self, response: Any) -> None:
        """The async httpx response event hook (for AsyncOpenAI's http_client): as KeyProvider.response_hook."""
        if getattr(response, "status_code", None) != 401:
            return
        try:
            await response.aread()
        except Exception:  # noqa: BLE001 - a hook must never break the caller's request
            return
        rejected, used = _rejection(response)
        if rejected:
            await self.key_rejected(used)


def _rejection(response: Any) -> tuple[bool, str | None]:
    """Whether a read 401 response says the key is invalid, and the key the request carried."""
    try:
        code = (response.json().get("error") or {}).get("code")
    except Exception:  # noqa: BLE001 - a hook must never break the caller's request
        return False, None
    if code != "invalid_api_key":
        return False, None
    header = response.request.headers.get("authorization", "")
    return True, header[7:] if header.lower().startswith("bearer ") else None


def _is_invalid_key(exc: BaseException) -> bool:
    return getattr(exc, "status_code", None) == 401 and getattr(exc, "code", None) == "invalid_api_key"


def with_key_refresh(provider: KeyProvider, call: Callable[[], Any]) -> Any:
    """Run `call` (an OpenAI SDK call); if OpenAI rejects the key as invalid, refresh it and try once more."""
    used = provider()
    try:
        return call()
    except Exception as exc:
        if not _is_invalid_key(exc):
            raise
        provider.key_rejected(used)
        if provider() == used:
            raise  # no newer key exists: the rejection stands
        return call()


async def with_key_refresh_async(provider: AsyncKeyProvider, call: Callable[[], Awaitable[Any]]) -> Any:
    """`with_key_refresh` for AsyncOpenAI: await `call`; on an invalid-key 401, refresh and try once more."""
    used = await provider()
    try:
        return await call()
    except Exception as exc:
        if not _is_invalid_key(exc):
            raise
        await provider.key_rejected(used)
        if await provider() == used:
            raise
        return await call()
