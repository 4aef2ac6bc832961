"""One call that returns an OpenAI SDK client reading its key from a managed secret and surviving every rotation,
emergency ones included: `openai_client("keyrot/prod/chat-backend")`.

The client's key comes from a KeyProvider (cached, refreshed before each TTL ends) and its HTTP client carries
keyrot's refresh-on-rejection auth: a request OpenAI answers 401 invalid_api_key (the key was revoked) is sent once
more with the key Secrets Manager now holds. The OpenAI SDK is imported here, on first use, never when
keyrot.client is imported.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from keyrot.client.async_provider import AsyncKeyProvider
from keyrot.client.provider import KeyProvider


def openai_client(secret: str | KeyProvider, /, **client_kwargs: Any) -> Any:
    """An `openai.OpenAI` whose key is the managed secret's current key, refreshed and retried on rejection.

    `secret` is the secret's name or ARN, or a KeyProvider built with your own options (TTL, region, client).
    Every other keyword goes to `openai.OpenAI` (base_url, timeout, max_retries, http_client, ...), except
    `api_key`, which is the provider's to give.
    """
    openai = _openai_sdk("openai_client")
    if not isinstance(secret, (str, KeyProvider)):
        raise TypeError(
            "openai_client takes the secret's name or ARN, or a KeyProvider (for AsyncKeyProvider, "
            "use async_openai_client)"
        )
    provider = secret if isinstance(secret, KeyProvider) else KeyProvider(secret)
    http_client = _with_refresh(client_kwargs, provider, openai.DefaultHttpxClient)
    return openai.OpenAI(api_key=provider, http_client=http_client, **client_kwargs)


def async_openai_client(secret: str | AsyncKeyProvider, /, **client_kwargs: Any) -> Any:
    """`openai_client` for asyncio: an `openai.AsyncOpenAI` reading its key through an AsyncKeyProvider."""
    openai = _openai_sdk("async_openai_client")
    if not isinstance(secret, (str, AsyncKeyProvider)):
        raise TypeError("async_openai_client takes the secret's name or ARN, or an AsyncKeyProvider")
    provider = secret if isinstance(secret, AsyncKeyProvider) else AsyncKeyProvider(secret)
    http_client = _with_refresh(client_kwargs, provider, openai.DefaultAsyncHttpxClient)
    return openai.AsyncOpenAI(api_key=provider, http_client=http_client, **client_kwargs)


def _with_refresh(client_kwargs: dict[str, Any], provider: KeyProvider | AsyncKeyProvider, default: Any) -> Any:
    """The HTTP client for the SDK (the caller's, or the SDK's default) with keyrot's refresh-on-rejection auth."""
    from keyrot.client.refresh_auth import refresh_on_rejection

    if "api_key" in client_kwargs:
        raise TypeError("do not pass api_key: the key comes from the secret (pass a KeyProvider to tune how)")
    http_client = client_kwargs.pop("http_client", None)
    if http_client is None:
        http_client = default()
    elif http_client.auth is not None:
        raise ValueError(
            f"the http_client already has an auth ({type(http_client.auth).__name__}); keyrot needs that slot to "
            "retry requests OpenAI rejects after a rotation: pass an http_client without auth"
        )
    http_client.auth = refresh_on_rejection(provider)
    return http_client


def _openai_sdk(helper: str) -> ModuleType:
    try:
        import openai
    except ImportError as exc:
        raise ImportError(
            f"keyrot.client.{helper} needs the OpenAI SDK: pip install openai (KeyProvider alone needs only boto3)"
        ) from exc
    return openai
