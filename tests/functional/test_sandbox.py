"""`make sandbox`: a new user's playground. Its export lines point `keyrot`, the aws CLI, the README's snippet and the
playground app at it; an application survives an emergency rotation made with the CLI; `tick` shows what on-call
received; `down` and Ctrl-C leave no process and no port.

One sandbox serves the module (bring-up takes about half a minute); the last test stops it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from lab.sandbox.control import accepts_connections, session_processes
from lab.sandbox.state import Paths, SandboxState

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


@dataclass(frozen=True)
class Sandbox:
    paths: Paths
    up_output: str
    state: SandboxState
    exports_file: Path

    def shell(self, command: str, *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`command` in bash after the export lines `up` printed, as a user pastes them."""
        return subprocess.run(  # noqa: S603 - bash with our own command line
            ["bash", "-c", f"source {self.exports_file} && {command}"],  # noqa: S607 - bash from PATH
            capture_output=True,
            text=True,
            env=_clean_environment(),
            cwd=REPO_ROOT,
            timeout=timeout,
            check=False,
        )


def _clean_environment() -> dict[str, str]:
    """Ours, without any AWS, OpenAI or keyrot setting, with the virtualenv's commands (keyrot) first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYROT_", "OPENAI_", "MOTO_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _sandbox(directory: Path, *args: str, timeout: float = 330) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "lab.sandbox", "--dir", str(directory), *args],
        capture_output=True,
        text=True,
        env=_clean_environment(),
        cwd=REPO_ROOT,
        timeout=timeout,
        check=False,
    )


def _ports_open(state: SandboxState) -> list[str]:
    return [f"{host}:{port}" for host, port in state.endpoints if accepts_connections(host, port)]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    # GIVEN `make sandbox`, in a shell with no AWS or OpenAI settings of its own
    directory = tmp_path_factory.mktemp("sandbox")
    up = _sandbox(directory, "up")
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        state = Paths(directory).read_state()
        assert state is not None
        exports = [line for line in up.stdout.splitlines() if line.startswith(("export ", "unset "))]
        exports_file = directory / "exports.sh"
        exports_file.write_text("\n".join(exports) + "\n")
        yield Sandbox(Paths(directory), up.stdout, state, exports_file)
    finally:
        _sandbox(directory, "down", timeout=60)


def test_up_prints_export_lines_with_which_keyrot_status_works(sandbox: Sandbox) -> None:
    # WHEN a user pastes the printed lines and asks for the status
    result = sandbox.shell("keyrot status --env dev --json")
    # THEN the CLI reaches the sandbox and shows both keys of the dev stack, each with a current key
    assert result.returncode == 0, result.stdout + result.stderr
    text = result.stdout
    assert "chat-backend" in text and "batch-embeddings" in text
    assert len(set(re.findall(r"key_[A-Za-z0-9]{8,}", text))) >= 2


def test_up_applies_the_declared_guardrails(sandbox: Sandbox) -> None:
    # WHEN a user pastes the printed lines and asks whether the project matches the declared guardrails
    result = sandbox.shell("keyrot guardrails --env dev")
    # THEN bring-up applied them once the admin key was set (none left pending): the project is in step
    assert "the declared OpenAI guardrails applied" in sandbox.up_output
    assert result.returncode == 0, result.stdout + result.stderr


def test_export_lines_name_only_addresses_regions_and_fake_credentials(sandbox: Sandbox) -> None:
    # THEN nothing printed is key-shaped, every endpoint is on loopback, and the credentials are the emulator's
    assert not re.search(r"sk-[A-Za-z0-9_-]{8,}", sandbox.up_output)
    for name, value in sandbox.state.environment.items():
        if value.startswith("http"):
            assert value.startswith("http://127.0.0.1:"), name
    assert sandbox.state.environment["AWS_ACCESS_KEY_ID"] == sandbox.state.environment["AWS_SECRET_ACCESS_KEY"]


def test_the_readme_snippet_runs_against_the_sandbox(sandbox: Sandbox) -> None:
    # GIVEN the application snippet of the README, pointed at the dev stack's key
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("\n## Applications") :]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    program = snippet.replace("keyrot/prod/", "keyrot/dev/") + (
        "\nreply = client.chat.completions.create("
        "model='gpt-4o-mini', messages=[{'role': 'user', 'content': 'hello'}])\nprint(reply.id)\n"
    )
    script = sandbox.paths.directory / "snippet.py"
    script.write_text(program)
    # WHEN it runs in a shell with the export lines
    result = sandbox.shell(f"python {script}")
    # THEN its request, made with the key the secret holds, succeeds
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().startswith("chatcmpl")


def test_an_application_survives_an_emergency_rotation_made_with_the_cli(sandbox: Sandbox) -> None:
    # GIVEN the playground application, caching its key for the production default of five minutes
    app = subprocess.Popen(  # noqa: S603 - bash with our own command line
        ["bash", "-c", f"source {sandbox.exports_file} && exec python -m lab.demo.app --ttl 300"],  # noqa: S607
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_clean_environment(),
        cwd=REPO_ROOT,
    )
    try:
        assert app.stdout is not None
        for _ in range(3):  # its first progress lines: it is serving requests
            assert app.stdout.readline()
        # WHEN the operator revokes the key it uses, as after a leak
        rotate = sandbox.shell("keyrot rotate --env dev --key chat-backend --emergency --yes")
        assert rotate.returncode == 0, rotate.stdout + rotate.stderr
        time.sleep(2)
    finally:
        app.send_signal(signal.SIGINT)
        stdout, stderr = app.communicate(timeout=30)
    # THEN it moved to the new key and lost at most one request (the bound; the retry makes it none)
    summary = stdout.strip().splitlines()[-1]
    sent, failed = (int(n) for n in re.search(r"sent (\d+)\s+failed (\d+)", summary).groups())  # type: ignore[union-attr]
    served = re.findall(r"key_\w+", summary.split("keys served:")[1])
    assert sent > 0 and failed <= 1, stdout[-2000:] + stderr[-2000:]
    assert len(served) == 2, summary


@pytest.mark.skipif(shutil.which("aws") is None, reason="the aws CLI is not installed here")
def test_the_aws_cli_reaches_the_sandbox(sandbox: Sandbox) -> None:
    # WHEN the aws CLI is run with the export lines
    result = sandbox.shell("aws secretsmanager describe-secret --secret-id keyrot/dev/chat-backend --output json")
    # THEN it talks to the emulator and sees the managed secret with its tags
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["Name"] == "keyrot/dev/chat-backend"


def test_tick_shows_the_notification_on_call_received(sandbox: Sandbox) -> None:
    # GIVEN someone made a key keyrot does not manage (a service account, with the organization's admin key)
    admin = sandbox.shell(
        "aws secretsmanager get-secret-value --secret-id keyrot/dev/openai-admin-key --query SecretString --output text"
    )
    admin_key = json.loads(admin.stdout)["admin_key"]
    project_id = yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text())["config"]["keyrot:openaiProjectId"]
    request = urllib.request.Request(  # noqa: S310 - the stand-in on 127.0.0.1
        f"{sandbox.state.openai_base_url}/organization/projects/{project_id}/service_accounts",
        data=json.dumps({"name": "laptop script"}).encode(),
        headers={"Authorization": f"Bearer {admin_key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the stand-in on 127.0.0.1
        made = json.loads(response.read())
    key_id, key_value = made["api_key"]["id"], made["api_key"]["value"]
    # WHEN the user runs the monitor once
    tick = _sandbox(sandbox.paths.directory, "tick", timeout=120)
    # THEN the notification on-call received is shown, naming the key by id and never showing a key
    assert tick.returncode == 0, tick.stdout + tick.stderr
    assert re.search(rf"^✉ .*{key_id}", tick.stdout, re.M), tick.stdout
    assert key_value not in tick.stdout and admin_key not in tick.stdout


def test_up_again_reuses_the_running_sandbox(sandbox: Sandbox) -> None:
    # WHEN `make sandbox` runs while one is up
    again = _sandbox(sandbox.paths.directory, "up", timeout=60)
    # THEN it starts nothing new and prints the same export lines
    assert again.returncode == 0
    assert f"already running (pid {sandbox.state.pid})" in again.stdout
    assert sandbox.state.exports() in again.stdout


def test_down_leaves_no_process_and_no_port(sandbox: Sandbox) -> None:
    # (last in this module: it stops the module's sandbox)
    # WHEN `make sandbox-down` runs
    down = _sandbox(sandbox.paths.directory, "down", timeout=60)
    # THEN nothing the sandbox started is left, its ports are closed and its state is gone
    assert down.returncode == 0 and "no process and no port left" in down.stdout
    assert session_processes(sandbox.state.pid) == []
    assert _ports_open(sandbox.state) == []
    assert sandbox.paths.read_state() is None and not sandbox.paths.pid.exists()
    # AND the export lines now name nothing: a second `down` says so
    assert "No sandbox is running" in _sandbox(sandbox.paths.directory, "down", timeout=60).stdout


def test_tick_without_a_sandbox_says_how_to_start_one(tmp_path: Path) -> None:
    # WHEN a user ticks before starting a sandbox
    tick = _sandbox(tmp_path, "tick", timeout=60)
    # THEN it fails with a message saying what to do
    assert tick.returncode == 1
    assert "no sandbox is running" in tick.stderr and "make sandbox" in tick.stderr


def test_ctrl_c_stops_a_foreground_sandbox_and_leaves_nothing(tmp_path: Path) -> None:
    # GIVEN a sandbox started in the foreground (it stays attached to the terminal)
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "lab.sandbox", "--dir", str(tmp_path), "up", "--foreground"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_clean_environment(),
        cwd=REPO_ROOT,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line or "Ctrl-C stops the sandbox" in line:
                break
        state = Paths(tmp_path).read_state()
        assert state is not None, process.stderr.read() if process.stderr else ""
        # WHEN the user presses Ctrl-C
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    # THEN it exits cleanly, and no process, port or state file is left
    assert process.returncode == 0
    assert session_processes(process.pid) == []
    assert _ports_open(state) == []
    assert Paths(tmp_path).read_state() is None
