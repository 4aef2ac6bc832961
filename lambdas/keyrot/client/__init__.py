"""keyrot.client: applications read their OpenAI key from Secrets Manager through this, and survive every rotation.

    from keyrot.client import openai_client

    client = openai_client("keyrot/prod/chat-backend")  # an openai.OpenAI; any OpenAI(...) keyword works

The client's key is cached and refreshed before its TTL ends; a request OpenAI rejects because its key was revoked
(`keyrot rotate --emergency`) is sent once more with the new key. `async_openai_client` does the same for
`AsyncOpenAI`. The building blocks, for code that builds its own client:

    from keyrot.client import KeyProvider, with_key_refresh

    provider = KeyProvider("keyrot/prod/chat-backend")
    client = OpenAI(api_key=provider)  # refreshed per TTL; on a revoked key, wrap calls in with_key_refresh

Importing keyrot.client needs only the standard library and botocore; boto3 is imported at the first read, and the
OpenAI SDK only inside openai_client and async_openai_client.
"""

from keyrot.client.async_provider import AsyncKeyProvider
from keyrot.client.provider import KeyProvider, KeyUnavailableError, ServedKey
from keyrot.client.retry import with_key_refresh, with_key_refresh_async
from keyrot.client.sdk import async_openai_client, openai_client

__all__ = [
    "AsyncKeyProvider",
    "KeyProvider",
    "KeyUnavailableError",
    "ServedKey",
    "async_openai_client",
    "openai_client",
    "with_key_refresh",
    "with_key_refresh_async",
]
