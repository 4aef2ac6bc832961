"""Benchmark: the audit-log tripwire and the key inventory it keeps (issue 14, part 3).

1. OpenAI calls per monitor run at 10, 100, 1,000 and 5,000 project keys: a steady run (nothing changed since the
   last run, the container warm: its copy of the keys is kept up to date from the audit log), a run after one key
   was made by hand (one GET), and a cold container's run (no copy: the keys are listed in full, one page per 100).
   Target: the steady run's calls do not depend on the number of keys.
2. Time from a key made outside keyrot (with another admin key, which OpenAI files under the default project) to
   on-call's notification naming who made it, in simulated time: the monitor runs at each tick of the default
   schedule (Pulumi.yaml's monitorIntervalMinutes) on one manual clock with the stand-in; the key is made just
   after a run, half-way and just before the next; a run's real duration is added to its tick. Target: at most one
   interval plus the run's own duration.

The project's keys are minted directly in the stand-in as another keyrot environment's (declared to share the
project: listed, never reported), so thousands of them cost no secrets; one managed key is rotated for real.
AWS is moto in process; the stand-in answers at once (calls are counted, not timed).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.common import BenchResult, fmt_seconds, median, moto_in_process, sandbox_env, stopwatch

SIZES = (10, 100, 1000, 5000)
SMOKE_SIZES = (10, 150)
PHASES = (0.02, 0.5, 0.98)  # where in the monitor interval the key is made
SMOKE_PHASES = (0.5,)
MAX_TICKS = 4


@dataclass
class CallFigures:
    keys: int
    steady: dict[str, int]  # endpoint -> calls of a steady run (warm container, nothing changed)
    one_key_made: dict[str, int]  # a run after a key was made by hand
    cold: dict[str, int]  # a new container's run (no copy of the keys)
    steady_seconds: float
    cold_seconds: float


def run(smoke: bool = False) -> BenchResult:
    result = BenchResult("tripwire", "9. Audit-log tripwire and key inventory", smoke=smoke)
    elapsed = stopwatch()
    interval = _default_interval_seconds()
    with sandbox_env(), moto_in_process():
        from lab.openai_standin import ManualClock, OpenAIStandIn

        now = int(time.time())
        clock = ManualClock(now - now % 60 - 10 * 86400)
        with OpenAIStandIn(clock=clock) as openai:
            calls = [_calls_at(openai, clock, keys) for keys in (SMOKE_SIZES if smoke else SIZES)]
            latencies = [_latency(openai, clock, interval, phase) for phase in (SMOKE_PHASES if smoke else PHASES)]
    _report(result, calls, latencies, interval)
    result.seconds = elapsed()
    return result


# --- a world -------------------------------------------------------------------------------------------------------


def _world(openai: Any, clock: Any, keys: int) -> Any:
    """A watched environment: `keys` project keys of a sharing environment, one managed key, keyrot's admin key
    recorded with its id, and a first run behind it."""
    from keyrot.monitor import ledger
    from keyrot.secret_model import AdminCredentials
    from lab.monitor_scenario import MonitorWorld

    world = MonitorWorld.create(openai, clock, environment=f"bench{uuid.uuid4().hex[:6]}")
    world = world.with_settings(shared_environments=("staging",))
    project = world.rotation.project_id
    for index in range(keys):
        name = f"keyrot:staging:app-{index}:{uuid.uuid4()}"
        openai.state.create_service_account(project, name, with_key=True, expires_in=None)
    arn = world.rotation.create_managed_secret("chat-backend")
    assert world.rotation.driver().rotate(arn).succeeded
    key_id = openai.state.admin_keys[world.rotation.admin_key].id
    world.rotation.secrets.put_secret_value(
        SecretId=world.rotation.admin_secret_arn,
        SecretString=AdminCredentials(world.rotation.admin_key, key_id).to_json(),
    )
    ledger.clear_cache()
    world.run()
    world.notifications()
    return world


def _counted_run(world: Any, openai: Any) -> tuple[dict[str, int], float, Any]:
    openai.reset_calls()
    took = stopwatch()
    report = world.run()
    seconds = took()
    return dict(Counter(call.endpoint for call in openai.calls)), seconds, report


# --- 1. calls per run ----------------------------------------------------------------------------------------------


def _calls_at(openai: Any, clock: Any, keys: int) -> CallFigures:
    from keyrot.monitor import key_cache

    world = _world(openai, clock, keys)
    clock.advance(900)
    steady, steady_seconds, report = _counted_run(world, openai)
    assert report.audit_log["listing"] is None, report.audit_log
    clock.advance(60)
    openai.console.as_user("mallory@example.com").create_project_key(world.rotation.project_id)
    clock.advance(840)
    one_key, _, _ = _counted_run(world, openai)
    world.notifications()
    clock.advance(900)
    key_cache.clear_cache()  # a new Lambda container
    cold, cold_seconds, _ = _counted_run(world, openai)
    return CallFigures(keys, steady, one_key, cold, steady_seconds, cold_seconds)


# --- 2. time to detect ---------------------------------------------------------------------------------------------


def _latency(openai: Any, clock: Any, interval: int, phase: float) -> dict[str, Any]:
    """A key made with another admin key `phase` of an interval after a run: when on-call hears who made it."""
    from keyrot.openai_admin import OpenAIAdminClient, OpenAITransport
    from lab.openai_standin.audit import Actor
    from lab.openai_standin.state import OWNER_EMAIL, OWNER_USER_ID

    world = _world(openai, clock, 10)
    other = openai.state.create_admin_key("by hand", expires_in=None, actor=Actor.session(OWNER_USER_ID, OWNER_EMAIL))
    clock.advance(interval)  # the admin key's own creation is told at the next run; then steady
    world.run()
    world.notifications()
    tick = int(clock())
    made_at = tick + int(phase * interval)
    clock.set(made_at)
    admin = OpenAIAdminClient(other.value, OpenAITransport(world.settings.openai_base_url))
    key_id = admin.create_service_account(world.rotation.project_id, "shadow").key_id
    durations = []
    for ticks in range(1, MAX_TICKS + 1):
        clock.set(tick + ticks * interval)
        took = stopwatch()
        world.run()
        durations.append(took())
        told = [n for n in world.notifications() if key_id in n["subject"] and other.id in n["message"]]
        if told:
            detected = tick + ticks * interval + durations[-1]
            return {"phase": phase, "latency_seconds": detected - made_at, "runs": ticks, "run_seconds": durations}
    return {"phase": phase, "latency_seconds": None, "runs": MAX_TICKS, "run_seconds": durations}


def _default_interval_seconds() -> int:
    from keyrot.pulumi.config import SETTINGS

    (setting,) = [s for s in SETTINGS if s.key == "monitorIntervalMinutes"]
    return int(setting.default) * 60


# --- report --------------------------------------------------------------------------------------------------------


def _report(result: BenchResult, calls: list[CallFigures], latencies: list[dict[str, Any]], interval: int) -> None:
    steady_totals = {figures.keys: sum(figures.steady.values()) for figures in calls}
    constant = len(set(steady_totals.values())) == 1
    result.target(
        "monitor OpenAI calls per steady run, by project keys",
        ", ".join(f"{keys:,} keys: {total}" for keys, total in steady_totals.items()),
        "the same at every size",
        constant,
    )
    for figures in calls:
        result.row(
            f"{figures.keys:,} keys: steady / one key made / cold container",
            f"{sum(figures.steady.values())} / {sum(figures.one_key_made.values())} / {sum(figures.cold.values())} "
            f"calls (key list pages {figures.steady.get('list_project_api_keys', 0)} / "
            f"{figures.one_key_made.get('list_project_api_keys', 0)} / {figures.cold.get('list_project_api_keys', 0)}"
            f"); run {fmt_seconds(figures.steady_seconds)} steady, {fmt_seconds(figures.cold_seconds)} cold",
        )
    found = [item["latency_seconds"] for item in latencies if item["latency_seconds"] is not None]
    longest_run = max((s for item in latencies for s in item["run_seconds"]), default=0.0)
    bound = interval + longest_run
    worst = max(found) if found and len(found) == len(latencies) else float("inf")
    result.target(
        f"time from a key made with another admin key to on-call naming who, worst of {len(latencies)} moments",
        f"{worst / 60:.1f} min (median {median(found) / 60:.1f} min)" if found else "never told",
        f"≤ one monitor interval ({interval // 60} min) + the run ({fmt_seconds(longest_run)})",
        worst <= bound,
    )
    result.figures = {
        "calls": [figures.__dict__ for figures in calls],
        "steady_totals": steady_totals,
        "interval_seconds": interval,
        "detection": latencies,
    }
    result.notes.append(
        "Steady run: the two audit-log reads (keys and service accounts; tenant-scoped admin-key events) replace "
        "the key list; a key made by hand costs one GET; a new Lambda container lists the keys in full once (one "
        "page per 100 keys), as does the daily reconciliation. Detection is simulated time; the stand-in lists "
        "events at once (OpenAI may list them later: the monitor re-reads 5 minutes back)."
    )
