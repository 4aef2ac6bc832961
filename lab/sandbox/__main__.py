"""`python -m lab.sandbox up|down|tick|env`: the playground's commands (see lab/sandbox/__init__.py)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from lab.sandbox.state import DEFAULT_DIRECTORY, Paths, SandboxError, SandboxState

EXIT_NOT_RUNNING = 3


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    paths = Paths(args.dir)
    try:
        return int(args.run(paths, args))
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m lab.sandbox", description="keyrot's playground on 127.0.0.1.")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIRECTORY, help="state and log (default build/sandbox)")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start it (in the background) and print the export lines")
    up.add_argument("--foreground", action="store_true", help="stay attached; Ctrl-C stops it")
    up.set_defaults(run=_up)
    commands.add_parser("down", help="stop it; no process or port is left").set_defaults(run=_down)
    commands.add_parser("tick", help="run the monitor once and show what on-call received").set_defaults(run=_tick)
    commands.add_parser("env", help="print the export lines (eval them in a shell)").set_defaults(run=_env)
    commands.add_parser("serve", help=argparse.SUPPRESS).set_defaults(run=_serve)
    return parser.parse_args(argv)


def _up(paths: Paths, args: argparse.Namespace) -> int:
    if args.foreground:
        from lab.sandbox.serve import serve

        _exit_now(serve(paths, say=_say, ready=lambda state: _announce(state, foreground=True)))
    from lab.sandbox.control import start

    already = paths.read_state()
    state = start(paths, say=lambda line: print(f"  {line}", flush=True))
    if already is not None and already.pid == state.pid:
        print(f"A sandbox is already running (pid {state.pid}).")
    _announce(state, foreground=False)
    return 0


def _down(paths: Paths, args: argparse.Namespace) -> int:
    from lab.sandbox.control import stop

    if stop(paths, say=print):
        print("Sandbox stopped: no process and no port left.")
    else:
        print("No sandbox is running.")
    return 0


def _tick(paths: Paths, args: argparse.Namespace) -> int:
    from lab.sandbox.tick import tick

    state = _running(paths)
    for line in tick(state).lines():
        print(line)
    return 0


def _env(paths: Paths, args: argparse.Namespace) -> int:
    print(_running(paths).exports())
    return 0


def _serve(paths: Paths, args: argparse.Namespace) -> int:
    from lab.sandbox.serve import serve

    _exit_now(serve(paths, say=_say, ready=lambda state: _say("ready")))
    return 0  # not reached


def _exit_now(code: int) -> None:
    """End the process once serve() has stopped everything it started. The interpreter's own exit would then wait
    about ten seconds on threads Pulumi's runtime leaves behind (time `down` and Ctrl-C would spend waiting)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _running(paths: Paths) -> SandboxState:
    from lab.sandbox.control import is_sandbox_process

    state = paths.read_state()
    if state is None or not is_sandbox_process(state.pid):
        raise SandboxError("no sandbox is running: start one with `make sandbox` (python -m lab.sandbox up)")
    return state


def _say(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)


def _announce(state: SandboxState, *, foreground: bool) -> None:
    """The export lines and what to try, so `keyrot`, the aws CLI, the SDK and your code reach the sandbox."""
    keys = ", ".join(state.key_names)
    first = state.key_names[0]
    print(
        f"""
Sandbox ready (pid {state.pid}): the {state.stack} stack with keys {keys}.
  AWS emulator (moto)   {state.aws_endpoint}
  OpenAI stand-in       {state.openai_base_url}
Time is compressed as in the rehearsal (a previous key's grace is seconds, not hours).

Point a shell at it (fake credentials; nothing here reaches AWS or OpenAI):

{state.exports()}

or: eval "$(.venv/bin/python -m lab.sandbox env)"; then, with .venv/bin on your PATH:

  python -m lab.demo.app keyrot/{state.stack}/{first} --ttl 300   # an application, in a second shell
  keyrot status --env {state.stack}
  keyrot rotate --env {state.stack} --key {first} --emergency --yes  # watch the application survive it
  python -m lab.sandbox tick                                  # run the monitor once: what on-call would see
  aws secretsmanager describe-secret --secret-id keyrot/{state.stack}/{first}
""".rstrip()
    )
    if foreground:
        print("\nCtrl-C stops the sandbox.", flush=True)
    else:
        print(f"\nStop it with `make sandbox-down` (python -m lab.sandbox down). Its log: {state.log}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
