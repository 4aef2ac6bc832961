"""KeyProvider: a cached, self-refreshing source of one managed secret's current OpenAI key. Thread- and fork-safe.

The SDK calls the provider before each request. The provider answers from memory (a lock-free read) and refreshes
the AWSCURRENT value when its TTL runs out, one thread doing the work while the others keep serving the cached
key (single flight). Before the first successful read, callers waiting for one attempt share its outcome and a
failed attempt starts a backoff, so a throttled Secrets Manager sees one call at a time. When OpenAI rejects the
key (401 invalid_api_key), `key_rejected()` refreshes at once: once per newly rejected key, otherwise at most once
per short interval. Through a Secrets Manager outage it keeps serving the last good key up to
`max_staleness_seconds`, then fails with KeyUnavailableError. A process forked at any moment (even mid-refresh)
gets a fresh lock and its own AWS client.

Keep `ttl_seconds` well below the rotation grace period (default 5 minutes against a 24-hour grace).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from keyrot.aws.errors import aws_errors
from keyrot.client.forks import reset_after_fork
from keyrot.client.region import resolve_region
from keyrot.client.rejection import rejected_key as _rejected_key
from keyrot.constants import STAGE_CURRENT
from keyrot.errors import AwsCallError, KeyrotError, SecretContractError
from keyrot.secret_model import ManagedKey

logger = logging.getLogger(__name__)

_JITTER = 0.1  # refresh up to 10% early, so a fleet started together does not refresh together
_MAX_BACKOFF_BEFORE_FIRST_READ = 30.0  # with no key to serve, every request fails: retry sooner than the TTL
_CONNECT_TIMEOUT_SECONDS = 5
_READ_TIMEOUT_SECONDS = 10
_ATTEMPTS_PER_READ = 3  # botocore's standard retry mode (with its retry quota) inside one GetSecretValue


class KeyUnavailableError(KeyrotError):
    """No key can be served: Secrets Manager cannot be read and there is no key recent enough to fall back on."""


@dataclass(frozen=True)
class ServedKey:
    """What the provider serves right now. `key_id` is safe to log and to report; the key itself is not."""

    key_id: str
    fetched_at: float  # monotonic clock
    version_id: str | None


class KeyProvider:
    """A cached, self-refreshing source of one managed secret's current OpenAI key. Thread-safe and fork-safe.

    `client` is a boto3 Secrets Manager client to use (yours: kept as is after a fork); without it the provider
    builds its own in `region_name` (else the secret's ARN, AWS_REGION, AWS_DEFAULT_REGION, the AWS profile).
    """

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
        if not isinstance(secret_id, str) or not secret_id.strip():
            raise ValueError("secret_id must be the managed secret's name or ARN, e.g. 'keyrot/prod/chat-backend'")
        if not ttl_seconds > 0 or not max_staleness_seconds >= ttl_seconds:
            raise ValueError("ttl_seconds must be positive and no longer than max_staleness_seconds")
        if not rejection_refresh_interval_seconds >= 0:
            raise ValueError("rejection_refresh_interval_seconds must be zero or more")
        self.secret_id = secret_id
        self.region_name = None if client is not None else resolve_region(secret_id, region_name)
        self._client = client
        self._owns_client = client is None
        self._ttl = ttl_seconds
        self._max_staleness = max_staleness_seconds
        self._rejection_interval = rejection_refresh_interval_seconds
        self._clock = clock
        self._lock = threading.Lock()  # held by the one thread reading Secrets Manager
        self._value: str | None = None
        self._previous_value: str | None = None  # the key served before the current one
        self._served: ServedKey | None = None
        self._fresh_until = float("-inf")
        self._retry_at = float("-inf")
        self._failures = 0  # consecutive failed reads
        self._attempts = 0  # reads attempted so far, successful or not
        self._last_failure = ""
        self._last_rejection_refresh = float("-inf")
        self._rejection_refreshed_for: str | None = None  # key id whose rejection caused the last such refresh
        self.refreshes = 0  # successful GetSecretValue reads, for metrics and tests
        reset_after_fork(self)

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

        A rejection of the key being served refreshes at once the first time that key is reported (a new key was
        rotated in, or revoked in an emergency); repeated reports, and reports that do not say which key was
        rejected, refresh at most once per `rejection_refresh_interval_seconds`. Returns True when a refresh
        happened. Safe to call from every failing request: concurrent calls collapse into one read.
        """
        with self._lock:
            if rejected_key is not None and rejected_key != self._value:
                return False  # that key was already replaced (or was never this provider's)
            now = self._clock()
            served_id = self.key_id
            first_report = rejected_key is not None and served_id != self._rejection_refreshed_for
            if not first_report and now - self._last_rejection_refresh < self._rejection_interval:
                return False
            self._last_rejection_refresh = now
            self._rejection_refreshed_for = served_id
            try:
                self._refresh_locked()
            except KeyUnavailableError:
                raise
            except KeyrotError as exc:
                logger.warning("refresh after a rejected key failed: %s", exc)
                return False
            return True

    def replacement_for(self, rejected_key: str) -> str | None:
        """After OpenAI answered 401 invalid_api_key to `rejected_key`: the key to retry with, or None.

        None when the rejected key is not one this provider served (a key the caller set itself), when Secrets
        Manager holds nothing newer (the rejection stands), or when no key can be read. Never raises KeyrotError.
        """
        if rejected_key not in (self._value, self._previous_value):
            return None
        try:
            self.key_rejected(rejected_key)
            fresh = self()
        except KeyrotError as exc:
            logger.warning("no replacement for the rejected OpenAI key of %s: %s", self.secret_id, exc)
            return None
        return fresh if fresh != rejected_key else None

    def response_hook(self, response: Any) -> None:
        """An httpx2 response event hook: a 401 invalid_api_key for the served key triggers a refresh.

        The request that got the 401 still fails; `keyrot.client.openai_client` also retries it with the new key.
        """
        if getattr(response, "status_code", None) != 401:
            return
        try:
            response.read()
        except Exception:  # noqa: BLE001 - a hook must never break the caller's request
            return
        rejected, used = _rejected_key(response)
        if rejected:
            self.key_rejected(used)

    # --- for AsyncKeyProvider (same package) ------------------------------------------------------

    def _fresh_key(self) -> str | None:
        value = self._value
        return value if value is not None and self._clock() < self._fresh_until else None

    def _has_key(self) -> bool:
        return self._value is not None

    # --- internals -------------------------------------------------------------------------------

    def _slow_path(self) -> str:
        if self._value is None:
            return self._first_read()
        # A cached key exists: one thread refreshes, the others keep serving it (single flight).
        if not self._lock.acquire(blocking=False):
            return self._serve_stale()
        try:
            value = self._value
            if value is not None and self._clock() < self._fresh_until:
                return value  # another thread just refreshed
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

    def _first_read(self) -> str:
        """No key yet: one read at a time; callers that waited for an attempt share its outcome; then back off."""
        seen = self._attempts
        with self._lock:
            value = self._value
            if value is not None:
                return value
            if self._attempts != seen:  # the attempt this caller waited for failed: do not repeat it at once
                raise KeyUnavailableError(f"cannot read the OpenAI key for {self.secret_id}: {self._last_failure}")
            wait = self._retry_at - self._clock()
            if wait > 0:
                raise KeyUnavailableError(
                    f"cannot read the OpenAI key for {self.secret_id} yet: the last attempt failed "
                    f"({self._last_failure}); next attempt in {wait:.1f} s"
                )
            return self._refresh_locked()

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
            self._attempts += 1
            self._failures += 1
            self._last_failure = str(exc)
            cap = self._ttl if self._served is not None else min(self._ttl, _MAX_BACKOFF_BEFORE_FIRST_READ)
            backoff = min(cap, 2.0 ** min(self._failures, 8))
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
        if key.api_key != self._value:
            self._previous_value = self._value
        self._value = key.api_key
        self._served = ServedKey(key.key_id, now, version_id)
        self._fresh_until = now + self._ttl * (1 - random.random() * _JITTER)  # noqa: S311 - jitter, not crypto
        self._failures = 0
        self._retry_at = float("-inf")
        self._attempts += 1
        self.refreshes += 1
        if previous != key.key_id:
            logger.info("serving OpenAI key %s for %s (was %s)", key.key_id, self.secret_id, previous)
        return key.api_key

    def _read(self) -> tuple[ManagedKey, str | None]:
        with aws_errors("GetSecretValue"):
            client = self._client
            if client is None:
                client = self._client = self._new_client()
            response = client.get_secret_value(SecretId=self.secret_id, VersionStage=STAGE_CURRENT)
        return ManagedKey.from_json(response.get("SecretString"), what=f"secret {self.secret_id}"), response.get(
            "VersionId"
        )

    def _new_client(self) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(
            connect_timeout=_CONNECT_TIMEOUT_SECONDS,
            read_timeout=_READ_TIMEOUT_SECONDS,
            retries={"mode": "standard", "max_attempts": _ATTEMPTS_PER_READ},
        )
        return boto3.session.Session().client("secretsmanager", region_name=self.region_name, config=config)

    def _after_fork_in_child(self) -> None:
        """In a forked child: a fresh lock (the parent's may be held by a thread that does not exist here), the
        provider's own AWS client rebuilt on next use (its pooled connections belong to the parent), and a read on
        next use (a refresh cut short by the fork may have left the cache half-updated, and a rejection it was
        answering is still to be answered here)."""
        self._lock = threading.Lock()
        if self._owns_client:
            self._client = None
        self._fresh_until = float("-inf")
        self._retry_at = float("-inf")
        self._last_rejection_refresh = float("-inf")
        self._rejection_refreshed_for = None
