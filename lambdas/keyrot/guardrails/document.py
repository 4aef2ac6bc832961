"""The declared document: the validated block as the deployment hands it to the functions, and its digest.

The deployment writes `document_json(declared)` where the functions read it (the SSM parameter
`/keyrot/<env>/guardrails`, and the input of the deploy-time invocation) and puts `document_digest(...)` of the same
text in the function's configuration (KEYROT_GUARDRAILS_SHA256). A function applies a document only if its digest
is the one the deployment declared: writing the parameter, or invoking the function with a document of one's own, is
not enough to change the project's guardrails. The document never holds the project id (that comes from the
function's configuration too) nor anything secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from keyrot.guardrails import constants as c
from keyrot.guardrails.declared import DeclaredGuardrails, parse_guardrails
from keyrot.guardrails.errors import DeclaredStateError, GuardrailsConfigError

_VERSION = "version"


def to_document(declared: DeclaredGuardrails) -> dict[str, Any]:
    """The block in its canonical form (sorted, amounts in dollars, OpenAI's defaults left out), plus a version."""
    document: dict[str, Any] = {_VERSION: c.DOCUMENT_VERSION, c.ENFORCE: declared.enforce}
    if declared.rate_limits:
        document[c.RATE_LIMITS] = {
            model: dict(sorted(limits.items())) for model, limits in sorted(declared.rate_limits.items())
        }
    if declared.spend_limit_cents is not None:
        document[c.SPEND_LIMIT_USD] = _dollars(declared.spend_limit_cents)
    if declared.spend_alerts:
        document[c.SPEND_ALERTS] = [
            {c.ALERT_THRESHOLD_USD: _dollars(alert.threshold_cents), c.ALERT_RECIPIENTS: list(alert.recipients)}
            for alert in declared.spend_alerts
        ]
    if declared.models is not None:
        name = next(key for key, mode in c.MODEL_MODES.items() if mode == declared.models.mode)
        document[c.MODELS] = {name: list(declared.models.model_ids)}
    return document


def canonical_json(document: Any) -> str:
    """One text per document: sorted keys, no spaces, ASCII (what the digest is taken of)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def document_json(declared: DeclaredGuardrails) -> str:
    """What the deployment writes: the canonical JSON of `to_document(declared)`."""
    return canonical_json(to_document(declared))


def document_digest(document: Any) -> str:
    """SHA-256 (hex) of a document's canonical JSON. `document` is the JSON text or the parsed object."""
    parsed = json.loads(document) if isinstance(document, str) else document
    return hashlib.sha256(canonical_json(parsed).encode()).hexdigest()


def load_document(document: Any, *, expected_digest: str) -> DeclaredGuardrails:
    """Read a document (JSON text or object) whose digest must be `expected_digest`; DeclaredStateError otherwise.

    The digest is checked before anything in the document is used.
    """
    if isinstance(document, str):
        if len(document.encode()) > c.MAX_DOCUMENT_BYTES:
            raise DeclaredStateError(f"the declared guardrails are larger than {c.MAX_DOCUMENT_BYTES} bytes")
        try:
            document = json.loads(document)
        except (ValueError, RecursionError):
            raise DeclaredStateError("the declared guardrails are not JSON") from None
    if not isinstance(document, dict):
        raise DeclaredStateError("the declared guardrails are not a JSON object")
    try:
        digest = document_digest(document)
    except (TypeError, ValueError):
        raise DeclaredStateError("the declared guardrails hold values JSON cannot carry") from None
    if not hmac.compare_digest(digest, expected_digest):
        raise DeclaredStateError(
            f"the declared guardrails (sha256 {digest[:12]}…) are not the ones this deployment declared "
            f"(sha256 {expected_digest[:12]}…): they were changed outside `pulumi up`; nothing was applied. "
            "Run `pulumi up` to write them again (docs/runbook.md#guardrail-drift)"
        )
    return parse_document(document)


def parse_document(document: Any) -> DeclaredGuardrails:
    """Read a document (JSON text or object) without checking its digest: for display only (`keyrot guardrails`),
    never to apply. DeclaredStateError when it is not a document of this version or not a valid block."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except (ValueError, RecursionError):
            raise DeclaredStateError("the declared guardrails are not JSON") from None
    if not isinstance(document, dict):
        raise DeclaredStateError("the declared guardrails are not a JSON object")
    if document.get(_VERSION) != c.DOCUMENT_VERSION:
        raise DeclaredStateError(
            f"the declared guardrails are version {str(document.get(_VERSION))[:20]}; this keyrot reads version "
            f"{c.DOCUMENT_VERSION}: deploy the keyrot that wrote them"
        )
    block = {key: value for key, value in document.items() if key != _VERSION}
    try:
        return parse_guardrails(block)
    except GuardrailsConfigError as exc:
        raise DeclaredStateError(f"the declared guardrails are invalid: {exc}") from exc


def _dollars(cents: int) -> int | float:
    """Whole dollars as an int, else a float with the cents (exact: at most 11 significant digits)."""
    return cents // 100 if cents % 100 == 0 else float(f"{cents // 100}.{cents % 100:02d}")
