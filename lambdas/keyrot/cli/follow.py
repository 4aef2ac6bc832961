"""Follow one rotation to its end: milestones from the version labels, step outcomes from the rotation function's log.

Labels are the truth (Secrets Manager's own state); the log adds which step ran and why it failed. The log is
optional: without the log group, or without permission to read it, labels alone decide.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from keyrot.aws.errors import aws_errors
from keyrot.aws.secrets import SecretStore
from keyrot.cli.errors import RotationFailedError, classify
from keyrot.constants import STAGE_CURRENT, STAGE_PENDING
from keyrot.errors import AwsCallError
from keyrot.names import STEP_FAILED, STEP_LOG_FILTER, STEP_SUCCEEDED, rotation_log_group

__all__ = ["STEP_FAILED", "STEP_SUCCEEDED", "Progress", "RotationFollower", "RotationLog", "rotation_log_group"]

# Checks start this often and slow down as the rotation ages (see RotationFollower.interval).
FIRST_POLL_SECONDS = 0.05
POLL_FRACTION = 0.25


@dataclass(frozen=True)
class Progress:
    ok: bool
    text: str


@dataclass
class RotationLog:
    """The rotation function's step lines for one secret, read incrementally from CloudWatch Logs."""

    logs: Any
    group: str
    secret_ids: frozenset[str]
    start_ms: int
    seen: set[str] = field(default_factory=set)

    @classmethod
    def open(cls, logs: Any, environment: str, secret_ids: frozenset[str], start_ms: int) -> RotationLog | None:
        """The log, or None when the group does not exist. Raises AwsCallError when it may not be read."""
        group = rotation_log_group(environment)
        with aws_errors("DescribeLogGroups"):
            groups = logs.describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
        if not any(entry.get("logGroupName") == group for entry in groups):
            return None
        return cls(logs, group, secret_ids, start_ms)

    def new_lines(self) -> Iterator[dict[str, Any]]:
        """Step lines about this secret logged since the start that were not returned before, oldest first."""
        kwargs: dict[str, Any] = {
            "logGroupName": self.group,
            "startTime": self.start_ms,
            "filterPattern": STEP_LOG_FILTER,
        }
        events: list[dict[str, Any]] = []
        with aws_errors("FilterLogEvents"):
            while True:
                page = self.logs.filter_log_events(**kwargs)
                events += page.get("events", [])
                token = page.get("nextToken")
                if not token or token == kwargs.get("nextToken"):
                    break
                kwargs["nextToken"] = token
        for event in sorted(events, key=lambda item: (item.get("timestamp", 0), item.get("eventId", ""))):
            event_id = str(event.get("eventId") or f"{event.get('logStreamName')}:{event.get('timestamp')}")
            if event_id in self.seen:
                continue
            self.seen.add(event_id)
            parsed = _json_line(event.get("message", ""))
            if parsed and parsed.get("message") in (STEP_SUCCEEDED, STEP_FAILED):
                if parsed.get("secret") in self.secret_ids:
                    yield parsed


@dataclass
class RotationFollower:
    """Polls until the token is AWSCURRENT and no AWSPENDING remains, or the rotation is abandoned, or time is up.

    The wait between checks grows with the rotation's age (`interval`): an emergency rotation's end, after which
    the CLI revokes the leaked key, is seen within a quarter of the rotation's duration instead of up to a whole
    `poll_seconds` later.
    """

    store: SecretStore
    arn: str
    name: str
    token: str
    log: RotationLog | None
    poll_seconds: float
    timeout_seconds: float
    report: Callable[[Progress], None]
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    last_error: str | None = None
    _milestones: set[str] = field(default_factory=set)

    def run(self) -> None:
        started = self.clock()
        deadline = started + self.timeout_seconds
        while True:
            done = self._check_labels()
            self._read_log()
            if done:
                return
            if self.clock() >= deadline:
                raise RotationFailedError(
                    f"rotation of {self.name} (token {self.token}) did not finish within {self.timeout_seconds:g} s; "
                    f"last error: {self.last_error or 'none reported'}; Secrets Manager keeps retrying: check "
                    "`keyrot doctor`, then `keyrot rotate` to resume or `--discard-pending` to start over"
                )
            self.sleep(self.interval(self.clock() - started))

    def interval(self, elapsed: float) -> float:
        """The wait before the next check, `elapsed` seconds into the rotation: a quarter of that, at least
        FIRST_POLL_SECONDS and at most `poll_seconds`. A few dozen checks for a rotation of minutes."""
        return min(self.poll_seconds, max(FIRST_POLL_SECONDS, elapsed * POLL_FRACTION))

    def _milestone(self, name: str, text: str) -> None:
        if name not in self._milestones:
            self._milestones.add(name)
            self.report(Progress(True, text))

    def _check_labels(self) -> bool:
        description = self.store.describe(self.arn)
        stages = description.stages_of(self.token)
        if not stages and "created" not in self._milestones:
            return False  # not visible yet: DescribeSecret may lag RotateSecret for a moment
        if STAGE_PENDING not in stages and STAGE_CURRENT not in stages:
            raise RotationFailedError(
                f"rotation {self.token} of {self.name} was abandoned: its version lost the AWSPENDING label "
                f"(a value was put outside the rotation, or the pending rotation was discarded); last error: "
                f"{self.last_error or 'none reported'}"
            )
        self._milestone("created", f"pending version {self.token} created")
        if STAGE_CURRENT not in stages:
            if "stored" not in self._milestones and self._pending_has_value():
                self._milestone("stored", "new key minted and stored as AWSPENDING (createSecret)")
            return False
        self._milestone("stored", "new key minted and stored as AWSPENDING (createSecret)")
        self._milestone("current", "new key promoted to AWSCURRENT (finishSecret)")
        if STAGE_PENDING in stages or any(STAGE_PENDING in labels for labels in description.versions.values()):
            return False
        self._milestone("done", "AWSPENDING label removed: rotation complete")
        return True

    def _pending_has_value(self) -> bool:
        # Existence only: the value is dropped at once and never shown.
        return self.store.get_string(self.arn, stage=STAGE_PENDING, version_id=self.token) is not None

    def _read_log(self) -> None:
        if self.log is None:
            return
        try:
            lines = list(self.log.new_lines())
        except AwsCallError as exc:
            found = classify(exc)
            self.report(Progress(False, f"stopped reading the rotation log: {found[1] if found else exc}"))
            self.log = None
            return
        for line in lines:
            step = line.get("step", "?")
            if line.get("message") == STEP_SUCCEEDED:
                key_id = f" ({line['key_id']})" if line.get("key_id") else ""
                self.report(Progress(True, f"{step}: {line.get('action', 'done')}{key_id}"))
            else:
                self.last_error = f"{step}: {line.get('error_class', 'Error')}: {line.get('error', '')}".strip()
                self.report(Progress(False, f"{step} failed: {self.last_error.split(': ', 1)[1]}"))


def _json_line(message: str) -> dict[str, Any] | None:
    start = message.find("{")
    if start < 0:
        return None
    try:
        parsed = json.loads(message[start:])
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None
