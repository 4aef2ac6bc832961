"""The httpx2 auth flow behind `openai_client`: a request OpenAI rejects as invalid_api_key is sent once more with
the provider's new key, inside the SDK's own send, so an emergency rotation costs the application no failed request.

Imported only by keyrot.client.sdk, once the OpenAI SDK (and so httpx2) is known to be installed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Generator

import httpx2

from keyrot.client.async_provider import AsyncKeyProvider
from keyrot.client.provider import KeyProvider
from keyrot.client.rejection import bearer_key, is_invalid_key_response

logger = logging.getLogger(__name__)


class RefreshOnRejection(httpx2.Auth):
    """Retry a request once with a fresh key when OpenAI answers 401 invalid_api_key to a key the provider served.

    Requests whose body cannot be replayed (a streamed upload) and keys the provider never served (an Authorization
    header the caller set) are left alone: the 401 reaches the caller as it came.
    """

    def __init__(self, provider: KeyProvider | AsyncKeyProvider) -> None:
        self.provider = provider

    def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        response = yield request
        used = _retry_candidate(request, response)
        if used is None or not isinstance(self.provider, KeyProvider):
            return
        response.read()
        if not is_invalid_key_response(response):
            return
        fresh = self.provider.replacement_for(used)
        if fresh is not None:
            yield _with_key(request, fresh, self.provider.key_id)

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        response = yield request
        used = _retry_candidate(request, response)
        if used is None or not isinstance(self.provider, AsyncKeyProvider):
            return
        await response.aread()
        if not is_invalid_key_response(response):
            return
        fresh = await self.provider.replacement_for(used)
        if fresh is not None:
            yield _with_key(request, fresh, self.provider.key_id)


def _retry_candidate(request: httpx2.Request, response: httpx2.Response) -> str | None:
    """The key a 401 answered request carried, if the request can be sent again; else None."""
    if response.status_code != 401:
        return None
    try:
        request.content  # noqa: B018 - raises if the body is a stream that was not buffered
    except httpx2.RequestNotRead:
        return None
    return bearer_key(request.headers)


def _with_key(request: httpx2.Request, key: str, key_id: str | None) -> httpx2.Request:
    logger.info(
        "OpenAI rejected the key as invalid; sending %s %s again with key %s", request.method, request.url.path, key_id
    )
    request.headers["Authorization"] = f"Bearer {key}"
    return request
