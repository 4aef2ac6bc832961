"""Reading OpenAI's answer: does a 401 say the key is invalid (revoked, deleted), and which key did it refuse."""

from __future__ import annotations

from typing import Any

INVALID_API_KEY = "invalid_api_key"


def bearer_key(headers: Any) -> str | None:
    """The key of an `Authorization: Bearer <key>` header, else None."""
    header = headers.get("authorization", "") or ""
    return header[7:] if header.lower().startswith("bearer ") and len(header) > 7 else None


def is_invalid_key_response(response: Any) -> bool:
    """Whether a read httpx response is a 401 whose error code is invalid_api_key (not a scope or quota refusal)."""
    if getattr(response, "status_code", None) != 401:
        return False
    try:
        error = response.json().get("error") or {}
        return isinstance(error, dict) and error.get("code") == INVALID_API_KEY
    except Exception:  # noqa: BLE001 - a body that is not OpenAI's JSON error is not a key rejection
        return False


def rejected_key(response: Any) -> tuple[bool, str | None]:
    """Whether a read 401 response says the key is invalid, and the key the request carried."""
    if not is_invalid_key_response(response):
        return False, None
    return True, bearer_key(response.request.headers)


def is_invalid_key_error(exc: BaseException) -> bool:
    """Whether an OpenAI SDK exception is the 401 invalid_api_key rejection."""
    return getattr(exc, "status_code", None) == 401 and getattr(exc, "code", None) == INVALID_API_KEY
