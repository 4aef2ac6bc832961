"""The sandbox's own process: bring the dev stack up as the rehearsal does, then keep it running until stopped.

SIGTERM and Ctrl-C stop it at any moment, bring-up included; every server and worker it started is stopped on the
way out, and its state file is removed.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from lab.demo.inbox import INBOX_QUEUE, OnCallInbox
from lab.demo.lambda_runtime import FunctionError
from lab.demo.provision import Provisioned
from lab.demo.world import COMPRESSION_NOTE, STACK, World, emulated_world, provision_stack
from lab.sandbox.invoke import invocations_routed_to
from lab.sandbox.state import Paths, SandboxError, SandboxState


def serve(paths: Paths, *, say: Callable[[str], None], ready: Callable[[SandboxState], None]) -> int:
    """Run the sandbox in this process until SIGTERM or Ctrl-C; `ready` is called once it can be used."""
    paths.directory.mkdir(parents=True, exist_ok=True)
    paths.pid.write_text(f"{os.getpid()}\n")
    stop = threading.Event()
    try:
        with _stoppable(say), emulated_world() as world:
            say(f"AWS emulator (moto) at {world.aws.endpoint_url}; OpenAI stand-in at {world.openai_api.base_url}")
            _bring_up(world, say)
            assert world.provisioned is not None
            workers = {worker.name: worker for worker in world.provisioned.workers.values()}
            with invocations_routed_to(workers):
                state = SandboxState(
                    pid=os.getpid(),
                    stack=STACK,
                    key_names=list(world.key_names),
                    aws_endpoint=world.aws.endpoint_url,
                    openai_base_url=world.openai_api.base_url,
                    environment=world.environment(),
                    inbox_queue=INBOX_QUEUE.format(stack=STACK),
                    log=str(paths.log),
                )
                paths.write_state(state)
                ready(state)
                stop.wait()
    except KeyboardInterrupt:
        say("stopped: every server and function worker has shut down")
    finally:
        paths.clear()
    return 0


def _bring_up(world: World, say: Callable[[str], None]) -> None:
    """Everything `make demo` does before its application starts: provision, admin key, guardrails, first rotations."""
    say(f"provisioning the {STACK} stack from the Pulumi program (about 15 s)")
    provisioned = provision_stack(world)
    world.aws.rotation.wait()
    if provisioned.unsupported:
        raise SandboxError(f"the program declared resources the emulator cannot create: {provisioned.unsupported}")
    say(f"{len(provisioned.created)} resources created; time compressed: {COMPRESSION_NOTE}")
    OnCallInbox.subscribe(world.aws, STACK)
    _cli(world, say, "admin-key", "set", "--env", STACK, stdin=world.admin_key + "\n")
    _apply_guardrails(provisioned, say)
    for key_name in world.key_names:
        _cli(world, say, "rotate", "--env", STACK, "--key", key_name)
    report = world.provisioned.workers[f"keyrot-{STACK}-monitor"].invoke({}) if world.provisioned else {}
    say(f"the monitor's first scheduled run: {int(report.get('notifications_sent') or 0)} notifications")


def _apply_guardrails(provisioned: Provisioned, say: Callable[[str], None]) -> None:
    """What the next `pulumi up` does once the admin key is there: the deploy-time guardrails apply the first update
    left pending (it had no admin key) runs again. One that fails again stops the bring-up, saying why."""
    try:
        results = provisioned.apply_pending()
    except FunctionError as exc:
        raise SandboxError(f"applying the declared OpenAI guardrails failed: {str(exc)[-500:]}") from exc
    changes = [change for result in results.values() for change in (result.get("changes") or [])]
    say(f"the declared OpenAI guardrails applied ({len(changes)} change(s))")


def _cli(world: World, say: Callable[[str], None], *args: str, stdin: str | None = None) -> None:
    result = world.cli(*args, stdin=stdin)
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0:
        raise SandboxError(f"keyrot {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    say(f"keyrot {' '.join(args)}: {lines[-1] if lines else 'done'}")


@contextmanager
def _stoppable(say: Callable[[str], None]) -> Iterator[None]:
    """SIGTERM becomes Ctrl-C (KeyboardInterrupt), once: a second signal cannot cut the cleanup short."""

    def interrupt(signum: int, _frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        say(f"stopping ({signal.Signals(signum).name})")
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
