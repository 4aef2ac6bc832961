"""Start the sandbox in the background and stop it, leaving no process and no port behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lab.demo.world import base_environment
from lab.sandbox.state import Paths, SandboxError, SandboxState

READY_TIMEOUT_SECONDS = 300  # a first run also builds the Lambda archive
STOP_TIMEOUT_SECONDS = 30


def start(paths: Paths, *, say: Callable[[str], None]) -> SandboxState:
    """Start the sandbox's process in a session of its own; relay its progress; return once it is ready.

    Ctrl-C while it starts stops it again. Raises SandboxError (with the end of its log) if it dies first.
    """
    running = paths.read_state()
    if running is not None and is_sandbox_process(running.pid):
        return running
    paths.clear()  # a sandbox that was killed outright leaves its files behind
    paths.directory.mkdir(parents=True, exist_ok=True)
    with paths.log.open("w") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "lab.sandbox", "--dir", str(paths.directory), "serve"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**base_environment(), "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
    paths.pid.write_text(f"{process.pid}\n")
    try:
        return _wait_until_ready(paths, process, say)
    except BaseException:
        stop(paths, say=lambda _: None)
        raise


def _wait_until_ready(paths: Paths, process: subprocess.Popen[bytes], say: Callable[[str], None]) -> SandboxState:
    deadline, shown = time.monotonic() + READY_TIMEOUT_SECONDS, 0
    while time.monotonic() < deadline:
        lines = paths.log.read_text(errors="replace").splitlines()
        complete = lines if process.poll() is not None else lines[:-1]  # the last line may be half written
        for line in complete[shown:]:
            say(line)
        shown = max(shown, len(complete))
        state = paths.read_state()
        if state is not None and state.pid == process.pid:
            return state
        if process.poll() is not None:
            tail = "\n".join(lines[-20:])
            raise SandboxError(f"the sandbox exited ({process.returncode}) before it was ready:\n{tail}")
        time.sleep(0.2)
    raise SandboxError(f"the sandbox was not ready after {READY_TIMEOUT_SECONDS} s; see {paths.log}")


def stop(paths: Paths, *, say: Callable[[str], None]) -> bool:
    """Stop the sandbox, if one runs: SIGTERM, then SIGKILL to its whole session. True if one was running."""
    state = paths.read_state()
    pid = state.pid if state is not None else paths.read_pid()
    endpoints = state.endpoints if state is not None else []
    if pid is None or not is_sandbox_process(pid):
        paths.clear()
        return False
    os.kill(pid, signal.SIGTERM)
    if not _wait(lambda: not _alive(pid), STOP_TIMEOUT_SECONDS):
        say(f"the sandbox (pid {pid}) did not stop within {STOP_TIMEOUT_SECONDS} s: killing it")
    for leftover in session_processes(pid):  # normally none: the sandbox stops its workers itself
        try:
            os.kill(leftover, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _wait(lambda: not session_processes(pid), STOP_TIMEOUT_SECONDS)
    _wait(lambda: not any(accepts_connections(host, port) for host, port in endpoints), STOP_TIMEOUT_SECONDS)
    paths.clear()
    return True


def is_sandbox_process(pid: int) -> bool:
    """True if `pid` is alive and is a sandbox's own process (never signal a pid that was reused)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return _alive(pid) and b"lab.sandbox" in command and b"serve" in command


def session_processes(session_id: int) -> list[int]:
    """Live processes of the session `session_id` (the sandbox and the function workers it started)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # it ended while we looked
        if int(fields[3]) == session_id and fields[0] != "Z":
            alive.append(int(stat.parent.name))
    return alive


def accepts_connections(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()
