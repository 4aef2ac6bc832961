"""Probe a project key with GET /v1/models (or another token-free request its scopes allow, keyrot.scopes): is it
live, dead, or live but restricted?"""

from __future__ import annotations

from keyrot.openai_admin.errors import InvalidKeyError, PermissionDeniedError
from keyrot.openai_admin.models import KeyCheck, KeyStatus, RateLimitHeadroom
from keyrot.openai_admin.transport import OpenAITransport

# How OpenAI says "this key authenticated, it only lacks a permission" (fact sheet section 10: a scoped 401 with
# code null and "Missing scopes: ..." in the message; "insufficient permissions" in the same sentence). Codes are
# matched too, should OpenAI start sending one.
_PERMISSION_CODES = frozenset({"insufficient_permissions", "missing_scope", "missing_scopes", "insufficient_scope"})
_PERMISSION_PHRASES = ("missing scopes", "insufficient permissions")


def lacks_permission(error: PermissionDeniedError) -> bool:
    """True when the refusal's body says the key authenticated but lacks a permission (scope, role)."""
    if error.code and error.code.lower() in _PERMISSION_CODES:
        return True
    text = str(error).lower()
    return any(phrase in text for phrase in _PERMISSION_PHRASES)


class OpenAIKeyProbe:
    """Validates project and service-account keys. Consumes no tokens."""

    def __init__(self, transport: OpenAITransport) -> None:
        self._transport = transport

    def check(
        self,
        api_key: str,
        *,
        strict: bool = False,
        method: str = "GET",
        path: str = "/models",
        operation: str = "list models",
    ) -> KeyCheck:
        """VALID, DEAD (401 invalid_api_key) or RESTRICTED (other 401/403). Other failures raise OpenAIError.

        `strict` (validation before promotion): RESTRICTED only for a refusal that says the key authenticated but
        lacks a permission; any other 401/403 (IP allow-list, region, an admin key, an unknown refusal) proves
        nothing about the key and is raised as PermissionDeniedError. `method`/`path`: the request (one that
        consumes no tokens; testSecret picks it by the key's scopes, keyrot.scopes.validation_plan).
        """
        try:
            response = self._transport.request(method, path, bearer=api_key, operation=operation)
        except InvalidKeyError as exc:
            return KeyCheck(KeyStatus.DEAD, detail=str(exc))
        except PermissionDeniedError as exc:
            if strict and not lacks_permission(exc):
                raise
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
