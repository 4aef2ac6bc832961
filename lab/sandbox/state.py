"""What a running sandbox leaves on disk (build/sandbox/): its pid from the start, and its addresses once ready.

Both files hold addresses, names and fake credentials only: never a key.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from lab.pulumi_program import REPO_ROOT

DEFAULT_DIRECTORY = REPO_ROOT / "build" / "sandbox"


class SandboxError(RuntimeError):
    """The sandbox could not do what was asked; the message says what and what to do."""


@dataclass(frozen=True)
class SandboxState:
    """A ready sandbox: its process, the stack it holds and how to reach it."""

    pid: int
    stack: str
    key_names: list[str]
    aws_endpoint: str
    openai_base_url: str
    environment: dict[str, str]  # the variables `env` prints as export lines
    inbox_queue: str
    log: str

    @property
    def endpoints(self) -> list[tuple[str, int]]:
        """(host, port) of every server the sandbox listens on."""
        found = []
        for url in (self.aws_endpoint, self.openai_base_url):
            parts = urlsplit(url)
            found.append((parts.hostname or "127.0.0.1", int(parts.port or 80)))
        return found

    def exports(self) -> str:
        """Shell lines that point `keyrot`, the aws CLI, the OpenAI SDK and boto3 at this sandbox."""
        lines = [f"export {name}={shlex.quote(value)}" for name, value in sorted(self.environment.items())]
        return "\n".join(["unset AWS_PROFILE", *lines])


@dataclass(frozen=True)
class Paths:
    """The sandbox's files in `directory`."""

    directory: Path

    @property
    def state(self) -> Path:
        return self.directory / "state.json"

    @property
    def pid(self) -> Path:
        return self.directory / "sandbox.pid"

    @property
    def log(self) -> Path:
        return self.directory / "sandbox.log"

    def read_state(self) -> SandboxState | None:
        try:
            return SandboxState(**json.loads(self.state.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            raise SandboxError(f"{self.state} is not a sandbox state file ({exc}); remove it") from exc

    def write_state(self, state: SandboxState) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.state.with_name(".state.json.tmp")
        temporary.write_text(json.dumps(asdict(state), indent=2) + "\n")
        os.replace(temporary, self.state)

    def read_pid(self) -> int | None:
        try:
            return int(self.pid.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def clear(self) -> None:
        for path in (self.state, self.pid):
            path.unlink(missing_ok=True)
