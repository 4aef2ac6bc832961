"""`keyrot doctor`'s scopes line: what the current key may do (from the secret value), and what can be said about
OpenAI refusing it for a missing scope.

The scopes come from the secret value (recorded when the key was minted; OpenAI's key listing does not show them).
Missing-scope refusals in recent usage are not observable through OpenAI's APIs: the Usage and Costs APIs count
requests and spend per key, not refusals, and the audit log records keys' lifecycle (created with which scopes,
deleted), not requests. The line says so rather than guess; the one refusal doctor sees is its own probe's.
"""

from __future__ import annotations

from keyrot.cli.checks import Finding
from keyrot.openai_admin import KeyCheck, KeyStatus
from keyrot.scopes import describe_scopes, missing_scopes, validation_plan
from keyrot.secret_model import ManagedKey

TITLE = "key scopes"
NOT_OBSERVABLE = (
    "missing-scope refusals in recent usage: not observable (OpenAI's Usage API counts requests, not refusals; "
    "the audit log records keys' lifecycle, not requests)"
)
HINT = (
    "look for 401 'Missing scopes: ...' in the application's logs; add a missing scope to keyrot:keys[].scopes "
    "and deploy: the next rotation mints the key with it"
)


def doctor_finding(key: ManagedKey, check: KeyCheck | None) -> Finding:
    """The scopes the current key was minted with, and whether doctor's own probe answer fits them."""
    if key.scopes is None:
        minted = f"{key.key_id} is unrestricted (minted without scopes)"
    else:
        minted = f"{key.key_id} minted with {describe_scopes(key.scopes)}"
    if key.scopes is None or check is None or check.status is not KeyStatus.RESTRICTED:
        return Finding("ok", TITLE, f"{minted}; {NOT_OBSERVABLE}", HINT)
    plan = validation_plan(key.scopes)
    named = missing_scopes(check.detail)
    if plan.allowed:
        refused = ", ".join(named) or "a refusal that names no scope"
        return Finding(
            "fail",
            TITLE,
            f"{minted}, yet OpenAI refuses it {plan.request}, which those scopes allow (missing: {refused}): the key "
            "lacks a scope it was minted with",
            f"rotate to mint a fresh key: keyrot rotate --env {key.environment} --key {key.key_name}",
        )
    if named and not set(named) & set(key.scopes):
        expected = (
            f"the RESTRICTED answer above is expected: {plan.request} needs {', '.join(named)}, which the key was "
            "not minted with, and OpenAI only says so to a key that authenticates"
        )
        return Finding("ok", TITLE, f"{minted}; {expected}; {NOT_OBSERVABLE}", HINT)
    return Finding(
        "warn",
        TITLE,
        f"{minted}; the RESTRICTED answer above is not the missing-scope refusal these scopes explain",
        "check the project's IP allow-list and region, and the service account's role",
    )
