"""AsyncKeyProvider: KeyProvider for `AsyncOpenAI`, refreshing off the event loop in one shared, shielded task.

Every read of Secrets Manager (a TTL refresh, a refresh after a rejected key) runs as one task per provider that
callers await through `asyncio.shield`: a cancelled caller (a request timeout, a client gone away) stops waiting
but never cancels the read nor starts another, so a burst of cancellations occupies one executor thread, not one
each, and `loop.getaddrinfo` and `asyncio.to_thread` keep their threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from keyrot.client.forks import reset_after_fork
from keyrot.client.provider import KeyProvider, ServedKey
from keyrot.client.rejection import rejected_key as _rejected_key
from keyrot.errors import KeyrotError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class AsyncKeyProvider:
    """The same provider for `AsyncOpenAI(api_key=provider)`: awaitable, refreshing in one shared task.

    Takes KeyProvider's arguments; `sync` is the KeyProvider underneath (for threads of the same process).
    """

    def __init__(self, secret_id: str, **options: Any) -> None:
        self.sync = KeyProvider(secret_id, **options)
        self._task: asyncio.Task[Any] | None = None
        self._task_reads_key = False  # whether the task under way returns the key (else a rejection's verdict)
        reset_after_fork(self)

    async def __call__(self) -> str:
        value = self.sync._fresh_key()
        if value is not None:
            return value
        running = self._running_task()
        if running is not None and self.sync._has_key():
            return self.sync._serve_stale()  # a refresh is under way: keep serving the cached key meanwhile
        if running is not None and not self._task_reads_key:
            await self._settled()  # a rejection's refresh: wait for it, then read what it left
            return await self()
        task = running if running is not None else self._start(self.sync.get, reads_key=True)
        return str(await asyncio.shield(task))  # callers waiting for the first read share its outcome

    @property
    def secret_id(self) -> str:
        return self.sync.secret_id

    @property
    def key_id(self) -> str | None:
        return self.sync.key_id

    @property
    def served(self) -> ServedKey | None:
        return self.sync.served

    @property
    def refreshes(self) -> int:
        return self.sync.refreshes

    async def key_rejected(self, rejected_key: str | None = None) -> bool:
        """As KeyProvider.key_rejected: waits for a refresh under way (which may already answer), then at most one."""
        await self._settled()
        if rejected_key is not None and rejected_key != self.sync._value:
            return False  # already replaced
        task = self._start(functools.partial(self.sync.key_rejected, rejected_key), reads_key=False)
        return bool(await asyncio.shield(task))

    async def replacement_for(self, rejected_key: str) -> str | None:
        """As KeyProvider.replacement_for: the key to retry a rejected request with, or None."""
        if rejected_key not in (self.sync._value, self.sync._previous_value):
            return None
        try:
            await self.key_rejected(rejected_key)
            fresh = await self()
        except KeyrotError as exc:
            logger.warning("no replacement for the rejected OpenAI key of %s: %s", self.secret_id, exc)
            return None
        return fresh if fresh != rejected_key else None

    async def response_hook(self, response: Any) -> None:
        """The async httpx2 response event hook (for AsyncOpenAI's http_client): as KeyProvider.response_hook."""
        if getattr(response, "status_code", None) != 401:
            return
        try:
            await response.aread()
        except Exception:  # noqa: BLE001 - a hook must never break the caller's request
            return
        rejected, used = _rejected_key(response)
        if rejected:
            await self.key_rejected(used)

    # --- the shared task -------------------------------------------------------------------------

    def _running_task(self) -> asyncio.Task[Any] | None:
        """The refresh under way on this event loop, if any (a task of another loop, or of the parent process
        before a fork, is not awaited here: the KeyProvider's own lock orders those reads)."""
        task = self._task
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            return None
        return task

    def _start(self, work: Callable[[], T], *, reads_key: bool) -> asyncio.Task[T]:
        loop = asyncio.get_running_loop()
        task = loop.create_task(_in_executor(loop, work))
        self._task, self._task_reads_key = task, reads_key
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        if self._task is task:
            self._task = None
        if not task.cancelled():
            task.exception()  # retrieved: every caller may have been cancelled before it ended

    async def _settled(self) -> None:
        """Wait (shielded) until no refresh is under way; its failure is its callers' to report, not ours."""
        while (task := self._running_task()) is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(task)

    def _after_fork_in_child(self) -> None:
        self._task = None


async def _in_executor(loop: asyncio.AbstractEventLoop, work: Callable[[], T]) -> T:
    return await loop.run_in_executor(None, work)
