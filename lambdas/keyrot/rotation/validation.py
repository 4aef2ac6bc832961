"""Wait, within bounds, for OpenAI to agree that a key is live (after minting) or dead (after revoking)."""

from __future__ import annotations

from collections.abc import Callable

from keyrot.openai_admin import KeyCheck, KeyStatus, OpenAIKeyProbe, PermissionDeniedError


def wait_until_live(
    probe: OpenAIKeyProbe, api_key: str, *, attempts: int, delay_seconds: float, sleep: Callable[[float], None]
) -> KeyCheck:
    """Probe until the key proves it authenticates, or attempts run out; return the last check.

    Proof is a success (VALID) or a refusal saying the key authenticated but lacks a permission (RESTRICTED).
    A refusal that proves nothing (IP allow-list, region, an unknown 401/403) is retried like a not-yet-live key;
    if it is still the answer after the last attempt it is raised as PermissionDeniedError.
    """
    check: KeyCheck | None = None
    refusal: PermissionDeniedError | None = None
    for attempt in range(attempts):
        if attempt:
            sleep(delay_seconds)
        try:
            check, refusal = probe.check(api_key, strict=True), None
        except PermissionDeniedError as exc:
            check, refusal = None, exc
        if check is not None and check.status is not KeyStatus.DEAD:
            break
    if refusal is not None:
        raise refusal
    assert check is not None
    return check


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
