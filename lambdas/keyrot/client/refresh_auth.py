"""The httpx2 auth flow behind `openai_client`: a request OpenAI rejects as invalid_api_key is sent once more with
the provider's new key, inside the SDK's own send, so an emergency rotation costs the application no failed request.

httpx2 comes with the OpenAI SDK, which a KeyProvider-only application may not have: it is imported when the first
auth is built (by keyrot.client.sdk, once the SDK is known to be installed), never when this module is imported.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncGenerator, Generator
from typing import TYPE_CHECKING, Any

from keyrot.client.async_provider import AsyncKeyProvider
from keyrot.client.provider import KeyProvider
from keyrot.client.rejection import bearer_key, is_invalid_key_response

if TYPE_CHECKING:
    import httpx2

logger = logging.getLogger(__name__)


def refresh_on_rejection(provider: KeyProvider | AsyncKeyProvider) -> httpx2.Auth:
    """An httpx2.Auth that retries a request once with a fresh key when OpenAI answers 401 invalid_api_key to a key
    `provider` served (KeyProvider for httpx2.Client, AsyncKeyProvider for httpx2.AsyncClient).

    Requests whose body cannot be replayed (a streamed upload) and keys the provider never served (an Authorization
    header the caller set) are left alone: the 401 reaches the caller as it came.
    """
    auth: httpx2.Auth = _auth_class()(provider)
    return auth


@functools.cache
def _auth_class() -> Any:
    import httpx2

    class RefreshOnRejection(httpx2.Auth):
        __doc__ = refresh_on_rejection.__doc__

        def __init__(self, provider: KeyProvider | AsyncKeyProvider) -> None:
            self.provider = provider

        def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
            return _sync_flow(self.provider, request)

        def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
            return _async_flow(self.provider, request)

    return RefreshOnRejection


def _sync_flow(provider: KeyProvider | AsyncKeyProvider, request: Any) -> Generator[Any, Any, None]:
    response = yield request
    used = _retry_candidate(request, response)
    if used is None or not isinstance(provider, KeyProvider):
        return
    response.read()
    if not is_invalid_key_response(response):
        return
    fresh = provider.replacement_for(used)
    if fresh is not None:
        yield _with_key(request, fresh, provider.key_id)


async def _async_flow(provider: KeyProvider | AsyncKeyProvider, request: Any) -> AsyncGenerator[Any, Any]:
    response = yield request
    used = _retry_candidate(request, response)
    if used is None or not isinstance(provider, AsyncKeyProvider):
        return
    await response.aread()
    if not is_invalid_key_response(response):
        return
    fresh = await provider.replacement_for(used)
    if fresh is not None:
        yield _with_key(request, fresh, provider.key_id)


def _retry_candidate(request: Any, response: Any) -> str | None:
    """The key a request answered 401 carried, if the request can be sent again; else None."""
    import httpx2

    if response.status_code != 401:
        return None
    try:
        request.content  # noqa: B018 - raises if the body is a stream that was not buffered
    except httpx2.RequestNotRead:
        return None
    return bearer_key(request.headers)


def _with_key(request: Any, key: str, key_id: str | None) -> Any:
    logger.info(
        "OpenAI rejected the key as invalid; sending %s %s again with key %s", request.method, request.url.path, key_id
    )
    request.headers["Authorization"] = f"Bearer {key}"
    return request
