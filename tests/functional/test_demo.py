"""`make demo` runs end to end, narrates honestly and leaves nothing running; its janitor wait has no race.

The rehearsal runs once per module (about a minute); each test reads one promise off that run. The janitor wait is
driven with an injected clock, so its tests take no time.
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from lab.demo.emulator import running_emulator
from lab.demo.lambda_runtime import LambdaWorker
from lab.demo.narration import Narrator, Outcome, StoryStopped
from lab.demo.schedule import SCHEDULE_SECONDS, USAGE_BUCKET_SECONDS, JanitorWindow, run_until_revoked

HEADER = re.compile(r"^▶ (\d+)\. (.+?)  \((\d+\.\d) s\)$")
ADMIN_ROTATED = re.compile(r"Rotation complete: current admin key (key_\w+) \(was (key_\w+)\)")


@dataclass(frozen=True)
class Rehearsal:
    returncode: int
    stdout: str
    stderr: str
    leftovers: list[str]

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


def _processes_in_session(session_id: int) -> list[str]:
    """Processes still alive in the session the rehearsal started (it and every process it spawned)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        state, session = fields[0], int(fields[3])
        if session == session_id and state != "Z":
            alive.append(stat.parent.name)
    return alive


def _accepts_connections(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


@pytest.fixture(scope="module")
def rehearsal() -> Rehearsal:
    # GIVEN a clean environment: no AWS credentials or endpoints of the caller leak into the rehearsal
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYROT_", "OPENAI_", "MOTO_"))}
    # WHEN the README's first command runs, in a session of its own so everything it starts can be found
    process = subprocess.Popen(
        [sys.executable, "-m", "lab.demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
    return Rehearsal(process.returncode, stdout, stderr, _processes_in_session(process.pid))


@pytest.mark.slow
@pytest.mark.timeout(310)
def test_the_rehearsal_passes_end_to_end(rehearsal: Rehearsal) -> None:
    # THEN it exits 0, every narrated check held, and nothing printed a key
    assert rehearsal.returncode == 0, rehearsal.stdout[-3000:] + rehearsal.stderr[-3000:]
    assert "Rehearsal passed" in rehearsal.stdout
    assert "✗" not in rehearsal.stdout
    assert "requests failed (target 0)" in rehearsal.stdout
    assert not re.search(r"sk-[A-Za-z0-9_-]{16,}", rehearsal.stdout + rehearsal.stderr), "key-shaped text printed"


@pytest.mark.slow
@pytest.mark.timeout(310)
def test_the_rehearsal_leaves_no_process_and_no_open_port(rehearsal: Rehearsal) -> None:
    # THEN no process it started is left, and the emulators' ports are closed
    assert rehearsal.leftovers == []
    endpoints = set(re.findall(r"http://(127\.0\.0\.1):(\d+)", rehearsal.stdout))
    assert endpoints, "the rehearsal names the addresses it listens on"
    assert [f"{h}:{p}" for h, p in endpoints if _accepts_connections(h, int(p))] == []


@pytest.mark.slow
@pytest.mark.timeout(310)
def test_each_step_header_shows_that_steps_own_duration(rehearsal: Rehearsal) -> None:
    # GIVEN the numbered step headers and the total the rehearsal reports
    headers = [HEADER.match(line) for line in rehearsal.lines if line.startswith("▶")]
    assert headers and all(headers), [line for line in rehearsal.lines if line.startswith("▶")]
    total = float(re.search(r"checks in (\d+\.\d) s", rehearsal.stdout).group(1))  # type: ignore[union-attr]
    # THEN steps are numbered 1..n, and their durations add up to no more than the whole run (time since the start,
    # as the headers used to show, adds up to far more)
    assert [int(h.group(1)) for h in headers if h] == list(range(1, len(headers) + 1))
    assert sum(float(h.group(3)) for h in headers if h) <= total + 0.1 * len(headers)


@pytest.mark.slow
@pytest.mark.timeout(310)
def test_no_line_is_a_stray_fragment_or_an_empty_value(rehearsal: Rehearsal) -> None:
    # THEN no line was cut from another (every line's brackets balance), and no narrated value is empty
    for line in rehearsal.lines:
        assert line.count("(") == line.count(")"), f"a fragment of a wrapped or joined line: {line!r}"
        assert line.count("[") == line.count("]"), f"a fragment of a wrapped or joined line: {line!r}"
        for empty in ("()", "({})", "([])", "(was  ", " | ", "(was )"):
            assert empty not in line, f"an empty value in {line!r}"


@pytest.mark.slow
@pytest.mark.timeout(310)
def test_a_passed_check_never_reports_a_zero_next_to_it(rehearsal: Rehearsal) -> None:
    # THEN a ✓ line's detail never says nothing happened ("0 usage datapoints published" beside a success)
    passed = [line for line in rehearsal.lines if line.lstrip().startswith("✓")]
    assert passed
    for line in passed:
        detail = line[line.find("(") :] if "(" in line else ""
        assert not re.match(r"\(0 \w", detail), f"a check claims success with a zero figure: {line!r}"


@pytest.mark.slow
@pytest.mark.timeout(310)
def test_alarm_states_are_never_shown_as_if_cloudwatch_had_evaluated_them(rehearsal: Rehearsal) -> None:
    # THEN every alarm state the rehearsal shows is INSUFFICIENT_DATA (a new, unevaluated alarm), said so in words
    states = re.findall(r"\b\d+ (OK|ALARM|INSUFFICIENT_DATA)\b", rehearsal.stdout)
    assert states and set(states) == {"INSUFFICIENT_DATA"}
    assert "nothing evaluates alarms" in rehearsal.stdout


@pytest.mark.slow
@pytest.mark.timeout(310)
def test_the_rehearsal_ends_by_pointing_to_the_playground(rehearsal: Rehearsal) -> None:
    assert "make sandbox" in rehearsal.stdout.rsplit("Rehearsal passed", 1)[-1]


@pytest.mark.slow
@pytest.mark.timeout(310)
def test_the_rehearsal_rotates_the_admin_key_and_shows_the_old_one_rejected(rehearsal: Rehearsal) -> None:
    # GIVEN the admin rotations the rehearsal ran with `keyrot rotate --admin`
    chain = ADMIN_ROTATED.findall(rehearsal.stdout)
    # THEN they chain bootstrap → first → second, three distinct keys
    assert len(chain) == 2 and chain[1][1] == chain[0][0], chain
    (first, bootstrap), (second, _) = chain
    assert len({bootstrap, first, second}) == 3
    # AND the cleanup deleted the first, OpenAI rejects it, and the summary's `keyrot status` names the second
    assert f"✓ once its grace was over, the scheduled cleanup deleted keyrot's previous admin key ({first}," in (
        rehearsal.stdout
    )
    assert "✓ OpenAI now rejects the previous admin key" in rehearsal.stdout
    summary = rehearsal.stdout.rsplit("Summary", 1)[-1]
    assert re.search(rf"^\s+Admin key: {second},", summary, re.MULTILINE), summary


@pytest.mark.slow
@pytest.mark.timeout(310)
def test_the_rehearsal_shows_on_call_told_who_made_an_admin_key_and_a_key_by_hand(rehearsal: Rehearsal) -> None:
    # GIVEN who made an admin key by hand in the rehearsal, and the key made with it
    made = re.search(
        r"(\S+@\S+) creates admin key (key_\w+) in the OpenAI dashboard.* its key (key_\w+) ", rehearsal.stdout
    )
    assert made, "the rehearsal makes an admin key and a key by hand"
    person, admin_id, key_id = (re.escape(group) for group in made.groups())
    # THEN on-call's notifications, as shown, name the person for the admin key and that admin key for the key
    assert re.search(
        rf"✉ \[keyrot dev\] Admin key created outside keyrot\n\s+What happened: {person} ", rehearsal.stdout
    )
    told = rf"✉ \[keyrot dev\] Unmanaged OpenAI key {key_id}\n[^\n]*\n\s+Created by API key {admin_id} \({person}\)"
    assert re.search(told, rehearsal.stdout)


@pytest.mark.slow
@pytest.mark.timeout(310)
def test_the_rehearsal_applies_the_guardrails_then_finds_a_console_change_as_drift(rehearsal: Rehearsal) -> None:
    # THEN the pending apply ran and the project was in step, then the console change was found naming who
    assert "✓ keyrot guardrails finds the project in step (exit 0)" in rehearsal.stdout
    drift = (
        r"drift: rateLimits\.gpt-4o-mini\.max_requests_per_1_minute: declared 500, actual 5000 \(changed by (\S+@\S+)\)"
    )
    changed = re.search(r"(\S+@\S+) sets rateLimits\.gpt-4o-mini\.max_requests_per_1_minute to 5000 ", rehearsal.stdout)
    found = re.search(drift, rehearsal.stdout)
    assert changed and found and found.group(1) == changed.group(1)
    # AND on-call's notification, as shown, names who changed it
    told = rf"✉ \[keyrot dev\] OpenAI guardrails drift: .*\n[^\n]*\n[^\n]*\(changed by {re.escape(found.group(1))} "
    assert re.search(told, rehearsal.stdout)


def test_each_emulator_starts_empty_whatever_an_earlier_one_left() -> None:
    # GIVEN an emulator that stored a secret, then stopped (moto's backends live on in this process)
    with running_emulator() as first:
        first.client("secretsmanager").create_secret(Name="left-behind", SecretString="not a key")
    # WHEN the next one starts (a second rehearsal world, or the sandbox, in the same process)
    with running_emulator() as second:
        names = [entry["Name"] for entry in second.client("secretsmanager").list_secrets()["SecretList"]]
    # THEN it holds nothing of the first's
    assert names == []


# --- the janitor wait: run the monitor as its schedule would, until the janitor acts ---------------------------


class FakeClock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Monitor:
    """A monitor whose janitor revokes the key at the first run at or after `revokes_at` (never, if None)."""

    def __init__(self, clock: FakeClock, revokes_at: float | None) -> None:
        self.clock, self.revokes_at, self.runs = clock, revokes_at, []

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        self.runs.append(self.clock())
        due = self.revokes_at is not None and self.clock() >= self.revokes_at
        return {"revoked": ["key_old"] if due else [], "usage_datums": 0}


def test_the_wait_runs_the_monitor_again_until_the_janitor_revokes() -> None:
    # GIVEN a key last used just before a minute ended: the first run after the grace rightly keeps it (the race)
    clock = FakeClock(1_000.0)
    window = JanitorWindow.after(rotated_at=1_000.0, last_used=1_001.0, grace_seconds=8, quiet_seconds=3)
    monitor = Monitor(clock, revokes_at=window.opens + 4.5)
    # WHEN the rehearsal waits for the janitor
    outcome = run_until_revoked(monitor, "key_old", window, clock=clock, sleep=clock.sleep)
    # THEN it ran the monitor again, as the schedule would, and saw the revocation land
    assert outcome.revoked and outcome.runs == 6
    assert monitor.runs[0] == window.opens


def test_the_wait_gives_up_two_runs_after_the_janitors_rule_says_it_must_have_acted() -> None:
    # GIVEN a janitor that never revokes (a broken rule)
    clock = FakeClock(1_000.0)
    window = JanitorWindow.after(rotated_at=1_000.0, last_used=1_001.0, grace_seconds=8, quiet_seconds=3)
    # WHEN the rehearsal waits
    outcome = run_until_revoked(Monitor(clock, revokes_at=None), "key_old", window, clock=clock, sleep=clock.sleep)
    # THEN it stops soon after the rule's deadline and reports that nothing was revoked (the check then fails)
    assert not outcome.revoked
    assert window.due < clock() <= window.due + 3 * SCHEDULE_SECONDS


@given(
    rotated_at=st.floats(min_value=0, max_value=1e9),
    used_after=st.floats(min_value=0, max_value=30),
    grace=st.floats(min_value=0, max_value=600),
    quiet=st.floats(min_value=0, max_value=600),
)
def test_the_window_opens_after_grace_and_quiet_and_is_due_after_the_last_minute_of_use(
    rotated_at: float, used_after: float, grace: float, quiet: float
) -> None:
    window = JanitorWindow.after(
        rotated_at=rotated_at, last_used=rotated_at + used_after, grace_seconds=grace, quiet_seconds=quiet
    )
    assert window.opens == rotated_at + grace + quiet
    assert window.due >= window.opens
    assert window.due >= rotated_at + used_after + USAGE_BUCKET_SECONDS + quiet


# --- narration: a failed step still shows its header and lines, and a failed prerequisite stops the story --------


def test_a_failed_prerequisite_stops_the_story_and_its_step_still_shows_what_happened() -> None:
    # GIVEN a narrator writing to a pipe
    out = io.StringIO()
    outcome = Outcome()
    story = Narrator(Console(file=out, width=120, soft_wrap=True), outcome)
    # WHEN a check the rest depends on fails inside a step
    with pytest.raises(StoryStopped), story.step("First rotation"):
        story.say("rotating")
        story.require("keyrot rotate chat-backend", False, "exit 6")
        story.say("never reached")
    # THEN the step's header (marked interrupted), its lines and the failed check are printed, and the run fails
    text = out.getvalue()
    assert re.search(r"▶ 1\. First rotation  \(\d+\.\d s, interrupted\)", text)
    assert "rotating" in text and "✗ keyrot rotate chat-backend (exit 6)" in text and "never reached" not in text
    assert not outcome.ok and outcome.failed == ["keyrot rotate chat-backend"]


# --- the Lambda runtime: an invocation's log lines and metrics are forwarded before its reply is handed back -----


class _Recorder:
    """A logs and CloudWatch client that records what it was sent."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, operation: str) -> Any:
        return lambda **kwargs: self.calls.append((operation, kwargs))


class _SlowReader(LambdaWorker):
    """A worker whose reader thread lags behind the function (a busy machine): each line arrives 0.2 s late."""

    def _pump_logs(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        for line in self._process.stderr:
            time.sleep(0.2)
            self._log_lines.put(line.rstrip("\n"))


def test_an_invocations_metrics_reach_cloudwatch_before_its_reply_however_late_its_lines_are_read(
    tmp_path: Path,
) -> None:
    # GIVEN a function that logs a line and an EMF metric, run by a worker whose log reader lags
    archive = tmp_path / "function.zip"
    emf = {"_aws": {"CloudWatchMetrics": [{"Namespace": "Keyrot", "Dimensions": [[]], "Metrics": [{"Name": "Ran"}]}]}}
    with zipfile.ZipFile(archive, "w") as built:
        built.writestr("keyrot/__init__.py", "")
        built.writestr(
            "probe.py",
            "import json, keyrot\n"
            f"def handler(event, context):\n    print('working')\n    print(json.dumps({{**{emf!r}, 'Ran': 1}}))\n"
            "    return {'ok': True}\n",
        )
    logs, cloudwatch = _Recorder(), _Recorder()
    worker = _SlowReader("probe", "probe.handler", archive, {}, logs, cloudwatch, "/aws/lambda/probe", 5.0)
    worker.start()
    try:
        # WHEN it is invoked, twice
        replies = [worker.invoke({}), worker.invoke({})]
        # THEN by the time each reply is handed back, its metric was put and its lines forwarded (none of the END
        # markers among them)
        metrics = [kwargs for operation, kwargs in cloudwatch.calls if operation == "put_metric_data"]
        forwarded = [e["message"] for op, kwargs in logs.calls if op == "put_log_events" for e in kwargs["logEvents"]]
    finally:
        worker.stop()
    assert replies == [{"ok": True}, {"ok": True}]
    assert [m["MetricData"][0]["MetricName"] for m in metrics] == ["Ran", "Ran"]
    assert forwarded.count("working") == 2 and not [line for line in forwarded if "END of invocation" in line]
