"""Two overlapping monitor runs never both publish: the lease is a compare-and-swap on the state parameter's versions.

Two runs, A and B, over the same prepared environment (usage in three minutes, an idle previous key to revoke) are
interleaved at every pair of points: A makes its first i remote calls, then B its first j, then A finishes, then B.
Only one thread runs at a time, handing over right after a call's answer arrived. For every (i, j), whatever B does
after it has finished is the same for every larger j, so j stops there. Invariants, after both runs and one more
scheduled run: every bucket counted exactly once, at most one of the two published usage or revoked, neither failed,
no intent left pending.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from keyrot.monitor import ledger
from keyrot.monitor.run import MonitorReport, MonitorRun
from keyrot.openai_admin import KeyStatus
from lab.monitor_scenario import MonitorWorld
from lab.openai_standin import ManualClock, OpenAIStandIn
from tests.prove.faultkit import FIGURES, Checks, FaultLog
from tests.prove.monitor_lab import MonitorLab, Prepared, expected_sums, published_sums

pytestmark = pytest.mark.timeout(900)

HANDOVER_TIMEOUT_SECONDS = 30
SCHEDULE_SECONDS = 300
RUNS = ("A", "B")


class ThreadRelay:
    """botocore hooks on shared clients, passed to the FaultLog of the thread making the call."""

    def __init__(self) -> None:
        self.logs: dict[int, FaultLog] = {}

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-call.*.*", lambda **kw: self._log()._before_aws_call(**kw))
        client.meta.events.register("after-call.*.*", lambda **kw: self._log()._after_aws_call(**kw))
        return client

    def use(self, log: FaultLog) -> None:
        self.logs[threading.get_ident()] = log

    def _log(self) -> FaultLog:
        return self.logs.get(threading.get_ident()) or FaultLog()


class Interleaving:
    """Lets one of the runs go at a time: A for `i` calls, B for `j`, then A to its end, then B to its end."""

    def __init__(self, i: int, j: int) -> None:
        self.segments: list[tuple[str, int | None]] = [("A", i), ("B", j), ("A", None), ("B", None)]
        self.index, self.used = 0, 0
        self.calls = dict.fromkeys(RUNS, 0)
        self.done: set[str] = set()
        self.cond = threading.Condition()
        self._advance()

    def owner(self) -> str | None:
        return self.segments[self.index][0] if self.index < len(self.segments) else None

    def _advance(self) -> None:
        while self.index < len(self.segments):
            who, quota = self.segments[self.index]
            if who not in self.done and (quota is None or self.used < quota):
                return
            self.index, self.used = self.index + 1, 0

    def _wait_turn(self, name: str) -> None:
        if not self.cond.wait_for(lambda: self.owner() in (name, None), timeout=HANDOVER_TIMEOUT_SECONDS):
            raise TimeoutError(f"run {name} never got its turn back")

    def start(self, name: str) -> None:
        with self.cond:
            self._wait_turn(name)

    def after_call(self, name: str) -> None:
        with self.cond:
            self.calls[name] += 1
            self.used += 1
            self._advance()
            self.cond.notify_all()
            self._wait_turn(name)

    def finish(self, name: str) -> None:
        with self.cond:
            self.done.add(name)
            self._advance()
            self.cond.notify_all()


class LeaseLab:
    """The monitor laboratory, with one set of clients whose calls are told apart by thread."""

    def __init__(self, matrix: MonitorLab) -> None:
        self.matrix = matrix
        self.relay = ThreadRelay()
        region = matrix.template.cloudwatch.meta.region_name
        self.clients = {
            name: self.relay.attach(boto3.client(name, region_name=region))
            for name in ("secretsmanager", "cloudwatch", "ssm", "sns")
        }

    def run_pair(self, prepared: Prepared, i: int, j: int) -> tuple[dict[str, Any], dict[str, int]]:
        """Runs A and B interleaved at (i, j); returns their outcomes and how many calls each made."""
        order = Interleaving(i, j)
        outcomes: dict[str, Any] = {}
        runs = {name: self._run(prepared.world, name, order, outcomes) for name in RUNS}
        threads = [threading.Thread(target=runs[name], name=f"monitor-{name}") for name in RUNS]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=2 * HANDOVER_TIMEOUT_SECONDS)
        return outcomes, dict(order.calls)

    def _run(self, world: MonitorWorld, name: str, order: Interleaving, outcomes: dict[str, Any]) -> Callable[[], None]:
        log = FaultLog(watch=lambda _call: order.after_call(name))

        def run() -> None:
            self.relay.use(log)
            rotation = dataclasses.replace(
                world.rotation, secrets=self.clients["secretsmanager"], session_factory=log.session
            )
            deps = dataclasses.replace(world, rotation=rotation).dependencies(
                cloudwatch=self.clients["cloudwatch"], ssm=self.clients["ssm"], sns=self.clients["sns"]
            )
            order.start(name)
            try:
                outcomes[name] = MonitorRun(deps).execute()
            except BaseException as exc:  # noqa: BLE001 - every outcome is checked
                outcomes[name] = exc
            finally:
                order.finish(name)

        return run


def check_pair(lab: MonitorLab, prepared: Prepared, outcomes: dict[str, Any], checks: Checks) -> None:
    world = prepared.world
    reports = [outcome for outcome in outcomes.values() if isinstance(outcome, MonitorReport)]
    failures = {name: outcome for name, outcome in outcomes.items() if not isinstance(outcome, MonitorReport)}
    checks.check(not failures and len(outcomes) == 2, f"a run failed or hung: {failures or outcomes}")
    publishers = [report for report in reports if report.usage_datums]
    checks.check(len(publishers) <= 1, f"{len(publishers)} runs published usage")
    revokers = [report for report in reports if report.revoked]
    checks.check(len(revokers) <= 1, f"{len(revokers)} runs revoked")
    expected = expected_sums(world)
    for metric, found, wanted in zip(
        ("Requests", "InputTokens", "Unmanaged"), published_sums(world), expected, strict=True
    ):
        over = {bucket: value for bucket, value in found.items() if value > wanted.get(bucket, 0)}
        checks.check(not over, f"{metric} counted twice: {over}")
    # AND the next scheduled run completes the picture
    lab.clock.advance(SCHEDULE_SECONDS)
    ledger.clear_cache()
    later = world.run()
    checks.check(later.skipped is None and later.heartbeat, f"the next run: {later.skipped} {later.failed_parts}")
    checks.check(published_sums(world) == expected, f"sums {published_sums(world)} instead of {expected}")
    state = world.state() or {}
    checks.check(state.get("intent") is None, "an intent is left pending")
    checks.check(lab.status(prepared.previous.api_key) is KeyStatus.DEAD, "the previous key is still alive")


def test_two_runs_interleaved_at_every_pair_of_calls_never_both_publish(aws: None) -> None:
    clock = ManualClock(0)
    violations: list[str] = []
    scenarios = 0
    with OpenAIStandIn(clock=clock) as openai:
        matrix = MonitorLab(openai, clock)
        lab = LeaseLab(matrix)
        alone = 0  # how many calls A makes when B waits for it to finish: (0, 0)
        for i in itertools.count():
            for j in itertools.count(0 if i == 0 else 1):
                # GIVEN one prepared environment, WHEN A makes i calls, B j calls, then A finishes, then B
                prepared = matrix.prepare()
                outcomes, calls = lab.run_pair(prepared, i, j)
                scenarios += 1
                checks = Checks(f"lease: A paused after {i} call(s), B after {j}")
                # THEN every invariant holds
                check_pair(matrix, prepared, outcomes, checks)
                violations += checks.violations
                if (i, j) == (0, 0):
                    alone = calls["A"]
                if calls["B"] <= j:  # B ended within its turn: a longer turn is the same interleaving
                    break
            if i >= alone:  # A ended within its turn
                break
    FIGURES.append(f"lease: {scenarios} interleavings of two monitor runs, {len(violations)} invariant violations")
    assert not violations, f"{len(violations)} violation(s):\n" + "\n".join(violations[:40])
