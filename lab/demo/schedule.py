"""The monitor's schedule, compressed: run it again and again, as EventBridge Scheduler would, until the janitor acts.

The janitor revokes a previous key once its grace is over and it has been idle for the quiet window. OpenAI reports
usage by the minute, so a key counts as in use until the end of the minute of its last request: the first run after
the grace may rightly keep the key, and a later run revokes it. Waiting for that run (bounded by the janitor's own
rule) is the fix for the rehearsal's old race, which checked one run at a fixed moment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# OpenAI's usage buckets: the janitor sees a key's use as lasting to the end of its minute.
USAGE_BUCKET_SECONDS = 60
# How often the compressed schedule runs the monitor while waiting.
SCHEDULE_SECONDS = 1.0


@dataclass(frozen=True)
class JanitorWindow:
    """When the janitor may first revoke a key (`opens`) and when its rule says it must have (`due`)."""

    opens: float
    due: float

    @classmethod
    def after(cls, *, rotated_at: float, last_used: float, grace_seconds: float, quiet_seconds: float) -> JanitorWindow:
        """The window for a key replaced at `rotated_at` and last used at `last_used` or before (epoch seconds)."""
        opens = rotated_at + grace_seconds + quiet_seconds
        due = max(rotated_at + grace_seconds, last_used + USAGE_BUCKET_SECONDS + quiet_seconds)
        return cls(opens, max(opens, due))


@dataclass
class JanitorRuns:
    """The monitor runs it took, each run's report, and whether the janitor revoked the key."""

    revoked: bool = False
    reports: list[dict[str, Any]] = field(default_factory=list)

    @property
    def runs(self) -> int:
        return len(self.reports)


def run_until_revoked(
    invoke: Callable[[dict[str, Any]], dict[str, Any]],
    key_id: str,
    window: JanitorWindow,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    every: float = SCHEDULE_SECONDS,
) -> JanitorRuns:
    """From `window.opens`, run the monitor every `every` seconds until it revokes `key_id`, or two runs past
    `window.due` (then the janitor broke its rule, and the caller's check fails)."""
    sleep(max(0.0, window.opens - clock()))
    outcome = JanitorRuns()
    while True:
        report = invoke({})
        outcome.reports.append(report)
        if key_id in (report.get("revoked") or []):
            outcome.revoked = True
            return outcome
        if clock() > window.due + 2 * every:
            return outcome
        sleep(every)
