"""Links from alarms and notifications into docs/runbook.md. The anchors are stable: the runbook must keep them."""

from __future__ import annotations

from keyrot.settings import DEFAULT_RUNBOOK_URL

# Section anchor -> what the section must cover. tests/infra checks every alarm links one of these, every one is
# linked by an alarm or the dashboard, and docs/runbook.md has a heading for each.
RUNBOOK_ANCHORS: dict[str, str] = {
    "rotation-lambda-errors": "the rotation function raised (Lambda Errors)",
    "rotation-failed": "a rotation step failed / Secrets Manager reported RotationFailed or RotationAbandoned",
    "key-too-old": "a key has not rotated within its schedule (KeyAgeHours)",
    "monitor-lambda-errors": "the monitor function raised in consecutive runs",
    "monitor-not-running": "no monitor heartbeat for three intervals",
    "usage-anomaly": "requests or input tokens of one key above the anomaly band",
    "daily-spend-limit": "the project's spend today is above dailySpendLimitUsd",
    "unmanaged-key-requests": "requests made with a project key keyrot did not mint",
    "retired-key-requests": "requests made with a previous key past its grace, or a revoked key",
    "revocation-failed": "a previous key could not be revoked",
    "costs-read-failed": "the monitor could not read OpenAI's Costs API in consecutive runs (spend unknown)",
    "guardrail-drift": "the OpenAI project's guardrails differ from the declared ones, or could not be applied",
    "hard-spend-limit-reached": "the project's spend this month reached its hard limit (guardrails.spendLimitUsd)",
    "admin-rotation-failed": "a step of the admin key's own rotation failed, or its function raised",
    "admin-key-too-old": "the admin key has not rotated within its schedule (AdminKeyAgeHours)",
    "admin-key-cleanup-failed": "an admin key that is due for deletion is still live (or too many are)",
}
# Sections linked from the dashboard rather than from an alarm (no metric says the hard limit was reached).
DASHBOARD_ANCHORS: tuple[str, ...] = ("hard-spend-limit-reached",)


def runbook_link(anchor: str, runbook_url: str = DEFAULT_RUNBOOK_URL) -> str:
    """The link to `anchor` in the runbook at `runbook_url` (the stack's runbookUrl)."""
    if anchor not in RUNBOOK_ANCHORS:
        raise KeyError(f"unknown runbook anchor {anchor!r}")
    return f"{runbook_url}#{anchor}"
