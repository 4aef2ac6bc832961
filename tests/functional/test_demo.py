"""`make demo` runs end to end: the rehearsal passes every one of its checks and leaves nothing running."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest


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


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_rehearsal_passes_end_to_end() -> None:
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
        stdout, stderr = process.communicate(timeout=230)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 9)
    # THEN it exits 0, every narrated check held, and nothing printed a key
    assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert "Rehearsal passed" in stdout
    assert "✗" not in stdout
    assert "requests failed (target 0)" in stdout
    for line in stdout.splitlines():
        assert "sk-" not in line, "key-shaped text in the rehearsal output"
    # AND it cleaned up: no process it started is left, and the emulators' ports are closed
    assert _processes_in_session(process.pid) == []
    endpoints = set(re.findall(r"http://(127\.0\.0\.1):(\d+)", stdout))
    assert endpoints, "the rehearsal names the addresses it listens on"
    assert [f"{h}:{p}" for h, p in endpoints if _accepts_connections(h, int(p))] == []
