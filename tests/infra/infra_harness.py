"""Harness: run the real Pulumi program (infra/__main__.py) against Pulumi's mocks, once per stack file.

No Pulumi CLI, no AWS: `RecordingMocks` answers every resource registration with synthesised ids and ARNs (per
stack account and region), and data-source calls (caller identity, region, partition) with the stack's values.
The program runner itself is shared with the local rehearsal (lab.pulumi_program).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi

from lab.pulumi_program import (
    MAIN,
    PROJECT,
    REPO_ROOT,
    Deployment,
    Recorded,
    RecordingMocks,
    close_harness_event_loop,
    stack_config,
)
from lab.pulumi_program import run_program as run_with_mocks

__all__ = [
    "MAIN",
    "PROJECT",
    "REPO_ROOT",
    "STACKS",
    "Deployment",
    "Recorded",
    "close_harness_event_loop",
    "deployed",
    "keyrot_config",
    "run_component",
    "run_program",
    "stack_config",
]

STACK_ACCOUNTS = {"dev": "111111111111", "prod": "222222222222"}
STACKS = tuple(STACK_ACCOUNTS)


def keyrot_config(d: Deployment) -> Any:
    """The validated configuration the program ran with (the tests' expectations derive from it)."""
    from keyrot.pulumi.config import parse_config

    raw = {k.split(":", 1)[1]: v for k, v in d.config.items() if k.startswith("keyrot:")}
    return parse_config(raw, stack=d.stack)


def run_program(stack: str, config: dict[str, str], *, account: str | None = None, program: Path = MAIN) -> Deployment:
    """Run infra/__main__.py under synthesising mocks for `stack` with `config`; return everything it registered."""
    account = account or STACK_ACCOUNTS.get(stack, "333333333333")
    mocks = RecordingMocks(account, config.get("aws:region", "us-east-1"))
    return run_with_mocks(stack, config, mocks, account=account, program=program)


_CACHE: dict[str, Deployment] = {}


def deployed(stack: str) -> Deployment:
    """The program as deployed from Pulumi.<stack>.yaml, run once per session and cached."""
    if stack not in _CACHE:
        _CACHE[stack] = run_program(stack, stack_config(stack))
    return _CACHE[stack]


def run_component(
    args: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
    *,
    stack: str = "dev",
    account: str | None = None,
    region: str = "us-east-1",
    name: str = "keyrot",
    before: Callable[[], None] | None = None,
) -> Deployment:
    """Declare one KeyrotEnvironment(name, args) under the mocks, as a program of its own would; export its outputs.

    `args` may be a function, called under the mocks, so it can create the Outputs (roles, keys) it passes; `before`
    declares anything else the program has. The archive goes to the repository's build/ unless args say otherwise.
    """
    from keyrot.pulumi.environment import KeyrotEnvironment

    account = account or STACK_ACCOUNTS.get(stack, "333333333333")

    def declare() -> None:
        if before is not None:
            before()
        given = dict(args() if callable(args) else args)
        given.setdefault("build_dir", str(REPO_ROOT / "build"))
        environment = KeyrotEnvironment(name, given)  # type: ignore[arg-type]
        for output_name, value in environment.outputs().items():
            pulumi.export(output_name, value)

    mocks = RecordingMocks(account, region)
    return run_with_mocks(stack, {"aws:region": region}, mocks, account=account, program=declare)
