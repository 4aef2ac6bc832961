"""Keep key material out of every text keyrot produces."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Shapes of OpenAI secret keys (sk-, sk-proj-, sk-svcacct-, sk-admin-, ...), including OpenAI's own masked echoes
# such as "sk-abc***xyz". Ids (key_..., svc_acct_..., proj_...) are not secret and are left alone.
_KEY_SHAPE = re.compile(r"sk-[A-Za-z0-9_\-*.]{6,}")
_REDACTED_PREFIX_LENGTH = 8


def redact_key(value: str) -> str:
    """A display form of a key: its first characters (the type prefix at most) and an ellipsis."""
    if len(value) <= _REDACTED_PREFIX_LENGTH * 2:
        return "…(redacted)"
    return f"{value[:_REDACTED_PREFIX_LENGTH]}…(redacted)"


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Return `text` with every known secret value and every key-shaped token replaced by a redacted form."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, redact_key(secret))
    return _KEY_SHAPE.sub(lambda match: redact_key(match.group(0)), text)
