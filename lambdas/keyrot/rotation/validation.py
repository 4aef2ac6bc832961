"""Wait, within bounds, for OpenAI to agree that a key is live (after minting) or dead (after revoking)."""

from __future__ import annotations

from collections.abc import Callable

from keyrot.openai_admin import KeyCheck, KeyStatus, OpenAIKeyProbe


def wait_until_live(
    probe: OpenAIKeyProbe, api_key: str, *, attempts: int, delay_seconds: float, sleep: Callable[[float], None]
) -> KeyCheck:
    """Probe until the key authenticates (VALID or RESTRICTED) or attempts run out; return the last check."""
    return _wait(probe, api_key, lambda check: check.status is not KeyStatus.DEAD, attempts, delay_seconds, sleep)


def wait_until_dead(
    probe: OpenAIKeyProbe, api_key: str, *, attempts: int, delay_seconds: float, sleep: Callable[[float], None]
) -> KeyCheck:
    """Probe until OpenAI rejects the key as invalid or attempts run out; return the last check."""
    return _wait(probe, api_key, lambda check: check.status is KeyStatus.DEAD, attempts, delay_seconds, sleep)


def _wait(
    probe: OpenAIKeyProbe,
    api_key: str,
    done: Callable[[KeyCheck], bool],
    attempts: int,
    delay_seconds: float,
    sleep: Callable[[float], None],
) -> KeyCheck:
    check = probe.check(api_key)
    for _ in range(attempts - 1):
        if done(check):
            break
        sleep(delay_seconds)
        check = probe.check(api_key)
    return check
