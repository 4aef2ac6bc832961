"""Scopes of least-privilege application keys: the names keyrot accepts, and how testSecret proves a scoped key works.

OpenAI's API spec gives `scopes` (on `POST .../service_accounts/{id}/api_keys`) no enum, so keyrot keeps the scope
names OpenAI has documented or shown, each with where it comes from, and refuses any other name before a key is
minted: a misspelt scope would otherwise be refused by OpenAI mid-rotation, or (if OpenAI accepted it) mint a key that
can do less than the application needs. To use a scope OpenAI documents that is not listed here, add it to
`DOCUMENTED_SCOPES` with its source.

Validation (docs/architecture.md, "Validation"): a key is probed with a request that consumes no tokens. When its
scopes allow such a request, only a success proves it (a missing-scope refusal there means the key lacks a scope it was
minted with); otherwise GET /v1/models is sent and OpenAI's missing-scope refusal (401, code null, "Missing scopes:
...") is the proof, since OpenAI answers a key it does not know with `invalid_api_key` before it looks at scopes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from keyrot.redaction import scrub

__all__ = [
    "DOCUMENTED_SCOPES",
    "MODEL_READ_SCOPE",
    "ScopesError",
    "ValidationPlan",
    "describe_scopes",
    "missing_scopes",
    "parse_scopes",
    "validation_plan",
]

_SPEC = "OpenAI's OpenAPI spec (openai/openai-openapi f85dbe2)"
_REFUSAL = "OpenAI's missing-scope refusal (401, code null, 'Missing scopes: {scope}')"

# Every scope name keyrot accepts, with its source. Refusal sources are OpenAI's own error messages, as reported on
# community.openai.com and recorded in the OpenAI fact sheet (section 10).
DOCUMENTED_SCOPES: Mapping[str, str] = {
    "api.model.read": _REFUSAL.format(scope="api.model.read") + " on GET /v1/models",
    "api.model.request": f"{_SPEC}: the audit log's api_key.created data.scopes example",
    "model.request": _REFUSAL.format(scope="model.request") + " on chat completions and responses",
    "api.responses.read": _REFUSAL.format(scope="api.responses.read") + " on the Responses API",
    "api.responses.write": f"{_SPEC}: the example of POST .../service_accounts/{{id}}/api_keys; "
    + _REFUSAL.format(scope="api.responses.write")
    + " on the Responses API",
    "api.threads.read": _REFUSAL.format(scope="api.threads.read") + " on the Assistants API's threads",
    "api.threads.write": _REFUSAL.format(scope="api.threads.write") + " on the Assistants API's threads",
}

MODEL_READ_SCOPE = "api.model.read"

# Requests that consume no tokens, by the scope that allows them: (method, path under /v1, operation name).
_FREE_REQUESTS: Mapping[str, tuple[str, str, str]] = {
    MODEL_READ_SCOPE: ("GET", "/models", "list models"),
}
_DEFAULT_REQUEST = _FREE_REQUESTS[MODEL_READ_SCOPE]
_SCOPE_NAME = r"[a-z0-9_]+(?:\.[a-z0-9_]+)+"
_MISSING = re.compile(rf"missing scopes?:\s*({_SCOPE_NAME}(?:\s*,\s*{_SCOPE_NAME})*)", re.IGNORECASE)
_SHOWN = 60  # characters of a refused value quoted back


class ScopesError(ValueError):
    """A declared scope list is invalid. The message names what is wrong and how to proceed; `index` is the position
    of the offending entry (None: the list itself)."""

    def __init__(self, reason: str, *, index: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.index = index

    def at(self, setting: str) -> str:
        """The problem as `<setting>[<index>]: <reason>`, e.g. `keyrot:keys[0].scopes[1]: ...`."""
        where = setting if self.index is None else f"{setting}[{self.index}]"
        return f"{where}: {self.reason}"


def parse_scopes(value: object) -> tuple[str, ...]:
    """A declared scope list, checked: a non-empty list of scope names from DOCUMENTED_SCOPES, each listed once."""
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        raise ScopesError(
            f"must be a list of scope names such as {MODEL_READ_SCOPE!r}, got {type(value).__name__}; "
            "omit it for an unrestricted key"
        )
    if not value:
        raise ScopesError(
            "is empty: a key with no scopes could do nothing. List the scopes the application needs, or omit "
            "`scopes` for an unrestricted key"
        )
    seen: list[str] = []
    for index, scope in enumerate(value):
        if not isinstance(scope, str):
            raise ScopesError(f"must be a scope name (a string), got {type(scope).__name__}", index=index)
        if scope not in DOCUMENTED_SCOPES:
            raise ScopesError(
                f"{scrub(scope[:_SHOWN])!r} is not a scope OpenAI documents. keyrot knows "
                f"{', '.join(sorted(DOCUMENTED_SCOPES))}. OpenAI's API spec lists no scopes, so keyrot keeps the "
                "documented names, each with its source, in keyrot/scopes.py: check the spelling against the "
                "'Missing scopes: ...' refusal your application saw; if OpenAI has documented this scope, add it "
                "there with its source; or omit `scopes` for an unrestricted key",
                index=index,
            )
        if scope in seen:
            raise ScopesError(f"lists {scope!r} a second time", index=index)
        seen.append(scope)
    return tuple(seen)


def describe_scopes(scopes: tuple[str, ...] | None) -> str:
    """How a key's scopes read in logs and CLI output."""
    return "unrestricted (every permission of the project)" if scopes is None else ", ".join(scopes)


@dataclass(frozen=True)
class ValidationPlan:
    """How testSecret proves a key works: one request, and which answer counts as proof.

    `allowed`: the key's scopes allow the request, so only a success proves the key (a missing-scope refusal means
    it lacks a scope it was minted with). Otherwise a success, or a refusal saying the key authenticated but lacks a
    permission, proves it.
    """

    method: str
    path: str
    operation: str
    allowed: bool

    @property
    def request(self) -> str:
        return f"{self.method} /v1{self.path}"

    @property
    def proof(self) -> str:
        """What counts as proof, for logs and error messages."""
        if self.allowed:
            return f"a success on {self.request}, which its scopes allow"
        return f"a success, or a missing-scope refusal, on {self.request}"


def validation_plan(scopes: tuple[str, ...] | None) -> ValidationPlan:
    """The token-free request that validates a key with `scopes` (None: unrestricted), and what proves it.

    An unrestricted key keeps keyrot's long-standing rule (a success, or a refusal that says it authenticated but
    lacks a permission, e.g. a member role without model access). A scoped key whose scopes allow a token-free
    request must succeed on it. A scoped key whose scopes allow none (e.g. only `model.request`, whose requests
    spend tokens) is proven by OpenAI's missing-scope refusal on GET /v1/models.
    """
    if scopes is not None:
        for scope in scopes:
            if scope in _FREE_REQUESTS:
                method, path, operation = _FREE_REQUESTS[scope]
                return ValidationPlan(method, path, operation, allowed=True)
    method, path, operation = _DEFAULT_REQUEST
    return ValidationPlan(method, path, operation, allowed=False)


def missing_scopes(message: str) -> tuple[str, ...]:
    """The scope names an OpenAI refusal says are missing ("... Missing scopes: a, b. Check ..."), in order."""
    match = _MISSING.search(message)
    if match is None:
        return ()
    return tuple(dict.fromkeys(part.strip() for part in match.group(1).split(",")))
