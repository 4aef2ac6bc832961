"""`make demo`: rehearse the whole system locally; exit non-zero if any step did not happen as described."""

from __future__ import annotations

import sys

from rich.console import Console

from lab.demo.story import run


def main() -> int:
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(width=120, soft_wrap=True, highlight=False)  # pipes, logs and CI: never hard-wrapped
    console.print(
        "[bold]keyrot rehearsal[/]: the dev stack, its rotations, an application and on-call, on this machine"
    )
    outcome = run(console)
    seconds = outcome.figures.get("seconds")
    if not outcome.ok:
        console.print(
            f"\n[bold red]Rehearsal FAILED[/] after {seconds} s: {len(outcome.failed)} check(s) did not hold:"
        )
        for what in outcome.failed:
            console.print(f"  ✗ {what}")
        return 1
    console.print(f"\n[bold green]Rehearsal passed[/]: {len(outcome.checks)} checks in {seconds} s.")
    console.print(
        "Next, the playground: [bold]make sandbox[/] provisions the same stack and keeps it running, so you can "
        "drive it with `keyrot`, the aws CLI and your own code (README: The playground)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
