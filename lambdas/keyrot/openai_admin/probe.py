"""Probe a project key with GET /v1/models: is it live, dead, or live but restricted?"""

from __future__ import annotations

from keyrot.openai_admin.errors import InvalidKeyError, PermissionDeniedError
from keyrot.openai_admin.models import KeyCheck, KeyStatus, RateLimitHeadroom
from keyrot.openai_admin.transport import OpenAITransport


class OpenAIKeyProbe:
    """Validates project and service-account keys. Consumes no tokens."""

    def __init__(self, transport: OpenAITransport) -> None:
        self._transport = transport

    def check(self, api_key: str) -> KeyCheck:
        """VALID, DEAD (401 invalid_api_key) or RESTRICTED (other 401/403). Other failures raise OpenAIError."""
        try:
            response = self._transport.request("GET", "/models", bearer=api_key, operation="list models")
        except InvalidKeyError as exc:
            return KeyCheck(KeyStatus.DEAD, detail=str(exc))
        except PermissionDeniedError as exc:
            return KeyCheck(KeyStatus.RESTRICTED, detail=str(exc))
        return KeyCheck(KeyStatus.VALID, rate_limits=RateLimitHeadroom.from_headers(response.headers))

    def rate_limits_from_completion(self, api_key: str, model: str) -> RateLimitHeadroom | None:
        """Read the x-ratelimit-* headers from a one-token chat completion with `api_key`.

        OpenAI documents these headers on model (inference) responses; whether GET /v1/models sends them is
        unconfirmed. This costs one request and a couple of tokens.
        """
        response = self._transport.request(
            "POST",
            "/chat/completions",
            bearer=api_key,
            operation="one-token completion",
            json_body={"model": model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1},
        )
        return RateLimitHeadroom.from_headers(response.headers)
