"""Wait, within bounds, for OpenAI to agree that a key is live (after minting) or dead (after revoking)."""

from __future__ import annotations

from collections.abc import Callable

from keyrot.openai_admin import KeyCheck, KeyStatus, OpenAIKeyProbe, PermissionDeniedError
from keyrot.scopes import ValidationPlan, validation_plan


def wait_until_live(
    probe: OpenAIKeyProbe,
    api_key: str,
    *,
    attempts: int,
    delay_seconds: float,
    sleep: Callable[[float], None],
    plan: ValidationPlan | None = None,
) -> KeyCheck:
    """Probe until the key proves it works, or attempts run out; return the last check.

    `plan` (keyrot.scopes.validation_plan of the key's scopes; default: an unrestricted key's) names the request.
    Proof is a success (VALID), or a refusal saying the key authenticated but lacks a permission (RESTRICTED) unless
    the key's scopes allow the request: then a RESTRICTED answer is retried (scopes may take a moment to apply) and
    returned if it is still the answer after the last attempt, for the caller to refuse. A refusal that proves
    nothing (IP allow-list, region, an unknown 401/403) is retried like a not-yet-live key; if it is still the answer
    after the last attempt it is raised as PermissionDeniedError.
    """
    plan = plan or validation_plan(None)
    check: KeyCheck | None = None
    refusal: PermissionDeniedError | None = None
    for attempt in range(attempts):
        if attempt:
            sleep(delay_seconds)
        try:
            check = probe.check(api_key, strict=True, method=plan.method, path=plan.path, operation=plan.operation)
            refusal = None
        except PermissionDeniedError as exc:
            check, refusal = None, exc
        if check is not None and _proves(check, plan):
            break
    if refusal is not None:
        raise refusal
    assert check is not None
    return check


def _proves(check: KeyCheck, plan: ValidationPlan) -> bool:
    if check.status is KeyStatus.DEAD:
        return False
    return check.status is KeyStatus.VALID or not plan.allowed


def wait_until_dead(
    probe: OpenAIKeyProbe, api_key: str, *, attempts: int, delay_seconds: float, sleep: Callable[[float], None]
) -> KeyCheck:
    """Probe until OpenAI rejects the key as invalid or attempts run out; return the last check."""
    check = probe.check(api_key)
    for _ in range(attempts - 1):
        if check.status is KeyStatus.DEAD:
            break
        sleep(delay_seconds)
        check = probe.check(api_key)
    return check
