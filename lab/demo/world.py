"""The dev stack on 127.0.0.1, shared by the rehearsal and the sandbox: AWS emulated, OpenAI stood in, provisioned.

`emulated_world()` starts moto's server and the OpenAI stand-in with the dev stack's project and an admin key;
`provision_stack()` creates everything the Pulumi program declares, with the rehearsal's compressed times. The
world stops every Lambda worker it started when it ends, however it ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import yaml

from keyrot.constants import ENV_OPENAI_ADMIN_BASE_URL
from lab.demo.emulator import AwsEmulator, running_emulator
from lab.demo.provision import Provisioned, provision
from lab.openai_standin import OpenAIStandIn
from lab.pulumi_program import REPO_ROOT

STACK = "dev"
GRACE_SECONDS = 10
QUIET_SECONDS = 3
ADMIN_GRACE_SECONDS = 3
# Time compressed so the story fits in a minute: these replace the stack's hours in the emulator only.
TIME_COMPRESSION = {
    f"keyrot-{STACK}-rotation": {"KEYROT_VALIDATION_DELAY_SECONDS": "0.2"},
    f"keyrot-{STACK}-monitor": {
        "KEYROT_GRACE_PERIOD_SECONDS": str(GRACE_SECONDS),
        "KEYROT_MAX_GRACE_PERIOD_SECONDS": "120",
        "KEYROT_QUIET_WINDOW_SECONDS": str(QUIET_SECONDS),
        "KEYROT_SETTLE_DELAY_SECONDS": "0",
        "KEYROT_VALIDATION_DELAY_SECONDS": "0.2",
    },
    f"keyrot-{STACK}-admin-rotation": {
        "KEYROT_ADMIN_KEY_GRACE_SECONDS": str(ADMIN_GRACE_SECONDS),
        "KEYROT_VALIDATION_DELAY_SECONDS": "0.2",
    },
}
COMPRESSION_NOTE = (
    f"grace 6 h → {GRACE_SECONDS} s, quiet window 30 min → {QUIET_SECONDS} s, settle delay 10 min → 0 s, "
    f"admin-key grace 16 min → {ADMIN_GRACE_SECONDS} s "
    "(the emulator only; usage is still counted by the minute, as OpenAI reports it)"
)
# The OpenAI SDK's variable for its endpoint (applications); the CLI has its own, ENV_OPENAI_ADMIN_BASE_URL.
SDK_OPENAI_BASE_URL = "OPENAI_BASE_URL"


def openai_endpoint_variables() -> tuple[str, ...]:
    """Every variable that points a process at the OpenAI endpoint: the SDK's, then the keyrot CLI's own."""
    return (SDK_OPENAI_BASE_URL, ENV_OPENAI_ADMIN_BASE_URL)


def base_environment() -> dict[str, str]:
    """What a child process needs from ours (path, locale, virtualenv) and nothing that could point it elsewhere."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "TMPDIR")
    return {name: os.environ[name] for name in keep if name in os.environ}


@dataclass
class World:
    """One emulated AWS account and OpenAI organization, with the dev stack's configuration."""

    aws: AwsEmulator
    openai_api: OpenAIStandIn
    project_id: str
    key_names: list[str]
    admin_key: str
    provisioned: Provisioned | None = None
    _workers: ExitStack = field(default_factory=ExitStack)

    def environment(self) -> dict[str, str]:
        """The variables with which keyrot's CLI, the SDK, an application and the aws CLI reach this world."""
        endpoints = dict.fromkeys(openai_endpoint_variables(), self.openai_api.base_url)
        return {**self.aws.process_environment(), **endpoints}

    def cli(self, *args: str, stdin: str | None = None, columns: int = 200) -> subprocess.CompletedProcess[str]:
        """The operator's `keyrot` command, run as a separate process against this world."""
        command = [sys.executable, "-c", "from keyrot.cli import main; main()", *args]
        env = {**base_environment(), **self.environment(), "COLUMNS": str(columns)}
        return subprocess.run(  # noqa: S603 - our own interpreter and CLI
            command, input=stdin, capture_output=True, text=True, env=env, timeout=120, check=False
        )

    def secret_id(self, key_name: str) -> str:
        return f"keyrot/{STACK}/{key_name}"


@contextmanager
def emulated_world() -> Iterator[World]:
    """moto and the OpenAI stand-in on 127.0.0.1, with the dev stack's project and an admin key for keyrot."""
    stack_file = yaml.safe_load((REPO_ROOT / f"Pulumi.{STACK}.yaml").read_text())["config"]
    project_id = stack_file["keyrot:openaiProjectId"]
    key_names = [key["name"] for key in stack_file["keyrot:keys"]]
    with running_emulator() as aws, OpenAIStandIn() as openai_api:
        openai_api.state.add_project(project_id, name=f"{STACK} project")
        admin_key = openai_api.state.add_admin_key(name="keyrot rehearsal")
        world = World(aws, openai_api, project_id, key_names, admin_key)
        with world._workers:
            yield world


def provision_stack(world: World) -> Provisioned:
    """Create the dev stack in `world` exactly as the Pulumi program declares it, with the compressed times."""
    provisioned = provision(
        world.aws,
        stack=STACK,
        overrides={"keyrot:openaiBaseUrl": world.openai_api.base_url},
        function_overrides=TIME_COMPRESSION,
    )
    for worker in provisioned.workers.values():
        world._workers.callback(worker.stop)
    world.provisioned = provisioned
    return provisioned
