"""Retry one OpenAI SDK call after a key rejection: for code that builds its own client around a bare provider."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from keyrot.client.async_provider import AsyncKeyProvider
from keyrot.client.provider import KeyProvider
from keyrot.client.rejection import is_invalid_key_error


def with_key_refresh(provider: KeyProvider, call: Callable[[], Any]) -> Any:
    """Run `call` (an OpenAI SDK call); if OpenAI rejects the key as invalid, refresh it and try once more."""
    used = provider()
    try:
        return call()
    except Exception as exc:
        if not is_invalid_key_error(exc):
            raise
        if provider.replacement_for(used) is None:
            raise  # no newer key exists: the rejection stands
        return call()


async def with_key_refresh_async(provider: AsyncKeyProvider, call: Callable[[], Awaitable[Any]]) -> Any:
    """`with_key_refresh` for AsyncOpenAI: await `call`; on an invalid-key 401, refresh and try once more."""
    used = await provider()
    try:
        return await call()
    except Exception as exc:
        if not is_invalid_key_error(exc):
            raise
        if await provider.replacement_for(used) is None:
            raise
        return await call()
