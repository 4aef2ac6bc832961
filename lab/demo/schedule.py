"""The monitor's schedule, compressed: run it again and again, as EventBridge Scheduler would, until the janitor acts.

The janitor revokes a previous key once its grace is over and it has been idle for the quiet window. OpenAI reports
usage by the minute, so a key counts as in use until the end of the minute of its last request: the first run after
the grace may rightly keep the key, and a later run revokes it. Waiting for that run (bounded by the janitor's own
rule) is the fix for the rehearsal's old race, which checked one run at a fixed moment.

The other scheduled functions (the admin key's cleanup, the guardrails check) are invoked the same way, with the event
their schedule declares (`scheduled_event`): EventBridge Scheduler does not fire in the emulator.
"""

from __future__ import annotations

import json
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
    runs = run_until(
        invoke,
        {},
        lambda report: key_id in (report.get("revoked") or []),
        window,
        clock=clock,
        sleep=sleep,
        every=every,
    )
    return JanitorRuns(runs.done, runs.results)


@dataclass
class ScheduledRuns:
    """What each scheduled run returned, and whether the awaited outcome came."""

    done: bool = False
    results: list[Any] = field(default_factory=list)

    @property
    def runs(self) -> int:
        return len(self.results)


def run_until(
    invoke: Callable[[dict[str, Any]], Any],
    event: dict[str, Any],
    done: Callable[[Any], bool],
    window: JanitorWindow,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    every: float = SCHEDULE_SECONDS,
) -> ScheduledRuns:
    """From `window.opens`, invoke a function with its schedule's `event` every `every` seconds until a result is
    `done`, or two runs past `window.due` (the function's own rule says it must have acted by then)."""
    sleep(max(0.0, window.opens - clock()))
    outcome = ScheduledRuns()
    while True:
        result = invoke(event)
        outcome.results.append(result)
        if done(result):
            outcome.done = True
            return outcome
        if clock() > window.due + 2 * every:
            return outcome
        sleep(every)


def scheduled_event(aws: Any, schedule_name: str) -> dict[str, Any]:
    """The event EventBridge Scheduler sends the schedule's target: the input the program declared for it ({} when
    it declares none). `aws` is an AwsEmulator."""
    target = aws.client("scheduler").get_schedule(Name=schedule_name)["Target"]
    return dict(json.loads(target["Input"])) if target.get("Input") else {}
